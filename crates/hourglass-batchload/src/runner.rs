//! One run of a task: list the objects under the prefix (once, at the first run), then for each
//! object from the checkpoint on, read it, map its rows by the data model and write the records
//! through the WriteRecords path, [`crate::LoaderConfig::records_per_commit`] records per
//! commit. After each commit the task's counters, rejected rows and checkpoint (the object, byte
//! offset and line after the committed rows) are written to its file together: a run that stops
//! there, for whatever reason, goes on from exactly that point. At the end, the report is written
//! (when any row was rejected) and the task is SUCCEEDED, or FAILED when anything was rejected.
//!
//! Writes share the write path's back-pressure: a commit refused because the memory store is
//! full (ThrottlingException) is retried with backoff; a shutdown stops the run after its current
//! commit (PROGRESS_STOPPED).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hourglass_auth::Principal;
use hourglass_timestream::protocol::ApiError;
use hourglass_timestream::write::{write_record_objects, Rejected, WriteOutcome};
use serde_json::Value;

use crate::api::check_target_write;
use crate::csv_rows::{CsvConfiguration, CsvReader};
use crate::data_model::{open_file, DataModel};
use crate::task::{Checkpoint, Status, Task};
use crate::{source, Loader, RESUMABLE_FOR};

/// How a run ended early.
#[derive(Debug)]
enum End {
    /// Resumable: PROGRESS_STOPPED.
    Stopped(String),
    /// Not resumable: FAILED.
    Failed(String),
}

fn text_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The report's object key: `<ObjectKeyPrefix>/<TaskId>/report.json`.
pub fn report_key(prefix: &str, task_id: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{task_id}/report.json")
    } else {
        format!("{prefix}/{task_id}/report.json")
    }
}

/// Where a run starts in a file: the checkpoint's position when it is inside this file.
pub fn start_position(checkpoint: &Checkpoint, file: usize) -> Option<(usize, u64)> {
    (checkpoint.file == file && checkpoint.offset > 0)
        .then_some((checkpoint.offset as usize, checkpoint.line))
}

impl Loader {
    /// Runs task `id` (CREATED or PENDING_RESUME) until it ends or stops.
    pub(crate) async fn run(self: &Arc<Self>, id: &str) {
        if self.stopping() {
            // Left CREATED or PENDING_RESUME: it starts again with the server.
            return;
        }
        let now = self.now();
        let claimed = self.store.update(id, |t| {
            if !matches!(t.status, Status::Created | Status::PendingResume) {
                return Ok(false);
            }
            t.status = Status::InProgress;
            t.resumable_until = None;
            t.last_updated_time = now;
            Ok(true)
        });
        let task = match claimed {
            Ok(Some(true)) => match self.store.get(id) {
                Some(t) => t,
                None => return,
            },
            Ok(_) => return,
            Err(e) => {
                tracing::error!(task = id, error = %e, "cannot start a batch load task");
                return;
            }
        };
        tracing::info!(task = id, db = %task.database, table = %task.table, "batch load task running");
        let ended = self.work(id).await;
        let now = self.now();
        let result = match ended {
            Ok(()) => self.finish(id, None).await,
            Err(End::Failed(message)) => self.finish(id, Some(message)).await,
            Err(End::Stopped(message)) => self
                .store
                .update(id, |t| {
                    t.status = Status::ProgressStopped;
                    t.resumable_until = Some(now.saturating_add(RESUMABLE_FOR.as_nanos() as i64));
                    t.error_message = Some(message.clone());
                    t.last_updated_time = now;
                    Ok(())
                })
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::error!(task = id, error = %e, "cannot record the end of a batch load task");
        }
        if let Some(t) = self.store.get(id) {
            tracing::info!(
                task = id,
                status = t.status.as_str(),
                rows = t.progress.records_processed,
                ingested = t.progress.records_ingested,
                "batch load task ended"
            );
        }
    }

