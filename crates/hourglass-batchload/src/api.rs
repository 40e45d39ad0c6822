//! The operations, in Timestream's shapes: CreateBatchLoadTask (checked at once: target table,
//! data model, CSV configuration, source and report buckets), DescribeBatchLoadTask,
//! ListBatchLoadTasks and ResumeBatchLoadTask. A task is shown only to its creator and to
//! admins of every database (others get ResourceNotFound, as for an unknown id).

use std::sync::Arc;

use hourglass_auth::Principal;
use hourglass_timestream::manage::{
    database_not_found, decode_token, encode_token, table_not_found,
};
use hourglass_timestream::protocol::{
    check_enum, check_length, check_range, decode, epoch_seconds, required, ApiError,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::csv_rows::CsvConfiguration;
use crate::data_model::DataModel;
use crate::task::{Status, Task};
use crate::{source, Loader};

/// Active tasks (CREATED, IN_PROGRESS, PENDING_RESUME) one table may have (AWS's quota).
pub const MAX_ACTIVE_PER_TABLE: usize = 5;
/// Active tasks the server may have (AWS's per-account quota).
pub const MAX_ACTIVE: usize = 10;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateIn {
    client_token: Option<String>,
    data_model_configuration: Option<Value>,
    data_source_configuration: Option<Value>,
    report_configuration: Option<Value>,
    target_database_name: Option<String>,
    target_table_name: Option<String>,
    record_version: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IdIn {
    task_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    next_token: Option<String>,
    max_results: Option<i64>,
    task_status: Option<String>,
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Checks an S3 bucket name as the model does (3 to 63 of `[a-z0-9.-]`, alphanumeric ends).
fn check_bucket(name: Option<&str>, path: &str) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| required(path))?;
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9][\\.\\-a-z0-9]{{1,61}}[a-z0-9]"
        )));
    }
    Ok(name.to_string())
}

fn access_denied(principal: &Principal, db: &str) -> ApiError {
    ApiError::new(
        "AccessDeniedException",
        403,
        format!(
            "User {} is not authorized to write to database {db}, the batch load task's target.",
            principal.name
        ),
    )
}

/// Whether `principal` may write `db`.
pub fn check_target_write(principal: &Principal, db: &str) -> Result<(), ApiError> {
    if principal.is_unrestricted() || principal.can_write(db) {
        Ok(())
    } else {
        Err(access_denied(principal, db))
    }
}

fn may_see(principal: &Principal, task: &Task) -> bool {
    principal.is_unrestricted() || principal.name == task.owner || principal.can_admin("*")
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("The batch load task {id} does not exist."))
}

fn to_body(v: Value) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
}

