//! One run of a scheduled query: `@scheduled_runtime` bound to the invocation time, the query
//! run as the query's owner, its rows mapped to records ([`crate::target`]) and written through
//! the WriteRecords path as upserts (each record carries the version of the run's trigger time,
//! so a later run of the same window replaces an earlier one's) in commits of
//! [`RECORDS_PER_COMMIT`] records (`SchedulerConfig::records_per_commit`), the rows that could not be
//! written listed in an error report ([`crate::report`]), and what happened recorded on the
//! scheduled query (`LastRunSummary`, `RecentlyFailedRuns`).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use hourglass_auth::Principal;
use hourglass_timestream::protocol::ApiError;
use serde_json::Value;

use crate::definition::{Definition, RunSummary};
use crate::target::{map_batch, Unmapped};
use crate::Scheduler;

/// Records per commit of a run's writes. WriteRecords' own limit (100 a request) binds clients,
/// not the server: each commit costs a WAL fsync, a version-log fsync and, for records older than
/// the target's record index knows, one lookup query, so larger commits make a long rollup many
/// times faster (see `docs/benchmarks.md`, scheduled queries). The records of one commit are
/// held in memory (a few KiB each as JSON).
pub const RECORDS_PER_COMMIT: usize = 10_000;

/// Why a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its schedule came due.
    Auto,
    /// `ExecuteScheduledQuery`.
    Manual,
    /// Data arrived in a range a finished run had read ([`crate::late_data`]).
    LateData,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Auto => "AUTO",
            Trigger::Manual => "MANUAL",
            Trigger::LateData => "LATE_DATA",
        }
    }

    /// The trigger [`Trigger::as_str`] names.
    pub fn parse(name: &str) -> Option<Trigger> {
        match name {
            "AUTO" => Some(Trigger::Auto),
            "MANUAL" => Some(Trigger::Manual),
            "LATE_DATA" => Some(Trigger::LateData),
            _ => None,
        }
    }

    /// The `RunStatus` of a run with this trigger (a late-data rerun is an automatic run).
    fn run_status(self, ok: bool) -> &'static str {
        match (self, ok) {
            (Trigger::Manual, true) => "MANUAL_TRIGGER_SUCCESS",
            (Trigger::Manual, false) => "MANUAL_TRIGGER_FAILURE",
            (_, true) => "AUTO_TRIGGER_SUCCESS",
            (_, false) => "AUTO_TRIGGER_FAILURE",
        }
    }
}

