//! The `[[mqtt]]` configuration sections: one [`SubscriptionConfig`] per subscription, with its
//! TLS settings and JSON mapping, the checks serde cannot do ([`SubscriptionConfig::validate`]),
//! and the commented example printed by `hourglass config example` ([`EXAMPLE_TOML`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::path::JsonPath;
use crate::template::{TableName, TopicTemplate};

/// One subscription: a broker, topic filters, a target database and a payload format.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Names the subscription in logs and in `/metrics` (`subscription="NAME"`); unique.
    pub name: String,
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (8883).
    pub url: String,
    /// Topic filters (`+` and `#` wildcards), subscribed at QoS 1.
    pub topics: Vec<String>,
    /// The MQTT client id; default `hourglass-NAME`. The broker keeps the session under it.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The database rows are written to (created on first write, as by line protocol).
    pub database: String,
    /// `line-protocol` or `json`.
    #[serde(default)]
    pub format: PayloadFormat,
    /// Timestamp precision of line protocol payloads: `ns`, `us`, `ms` or `s`.
    #[serde(default = "default_precision")]
    pub precision: String,
    /// Where messages that cannot be mapped are republished (QoS 1), if set.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// MQTT keep-alive interval.
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// At most this many messages are written by one commit (one WAL fsync), then acknowledged.
    #[serde(default = "default_batch_max_messages")]
    pub batch_max_messages: usize,
    /// How long a commit waits for more messages once the first one is there.
    #[serde(default = "default_batch_max_wait_ms")]
    pub batch_max_wait_ms: u64,
    /// Reconnection backoff: from 0.5 s, doubling up to this.
    #[serde(default = "default_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The mapping of `format = "json"`.
    #[serde(default)]
    pub json: Option<JsonMapping>,
}

/// A password: deserialized from a string, never shown by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The payload format of a subscription.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadFormat {
    #[default]
    LineProtocol,
    Json,
}

/// TLS of an `mqtts://` broker.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificates the broker's certificate must chain to; default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key, for brokers that require client certificates.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// How a JSON message becomes rows.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    /// The table; may name topic template variables: `"{kind}"`, `"telemetry_{site}"`.
    pub table: String,
    /// `factory/{site}/{device}/telemetry`: each `{name}` level becomes a dimension (`+` matches
    /// a level without naming it, a last `#` the rest). A topic that does not match is rejected.
    #[serde(default)]
    pub topic_template: Option<String>,
    /// The path of the time (`ts`, `meta.time`, `$.ts`); default: the arrival time.
    #[serde(default)]
    pub time_path: Option<String>,
    /// `s`, `ms`, `us`, `ns` (numbers) or `rfc3339` (strings).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeUnit,
    /// The path of an array of readings: each element one row, the rest of the message an
    /// envelope whose fields paths may also name.
    #[serde(default)]
    pub records_path: Option<String>,
    /// Dimension name = path of its value.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Measure name = path of its value; empty: every other number, boolean and string of the
    /// record (nested objects flattened with `_`).
    #[serde(default)]
    pub measures: BTreeMap<String, String>,
    /// `double`: every JSON number is a DOUBLE; `infer`: integers are BIGINT (as IoT Core's
    /// Timestream action does), other numbers DOUBLE.
    #[serde(default)]
    pub numbers: NumberType,
}

/// The unit of a JSON time value.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    S,
    Ms,
    Us,
    Ns,
    Rfc3339,
}

/// How JSON numbers are typed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NumberType {
    #[default]
    Double,
    Infer,
}

fn default_precision() -> String {
    "ns".into()
}
fn default_keep_alive_secs() -> u64 {
    30
}
fn default_batch_max_messages() -> usize {
    1000
}
fn default_batch_max_wait_ms() -> u64 {
    5
}
fn default_reconnect_max_secs() -> u64 {
    30
}
fn default_time_unit() -> TimeUnit {
    TimeUnit::Ms
}

