//! Console dashboards: their validated shape and their durable store, one JSON file per
//! dashboard in `DATA_DIR/dashboards/ID.json`, each replaced atomically (temporary file, fsync,
//! rename, fsync of the directory). Format: docs/format/dashboards.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The directory of the dashboards inside the data directory.
pub const DIR_NAME: &str = "dashboards";
/// The format version written; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;
/// The most panels a dashboard may hold.
pub const MAX_PANELS: usize = 64;
const MAX_ID_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;
const MAX_SQL_BYTES: usize = 64 * 1024;
const CHARTS: [&str; 4] = ["auto", "line", "bars", "table"];

/// Serialises writes (saves and deletes) of every store of the process.
static WRITES: Mutex<()> = Mutex::new(());

/// A dashboard as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub version: u32,
    pub id: String,
    pub title: String,
    pub time: TimeRange,
    pub refresh: String,
    pub panels: Vec<Panel>,
    /// RFC 3339, set by the server on each write.
    pub updated: String,
    /// The user who last wrote it (`anonymous` without authentication).
    pub updated_by: String,
}

/// The default time range: `now`, `now-<duration>` or an RFC 3339 instant at each end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

/// One query of a dashboard and how to show its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    pub title: String,
    pub sql: String,
    pub database: String,
    pub chart: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_by: Option<String>,
}

/// A request body's mistake, naming the field (`title`, `panels[1].sql`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    let field = field.into();
    let message = format!("dashboard field `{field}`: {}", message.into());
    Invalid { field, message }
}

/// Whether `id` may name a dashboard: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `text` is `now`, `now-<duration>` (`now-15m`, `now-7d`) or an RFC 3339 instant.
pub fn valid_instant(text: &str) -> bool {
    if text == "now" {
        return true;
    }
    if let Some(ago) = text.strip_prefix("now-") {
        return hourglass_alerts::duration::parse_duration(ago)
            .is_ok_and(|d| !d.is_zero() && !ago.contains("ms"));
    }
    rfc3339_like(text)
}

/// `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)`, with numbers in range.
fn rfc3339_like(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
            .then(|| text[r].parse::<u32>().unwrap_or(u32::MAX))
    };
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
    ) else {
        return false;
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return false;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return false;
    }
    let mut rest = &text[16..];
    if let Some(s) = rest.strip_prefix(':') {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n != 2 || s[..2].parse::<u32>().unwrap_or(99) > 60 {
            return false;
        }
        rest = &s[2..];
        if let Some(f) = rest.strip_prefix('.') {
            let n = f.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return false;
            }
            rest = &f[n..];
        }
    }
    match rest {
        "Z" | "z" => true,
        zone => {
            let z = zone.as_bytes();
            z.len() == 6
                && matches!(z[0], b'+' | b'-')
                && z[3] == b':'
                && zone[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
                && zone[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
        }
    }
}

/// Whether `text` is a refresh interval: `off` or a duration of at least one second (`5s`, `1m`).
pub fn valid_refresh(text: &str) -> bool {
    text == "off"
        || hourglass_alerts::duration::parse_duration(text)
            .is_ok_and(|d| d.as_millis() >= 1000 && d.as_millis() % 1000 == 0)
}

fn string_of(
    object: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, Invalid> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(path, format!("must be a string, not {other}"))),
    }
}

