//! SNS notifications of scheduled queries, as Timestream sends them: a JSON message body
//! published to the definition's `NotificationConfiguration.SnsConfiguration.TopicArn` with
//! SNS's Query API (`POST /`, form `Action=Publish&TopicArn=...&Message=...&Version=2010-03-31`)
//! signed with AWS Signature Version 4 (service `sns`).
//!
//! Messages ([`state_message`], [`run_message`]):
//! - `{"type":"SCHEDULED_QUERY_CREATING","arn":...}` (queued before the Create answer),
//!   `{"type":"SCHEDULED_QUERY_UPDATE","arn":...,"state":"ENABLED|DISABLED"}`,
//!   `{"type":"SCHEDULED_QUERY_DELETED","arn":...}`;
//! - a run: `{"type":"AUTO_TRIGGER_SUCCESS|AUTO_TRIGGER_FAILURE|MANUAL_TRIGGER_SUCCESS|
//!   MANUAL_TRIGGER_FAILURE","arn":...,"nextInvocationEpochSecond":...,
//!   "scheduledQueryRunSummary":{"invocationEpochSecond","triggerTimeMillis","runStatus",
//!   "executionStats":{"executionTimeInMillis","dataWrites","bytesMetered","recordsIngested",
//!   "queryResultRows"},"errorReportLocation"?:{"s3ReportLocation":{"bucketName","objectKey"}},
//!   "failureReason"?}}` (the field names of Timestream's documented example).
//!
//! Where: `AWS_ENDPOINT_URL_SNS`, else `AWS_ENDPOINT_URL`, else `https://sns.<region>.amazonaws.com`
//! with the topic ARN's region (else `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`).
//! Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (without a key
//! the request goes unsigned, which only an emulator accepts).
//!
//! Publishing is asynchronous: messages go into a bounded queue that one task drains in order
//! (so a query's messages arrive in the order they were made); a full queue drops the message.
//! Nothing here fails an API call or a run: failures are counted ([`NotifyStats`]) and logged at
//! most once a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hourglass_auth::crypto::{hmac_sha256, sha256_hex};
use hourglass_auth::sigv4;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::definition::RunSummary;

/// Messages waiting to be published; more are dropped (and counted).
const QUEUE: usize = 10_000;
/// A publish gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Failures are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// One message for one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic_arn: String,
    pub body: Value,
}

/// What the notifier did (for tests and metrics).
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub published: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Where and as whom messages are published, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsSettings {
    /// `AWS_ENDPOINT_URL_SNS` or `AWS_ENDPOINT_URL`; `None`: AWS's regional endpoint.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl SnsSettings {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        SnsSettings {
            endpoint: var("AWS_ENDPOINT_URL_SNS").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
        }
    }

    /// The region of requests for `topic_arn`: the ARN's, else the configured one.
    pub fn region_for(&self, topic_arn: &str) -> String {
        topic_arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .or_else(|| self.region.clone())
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The URL requests for `topic_arn` go to.
    pub fn endpoint_for(&self, topic_arn: &str) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://sns.{}.amazonaws.com", self.region_for(topic_arn)),
        }
    }
}

/// A message about a change of a query's state; `state` for `SCHEDULED_QUERY_UPDATE`.
pub fn state_message(kind: &str, arn: &str, state: Option<&str>) -> Value {
    let mut out = json!({"type": kind, "arn": arn});
    if let Some(s) = state {
        out["state"] = Value::String(s.to_string());
    }
    out
}

/// The message of a finished run.
pub fn run_message(arn: &str, next_invocation: Option<i64>, r: &RunSummary) -> Value {
    let mut summary = Map::new();
    summary.insert(
        "invocationEpochSecond".into(),
        json!(r.invocation_time.div_euclid(1_000_000_000)),
    );
    summary.insert(
        "triggerTimeMillis".into(),
        json!(r.trigger_time.div_euclid(1_000_000)),
    );
    summary.insert("runStatus".into(), json!(r.run_status));
    summary.insert(
        "executionStats".into(),
        json!({
            "executionTimeInMillis": r.execution_time_millis,
            "dataWrites": r.data_writes,
            "bytesMetered": r.bytes_metered,
            "recordsIngested": r.records_ingested,
            "queryResultRows": r.query_result_rows,
        }),
    );
    if let Some((bucket, key)) = &r.error_report {
        summary.insert(
            "errorReportLocation".into(),
            json!({"s3ReportLocation": {"bucketName": bucket, "objectKey": key}}),
        );
    }
    if let Some(reason) = &r.failure_reason {
        summary.insert("failureReason".into(), json!(reason));
    }
    let mut out = json!({"type": r.run_status, "arn": arn});
    if let Some(next) = next_invocation {
        out["nextInvocationEpochSecond"] = json!(next.div_euclid(1_000_000_000));
    }
    out["scheduledQueryRunSummary"] = Value::Object(summary);
    out
}