/// A commented `[[mqtt]]` section with every key and its default.
pub const EXAMPLE_TOML: &str = r##"# MQTT subscriptions (docs/protocols/mqtt.md): Hourglass is a client of your broker. Each
# [[mqtt]] section is one subscription; a message is acknowledged (QoS 1) only once its rows are
# durable in the WAL. Remove the sections to subscribe to nothing (the default).
[[mqtt]]
# Names the subscription in logs and /metrics (required, unique).
name = "factory"
# mqtt://host[:port] (1883) or mqtts://host[:port] (8883) (required).
url = "mqtt://127.0.0.1:1883"
# Topic filters, subscribed at QoS 1 (required).
topics = ["factory/+/+/telemetry"]
# The MQTT client id of the persistent session (clean_session = false); default "hourglass-NAME".
# client_id = "hourglass-factory"
# username = "hourglass"
# password = "secret"
# The target database, created on first write (required).
database = "iot"
# "line-protocol" (default) or "json" (then the [mqtt.json] mapping below).
format = "json"
# Timestamp precision of line protocol payloads: ns, us, ms or s.
precision = "ns"
# Messages that cannot be mapped are counted, logged and, if set, republished here with the reason.
# dead_letter_topic = "hourglass/dead-letter"
keep_alive_secs = 30
# One commit (one WAL fsync) takes at most this many messages, waiting at most this long for them.
batch_max_messages = 1000
batch_max_wait_ms = 5
# Reconnection backoff: from 0.5 s, doubling up to this.
reconnect_max_secs = 30

# TLS for mqtts:// (optional).
# [mqtt.tls]
# ca_file = "/etc/hourglass/broker-ca.pem"      # default: the system's root certificates
# cert_file = "/etc/hourglass/client.pem"       # client certificate, if the broker asks for one
# key_file = "/etc/hourglass/client-key.pem"

# The JSON mapping (format = "json").
[mqtt.json]
# The table; may use topic template variables, e.g. "{kind}".
table = "telemetry"
# Each {name} level of the topic becomes a dimension; "+" skips a level, a last "#" the rest.
topic_template = "factory/{site}/{device}/telemetry"
# The time: a path into the message and its unit (s, ms, us, ns, rfc3339); default: arrival time.
time_path = "ts"
time_unit = "ms"
# An array of readings: each element one row; paths look in the element, then in the message.
# records_path = "readings"
# Dimensions from the payload: name = path.
[mqtt.json.dimensions]
# sensor = "sensor_id"
# Measures: name = path. None listed: every other number, boolean and string of the record.
[mqtt.json.measures]
# temperature = "temp"
# humidity = "env.humidity"
"##;

impl SubscriptionConfig {
    /// Checks what serde cannot; the error names the key (`mqtt[NAME].json.time_unit: ...`).
    pub fn validate(&self) -> Result<(), String> {
        let at = |key: &str, msg: String| format!("mqtt[{}].{key}: {msg}", self.name);
        if self.name.trim().is_empty() {
            return Err("mqtt.name: must not be empty".into());
        }
        self.broker().map_err(|e| at("url", e))?;
        if self.topics.is_empty() {
            return Err(at("topics", "at least one topic filter is needed".into()));
        }
        for t in &self.topics {
            check_filter(t).map_err(|e| at("topics", e))?;
        }
        if let Some(t) = &self.dead_letter_topic {
            if t.is_empty() || t.contains(['+', '#']) {
                return Err(at(
                    "dead_letter_topic",
                    format!("'{t}' must be a topic name without wildcards"),
                ));
            }
        }
        hourglass_core::names::validate_database_name(&self.database)
            .map_err(|e| at("database", e.message))?;
        hourglass_core::time::Precision::parse(&self.precision)
            .map_err(|e| at("precision", e.message))?;
        if let Some(id) = &self.client_id {
            if id.is_empty() || id.len() > 65535 {
                return Err(at("client_id", "must be 1 to 65535 bytes".into()));
            }
        }
        if self.batch_max_messages == 0 {
            return Err(at("batch_max_messages", "must be at least 1".into()));
        }
        if self.keep_alive_secs == 0 || self.keep_alive_secs > 65535 {
            return Err(at("keep_alive_secs", "must be 1 to 65535".into()));
        }
        if self.reconnect_max_secs == 0 {
            return Err(at("reconnect_max_secs", "must be at least 1".into()));
        }
        let tls_scheme = self.url.starts_with("mqtts://");
        if let Some(tls) = &self.tls {
            if !tls_scheme {
                return Err(at("tls", "is set but the url is not mqtts://".into()));
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(at(
                    "tls",
                    "cert_file and key_file go together (a client certificate and its key)".into(),
                ));
            }
        }
        match (self.format, &self.json) {
            (PayloadFormat::Json, None) => {
                return Err(at(
                    "json",
                    "format = \"json\" needs a [mqtt.json] mapping".into(),
                ))
            }
            (PayloadFormat::LineProtocol, Some(_)) => {
                return Err(at(
                    "json",
                    "a JSON mapping is set but format is \"line-protocol\"".into(),
                ))
            }
            (_, Some(json)) => json
                .compile()
                .map_err(|(key, e)| at(&format!("json.{key}"), e))
                .map(|_| ())?,
            _ => {}
        }
        Ok(())
    }

