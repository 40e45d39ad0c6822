//! Error reports of scheduled-query runs: the rows a run could not write, as Timestream writes
//! them — a JSON object `{"reportId", "errors": [{"reason", "records": [...]}]}` at
//! `<ObjectKeyPrefix>/<scheduled-query-id>/<InvocationTime>/<Auto|Manual>/<TriggerTime>` in the
//! bucket of `ErrorReportConfiguration` — written through the magnetic store's object-store
//! layer ([`hourglass_storage::store::MagneticStore`]).
//!
//! Where a bucket is: `HOURGLASS_SCHEDULED_QUERY_REPORTS` maps bucket names to local
//! directories (`bucket=/dir,other=/dir2`); any other bucket is `s3://bucket` with the standard
//! `AWS_*` settings (`AWS_ENDPOINT_URL` for an S3-compatible store).

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use hourglass_storage::store::MagneticStore;
use object_store::path::Path as ObjectPath;
use serde_json::{json, Value};

use crate::target::Unmapped;

/// The environment variable mapping buckets to directories.
pub const BUCKET_DIRS_VAR: &str = "HOURGLASS_SCHEDULED_QUERY_REPORTS";

/// Parses `bucket=/dir,other=/dir2`.
pub fn bucket_dirs(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(b, d)| (b.trim().to_string(), d.trim().to_string()))
        .filter(|(b, d)| !b.is_empty() && !d.is_empty())
        .collect()
}

/// The object key of a report.
pub fn report_key(prefix: &str, id: &str, invocation: i64, manual: bool, trigger: i64) -> String {
    let iso = |nanos: i64| {
        chrono::DateTime::from_timestamp_nanos(nanos)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let kind = if manual { "Manual" } else { "Auto" };
    let prefix = prefix.trim_matches('/');
    let tail = format!("{id}/{}/{kind}/{}", iso(invocation), iso(trigger));
    if prefix.is_empty() {
        tail
    } else {
        format!("{prefix}/{tail}")
    }
}

/// The report's JSON body: the rows grouped by reason, in the order the reasons first came.
pub fn report_body(report_id: &str, rows: &[Unmapped]) -> Value {
    let mut order: Vec<&str> = Vec::new();
    let mut by_reason: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for row in rows {
        if !by_reason.contains_key(row.reason.as_str()) {
            order.push(&row.reason);
        }
        by_reason
            .entry(&row.reason)
            .or_default()
            .push(row.record.clone());
    }
    let errors: Vec<Value> = order
        .into_iter()
        .map(|reason| json!({"reason": reason, "records": by_reason.remove(reason).unwrap_or_default()}))
        .collect();
    json!({"reportId": report_id, "errors": errors})
}

/// Writes a report into `bucket` at `key`.
pub async fn write_report(
    bucket: &str,
    key: &str,
    body: &Value,
    data_dir: &Path,
) -> Result<(), String> {
    let dirs = std::env::var(BUCKET_DIRS_VAR)
        .map(|v| bucket_dirs(&v))
        .unwrap_or_default();
    let spec = match dirs.get(bucket) {
        Some(dir) => dir.clone(),
        None => format!("s3://{bucket}"),
    };
    let store = MagneticStore::open(Some(&spec), data_dir).map_err(|e| e.to_string())?;
    let bytes = serde_json::to_vec_pretty(body).map_err(|e| e.to_string())?;
    store
        .put(&ObjectPath::from(key), Bytes::from(bytes))
        .await
        .map_err(|e| format!("writing the error report to {spec}/{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bodies_as_timestream_writes_them() {
        assert_eq!(
            report_key(
                "reports/",
                "rollup-ab12",
                1_700_000_000_000_000_000,
                false,
                1_700_000_005_000_000_000
            ),
            "reports/rollup-ab12/2023-11-14T22:13:20Z/Auto/2023-11-14T22:13:25Z"
        );
        assert_eq!(
            report_key("", "q", 0, true, 0),
            "q/1970-01-01T00:00:00Z/Manual/1970-01-01T00:00:00Z"
        );
        let rows = vec![
            Unmapped {
                reason: "b".into(),
                record: json!(1),
            },
            Unmapped {
                reason: "a".into(),
                record: json!(2),
            },
            Unmapped {
                reason: "b".into(),
                record: json!(3),
            },
        ];
        assert_eq!(
            report_body("r1", &rows),
            json!({"reportId": "r1", "errors": [
                {"reason": "b", "records": [1, 3]}, {"reason": "a", "records": [2]}]})
        );
        assert_eq!(
            bucket_dirs(" reports=/tmp/r , bad, x=/y"),
            BTreeMap::from([
                ("reports".to_string(), "/tmp/r".to_string()),
                ("x".to_string(), "/y".to_string())
            ])
        );
    }
}
