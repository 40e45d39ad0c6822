//! `/query`: InfluxDB 1.x's query API over InfluxQL (`hourglass_query::influxql`). GET or POST
//! (parameters in the URL or a form body): `db`, `rp` (ignored), `q` (`;`-separated statements),
//! `epoch` (`ns`, `u`/`µ`, `ms`, `s`, `m`, `h`; RFC3339 times without it), `chunked` and
//! `chunk_size`, `pretty`; `u`/`p` or `Authorization: Token …` as for `/write` (checked by
//! [`super::auth::guard`]). Answers InfluxDB 1.x JSON, or CSV with `Accept: application/csv`.
//! A parse error is `400 {"error":"error parsing query: …"}`; a statement's error is in its
//! result. Format: `docs/protocols/influxql.md`.

use axum::extract::{Extension, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hourglass_query::influxql::result::{format_time, Tz};
use hourglass_query::influxql::{self, Ctx, Series, StatementResult, Value};
use serde_json::{json, Map, Value as Json};

use super::auth::Caller;
use super::body::decode_body;
use super::{AppState, ErrorStyle, HttpError};

/// Rows per chunk when `chunked=true` without `chunk_size` (InfluxDB's default).
const DEFAULT_CHUNK_SIZE: usize = 10_000;

#[derive(Debug, Default)]
struct Params {
    db: String,
    q: Option<String>,
    epoch: Option<String>,
    chunked: bool,
    chunk_size: usize,
    pretty: bool,
}

impl Params {
    fn absorb(&mut self, pairs: impl Iterator<Item = (String, String)>) {
        for (k, v) in pairs {
            match k.as_str() {
                "db" => self.db = v,
                "q" => self.q = Some(v),
                "epoch" => self.epoch = Some(v).filter(|e| !e.is_empty()),
                "chunked" => self.chunked = v == "true",
                "chunk_size" => self.chunk_size = v.parse().unwrap_or(0),
                "pretty" => self.pretty = v == "true",
                _ => {}
            }
        }
    }
}

fn pairs(text: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(text).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn v1_error(status: StatusCode, message: impl Into<String>) -> HttpError {
    HttpError::with_status(ErrorStyle::V1, status, message)
}

pub async fn query_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let mut params = Params::default();
    params.absorb(pairs(query.unwrap_or_default().as_bytes()));
    run(state, caller, params, &headers, true).await
}

pub async fn query_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let mut params = Params::default();
    params.absorb(pairs(query.unwrap_or_default().as_bytes()));
    let body = decode_body(&headers, body, state.max_body_bytes, ErrorStyle::V1)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded")
        || (content_type.is_empty() && !body.is_empty())
    {
        params.absorb(pairs(&body));
    } else if !body.is_empty() && !content_type.starts_with("multipart/") {
        return Err(v1_error(
            StatusCode::BAD_REQUEST,
            format!("unsupported Content-Type '{content_type}': send q in the URL or a form body (application/x-www-form-urlencoded)"),
        ));
    } else if content_type.starts_with("multipart/") {
        return Err(v1_error(
            StatusCode::BAD_REQUEST,
            "multipart query bodies are not supported by Hourglass: send q in the URL or a form body",
        ));
    }
    run(state, caller, params, &headers, false).await
}

/// How InfluxDB prints an identifier in a statement: bare when it can be, else quoted.
fn quote_ident(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The text of a statement that changes something (InfluxDB warns when it comes by GET).
fn write_statement_text(statement: &influxql::ast::Statement) -> Option<String> {
    use influxql::ast::Statement;
    match statement {
        Statement::CreateDatabase(name) => Some(format!("CREATE DATABASE {}", quote_ident(name))),
        Statement::DropMeasurement(name) => Some(format!("DROP MEASUREMENT {}", quote_ident(name))),
        _ => None,
    }
}

async fn run(
    state: AppState,
    caller: Caller,
    params: Params,
    headers: &HeaderMap,
    read_only: bool,
) -> Result<Response, HttpError> {
    let q = params.q.clone().unwrap_or_default();
    if q.trim().is_empty() {
        return Err(v1_error(
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\"",
        ));
    }
    let statements = influxql::parse_query(&q)
        .map_err(|e| v1_error(StatusCode::BAD_REQUEST, format!("error parsing query: {e}")))?;
    let now = state.engine.clock.now_nanos();
    let audit = |action: &str, target: &str, outcome: &str, detail: &str| {
        state.security.audit(
            &caller.principal.name,
            &caller.peer,
            "http",
            action,
            target,
            outcome,
            detail,
        )
    };
    let ctx = Ctx {
        engine: &state.query,
        principal: &caller.principal,
        db: &params.db,
        now,
        audit: &audit,
    };
    let mut results = Vec::with_capacity(statements.len());
    for statement in &statements {
        let mut result = influxql::run_statement(&ctx, statement).await;
        if read_only {
            if let Some(text) = write_statement_text(statement) {
                result.messages.push((
                    "warning".into(),
                    format!("deprecated use of '{text}' in a read only context, please use a POST request instead"),
                ));
            }
        }
        // InfluxDB 1.6 answers a statement that fails to compile in a query of several
        // statements with "not executed", and runs nothing after it.
        if statements.len() > 1 && result.compile_error {
            results.push(StatementResult::error("not executed"));
            break;
        }
        results.push(result);
    }
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/csv") || a.contains("text/csv"));
    let epoch = params.epoch.as_deref();
    if csv {
        let body = encode_csv(&results, epoch);
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], body).into_response());
    }
    let body = if params.chunked {
        let size = if params.chunk_size == 0 {
            DEFAULT_CHUNK_SIZE
        } else {
            params.chunk_size
        };
        encode_chunked(&results, epoch, size, params.pretty)
    } else {
        let doc = json!({
            "results": results
                .iter()
                .enumerate()
                .map(|(i, r)| result_json(i, r, epoch))
                .collect::<Vec<_>>()
        });
        let mut text = to_text(&doc, params.pretty);
        text.push('\n');
        text
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

fn to_text(doc: &Json, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(doc).unwrap_or_default()
    } else {
        doc.to_string()
    }
}