    /// Writes the report (when anything was rejected) and records SUCCEEDED or FAILED.
    async fn finish(&self, id: &str, failure: Option<String>) -> Result<(), String> {
        let Some(mut t) = self.store.get(id) else {
            return Ok(());
        };
        if let Some(message) = &failure {
            t.errors.task_errors.push(message.clone());
        }
        let p = &t.progress;
        let rejected = p.parse_failures + p.record_ingestion_failures + p.file_failures;
        let mut message = failure.clone();
        let mut key = None;
        if !t.errors.is_empty() || rejected > 0 {
            let bucket = text_at(&t.report_configuration, "/ReportS3Configuration/BucketName");
            let prefix = text_at(
                &t.report_configuration,
                "/ReportS3Configuration/ObjectKeyPrefix",
            );
            let k = report_key(prefix, id);
            let body =
                serde_json::to_vec_pretty(&t.errors.report(id)).map_err(|e| e.to_string())?;
            let written =
                match source::open(&self.service.config.unload, bucket, "batch load report") {
                    Ok(b) => b.put(&k, body).await,
                    Err(e) => Err(e),
                };
            match written {
                Ok(()) => {
                    key = Some(k.clone());
                    if message.is_none() {
                        message = Some(format!(
                            "{rejected} rows, records or files could not be loaded; the report is at s3://{bucket}/{k}."
                        ));
                    }
                }
                Err(e) => {
                    message = Some(format!(
                        "{}The report could not be written: {e}",
                        message.map(|m| format!("{m} ")).unwrap_or_default()
                    ))
                }
            }
        }
        let now = self.now();
        self.store
            .update(id, |t| {
                if let Some(f) = &failure {
                    t.errors.task_errors.push(f.clone());
                }
                t.status = if message.is_some() {
                    Status::Failed
                } else {
                    Status::Succeeded
                };
                t.error_message = message.clone();
                t.report_key = key.clone();
                t.resumable_until = None;
                t.last_updated_time = now;
                Ok(())
            })
            .map(|_| ())
    }

