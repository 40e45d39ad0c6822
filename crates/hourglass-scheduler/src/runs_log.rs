//! The durable log of scheduled-query runs behind `system.scheduled_query_runs`:
//! `<data-dir>/scheduled_query_runs.jsonl`, one JSON object a line, appended (and synced) when
//! a run finishes. The line's keys are the table's columns (times as nanoseconds since the
//! epoch); `hourglass_query::system` reads the file at each scan, so the query layer does not
//! depend on the scheduler.
//!
//! Bounded: when the file holds more than [`MAX_RUNS`] + 10 % lines it is rewritten (temporary
//! file, rename) with the newest [`MAX_RUNS`] runs.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use hourglass_query::system::SCHEDULED_QUERY_RUNS_FILE as FILE_NAME;

/// Runs the log keeps.
pub const MAX_RUNS: usize = 100_000;

/// One line: one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub arn: String,
    pub name: String,
    /// `@scheduled_runtime`, nanoseconds.
    pub invocation_time: i64,
    /// When the run started, nanoseconds (engine clock).
    pub trigger_time: i64,
    /// `AUTO`, `MANUAL` or `LATE_DATA`.
    pub trigger: String,
    /// The run's `RunStatus`.
    pub status: String,
    pub query_result_rows: i64,
    pub records_ingested: i64,
    pub rows_unmapped: i64,
    pub execution_time_ms: i64,
    pub error: Option<String>,
    /// `s3://bucket/key` of the error report, if one was written.
    pub error_report: Option<String>,
}

/// The log file and how many lines it holds.
#[derive(Debug)]
pub struct RunsLog {
    path: Option<PathBuf>,
    lines: Mutex<Option<usize>>,
    max: usize,
}

impl RunsLog {
    /// The log of `data_dir`.
    pub fn open(data_dir: &Path) -> Self {
        RunsLog {
            path: Some(data_dir.join(FILE_NAME)),
            lines: Mutex::new(None),
            max: MAX_RUNS,
        }
    }

    /// A log that keeps nothing.
    pub fn disabled() -> Self {
        RunsLog {
            path: None,
            lines: Mutex::new(None),
            max: MAX_RUNS,
        }
    }

    /// With a smaller bound (tests).
    pub fn with_max(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends `record`, trimming the file to the newest runs when it has grown past the bound.
    pub fn append(&self, record: &RunRecord) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut line = serde_json::to_string(record).map_err(|e| e.to_string())?;
        line.push('\n');
        let mut lines = self.lines.lock();
        let count = match *lines {
            Some(n) => n,
            None => {
                // A line torn by a crash is ended first, so this one stays whole.
                if !ends_with_newline(path) {
                    line.insert(0, '\n');
                }
                count_lines(path)?
            }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut count = count + 1;
        if count > self.max + self.max / 10 {
            count = trim(path, self.max)?;
        }
        *lines = Some(count);
        Ok(())
    }

    /// Every run in the file, oldest first (lines that do not parse are skipped).
    pub fn read_all(&self) -> Vec<RunRecord> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let Ok(file) = File::open(path) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return true;
    };
    if f.seek(SeekFrom::End(-1)).is_err() {
        return true; // empty
    }
    let mut last = [0u8; 1];
    f.read_exact(&mut last).is_err() || last[0] == b'\n'
}

fn count_lines(path: &Path) -> Result<usize, String> {
    match File::open(path) {
        Ok(f) => Ok(BufReader::new(f).lines().count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Rewrites `path` with its newest `keep` lines; their number.
fn trim(path: &Path, keep: usize) -> Result<usize, String> {
    let err = |e: std::io::Error| format!("trimming {}: {e}", path.display());
    let all: Vec<String> = BufReader::new(File::open(path).map_err(err)?)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let kept = &all[all.len().saturating_sub(keep)..];
    let tmp = path.with_extension("jsonl.tmp");
    {
        let mut out = File::create(&tmp).map_err(err)?;
        for l in kept {
            out.write_all(l.as_bytes()).map_err(err)?;
            out.write_all(b"\n").map_err(err)?;
        }
        out.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(kept.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> RunRecord {
        RunRecord {
            arn: "arn:aws:timestream:us-east-1:0:scheduled-query/q-1".into(),
            name: "q".into(),
            invocation_time: i,
            trigger_time: i + 1,
            trigger: "AUTO".into(),
            status: "AUTO_TRIGGER_SUCCESS".into(),
            query_result_rows: 3,
            records_ingested: 2,
            rows_unmapped: 1,
            execution_time_ms: 5,
            error: None,
            error_report: None,
        }
    }

    #[test]
    fn appends_survive_reopening_and_the_file_is_trimmed_to_the_newest_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunsLog::open(dir.path()).with_max(10);
        for i in 0..11 {
            log.append(&record(i)).unwrap();
        }
        assert_eq!(log.read_all().len(), 11);
        log.append(&record(11)).unwrap(); // 12 > 10 + 1: trimmed to 10
        let runs = RunsLog::open(dir.path()).read_all();
        assert_eq!(runs.len(), 10);
        assert_eq!(runs[0], record(2));
        assert_eq!(runs[9], record(11));
        // A reopened log counts what is there and keeps appending.
        let again = RunsLog::open(dir.path()).with_max(10);
        again.append(&record(12)).unwrap();
        assert_eq!(again.read_all().len(), 11);
        // A torn last line (a crash mid-append) is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap()
            .write_all(b"{\"arn\":")
            .unwrap();
        assert_eq!(again.read_all().len(), 11);
        let reopened = RunsLog::open(dir.path());
        reopened.append(&record(13)).unwrap();
        let runs = reopened.read_all();
        assert_eq!(runs.len(), 12);
        assert_eq!(runs[11], record(13));
    }
}