/// `application/x-www-form-urlencoded` body of a Publish request.
pub fn publish_form(topic_arn: &str, message: &str) -> String {
    let enc = |s: &str| sigv4::uri_encode(s.as_bytes(), false);
    format!(
        "Action=Publish&Message={}&TopicArn={}&Version=2010-03-31",
        enc(message),
        enc(topic_arn)
    )
}

/// The headers of a request of `body` to `host` at `now`, signed for SNS in `region` when
/// `settings` has a key: `(name, value)` including `authorization`.
pub fn signed_headers(
    settings: &SnsSettings,
    region: &str,
    host: &str,
    body: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut headers: Vec<(String, String)> = vec![
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
        ("host".into(), host.to_string()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    if let Some(token) = &settings.session_token {
        headers.push(("x-amz-security-token".into(), token.clone()));
    }
    let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) else {
        return headers;
    };
    let names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: headers
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect(),
        body: body.as_bytes(),
    };
    let payload_hash = sha256_hex(body.as_bytes());
    let canonical = sigv4::canonical_request(&request, &names, &payload_hash);
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/sns/aws4_request");
    let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
    let signing_key = sigv4::signing_key(secret, date, region, "sns");
    let signature = hex::encode(hmac_sha256(&signing_key, to_sign.as_bytes()));
    let mut sorted = names;
    sorted.sort();
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={}, Signature={signature}",
            sorted.join(";")
        ),
    ));
    headers
}

/// The queue of messages and the task that publishes them.
pub struct Notifier {
    sender: mpsc::Sender<Message>,
    receiver: Mutex<Option<mpsc::Receiver<Message>>>,
    settings: SnsSettings,
    pub stats: Arc<NotifyStats>,
    last_log: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(settings: SnsSettings) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Notifier {
            sender,
            receiver: Mutex::new(Some(receiver)),
            settings,
            stats: Arc::new(NotifyStats::default()),
            last_log: Arc::new(Mutex::new(None)),
        }
    }

    /// Queues `body` for `topic_arn` (starting the publishing task on first use, when a Tokio
    /// runtime is there); never blocks.
    pub fn send(&self, topic_arn: &str, body: Value) {
        self.start();
        let message = Message {
            topic_arn: topic_arn.to_string(),
            body,
        };
        if self.sender.try_send(message).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.log_failure("the notification queue is full; message dropped");
        }
    }

    fn start(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut receiver) = self.receiver.lock().take() else {
            return;
        };
        let settings = self.settings.clone();
        let stats = self.stats.clone();
        let last_log = self.last_log.clone();
        runtime.spawn(async move {
            let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot make the SNS client; notifications are off");
                    return;
                }
            };
            while let Some(m) = receiver.recv().await {
                match publish(&client, &settings, &m).await {
                    Ok(()) => {
                        stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        log_rate_limited(&last_log, &format!("{}: {e}", m.topic_arn));
                    }
                }
            }
        });
    }

    fn log_failure(&self, what: &str) {
        log_rate_limited(&self.last_log, what);
    }
}

fn log_rate_limited(last: &Mutex<Option<Instant>>, what: &str) {
    let mut last = last.lock();
    if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(
        error = what,
        "cannot publish a scheduled-query notification to SNS (further failures within a minute are not logged)"
    );
}

