//! The ScheduledQuery operations of the Timestream Query API: request checks in the model's
//! words, answers in its shapes (`docs/scheduled-queries.md`, `docs/protocols/timestream.md`).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use hourglass_auth::Principal;
use hourglass_timestream::manage::{
    check_tag_keys, check_tags, decode_token, encode_token, merge_tags, TagIn,
};
use hourglass_timestream::protocol::{
    check_enum, check_length, check_range, constraint_error, decode, epoch_seconds, required,
    ApiError,
};
use hourglass_timestream::query::encode::type_json;
use serde_json::{json, Map, Value};

use crate::definition::{
    check_name, check_target, mapped_columns, type_fits, Definition, RunState, RunSummary, State,
    MAX_QUERY_STRING,
};
use crate::schedule::Schedule;
use crate::store::Entry;
use crate::Scheduler;

/// How long a `ClientToken` makes a repeated create return the first one's ARN (AWS: 8 hours).
const CLIENT_TOKEN_NANOS: i64 = 8 * 3600 * 1_000_000_000;

impl Scheduler {
    /// Serves one operation for `principal`.
    pub async fn call_operation(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "CreateScheduledQuery" => self.create(principal, body).await,
            "DescribeScheduledQuery" => self.describe(principal, body),
            "ListScheduledQueries" => self.list(principal, body),
            "UpdateScheduledQuery" => self.update(principal, body),
            "DeleteScheduledQuery" => self.delete(principal, body),
            "ExecuteScheduledQuery" => self.execute(principal, body),
            "TagResource" => self.tag(principal, body),
            "UntagResource" => self.untag(principal, body),
            "ListTagsForResource" => self.list_tags(principal, body),
            _ => Err(ApiError::unknown_operation(operation)),
        }
    }

    async fn create(&self, principal: &Arc<Principal>, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let text = |path: &[&str], name: &str| -> Result<String, ApiError> {
            let mut v = &req;
            for key in path {
                v = v.get(*key).ok_or_else(|| required(name))?;
            }
            v.as_str().map(str::to_string).ok_or_else(|| required(name))
        };
        let name = text(&["Name"], "name")?;
        check_name(&name)?;
        let query_string = text(&["QueryString"], "queryString")?;
        check_length(&query_string, "queryString", 1, Some(MAX_QUERY_STRING))?;
        let expression = text(
            &["ScheduleConfiguration", "ScheduleExpression"],
            "scheduleConfiguration.scheduleExpression",
        )?;
        check_length(
            &expression,
            "scheduleConfiguration.scheduleExpression",
            1,
            Some(256),
        )?;
        let schedule = Schedule::parse(&expression).map_err(ApiError::validation)?;
        let topic = text(
            &["NotificationConfiguration", "SnsConfiguration", "TopicArn"],
            "notificationConfiguration.snsConfiguration.topicArn",
        )?;
        check_length(
            &topic,
            "notificationConfiguration.snsConfiguration.topicArn",
            1,
            Some(2048),
        )?;
        let role = text(
            &["ScheduledQueryExecutionRoleArn"],
            "scheduledQueryExecutionRoleArn",
        )?;
        check_length(&role, "scheduledQueryExecutionRoleArn", 1, Some(2048))?;
        let bucket = text(
            &["ErrorReportConfiguration", "S3Configuration", "BucketName"],
            "errorReportConfiguration.s3Configuration.bucketName",
        )?;
        check_length(
            &bucket,
            "errorReportConfiguration.s3Configuration.bucketName",
            3,
            Some(63),
        )?;
        if let Some(prefix) =
            req.pointer("/ErrorReportConfiguration/S3Configuration/ObjectKeyPrefix")
        {
            let prefix = prefix.as_str().unwrap_or("");
            check_length(
                prefix,
                "errorReportConfiguration.s3Configuration.objectKeyPrefix",
                1,
                Some(896),
            )?;
        }
        if let Some(option) =
            req.pointer("/ErrorReportConfiguration/S3Configuration/EncryptionOption")
        {
            check_enum(
                option.as_str().unwrap_or(""),
                "errorReportConfiguration.s3Configuration.encryptionOption",
                &["SSE_S3", "SSE_KMS"],
            )?;
        }
        let client_token = req
            .get("ClientToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(token) = &client_token {
            check_length(token, "clientToken", 32, Some(128))?;
        }
        let kms_key_id = req
            .get("KmsKeyId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let tags = tags_of(req.get("Tags"), "tags")?;
        let target = match req.get("TargetConfiguration") {
            None | Some(Value::Null) => None,
            Some(t) => Some((t.clone(), check_target(t)?)),
        };

        let now = self.now();
        // A repeated request with the same token answers the first one's ARN.
        if let Some(token) = &client_token {
            let existing = self.store.snapshot().queries.values().find_map(|e| {
                let d = &e.definition;
                (d.client_token.as_deref() == Some(token)
                    && now - d.creation_time < CLIENT_TOKEN_NANOS)
                    .then(|| d.clone())
            });
            if let Some(d) = existing {
                if d.name == name && d.query_string == query_string {
                    return to_body(json!({"Arn": d.arn}));
                }
                return Err(ApiError::conflict(format!(
                    "The client token {token} was used for another scheduled query."
                )));
            }
        }

        // The query must plan with @scheduled_runtime bound; its columns must fit the target.
        let columns = self
            .check_query(principal, &query_string, now)
            .await
            .map_err(|e| {
                if e.code == "AccessDeniedException" {
                    e
                } else {
                    ApiError::validation(format!("Invalid QueryString: {}", e.message))
                }
            })?;
        if let Some((_, mapping)) = &target {
            self.check_mapping_against(principal, mapping, &columns)?;
        }

        let definition = Definition {
            arn: self.new_arn(&name),
            name: name.clone(),
            query_string,
            schedule_expression: expression,
            creation_time: now,
            state: State::Enabled,
            schedule_configuration: req["ScheduleConfiguration"].clone(),
            notification_configuration: req["NotificationConfiguration"].clone(),
            target_configuration: target.map(|(v, _)| v),
            error_report_configuration: req["ErrorReportConfiguration"].clone(),
            execution_role_arn: role,
            kms_key_id,
            tags,
            client_token,
            owner: principal.name.clone(),
        };
        let next = schedule
            .next_after(nanos_to_time(now), nanos_to_time(now))
            .map(time_to_nanos);
        let max = self.config.max_scheduled_queries;
        let arn = definition.arn.clone();
        let announced = definition.clone();
        self.store.update(|c| {
            if c.queries.values().any(|e| e.definition.name == name) {
                return Err(ApiError::conflict(format!(
                    "A scheduled query with the name {name} already exists."
                )));
            }
            if c.queries.len() >= max {
                return Err(ApiError::quota(format!(
                    "You have reached the maximum number of scheduled queries ({max})."
                )));
            }
            c.queries.insert(
                arn.clone(),
                Arc::new(Entry {
                    definition,
                    runs: RunState {
                        next_invocation: next,
                        ..Default::default()
                    },
                }),
            );
            Ok(())
        })?;
        self.notify_state_change(&announced, "SCHEDULED_QUERY_CREATING");
        self.wake();
        to_body(json!({"Arn": arn}))
    }

    /// Plans `sql` as `principal` with `@scheduled_runtime` bound to `runtime`: its columns.
    pub(crate) async fn check_query(
        &self,
        principal: &Arc<Principal>,
        sql: &str,
        runtime: i64,
    ) -> Result<SchemaRef, ApiError> {
        let bound = crate::runner::bind_parameters(sql, runtime)?;
        let stream = self
            .service
            .query
            .execute_timestream_as(&bound, principal)
            .await
            .map_err(ApiError::from)?;
        Ok(stream.schema())
    }

    fn check_mapping_against(
        &self,
        principal: &Principal,
        mapping: &crate::definition::TargetMapping,
        columns: &SchemaRef,
    ) -> Result<(), ApiError> {
        let catalog = self.service.engine.catalog.snapshot();
        let (db, table) = (&mapping.database_name, &mapping.table_name);
        if catalog.table(db, table).is_none() {
            return Err(ApiError::validation(format!(
                "The target table {db}.{table} does not exist."
            )));
        }
        check_target_write(principal, db)?;
        for (column, want) in mapped_columns(mapping) {
            let field = columns.field_with_name(column).map_err(|_| {
                ApiError::validation(format!(
                    "Column {column} of the TargetConfiguration is not in the query's result (columns: {}).",
                    columns
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let have = type_json(field.data_type());
            let have = have["ScalarType"].as_str().unwrap_or("UNKNOWN");
            if !type_fits(have, want) {
                return Err(ApiError::validation(format!(
                    "Column {column} of the query's result is {have}; the TargetConfiguration needs {want}."
                )));
            }
        }
        Ok(())
    }

    fn describe(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let entry = self.entry_for(principal, body)?;
        to_body(json!({"ScheduledQuery": description(&entry)}))
    }

    fn list(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let max = match req.get("MaxResults").and_then(Value::as_i64) {
            Some(m) => {
                check_range(m, "maxResults", 1, 1000)?;
                m as usize
            }
            None => 100,
        };
        let after = req.get("NextToken").and_then(Value::as_str);
        let contents = self.store.snapshot();
        let visible: Vec<&Arc<Entry>> = contents
            .queries
            .values()
            .filter(|e| may_see(principal, &e.definition))
            .collect();
        let start = match after {
            None => 0,
            Some(token) => {
                let after = decode_token(token)?;
                visible
                    .iter()
                    .position(|e| e.definition.arn > after)
                    .unwrap_or(visible.len())
            }
        };
        let page: Vec<Value> = visible[start..]
            .iter()
            .take(max)
            .map(|e| summary(e))
            .collect();
        let mut out = json!({"ScheduledQueries": page});
        if start + max < visible.len() {
            if let Some(last) = visible.get(start + max - 1) {
                out["NextToken"] = Value::String(encode_token(&last.definition.arn));
            }
        }
        to_body(out)
    }

    fn update(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let entry = self.entry_for(principal, body)?;
        let state = req
            .get("State")
            .and_then(Value::as_str)
            .ok_or_else(|| required("state"))?;
        let state = match check_enum(state, "state", &["ENABLED", "DISABLED"])? {
            "ENABLED" => State::Enabled,
            _ => State::Disabled,
        };
        let arn = entry.definition.arn.clone();
        let now = self.now();
        let changed = self.store.update(|c| {
            let Some(e) = c.queries.get_mut(&arn) else {
                return Err(not_found(&arn));
            };
            if e.definition.state == state {
                return Ok(None);
            }
            let e = Arc::make_mut(e);
            e.definition.state = state;
            if state == State::Enabled {
                // Runs resume from now on; what was skipped while disabled is not run.
                e.runs.next_invocation = next_invocation(&e.definition, now);
            }
            Ok(Some(e.definition.clone()))
        })?;
        if let Some(d) = changed {
            if d.state == State::Enabled {
                // Its stale runs, kept while it was disabled, are rerun now.
                self.stale_may_be_due();
            }
            self.notify_state_change(&d, "SCHEDULED_QUERY_UPDATE");
            self.wake();
        }
        to_body(json!({}))
    }

    fn delete(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let entry = self.entry_for(principal, body)?;
        let arn = entry.definition.arn.clone();
        self.store.update(|c| {
            c.queries
                .remove(&arn)
                .map(|_| ())
                .ok_or_else(|| not_found(&arn))
        })?;
        self.reindex_query(&arn);
        self.forget(&entry);
        to_body(json!({}))
    }

    fn execute(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let entry = self.entry_for(principal, body)?;
        let invocation = req
            .get("InvocationTime")
            .ok_or_else(|| required("invocationTime"))?;
        let invocation = epoch_value_to_nanos(invocation).ok_or_else(|| {
            constraint_error(
                Some(&invocation.to_string()),
                "invocationTime",
                "Member must be a timestamp",
            )
        })?;
        if let Some(token) = req.get("ClientToken").and_then(Value::as_str) {
            check_length(token, "clientToken", 32, Some(128))?;
        }
        self.enqueue_manual(&entry.definition.arn, invocation);
        to_body(json!({}))
    }

    fn tag(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let entry = self.entry_by_resource_arn(principal, &req)?;
        if req.get("Tags").is_none_or(Value::is_null) {
            return Err(required("tags"));
        }
        let new = tags_of(req.get("Tags"), "tags")?;
        self.change_tags(&entry.definition.arn, |tags| merge_tags(tags, new))?;
        to_body(json!({}))
    }

    fn untag(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let entry = self.entry_by_resource_arn(principal, &req)?;
        let keys: Vec<String> = req
            .get("TagKeys")
            .and_then(Value::as_array)
            .ok_or_else(|| required("tagKeys"))?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        check_tag_keys(&keys)?;
        self.change_tags(&entry.definition.arn, |tags| {
            tags.retain(|(k, _)| !keys.contains(k));
            Ok(())
        })?;
        to_body(json!({}))
    }

    fn list_tags(&self, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let req: Value = decode(body)?;
        let entry = self.entry_by_resource_arn(principal, &req)?;
        let tags: Vec<Value> = entry
            .definition
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        to_body(json!({"Tags": tags}))
    }

    fn change_tags(
        &self,
        arn: &str,
        change: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.store.update(|c| {
            let e = c.queries.get_mut(arn).ok_or_else(|| not_found(arn))?;
            change(&mut Arc::make_mut(e).definition.tags)
        })
    }

    /// The entry `ScheduledQueryArn` names, if `principal` may see it.
    fn entry_for(&self, principal: &Principal, body: &[u8]) -> Result<Arc<Entry>, ApiError> {
        let req: Value = decode(body)?;
        let arn = req
            .get("ScheduledQueryArn")
            .and_then(Value::as_str)
            .ok_or_else(|| required("scheduledQueryArn"))?;
        check_length(arn, "scheduledQueryArn", 1, Some(2048))?;
        self.visible_entry(principal, arn)
    }

    fn entry_by_resource_arn(
        &self,
        principal: &Principal,
        req: &Value,
    ) -> Result<Arc<Entry>, ApiError> {
        let arn = req
            .get("ResourceARN")
            .and_then(Value::as_str)
            .ok_or_else(|| required("resourceARN"))?;
        self.visible_entry(principal, arn)
    }

    fn visible_entry(&self, principal: &Principal, arn: &str) -> Result<Arc<Entry>, ApiError> {
        match self.store.entry(arn) {
            Some(e) if may_see(principal, &e.definition) => Ok(e),
            _ => Err(not_found(arn)),
        }
    }

    fn new_arn(&self, name: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!(
            "arn:aws:timestream:{}:{}:scheduled-query/{name}-{id}",
            self.service.region, self.service.account_id
        )
    }
}

/// A principal sees the scheduled queries it created, and all of them when it is unrestricted
/// or an admin of every database.
/// Whether `principal` may write the target database `db` (at creation and at every run: the
/// owner's grants as they are now).
pub(crate) fn check_target_write(principal: &Principal, db: &str) -> Result<(), ApiError> {
    if principal.is_unrestricted() || principal.can_write(db) {
        return Ok(());
    }
    Err(ApiError::new(
        "AccessDeniedException",
        403,
        format!(
            "User {} is not authorized to write to database {db}, the scheduled query's target.",
            principal.name
        ),
    ))
}

fn may_see(principal: &Principal, d: &Definition) -> bool {
    principal.is_unrestricted() || principal.name == d.owner || principal.can_admin("*")
}

fn not_found(arn: &str) -> ApiError {
    ApiError::not_found(format!("The scheduled query {arn} does not exist."))
}

fn to_body(v: Value) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
}

/// A request's `Tags` (absent or null: none), checked as the other Timestream resources' are.
fn tags_of(tags: Option<&Value>, path: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(tags) = tags.filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let tags: Vec<TagIn> = serde_json::from_value(tags.clone())
        .map_err(|e| ApiError::validation(format!("{path} must be a list of tags: {e}")))?;
    check_tags(&tags, path)
}

pub(crate) fn next_invocation(d: &Definition, after: i64) -> Option<i64> {
    let schedule = Schedule::parse(&d.schedule_expression).ok()?;
    schedule
        .next_after(nanos_to_time(after), nanos_to_time(d.creation_time))
        .map(time_to_nanos)
}

pub(crate) fn nanos_to_time(nanos: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

pub(crate) fn time_to_nanos(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A JSON `timestamp` member (epoch seconds, possibly fractional) as nanoseconds.
fn epoch_value_to_nanos(v: &Value) -> Option<i64> {
    let seconds = v.as_f64()?;
    if !seconds.is_finite() {
        return None;
    }
    // Millisecond precision, as the JSON protocol carries it.
    let millis = (seconds * 1000.0).round() as i64;
    millis.checked_mul(1_000_000)
}

fn run_summary_json(r: &RunSummary) -> Value {
    let mut out = Map::new();
    out.insert("InvocationTime".into(), epoch_seconds(r.invocation_time));
    out.insert("TriggerTime".into(), epoch_seconds(r.trigger_time));
    out.insert("RunStatus".into(), Value::String(r.run_status.clone()));
    out.insert(
        "ExecutionStats".into(),
        json!({
            "ExecutionTimeInMillis": r.execution_time_millis,
            "DataWrites": r.data_writes,
            "BytesMetered": r.bytes_metered,
            "CumulativeBytesScanned": r.cumulative_bytes_scanned,
            "RecordsIngested": r.records_ingested,
            "QueryResultRows": r.query_result_rows,
        }),
    );
    if let Some((bucket, key)) = &r.error_report {
        out.insert(
            "ErrorReportLocation".into(),
            json!({"S3ReportLocation": {"BucketName": bucket, "ObjectKey": key}}),
        );
    }
    if let Some(reason) = &r.failure_reason {
        out.insert("FailureReason".into(), Value::String(reason.clone()));
    }
    Value::Object(out)
}

/// `ScheduledQueryDescription`.
fn description(e: &Entry) -> Value {
    let d = &e.definition;
    let mut out = json!({
        "Arn": d.arn,
        "Name": d.name,
        "QueryString": d.query_string,
        "CreationTime": epoch_seconds(d.creation_time),
        "State": d.state.as_str(),
        "ScheduleConfiguration": d.schedule_configuration,
        "NotificationConfiguration": d.notification_configuration,
        "ScheduledQueryExecutionRoleArn": d.execution_role_arn,
        "ErrorReportConfiguration": d.error_report_configuration,
        "RecentlyFailedRuns": e.runs.recently_failed.iter().map(run_summary_json).collect::<Vec<_>>(),
    });
    if let Some(t) = &d.target_configuration {
        out["TargetConfiguration"] = t.clone();
    }
    if let Some(k) = &d.kms_key_id {
        out["KmsKeyId"] = Value::String(k.clone());
    }
    if let Some(p) = e.runs.previous_invocation {
        out["PreviousInvocationTime"] = epoch_seconds(p);
    }
    if let (Some(n), State::Enabled) = (e.runs.next_invocation, d.state) {
        out["NextInvocationTime"] = epoch_seconds(n);
    }
    if let Some(r) = &e.runs.last_run {
        out["LastRunSummary"] = run_summary_json(r);
    }
    out
}

/// `ScheduledQuery` (the list's entries).
fn summary(e: &Entry) -> Value {
    let d = &e.definition;
    let mut out = json!({
        "Arn": d.arn,
        "Name": d.name,
        "CreationTime": epoch_seconds(d.creation_time),
        "State": d.state.as_str(),
        "ErrorReportConfiguration": d.error_report_configuration,
    });
    if let Some(t) = d.target() {
        out["TargetDestination"] = json!({"TimestreamDestination": {
            "DatabaseName": t.database_name, "TableName": t.table_name}});
    }
    if let Some(p) = e.runs.previous_invocation {
        out["PreviousInvocationTime"] = epoch_seconds(p);
    }
    if let (Some(n), State::Enabled) = (e.runs.next_invocation, d.state) {
        out["NextInvocationTime"] = epoch_seconds(n);
    }
    if let Some(r) = &e.runs.last_run {
        out["LastRunStatus"] = Value::String(r.run_status.clone());
    }
    out
}