    /// The client id used: `client_id` or `hourglass-NAME`.
    pub fn effective_client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("hourglass-{}", self.name))
    }

    /// `(host, port, tls)` of the broker URL.
    pub fn broker(&self) -> Result<(String, u16, bool), String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("'{}': {e}", self.url))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            s => {
                return Err(format!(
                    "'{}': the scheme must be mqtt:// or mqtts://, not {s}://",
                    self.url
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("'{}' names no host", self.url))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!(
                "'{}': a broker URL has no path or query (topics go in `topics`)",
                self.url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "'{}': put credentials in `username` and `password`, not in the URL",
                self.url
            ));
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok((host, port, tls))
    }
}

/// Checks an MQTT topic filter: `#` only as the whole last level, `+` only as a whole level.
fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!("'{filter}': '#' must be the whole last level"));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!("'{filter}': '+' must be a whole level"));
        }
    }
    Ok(())
}

/// A JSON mapping with its paths and templates parsed.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    pub table: TableName,
    pub topic: Option<TopicTemplate>,
    pub time: Option<JsonPath>,
    pub time_unit: TimeUnit,
    pub records: Option<JsonPath>,
    pub dimensions: Vec<(String, JsonPath)>,
    pub measures: Vec<(String, JsonPath)>,
    pub numbers: NumberType,
}

impl JsonMapping {
    /// Parses paths and templates; an error names the key within `json`.
    pub fn compile(&self) -> Result<CompiledMapping, (String, String)> {
        let topic = self
            .topic_template
            .as_deref()
            .map(TopicTemplate::parse)
            .transpose()
            .map_err(|e| ("topic_template".to_string(), e))?;
        let table =
            TableName::parse(&self.table, topic.as_ref()).map_err(|e| ("table".to_string(), e))?;
        let path = |key: &str, p: &str| JsonPath::parse(p).map_err(|e| (key.to_string(), e));
        let time = self
            .time_path
            .as_deref()
            .map(|p| path("time_path", p))
            .transpose()?;
        if time.is_none() && self.time_unit != TimeUnit::Ms {
            return Err((
                "time_unit".into(),
                "is set but time_path is not (rows get the arrival time)".into(),
            ));
        }
        let records = self
            .records_path
            .as_deref()
            .map(|p| path("records_path", p))
            .transpose()?;
        let mut dimensions = Vec::new();
        for (name, p) in &self.dimensions {
            check_column("dimensions", name)?;
            dimensions.push((name.clone(), path(&format!("dimensions.{name}"), p)?));
        }
        let mut measures = Vec::new();
        for (name, p) in &self.measures {
            check_column("measures", name)?;
            if self.dimensions.contains_key(name) {
                return Err((
                    format!("measures.{name}"),
                    "is also a dimension".to_string(),
                ));
            }
            measures.push((name.clone(), path(&format!("measures.{name}"), p)?));
        }
        Ok(CompiledMapping {
            table,
            topic,
            time,
            time_unit: self.time_unit,
            records,
            dimensions,
            measures,
            numbers: self.numbers,
        })
    }
}

fn check_column(key: &str, name: &str) -> Result<(), (String, String)> {
    hourglass_core::names::validate_column_name(name)
        .map_err(|e| (format!("{key}.{name}"), e.message))?;
    if name.contains('\n') || name.ends_with('\\') {
        return Err((
            format!("{key}.{name}"),
            "a column name may not hold a newline or end with a backslash".into(),
        ));
    }
    Ok(())
}