/// Publishes one message.
async fn publish(
    client: &reqwest::Client,
    settings: &SnsSettings,
    m: &Message,
) -> Result<(), String> {
    let url = settings.endpoint_for(&m.topic_arn);
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("bad SNS endpoint {url}: {e}"))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return Err(format!("bad SNS endpoint {url}: no host")),
    };
    let body = publish_form(&m.topic_arn, &m.body.to_string());
    let region = settings.region_for(&m.topic_arn);
    let mut request = client.post(parsed);
    for (name, value) in signed_headers(settings, &region, &host, &body, chrono::Utc::now()) {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(format!(
        "HTTP {status}: {}",
        text.chars().take(300).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RunSummary {
        RunSummary {
            invocation_time: 1_637_302_440_000_000_000,
            trigger_time: 1_637_302_445_697_000_000,
            run_status: "AUTO_TRIGGER_SUCCESS".into(),
            execution_time_millis: 21669,
            data_writes: 36864,
            bytes_metered: 13_547_036_820,
            cumulative_bytes_scanned: 1,
            records_ingested: 1200,
            query_result_rows: 1200,
            error_report: None,
            failure_reason: None,
        }
    }

    #[test]
    fn run_messages_have_the_documented_shape() {
        let arn = "arn:aws:timestream:us-east-1:123456789012:scheduled-query/q";
        let m = run_message(arn, Some(1_637_302_500_000_000_000), &summary());
        // Timestream's documented example, field for field.
        assert_eq!(
            m,
            json!({"type":"AUTO_TRIGGER_SUCCESS","arn":arn,"nextInvocationEpochSecond":1637302500,
                "scheduledQueryRunSummary":{"invocationEpochSecond":1637302440,
                "triggerTimeMillis":1637302445697u64,"runStatus":"AUTO_TRIGGER_SUCCESS",
                "executionStats":{"executionTimeInMillis":21669,"dataWrites":36864,
                "bytesMetered":13547036820u64,"recordsIngested":1200,"queryResultRows":1200}}})
        );
        let mut failed = summary();
        failed.run_status = "MANUAL_TRIGGER_FAILURE".into();
        failed.failure_reason = Some("boom".into());
        failed.error_report = Some(("b".into(), "k".into()));
        let m = run_message(arn, None, &failed);
        assert_eq!(m["type"], "MANUAL_TRIGGER_FAILURE");
        assert!(m.get("nextInvocationEpochSecond").is_none());
        assert_eq!(m["scheduledQueryRunSummary"]["failureReason"], "boom");
        assert_eq!(
            m["scheduledQueryRunSummary"]["errorReportLocation"],
            json!({"s3ReportLocation": {"bucketName": "b", "objectKey": "k"}})
        );
        assert_eq!(
            state_message("SCHEDULED_QUERY_UPDATE", arn, Some("DISABLED")),
            json!({"type": "SCHEDULED_QUERY_UPDATE", "arn": arn, "state": "DISABLED"})
        );
        assert_eq!(
            state_message("SCHEDULED_QUERY_DELETED", arn, None),
            json!({"type": "SCHEDULED_QUERY_DELETED", "arn": arn})
        );
    }

    #[test]
    fn endpoints_regions_and_signatures() {
        let topic = "arn:aws:sns:eu-west-1:000000000000:topic";
        let mut s = SnsSettings {
            endpoint: None,
            region: Some("us-east-2".into()),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("secret".into()),
            session_token: Some("tok".into()),
        };
        assert_eq!(s.endpoint_for(topic), "https://sns.eu-west-1.amazonaws.com");
        assert_eq!(s.region_for("not-an-arn"), "us-east-2");
        s.endpoint = Some("http://127.0.0.1:5000/".into());
        assert_eq!(s.endpoint_for(topic), "http://127.0.0.1:5000");
        let body = publish_form(topic, r#"{"type":"X y&z"}"#);
        assert_eq!(
            body,
            "Action=Publish&Message=%7B%22type%22%3A%22X%20y%26z%22%7D&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A000000000000%3Atopic&Version=2010-03-31"
        );
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let headers = signed_headers(&s, "eu-west-1", "127.0.0.1:5000", &body, now);
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ));
        // The signature verifies with the server-side verifier of the same primitives.
        let parsed = sigv4::parse_authorization(auth).unwrap();
        let request = sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes(),
        };
        let canonical = sigv4::canonical_request(
            &request,
            &parsed.signed_headers,
            &sha256_hex(body.as_bytes()),
        );
        let to_sign = sigv4::string_to_sign(
            "20231114T221320Z",
            "20231114/eu-west-1/sns/aws4_request",
            &canonical,
        );
        assert_eq!(
            sigv4::signature("secret", &parsed, &to_sign),
            parsed.signature
        );
        s.access_key_id = None;
        assert!(signed_headers(&s, "eu-west-1", "h", &body, now)
            .iter()
            .all(|(n, _)| n != "authorization"));
    }

    fn settings(endpoint: String) -> SnsSettings {
        SnsSettings {
            endpoint: Some(endpoint),
            region: None,
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("secret".into()),
            session_token: None,
        }
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    #[tokio::test]
    async fn publishes_signed_form_posts_in_order_and_counts_failures() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(head_end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())
                                    .flatten()
                            })
                            .unwrap_or(0);
                        if buf.len() < head_end + 4 + length {
                            continue;
                        }
                        let _ = tx.send(text);
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        buf.clear();
                    }
                });
            }
        });
        let n = Notifier::new(settings(format!("http://{addr}")));
        let topic = "arn:aws:sns:us-east-1:000000000000:t";
        n.send(topic, json!({"type": "first"}));
        n.send(topic, json!({"type": "second"}));
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert!(a.starts_with("POST / HTTP/1.1"), "{a}");
        let lower = a.to_ascii_lowercase();
        assert!(
            lower.contains("authorization: aws4-hmac-sha256 credential=akid/"),
            "{a}"
        );
        assert!(lower.contains("/us-east-1/sns/aws4_request"), "{a}");
        assert!(
            a.contains(
                "Action=Publish&Message=%7B%22type%22%3A%22first%22%7D&TopicArn=arn%3Aaws%3Asns"
            ),
            "{a}"
        );
        assert!(b.contains("second"), "{b}");
        until(|| n.stats.published.load(Ordering::Relaxed) == 2).await;
        assert_eq!(n.stats.published.load(Ordering::Relaxed), 2);

        // Nobody listening: counted, never raised.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let down = Notifier::new(settings(format!("http://127.0.0.1:{port}")));
        down.send(topic, json!({"type": "lost"}));
        until(|| down.stats.failed.load(Ordering::Relaxed) == 1).await;
        assert_eq!(down.stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(down.stats.published.load(Ordering::Relaxed), 0);
    }
}