impl Loader {
    /// Runs one operation for `principal`.
    pub async fn call_operation(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "CreateBatchLoadTask" => self.create(principal, body).await,
            "DescribeBatchLoadTask" => self.describe(principal, body),
            "ListBatchLoadTasks" => self.list(principal, body),
            "ResumeBatchLoadTask" => self.resume(principal, body),
            other => Err(ApiError::unknown_operation(other)),
        }
    }

    async fn create(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let req: CreateIn = decode(body)?;
        let db = req
            .target_database_name
            .clone()
            .ok_or_else(|| required("targetDatabaseName"))?;
        let table = req
            .target_table_name
            .clone()
            .ok_or_else(|| required("targetTableName"))?;
        check_length(&db, "targetDatabaseName", 1, Some(256))?;
        check_length(&table, "targetTableName", 1, Some(256))?;
        if let Some(token) = &req.client_token {
            check_length(token, "clientToken", 1, Some(64))?;
            let existing =
                self.store.all().into_iter().find(|t| {
                    t.client_token.as_deref() == Some(token) && t.owner == principal.name
                });
            if let Some(t) = existing {
                return to_body(json!({"TaskId": t.task_id}));
            }
        }
        check_target_write(principal, &db)?;
        let source = req
            .data_source_configuration
            .clone()
            .ok_or_else(|| required("dataSourceConfiguration"))?;
        let format = str_at(&source, "/DataFormat")
            .ok_or_else(|| required("dataSourceConfiguration.dataFormat"))?;
        check_enum(format, "dataSourceConfiguration.dataFormat", &["CSV"])?;
        let source_bucket = check_bucket(
            str_at(&source, "/DataSourceS3Configuration/BucketName"),
            "dataSourceConfiguration.dataSourceS3Configuration.bucketName",
        )?;
        let prefix = str_at(&source, "/DataSourceS3Configuration/ObjectKeyPrefix").unwrap_or("");
        CsvConfiguration::from_value(source.get("CsvConfiguration"))
            .and_then(|c| c.format())
            .map_err(ApiError::validation)?;
        let report = req
            .report_configuration
            .clone()
            .ok_or_else(|| required("reportConfiguration"))?;
        let report_bucket = check_bucket(
            str_at(&report, "/ReportS3Configuration/BucketName"),
            "reportConfiguration.reportS3Configuration.bucketName",
        )?;
        if let Some(e) = str_at(&report, "/ReportS3Configuration/EncryptionOption") {
            check_enum(
                e,
                "reportConfiguration.reportS3Configuration.encryptionOption",
                &["SSE_S3", "SSE_KMS"],
            )?;
        }
        let model_config = req
            .data_model_configuration
            .clone()
            .ok_or_else(|| required("dataModelConfiguration"))?;

        // The target.
        let catalog = self.service.engine.catalog.snapshot();
        if !catalog.databases.contains_key(&db) {
            return Err(database_not_found(&db));
        }
        if catalog.table(&db, &table).is_none() {
            return Err(table_not_found(&db, &table));
        }
        // Quotas.
        let tasks = self.store.all();
        let active: Vec<&Task> = tasks.iter().filter(|t| t.status.is_active()).collect();
        if active.len() >= MAX_ACTIVE {
            return Err(ApiError::quota(format!(
                "The server already has {MAX_ACTIVE} active batch load tasks."
            )));
        }
        if active
            .iter()
            .filter(|t| t.database == db && t.table == table)
            .count()
            >= MAX_ACTIVE_PER_TABLE
        {
            return Err(ApiError::quota(format!(
                "The table {db}.{table} already has {MAX_ACTIVE_PER_TABLE} active batch load tasks."
            )));
        }

        // The data model: inline, or an S3 object.
        let destinations = &self.service.config.unload;
        let model_value = match (model_config.get("DataModel"), model_config.get("DataModelS3Configuration")) {
            (Some(m), None) if !m.is_null() => m.clone(),
            (None, Some(s3)) | (Some(Value::Null), Some(s3)) => {
                let bucket = check_bucket(
                    str_at(s3, "/BucketName"),
                    "dataModelConfiguration.dataModelS3Configuration.bucketName",
                )?;
                let key = str_at(s3, "/ObjectKey")
                    .ok_or_else(|| required("dataModelConfiguration.dataModelS3Configuration.objectKey"))?;
                let b = source::open(destinations, &bucket, "batch load data model").map_err(ApiError::validation)?;
                let bytes = b.get(key).await.map_err(|e| {
                    ApiError::validation(format!("The data model object cannot be read: {e}"))
                })?;
                serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    ApiError::validation(format!("The data model object s3://{bucket}/{key} is not JSON: {e}"))
                })?
            }
            _ => {
                return Err(ApiError::validation(
                    "DataModelConfiguration needs exactly one of DataModel and DataModelS3Configuration.",
                ))
            }
        };
        DataModel::from_value(&model_value).map_err(ApiError::validation)?;

        // The buckets: the source has objects under the prefix; the report's bucket is there.
        let src = source::open(destinations, &source_bucket, "batch load data source")
            .map_err(ApiError::validation)?;
        let objects = src.list(prefix).await.map_err(|e| {
            ApiError::validation(format!(
                "The data source s3://{source_bucket}/{prefix} cannot be read: {e}"
            ))
        })?;
        if objects.is_empty() {
            return Err(ApiError::validation(format!(
                "The data source s3://{source_bucket}/{prefix} holds no objects."
            )));
        }
        let rep = source::open(destinations, &report_bucket, "batch load report")
            .map_err(ApiError::validation)?;
        rep.check().await.map_err(|e| {
            ApiError::validation(format!("The report location cannot be written: {e}"))
        })?;

        let now = self.now();
        let task_id = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        let task = Task {
            task_id: task_id.clone(),
            owner: principal.name.clone(),
            client_token: req.client_token.clone(),
            database: db,
            table,
            record_version: req.record_version,
            data_source_configuration: source,
            data_model_configuration: Some(model_config),
            report_configuration: report,
            data_model: model_value,
            status: Status::Created,
            progress: Default::default(),
            creation_time: now,
            last_updated_time: now,
            resumable_until: None,
            error_message: None,
            files: None,
            checkpoint: Default::default(),
            errors: Default::default(),
            report_key: None,
        };
        self.store.put(task).map_err(ApiError::internal)?;
        self.start(&task_id);
        to_body(json!({"TaskId": task_id}))
    }

    fn visible(&self, principal: &Principal, body: &[u8]) -> Result<Task, ApiError> {
        let req: IdIn = decode(body)?;
        let id = req.task_id.ok_or_else(|| required("taskId"))?;
        check_length(&id, "taskId", 3, Some(32))?;
        match self.store.get(&id) {
            Some(t) if may_see(principal, &t) => Ok(t),
            _ => Err(not_found(&id)),
        }
    }

    fn describe(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let t = self.visible(principal, body)?;
        to_body(json!({"BatchLoadTaskDescription": description(&t)}))
    }

    fn list(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: ListIn = decode(body)?;
        let max = req.max_results.unwrap_or(100);
        check_range(max, "maxResults", 1, 100)?;
        let status = match req.task_status.as_deref() {
            Some(s) => Some(
                Status::parse(check_enum(
                    s,
                    "taskStatus",
                    &[
                        "CREATED",
                        "IN_PROGRESS",
                        "FAILED",
                        "SUCCEEDED",
                        "PROGRESS_STOPPED",
                        "PENDING_RESUME",
                    ],
                )?)
                .ok_or_else(|| ApiError::validation("taskStatus"))?,
            ),
            None => None,
        };
        let after = req.next_token.as_deref().map(decode_token).transpose()?;
        let mut tasks: Vec<Task> = self
            .store
            .all()
            .into_iter()
            .filter(|t| may_see(principal, t) && status.is_none_or(|s| t.status == s))
            .collect();
        tasks.sort_by(|a, b| (a.creation_time, &a.task_id).cmp(&(b.creation_time, &b.task_id)));
        let key = |t: &Task| format!("{:020}/{}", t.creation_time, t.task_id);
        let page: Vec<&Task> = tasks
            .iter()
            .filter(|t| after.as_ref().is_none_or(|a| key(t) > *a))
            .take(max as usize + 1)
            .collect();
        let more = page.len() > max as usize;
        let page = &page[..page.len().min(max as usize)];
        let mut out =
            json!({"BatchLoadTasks": page.iter().map(|t| summary(t)).collect::<Vec<_>>()});
        if more {
            if let Some(last) = page.last() {
                out["NextToken"] = json!(encode_token(&key(last)));
            }
        }
        to_body(out)
    }

    fn resume(self: &Arc<Self>, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let t = self.visible(principal, body)?;
        check_target_write(principal, &t.database)?;
        let now = self.now();
        let id = t.task_id.clone();
        let resumed = self
            .store
            .update(&id, |t| {
                if t.status != Status::ProgressStopped {
                    return Ok(Err(ApiError::validation(format!(
                        "The batch load task {id} is {} and cannot be resumed; only a task in PROGRESS_STOPPED can.",
                        t.status.as_str()
                    ))));
                }
                if t.resumable_until.is_some_and(|until| until < now) {
                    return Ok(Err(ApiError::validation(format!(
                        "The batch load task {id} can no longer be resumed (ResumableUntil has passed)."
                    ))));
                }
                t.status = Status::PendingResume;
                t.error_message = None;
                t.last_updated_time = now;
                Ok(Ok(()))
            })
            .map_err(ApiError::internal)?
            .ok_or_else(|| not_found(&id))?;
        resumed?;
        self.start(&id);
        to_body(json!({}))
    }
}