fn check_keys(object: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), Invalid> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            format!("{prefix}{k}"),
            format!("unknown field (known: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn short_text(value: Option<String>, path: &str, required: bool) -> Result<String, Invalid> {
    let value = value.unwrap_or_default();
    if required && value.trim().is_empty() {
        return Err(invalid(path, "required (a non-empty string)"));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            path,
            format!("longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(value)
}

fn parse_panel(value: &Value, i: usize) -> Result<Panel, Invalid> {
    let prefix = format!("panels[{i}].");
    let path = |f: &str| format!("{prefix}{f}");
    let object = value
        .as_object()
        .ok_or_else(|| invalid(format!("panels[{i}]"), "must be an object (a panel)"))?;
    check_keys(
        object,
        &["title", "sql", "database", "chart", "split_by"],
        &prefix,
    )?;
    let title = short_text(
        string_of(object, "title", &path("title"))?,
        &path("title"),
        false,
    )?;
    let sql = string_of(object, "sql", &path("sql"))?.unwrap_or_default();
    if sql.trim().is_empty() {
        return Err(invalid(path("sql"), "required (the panel's SQL query)"));
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(invalid(
            path("sql"),
            format!("longer than {MAX_SQL_BYTES} bytes"),
        ));
    }
    let database = string_of(object, "database", &path("database"))?.unwrap_or_default();
    if database.is_empty() {
        return Err(invalid(
            path("database"),
            "required (the database the query runs against)",
        ));
    }
    hourglass_core::names::validate_database_name(&database)
        .map_err(|e| invalid(path("database"), e.message))?;
    let chart = string_of(object, "chart", &path("chart"))?.unwrap_or_else(|| "auto".into());
    if !CHARTS.contains(&chart.as_str()) {
        return Err(invalid(
            path("chart"),
            format!("`{chart}` is not one of {}", CHARTS.join(", ")),
        ));
    }
    let split_by = string_of(object, "split_by", &path("split_by"))?.filter(|s| !s.is_empty());
    if let Some(s) = &split_by {
        short_text(Some(s.clone()), &path("split_by"), false)?;
    }
    Ok(Panel {
        title,
        sql,
        database,
        chart,
        split_by,
    })
}

/// A dashboard from a request body. `id` comes from the path (a body's `id` must equal it);
/// `version`, `updated` and `updated_by` in the body (an export's) are ignored and set here.
pub fn parse_dashboard(body: &[u8], id: &str, who: &str, now: &str) -> Result<Dashboard, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object (a dashboard)"))?;
    check_keys(
        object,
        &[
            "version",
            "id",
            "title",
            "time",
            "refresh",
            "panels",
            "updated",
            "updated_by",
        ],
        "",
    )?;
    if let Some(body_id) = string_of(object, "id", "id")? {
        if body_id != id {
            return Err(invalid(
                "id",
                format!("`{body_id}` differs from the path's `{id}`"),
            ));
        }
    }
    let title = short_text(string_of(object, "title", "title")?, "title", true)?;
    let time = match object.get("time") {
        None | Some(Value::Null) => TimeRange {
            from: "now-1h".into(),
            to: "now".into(),
        },
        Some(Value::Object(t)) => {
            check_keys(t, &["from", "to"], "time.")?;
            let from = string_of(t, "from", "time.from")?.unwrap_or_else(|| "now-1h".into());
            let to = string_of(t, "to", "time.to")?.unwrap_or_else(|| "now".into());
            for (field, v) in [("time.from", &from), ("time.to", &to)] {
                if !valid_instant(v) {
                    return Err(invalid(
                        field,
                        format!("`{v}` is not `now`, `now-<duration>` (e.g. now-15m) or an RFC 3339 instant"),
                    ));
                }
            }
            TimeRange { from, to }
        }
        Some(other) => {
            return Err(invalid(
                "time",
                format!("must be an object {{from, to}}, not {other}"),
            ))
        }
    };
    let refresh = string_of(object, "refresh", "refresh")?.unwrap_or_else(|| "off".into());
    if !valid_refresh(&refresh) {
        return Err(invalid(
            "refresh",
            format!("`{refresh}` is not `off` or whole seconds of at least 1s (e.g. 5s, 1m)"),
        ));
    }
    let panels = match object.get("panels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            if list.len() > MAX_PANELS {
                return Err(invalid("panels", format!("more than {MAX_PANELS} panels")));
            }
            list.iter()
                .enumerate()
                .map(|(i, p)| parse_panel(p, i))
                .collect::<Result<_, _>>()?
        }
        Some(other) => return Err(invalid("panels", format!("must be an array, not {other}"))),
    };
    Ok(Dashboard {
        version: FORMAT_VERSION,
        id: id.to_string(),
        title,
        time,
        refresh,
        panels,
        updated: now.to_string(),
        updated_by: who.to_string(),
    })
}

/// A failure to read or write the store, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dashboard store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dashboard store {path}: not a valid dashboard: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("dashboard store {path}: format version {found}, this build reads {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("dashboard store: {0}")]
    Write(hourglass_core::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path, source }
}