    /// The principal runs of `owner`'s tasks write as: unrestricted without authentication,
    /// else the user as they are now.
    fn principal_of(&self, owner: &str) -> Result<Arc<Principal>, String> {
        match &self.service.security.store {
            None => Ok(Arc::new(Principal::unrestricted())),
            Some(store) => store.current(owner).map(|(p, _)| p).ok_or_else(|| {
                format!("The batch load task's creator {owner} is no longer a user.")
            }),
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    async fn work(&self, id: &str) -> Result<(), End> {
        let task = self
            .store
            .get(id)
            .ok_or_else(|| End::Failed("the task vanished".into()))?;
        let principal = self.principal_of(&task.owner).map_err(End::Failed)?;
        check_target_write(&principal, &task.database).map_err(|e| End::Failed(e.message))?;
        let model = DataModel::from_value(&task.data_model).map_err(End::Failed)?;
        let format =
            CsvConfiguration::from_value(task.data_source_configuration.get("CsvConfiguration"))
                .and_then(|c| c.format())
                .map_err(End::Failed)?;
        let bucket = text_at(
            &task.data_source_configuration,
            "/DataSourceS3Configuration/BucketName",
        );
        let prefix = text_at(
            &task.data_source_configuration,
            "/DataSourceS3Configuration/ObjectKeyPrefix",
        );
        let src = source::open(
            &self.service.config.unload,
            bucket,
            "batch load data source",
        )
        .map_err(End::Stopped)?;
        let files = match &task.files {
            Some(f) => f.clone(),
            None => {
                let keys: Vec<String> = src
                    .list(prefix)
                    .await
                    .map_err(End::Stopped)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                self.save(id, |t| t.files = Some(keys.clone()))?;
                keys
            }
        };
        let mut checkpoint = task.checkpoint.clone();
        while checkpoint.file < files.len() {
            if self.stopping() {
                return Err(End::Stopped(
                    "The server stopped while the task ran; resume it with ResumeBatchLoadTask."
                        .into(),
                ));
            }
            let index = checkpoint.file;
            let key = &files[index];
            let next_file = Checkpoint {
                file: index + 1,
                offset: 0,
                line: 0,
            };
            let bytes = match src.get(key).await {
                Ok(b) => b,
                Err(e) => {
                    self.save(id, |t| {
                        t.progress.file_failures += 1;
                        t.errors
                            .add_file(key, &format!("The file cannot be read: {e}"));
                        t.checkpoint = next_file.clone();
                    })?;
                    checkpoint = next_file;
                    continue;
                }
            };
            let fresh = checkpoint.offset == 0;
            let (mapper, first) = match open_file(&model, &format, &bytes, task.record_version) {
                Ok(x) => x,
                Err(reason) => {
                    self.save(id, |t| {
                        t.progress.file_failures += 1;
                        t.progress.bytes_metered += bytes.len() as i64;
                        t.errors.add_file(key, &reason);
                        t.checkpoint = next_file.clone();
                    })?;
                    checkpoint = next_file;
                    continue;
                }
            };
            if fresh {
                self.save(id, |t| t.progress.bytes_metered += bytes.len() as i64)?;
            }
            let mut reader = match start_position(&checkpoint, index) {
                Some((offset, line)) => CsvReader::at(&bytes, format.clone(), offset, line),
                None => first,
            };
            loop {
                let mut records: Vec<Value> = Vec::new();
                let mut lines: Vec<u64> = Vec::new();
                let mut rows = 0i64;
                let mut parse_rejects: Vec<(u64, String)> = Vec::new();
                let mut eof = false;
                while records.len() < self.config.records_per_commit {
                    match reader.next_record() {
                        None => {
                            eof = true;
                            break;
                        }
                        Some(Err(e)) => {
                            rows += 1;
                            parse_rejects.push((e.line, e.reason));
                        }
                        Some(Ok(row)) => {
                            rows += 1;
                            match mapper.map(&row) {
                                Ok(rs) => {
                                    for r in rs {
                                        lines.push(row.line);
                                        records.push(r);
                                    }
                                }
                                Err(reason) => parse_rejects.push((row.line, reason)),
                            }
                        }
                    }
                }
                let outcome = if records.is_empty() {
                    WriteOutcome::default()
                } else {
                    self.write(&task.database, &task.table, &records).await?
                };
                let (offset, line) = reader.position();
                let (offset, line) = if reader.position().0 >= bytes.len() {
                    (0, 0)
                } else {
                    (offset, line)
                };
                let done = eof || offset == 0;
                let at = if done {
                    next_file.clone()
                } else {
                    Checkpoint {
                        file: index,
                        offset: offset as u64,
                        line,
                    }
                };
                let now = self.now();
                self.save(id, |t| {
                    let p = &mut t.progress;
                    p.records_processed += rows;
                    p.records_ingested += (outcome.memory + outcome.magnetic) as i64;
                    p.parse_failures += parse_rejects.len() as i64;
                    p.record_ingestion_failures += outcome.rejected.len() as i64;
                    for (l, reason) in &parse_rejects {
                        t.errors.add(key, *l, reason);
                    }
                    for r in &outcome.rejected {
                        t.errors
                            .add(key, lines.get(r.index).copied().unwrap_or(0), &r.reason);
                    }
                    t.checkpoint = at.clone();
                    t.last_updated_time = now;
                })?;
                checkpoint = at;
                if done {
                    break;
                }
                if !self.config.commit_pause.is_zero() {
                    tokio::time::sleep(self.config.commit_pause).await;
                }
                if self.stopping() {
                    return Err(End::Stopped("The server stopped while the task ran; resume it with ResumeBatchLoadTask.".into()));
                }
            }
        }
        Ok(())
    }

    /// Changes the task durably (a failure to write its file stops the run: the checkpoint
    /// before stands).
    fn save(&self, id: &str, f: impl FnOnce(&mut Task)) -> Result<(), End> {
        self.store
            .update(id, |t| {
                f(t);
                Ok(())
            })
            .map_err(|e| End::Stopped(format!("The task's state cannot be saved: {e}")))?
            .ok_or_else(|| End::Failed("the task vanished".into()))
    }

    /// Writes `records` in one commit: retried while the memory store is full (the write path's
    /// back-pressure); a whole-request ValidationException is narrowed down record by record.
    async fn write(&self, db: &str, table: &str, records: &[Value]) -> Result<WriteOutcome, End> {
        let mut delay = Duration::from_millis(50);
        loop {
            match write_record_objects(&self.service, db, table, records).await {
                Ok(o) => return Ok(o),
                Err(e) if e.code == "ThrottlingException" => {
                    if self.stopping() {
                        return Err(End::Stopped(e.message));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) if e.code == "ValidationException" => {
                    if records.len() > 1 {
                        return self.write_one_by_one(db, table, records).await;
                    }
                    return Ok(WriteOutcome {
                        rejected: vec![Rejected {
                            index: 0,
                            reason: e.message,
                            existing_version: None,
                        }],
                        ..Default::default()
                    });
                }
                Err(e) => return Err(classify(e)),
            }
        }
    }

    async fn write_one_by_one(
        &self,
        db: &str,
        table: &str,
        records: &[Value],
    ) -> Result<WriteOutcome, End> {
        let mut out = WriteOutcome::default();
        for (i, r) in records.iter().enumerate() {
            match Box::pin(self.write(db, table, std::slice::from_ref(r))).await {
                Ok(o) => {
                    out.memory += o.memory;
                    out.magnetic += o.magnetic;
                    out.rejected
                        .extend(o.rejected.into_iter().map(|x| Rejected { index: i, ..x }));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn classify(e: ApiError) -> End {
    match e.code {
        "ResourceNotFoundException" | "AccessDeniedException" => End::Failed(e.message),
        _ => End::Stopped(format!("Writing failed: {}", e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_and_start_positions() {
        assert_eq!(report_key("reports/", "AB12"), "reports/AB12/report.json");
        assert_eq!(report_key("", "AB12"), "AB12/report.json");
        let c = Checkpoint {
            file: 2,
            offset: 120,
            line: 9,
        };
        assert_eq!(start_position(&c, 2), Some((120, 9)));
        assert_eq!(start_position(&c, 3), None);
        assert_eq!(
            start_position(
                &Checkpoint {
                    file: 3,
                    offset: 0,
                    line: 0
                },
                3
            ),
            None
        );
    }
}