/// `BatchLoadTask` (a list entry).
fn summary(t: &Task) -> Value {
    let mut v = json!({
        "TaskId": t.task_id,
        "TaskStatus": t.status.as_str(),
        "DatabaseName": t.database,
        "TableName": t.table,
        "CreationTime": epoch_seconds(t.creation_time),
        "LastUpdatedTime": epoch_seconds(t.last_updated_time),
    });
    if let Some(until) = t.resumable_until {
        v["ResumableUntil"] = epoch_seconds(until);
    }
    v
}

/// `BatchLoadTaskDescription`.
pub fn description(t: &Task) -> Value {
    let mut v = json!({
        "TaskId": t.task_id,
        "DataSourceConfiguration": t.data_source_configuration,
        "ProgressReport": t.progress,
        "ReportConfiguration": t.report_configuration,
        "TargetDatabaseName": t.database,
        "TargetTableName": t.table,
        "TaskStatus": t.status.as_str(),
        "CreationTime": epoch_seconds(t.creation_time),
        "LastUpdatedTime": epoch_seconds(t.last_updated_time),
    });
    if let Some(m) = &t.data_model_configuration {
        v["DataModelConfiguration"] = m.clone();
    }
    if let Some(r) = t.record_version {
        v["RecordVersion"] = json!(r);
    }
    if let Some(until) = t.resumable_until {
        v["ResumableUntil"] = epoch_seconds(until);
    }
    if let Some(e) = &t.error_message {
        v["ErrorMessage"] = json!(hourglass_timestream::protocol::truncate(e, 2048));
    }
    v
}