/// The dashboards of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store {
            dir: data_dir.join(DIR_NAME),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn read(path: &Path) -> Result<Option<Dashboard>, StoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let d: Dashboard = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        if d.version != FORMAT_VERSION {
            return Err(StoreError::Version {
                path: path.to_path_buf(),
                found: d.version,
            });
        }
        Ok(Some(d))
    }

    /// The dashboard `id` (a valid id), or None.
    pub fn get(&self, id: &str) -> Result<Option<Dashboard>, StoreError> {
        Self::read(&self.path(id))
    }

    /// Every dashboard, by id.
    pub fn list(&self) -> Result<Vec<Dashboard>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&self.dir))?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"));
            if id.is_some_and(valid_id) {
                out.extend(Self::read(&path)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Writes `d` atomically and durably; true when it is new.
    pub fn put(&self, d: &Dashboard) -> Result<bool, StoreError> {
        let _guard = WRITES.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(&d.id);
        let created = !path.exists();
        let bytes = serde_json::to_vec_pretty(d).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        // The users file's writer: temp file (mode 0600), fsync, rename, directory fsync.
        hourglass_auth::crypto::write_atomic(&path, &bytes).map_err(StoreError::Write)?;
        Ok(created)
    }

    /// Removes the dashboard `id`; false when there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let _guard = WRITES.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(&path)(e)),
        }
        self.sync_dir()?;
        Ok(true)
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Dashboard, Invalid> {
        parse_dashboard(body.as_bytes(), "ops", "alice", "2026-01-01T00:00:00.000Z")
    }

    #[test]
    fn a_valid_dashboard_gets_defaults_and_the_servers_fields() {
        let d = parse(
            r#"{"title":"Ops","panels":[{"title":"cpu","sql":"SELECT 1","database":"db1"}]}"#,
        )
        .unwrap();
        assert_eq!(d.id, "ops");
        assert_eq!(d.time.from, "now-1h");
        assert_eq!(d.refresh, "off");
        assert_eq!(d.panels[0].chart, "auto");
        assert_eq!(d.updated_by, "alice");
    }

    #[test]
    fn errors_name_the_field() {
        let field = |body: &str| parse(body).unwrap_err().field;
        assert_eq!(field(r#"{"panels":[]}"#), "title");
        assert_eq!(field(r#"{"title":"x","refresh":"2"}"#), "refresh");
        assert_eq!(
            field(r#"{"title":"x","time":{"from":"yesterday"}}"#),
            "time.from"
        );
        assert_eq!(field(r#"{"title":"x","id":"other"}"#), "id");
        assert_eq!(field(r#"{"title":"x","colour":1}"#), "colour");
        assert_eq!(
            field(
                r#"{"title":"x","panels":[{"sql":"SELECT 1","database":"d"},{"sql":"SELECT 1","database":"d","chart":"pie"}]}"#
            ),
            "panels[1].chart"
        );
        assert_eq!(
            field(r#"{"title":"x","panels":[{"sql":" ","database":"d"}]}"#),
            "panels[0].sql"
        );
        assert_eq!(
            field(r#"{"title":"x","panels":[{"sql":"SELECT 1"}]}"#),
            "panels[0].database"
        );
        assert_eq!(field("[1]"), "body");
    }

    #[test]
    fn instants_and_refresh_intervals() {
        for ok in [
            "now",
            "now-5m",
            "now-7d",
            "2026-12-06T21:00:00Z",
            "2026-12-06T21:00:00.123+01:00",
            "2026-12-06T21:00Z",
        ] {
            assert!(valid_instant(ok), "{ok}");
        }
        for bad in [
            "",
            "now-",
            "now-0s",
            "now-5x",
            "2026-13-06T21:00:00Z",
            "2026-12-06",
            "2026-12-06T21:00:00",
        ] {
            assert!(!valid_instant(bad), "{bad}");
        }
        assert!(valid_refresh("off") && valid_refresh("1s") && valid_refresh("1m"));
        assert!(!valid_refresh("500ms") && !valid_refresh("0") && !valid_refresh("fast"));
    }

    #[test]
    fn the_store_survives_reopening_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let d = parse(r#"{"title":"Ops"}"#).unwrap();
        assert!(Store::new(dir.path()).put(&d).unwrap());
        assert!(!Store::new(dir.path()).put(&d).unwrap());
        let store = Store::new(dir.path());
        assert_eq!(store.get("ops").unwrap(), Some(d.clone()));
        assert_eq!(store.list().unwrap(), vec![d]);
        assert!(store.delete("ops").unwrap());
        assert!(!store.delete("ops").unwrap());
        assert_eq!(store.list().unwrap(), vec![]);
    }
}