/// Divides ns into the `epoch` unit (truncating, as Go's integer division does).
fn epoch_divisor(epoch: &str) -> Option<i64> {
    Some(match epoch {
        "ns" | "n" => 1,
        "u" | "µ" | "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

fn float_json(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Json::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
    }
}

fn value_json(v: &Value, epoch: Option<&str>, tz: Option<Tz>) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Float(f) => float_json(*f),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Str(s) => Json::from(s.as_str()),
        Value::Bool(b) => Json::from(*b),
        Value::Time(t) => match epoch.and_then(epoch_divisor) {
            Some(d) => Json::from(t / d),
            None => Json::from(format_time(*t, tz)),
        },
    }
}

fn series_json(s: &Series, rows: &[Vec<Value>], epoch: Option<&str>, partial: bool) -> Json {
    let mut m = Map::new();
    if let Some(name) = &s.name {
        m.insert("name".into(), Json::from(name.as_str()));
    }
    if !s.tags.is_empty() {
        let tags: Map<String, Json> = s
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect();
        m.insert("tags".into(), Json::Object(tags));
    }
    m.insert("columns".into(), json!(s.columns));
    if !rows.is_empty() {
        let values: Vec<Json> = rows
            .iter()
            .map(|r| Json::Array(r.iter().map(|v| value_json(v, epoch, s.tz)).collect()))
            .collect();
        m.insert("values".into(), Json::Array(values));
    }
    if partial {
        m.insert("partial".into(), Json::Bool(true));
    }
    Json::Object(m)
}

fn result_json(id: usize, r: &StatementResult, epoch: Option<&str>) -> Json {
    let mut m = Map::new();
    m.insert("statement_id".into(), Json::from(id));
    if !r.messages.is_empty() {
        let messages: Vec<Json> = r
            .messages
            .iter()
            .map(|(level, text)| json!({"level": level, "text": text}))
            .collect();
        m.insert("messages".into(), Json::Array(messages));
    }
    if let Some(e) = &r.error {
        m.insert("error".into(), Json::from(e.as_str()));
    } else if !r.series.is_empty() {
        let series: Vec<Json> = r
            .series
            .iter()
            .map(|s| series_json(s, &s.values, epoch, false))
            .collect();
        m.insert("series".into(), Json::Array(series));
    }
    Json::Object(m)
}

/// One JSON document per chunk of at most `size` rows of one series; `partial` marks a series
/// continued in the next chunk and a statement with more chunks to come.
fn encode_chunked(
    results: &[StatementResult],
    epoch: Option<&str>,
    size: usize,
    pretty: bool,
) -> String {
    let mut out = String::new();
    let mut emit = |doc: Json| {
        out.push_str(&to_text(&json!({ "results": [doc] }), pretty));
        out.push('\n');
    };
    for (id, r) in results.iter().enumerate() {
        if r.error.is_some() || r.series.is_empty() {
            emit(result_json(id, r, epoch));
            continue;
        }
        let mut chunks: Vec<(usize, usize, usize, bool)> = Vec::new();
        for (si, s) in r.series.iter().enumerate() {
            if s.values.is_empty() {
                chunks.push((si, 0, 0, false));
                continue;
            }
            let mut start = 0;
            while start < s.values.len() {
                let end = (start + size).min(s.values.len());
                chunks.push((si, start, end, end < s.values.len()));
                start = end;
            }
        }
        let n = chunks.len();
        for (ci, (si, start, end, series_partial)) in chunks.into_iter().enumerate() {
            let s = &r.series[si];
            let mut m = Map::new();
            m.insert("statement_id".into(), Json::from(id));
            m.insert(
                "series".into(),
                Json::Array(vec![series_json(
                    s,
                    &s.values[start..end],
                    epoch,
                    series_partial,
                )]),
            );
            if ci + 1 < n {
                m.insert("partial".into(), Json::Bool(true));
            }
            emit(Json::Object(m));
        }
    }
    out
}