/// `sql` with `@scheduled_runtime` replaced by the timestamp `runtime` (nanoseconds); any other
/// `@parameter` is refused (a scheduled query has no other values to bind).
pub fn bind_parameters(sql: &str, runtime: i64) -> Result<String, ApiError> {
    let params = hourglass_timestream::query::parameters(sql);
    let mut out = String::with_capacity(sql.len() + 32);
    let mut last = 0;
    for (name, range) in params {
        if !name.eq_ignore_ascii_case("@scheduled_runtime") {
            return Err(ApiError::validation(format!(
                "The only parameter a scheduled query can use is @scheduled_runtime; found {name}."
            )));
        }
        out.push_str(&sql[last..range.start]);
        out.push_str(&format!("from_nanoseconds({runtime})"));
        last = range.end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// `sql`'s rows in order of `time_column`, so that each commit of a run holds a narrow span of
/// time: the write path's version checks then read only that span of the target. Unordered, a
/// rerun of a day read the whole day back once per commit (162 s against the first run's 29 s;
/// `docs/benchmarks.md`). The rows are the query's own; only their order changes (DataFusion
/// sorts within the query memory limit, spilling past it).
pub fn ordered_by_time(sql: &str, time_column: &str) -> String {
    let body = sql.trim_end().trim_end_matches(';').trim_end();
    format!(
        "SELECT * FROM (\n{body}\n) AS scheduled_run ORDER BY \"{}\"",
        time_column.replace('"', "\"\"")
    )
}

/// What a run counted.
#[derive(Debug, Default)]
struct Counts {
    result_rows: i64,
    records_ingested: i64,
    bytes_written: i64,
    bytes_read: i64,
    unmapped: Vec<Unmapped>,
    /// What the query's scans read ([`crate::late_data`]).
    ranges: Vec<hourglass_query::time_range::ScanRange>,
}

impl Scheduler {
    /// Runs the scheduled query `arn` for `invocation` and records the outcome; `None` when the
    /// query no longer exists.
    pub async fn run_once(
        &self,
        arn: &str,
        invocation: i64,
        trigger: Trigger,
    ) -> Option<RunSummary> {
        // Runs of one query never overlap, whoever starts them.
        let lock = self.run_lock(arn);
        let _serial = lock.lock().await;
        let d = self.store.entry(arn)?.definition.clone();
        let trigger_time = self.now();
        let started = Instant::now();
        let mut counts = Counts::default();
        let ticket = self.run_started(arn, invocation, trigger);
        let outcome = self
            .execute_run(&d, invocation, trigger_time, &mut counts)
            .await;
        let covered =
            (outcome.is_ok() && d.target().is_some()).then(|| std::mem::take(&mut counts.ranges));
        self.run_ended(ticket, invocation, trigger_time, trigger, covered);
        let mut summary = RunSummary {
            invocation_time: invocation,
            trigger_time,
            run_status: trigger.run_status(outcome.is_ok()).to_string(),
            execution_time_millis: started.elapsed().as_millis() as i64,
            data_writes: counts.bytes_written,
            bytes_metered: counts.bytes_read,
            cumulative_bytes_scanned: counts.bytes_read,
            records_ingested: counts.records_ingested,
            query_result_rows: counts.result_rows,
            error_report: None,
            failure_reason: outcome.as_ref().err().map(|e| e.message.clone()),
        };
        if !counts.unmapped.is_empty() {
            let (bucket, prefix) = d.error_report_location();
            let key = crate::report::report_key(
                &prefix,
                d.id(),
                invocation,
                trigger == Trigger::Manual,
                trigger_time,
            );
            let body =
                crate::report::report_body(&uuid::Uuid::new_v4().to_string(), &counts.unmapped);
            match crate::report::write_report(&bucket, &key, &body, &self.config.data_dir).await {
                Ok(()) => summary.error_report = Some((bucket, key)),
                Err(e) => {
                    tracing::warn!(arn, error = %e, "cannot write a scheduled query's error report");
                    let reason = summary.failure_reason.take();
                    summary.failure_reason = Some(match reason {
                        Some(r) => format!("{r}; the error report could not be written: {e}"),
                        None => format!("The error report could not be written: {e}"),
                    });
                }
            }
        }
        self.finish(&d, trigger, summary.clone(), counts.unmapped.len())
            .await;
        Some(summary)
    }

    /// The query and its writes; errors fail the run.
    async fn execute_run(
        &self,
        d: &Definition,
        invocation: i64,
        trigger_time: i64,
        counts: &mut Counts,
    ) -> Result<(), ApiError> {
        let principal = self.principal_of(&d.owner)?;
        let sql = bind_parameters(&d.query_string, invocation)?;
        let target = d.target();
        // The owner's permissions now, not when the query was created.
        if let Some(mapping) = &target {
            crate::api::check_target_write(&principal, &mapping.database_name)?;
        }
        let sql = match &target {
            Some(mapping) => ordered_by_time(&sql, &mapping.time_column),
            None => sql,
        };
        // The scans planned record the time ranges they read.
        let collector = Arc::new(hourglass_query::time_range::ScanRanges::default());
        let mut stream = collector
            .collect(self.service.query.execute_timestream_as(&sql, &principal))
            .await?;
        counts.ranges = collector.ranges();
        // Microseconds of the trigger time: a later run always has a higher version.
        let version = trigger_time / 1_000;
        let per_commit = self.config.records_per_commit.max(1);
        let mut pending: Vec<Value> = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch =
                batch.map_err(|e| ApiError::from(hourglass_query::error::from_datafusion(e)))?;
            counts.result_rows += batch.num_rows() as i64;
            counts.bytes_read += batch.get_array_memory_size() as i64;
            let Some(mapping) = &target else {
                continue;
            };
            let mapped = map_batch(&batch, mapping, version);
            counts.unmapped.extend(mapped.unmapped);
            pending.extend(mapped.records);
            while pending.len() >= per_commit {
                let chunk: Vec<Value> = pending.drain(..per_commit).collect();
                self.write(&d.arn, mapping, chunk, counts).await?;
            }
        }
        if let Some(mapping) = &target {
            if !pending.is_empty() {
                self.write(&d.arn, mapping, pending, counts).await?;
            }
        }
        Ok(())
    }

    /// One commit of records through the WriteRecords path (the owner's write permission was
    /// checked once, before the run's query); rejected records go to the error report.
    async fn write(
        &self,
        arn: &str,
        mapping: &crate::definition::TargetMapping,
        records: Vec<Value>,
        counts: &mut Counts,
    ) -> Result<(), ApiError> {
        let (db, table) = (&mapping.database_name, &mapping.table_name);
        counts.bytes_written += records.iter().map(json_size).sum::<usize>() as i64;
        // The commit this write makes is the run's own: it must not make the run stale.
        let times = records
            .iter()
            .filter_map(|r| r.get("Time").and_then(Value::as_str)?.parse::<i64>().ok());
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let own = self.own_write_started(arn, db, table, lo, hi);
        let outcome =
            hourglass_timestream::write::write_record_objects(&self.service, db, table, &records)
                .await;
        self.own_write_ended(own);
        let outcome = outcome?;
        counts.records_ingested += (outcome.memory + outcome.magnetic) as i64;
        for r in outcome.rejected {
            counts.unmapped.push(Unmapped {
                reason: r.reason,
                record: records.get(r.index).cloned().unwrap_or(Value::Null),
            });
        }
        Ok(())
    }

    /// The principal runs of `owner`'s queries run as: unrestricted without authentication,
    /// else the user as they are now (a removed user's queries fail).
    fn principal_of(&self, owner: &str) -> Result<Arc<Principal>, ApiError> {
        match &self.service.security.store {
            None => Ok(Arc::new(Principal::unrestricted())),
            Some(store) => store.current(owner).map(|(p, _)| p).ok_or_else(|| {
                ApiError::new(
                    "AccessDeniedException",
                    403,
                    format!("The scheduled query's owner {owner} is no longer a user."),
                )
            }),
        }
    }
}

/// The bytes of `value` as compact JSON (what a WriteRecords body would carry).
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_the_rows_by_the_time_column_whatever_the_query_ends_with() {
        assert_eq!(
            ordered_by_time("SELECT 1 AS t FROM x -- note\n ; ", "t"),
            "SELECT * FROM (\nSELECT 1 AS t FROM x -- note\n) AS scheduled_run ORDER BY \"t\""
        );
        assert!(ordered_by_time("SELECT 1", "a\"b").ends_with("ORDER BY \"a\"\"b\""));
    }

    #[test]
    fn binds_the_scheduled_runtime_and_refuses_other_parameters() {
        assert_eq!(
            bind_parameters(
                "SELECT 1 FROM t WHERE time BETWEEN @scheduled_runtime - 1h AND @SCHEDULED_RUNTIME -- @x",
                5
            )
            .unwrap(),
            "SELECT 1 FROM t WHERE time BETWEEN from_nanoseconds(5) - 1h AND from_nanoseconds(5) -- @x"
        );
        assert!(bind_parameters("SELECT @other", 5)
            .unwrap_err()
            .message
            .contains("@other"));
    }
}
