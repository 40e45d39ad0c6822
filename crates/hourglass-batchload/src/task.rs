//! A batch load task as it is kept: the request, its status and progress, the checkpoint a
//! resumed run starts from, and the rejected rows its report lists. Serialized as one JSON file
//! per task (`docs/format/batch-load.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `BatchLoadStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Created,
    InProgress,
    Failed,
    Succeeded,
    ProgressStopped,
    PendingResume,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::InProgress => "IN_PROGRESS",
            Status::Failed => "FAILED",
            Status::Succeeded => "SUCCEEDED",
            Status::ProgressStopped => "PROGRESS_STOPPED",
            Status::PendingResume => "PENDING_RESUME",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }

    /// Whether the task still has work queued or running (counted against the quotas).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Created | Status::InProgress | Status::PendingResume
        )
    }
}

/// `BatchLoadProgressReport`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    /// Data rows read.
    pub records_processed: i64,
    /// Records written.
    pub records_ingested: i64,
    /// Rows that could not be read or mapped.
    pub parse_failures: i64,
    /// Records the write path rejected.
    pub record_ingestion_failures: i64,
    /// Objects that could not be read at all (or whose header lacks a mapped column).
    pub file_failures: i64,
    /// Bytes of the objects read.
    pub bytes_metered: i64,
}

/// Where a run goes on: the `file`-th object of [`Task::files`], at byte `offset` (the start of
/// line `line`). Recorded only once everything before it is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub file: usize,
    /// 0: the file has not been started (its header is read first).
    pub offset: u64,
    pub line: u64,
}

/// At most this many line ranges are kept for the report (the counters count them all).
pub const MAX_REPORTED_RANGES: usize = 10_000;

/// The errors the report lists: `fileErrors` by file, then reason, as line ranges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorLog {
    #[serde(default)]
    pub task_errors: Vec<String>,
    /// file → reason → `[first, last]` line ranges, in order.
    #[serde(default)]
    pub file_errors: BTreeMap<String, BTreeMap<String, Vec<[u64; 2]>>>,
    #[serde(default)]
    pub ranges: usize,
    /// Lines not listed because [`MAX_REPORTED_RANGES`] was reached.
    #[serde(default)]
    pub unlisted: u64,
}

impl ErrorLog {
    /// Adds line `line` of `file`, rejected for `reason` (merged into the last range when it
    /// follows it).
    pub fn add(&mut self, file: &str, line: u64, reason: &str) {
        let ranges = self
            .file_errors
            .entry(file.to_string())
            .or_default()
            .entry(reason.to_string())
            .or_default();
        if let Some(last) = ranges.last_mut() {
            if last[1] + 1 == line || last[1] == line {
                last[1] = line;
                return;
            }
        }
        if self.ranges >= MAX_REPORTED_RANGES {
            self.unlisted += 1;
            return;
        }
        ranges.push([line, line]);
        self.ranges += 1;
    }

    /// Records a failure of the whole of `file` (listed with no line ranges).
    pub fn add_file(&mut self, file: &str, reason: &str) {
        self.file_errors
            .entry(file.to_string())
            .or_default()
            .entry(reason.to_string())
            .or_default();
    }

    pub fn is_empty(&self) -> bool {
        self.task_errors.is_empty() && self.file_errors.is_empty()
    }

    /// The report, as Timestream writes it: `{"taskId", "taskErrors", "fileErrors":
    /// [{"fileName", "errors": [{"reason", "lineRanges"}]}]}`.
    pub fn report(&self, task_id: &str) -> Value {
        let mut task_errors: Vec<Value> = self.task_errors.iter().map(|e| json!(e)).collect();
        if self.unlisted > 0 {
            task_errors.push(json!(format!(
                "{} more rejected lines are not listed (the report lists at most {MAX_REPORTED_RANGES} line ranges).",
                self.unlisted
            )));
        }
        let file_errors: Vec<Value> = self
            .file_errors
            .iter()
            .map(|(file, reasons)| {
                let errors: Vec<Value> = reasons
                    .iter()
                    .map(|(reason, ranges)| json!({"reason": reason, "lineRanges": ranges}))
                    .collect();
                json!({"fileName": file, "errors": errors})
            })
            .collect();
        json!({"taskId": task_id, "taskErrors": task_errors, "fileErrors": file_errors})
    }
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    /// The user who created it (runs write as this user; `-` without authentication).
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    pub database: String,
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_version: Option<i64>,
    /// `DataSourceConfiguration`, `DataModelConfiguration`, `ReportConfiguration` as given.
    pub data_source_configuration: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_model_configuration: Option<Value>,
    pub report_configuration: Value,
    /// The `DataModel` in force (the inline one, or the S3 object's read at creation).
    pub data_model: Value,
    pub status: Status,
    pub progress: Progress,
    /// Nanoseconds since the epoch.
    pub creation_time: i64,
    pub last_updated_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumable_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The object keys to read, in order (listed when the task first runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    #[serde(default)]
    pub checkpoint: Checkpoint,
    #[serde(default)]
    pub errors: ErrorLog,
    /// The report's object key once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_lines_merge_into_ranges_per_file_and_reason() {
        let mut log = ErrorLog::default();
        for line in [2, 3, 4, 7] {
            log.add("a.csv", line, "bad time");
        }
        log.add("a.csv", 5, "bad value");
        log.add("b.csv", 2, "bad time");
        assert_eq!(
            log.report("T1"),
            json!({"taskId": "T1", "taskErrors": [], "fileErrors": [
                {"fileName": "a.csv", "errors": [
                    {"reason": "bad time", "lineRanges": [[2, 4], [7, 7]]},
                    {"reason": "bad value", "lineRanges": [[5, 5]]}]},
                {"fileName": "b.csv", "errors": [{"reason": "bad time", "lineRanges": [[2, 2]]}]}]})
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "CREATED",
            "IN_PROGRESS",
            "FAILED",
            "SUCCEEDED",
            "PROGRESS_STOPPED",
            "PENDING_RESUME",
        ] {
            assert_eq!(Status::parse(s).unwrap().as_str(), s);
        }
        assert!(Status::parse("DONE").is_none());
        assert!(Status::PendingResume.is_active() && !Status::ProgressStopped.is_active());
    }
}