/// A tag set as InfluxDB's series hash key without the measurement (`k=v,k2=v2`, escaped).
fn tags_key(tags: &[(String, String)]) -> String {
    let esc = |s: &str| {
        let mut o = String::new();
        for c in s.chars() {
            if c == ',' || c == '=' || c == ' ' {
                o.push('\\');
            }
            o.push(c);
        }
        o
    };
    let mut sorted: Vec<_> = tags.iter().filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_field(s: &str) -> String {
    let needs = s.contains([',', '"', '\r', '\n']) || s.starts_with([' ', '\t']);
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_value(v: &Value, epoch: Option<&str>) -> String {
    match v {
        Value::Null => String::new(),
        Value::Float(f) => format!("{f}"),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => (t / epoch.and_then(epoch_divisor).unwrap_or(1)).to_string(),
    }
}

/// InfluxDB 1.x's CSV: `name,tags,<columns>` headers (again when the columns change, after a
/// blank line), one line per row; times as integers (ns unless `epoch`).
fn encode_csv(results: &[StatementResult], epoch: Option<&str>) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    };
    let mut wrote_any = false;
    for r in results {
        if let Some(e) = &r.error {
            line(vec!["error".into()], &mut out);
            line(vec![e.clone()], &mut out);
            continue;
        }
        if r.series.is_empty() {
            continue;
        }
        if wrote_any {
            out.push('\n');
        }
        wrote_any = true;
        let mut columns: Option<&Vec<String>> = None;
        for (i, s) in r.series.iter().enumerate() {
            if columns != Some(&s.columns) {
                if i > 0 {
                    out.push('\n');
                }
                let mut head = vec!["name".to_string(), "tags".to_string()];
                head.extend(s.columns.iter().cloned());
                line(head, &mut out);
                columns = Some(&s.columns);
            }
            let name = s.name.clone().unwrap_or_default();
            let tags = tags_key(&s.tags);
            for row in &s.values {
                let mut cells = vec![name.clone(), tags.clone()];
                cells.extend(row.iter().map(|v| csv_value(v, epoch)));
                line(cells, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_formats_them() {
        assert_eq!(format_time(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(1_500_000_000_500_000_000, None),
            "2017-07-14T02:40:00.5Z"
        );
        assert_eq!(format_time(-1, None), "1969-12-31T23:59:59.999999999Z");
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            format_time(1_500_000_000_500_000_000, Some(paris)),
            "2017-07-14T04:40:00.5+02:00"
        );
        assert_eq!(
            value_json(&Value::Time(1_500_000_000_123_456_789), Some("ms"), None),
            json!(1_500_000_000_123i64)
        );
        assert_eq!(float_json(2.0), json!(2));
        assert_eq!(float_json(2.5), json!(2.5));
    }

    #[test]
    fn chunks_mark_partial_series_and_results() {
        let s = Series {
            name: Some("m".into()),
            tags: vec![],
            columns: vec!["time".into(), "v".into()],
            values: (0..3)
                .map(|i| vec![Value::Time(i), Value::Int(i)])
                .collect(),
            tz: None,
        };
        let text = encode_chunked(&[StatementResult::ok(vec![s])], Some("ns"), 2, false);
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["results"][0]["partial"], json!(true));
        assert_eq!(lines[0]["results"][0]["series"][0]["partial"], json!(true));
        assert_eq!(lines[1]["results"][0].get("partial"), None);
        assert_eq!(
            lines[1]["results"][0]["series"][0]["values"],
            json!([[2, 2]])
        );
    }

    #[test]
    fn csv_shape() {
        let s = Series {
            name: Some("cpu".into()),
            tags: vec![("host".into(), "a,b".into())],
            columns: vec!["time".into(), "v".into()],
            values: vec![vec![Value::Time(5), Value::Float(1.5)]],
            tz: None,
        };
        assert_eq!(
            encode_csv(&[StatementResult::ok(vec![s])], None),
            "name,tags,time,v\ncpu,\"host=a\\,b\",5,1.5\n"
        );
    }
}
