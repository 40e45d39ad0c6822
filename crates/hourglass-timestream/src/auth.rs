//! Who may call what, with `--require-auth`: each request is verified with AWS Signature Version
//! 4 ([`hourglass_auth::sigv4`], service `timestream`, any region) against the users' access
//! keys, then its operation is checked against the user's grants:
//!
//! | operations | needs |
//! |---|---|
//! | CreateDatabase, UpdateDatabase, DeleteDatabase, CreateTable, UpdateTable, DeleteTable, TagResource, UntagResource | `admin` on the database |
//! | WriteRecords | `write` on the database |
//! | DescribeDatabase, DescribeTable, ListTables (with a database), ListTagsForResource | any grant on the database |
//! | ListDatabases, ListTables (without a database) | nothing; lists only databases with a grant |
//! | Query, PrepareQuery | `read` on some database (else AccessDenied); the query sees only databases with `read` |
//! | CancelQuery | the query's owner, an operator, or `admin` on every database it reads (`query/mod.rs`) |
//! | CreateScheduledQuery | `write` on the target database (`TargetConfiguration`); planning the query as the caller then needs `read` on what it reads |
//! | Describe/List/Update/Delete/ExecuteScheduledQuery, tags of a scheduled query | a valid signature; the scheduler shows a query only to its owner and to admins of `*` (others get ResourceNotFound) |
//! | CreateBatchLoadTask | `write` on the target database (`TargetDatabaseName`); each run checks the creator's `write` again |
//! | Describe/List/ResumeBatchLoadTask | a valid signature; a task is shown only to its creator and to admins of `*` (others get ResourceNotFound) |
//! | DescribeEndpoints, account settings | a valid signature |
//!
//! Management operations (database, table and scheduled-query changes, tagging,
//! ExecuteScheduledQuery, and creating or resuming batch load tasks) are recorded in the audit log (with authentication off too), as are
//! authentication failures and denials.

use std::sync::Arc;

use hourglass_auth::{sigv4, AuthFailure, Principal};
use serde_json::Value;

use crate::arn::{self, Resource};

/// The signing name of both Timestream services.
pub const SERVICE: &str = "timestream";

/// What an operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// A valid signature only.
    Authenticated,
    /// Any grant on the database.
    See(String),
    Write(String),
    Admin(String),
}

/// Operations recorded in the audit log.
pub fn is_management(operation: &str) -> bool {
    matches!(
        operation,
        "CreateDatabase"
            | "UpdateDatabase"
            | "DeleteDatabase"
            | "CreateTable"
            | "UpdateTable"
            | "DeleteTable"
            | "TagResource"
            | "UntagResource"
            | "CreateScheduledQuery"
            | "UpdateScheduledQuery"
            | "DeleteScheduledQuery"
            | "ExecuteScheduledQuery"
            | "CreateBatchLoadTask"
            | "ResumeBatchLoadTask"
    )
}

fn arn_database(body: &Value) -> Option<String> {
    match arn::parse(body.get("ResourceARN")?.as_str()?)? {
        Resource::Database(db) | Resource::Table(db, _) => Some(db),
    }
}

/// The audit `target` of a request: `db` or `db.table` (or the ARN's); a scheduled query's
/// ARN, or `scheduled-query/<Name>` for a create; `batch-load-task/<TaskId>`.
pub fn target(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    if let Some(arn) = v.get("ScheduledQueryArn").and_then(Value::as_str) {
        return arn.to_string();
    }
    if let Some(arn) = v
        .get("ResourceARN")
        .and_then(Value::as_str)
        .filter(|a| crate::scheduled::is_arn(a))
    {
        return arn.to_string();
    }
    if let Some(id) = v.get("TaskId").and_then(Value::as_str) {
        return format!("batch-load-task/{id}");
    }
    if let (Some(db), Some(t)) = (
        v.get("TargetDatabaseName").and_then(Value::as_str),
        v.get("TargetTableName").and_then(Value::as_str),
    ) {
        return format!("{db}.{t}");
    }
    if v.get("ScheduleConfiguration").is_some() {
        if let Some(name) = v.get("Name").and_then(Value::as_str) {
            return format!("scheduled-query/{name}");
        }
    }
    let db = v
        .get("DatabaseName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| arn_database(&v));
    match (db, v.get("TableName").and_then(Value::as_str)) {
        (Some(db), Some(t)) => format!("{db}.{t}"),
        (Some(db), None) => db,
        _ => String::new(),
    }
}

/// What `operation` with `body` needs (a body that does not parse needs a signature only: the
/// operation then answers its own ValidationException).
pub fn need(operation: &str, body: &[u8]) -> Need {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let db = v
        .get("DatabaseName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let by_arn = arn_database(&v);
    let wrap = |db: Option<String>, f: fn(String) -> Need| db.map(f).unwrap_or(Need::Authenticated);
    match operation {
        "CreateDatabase" | "UpdateDatabase" | "DeleteDatabase" | "CreateTable" | "UpdateTable"
        | "DeleteTable" => wrap(db, Need::Admin),
        "TagResource" | "UntagResource" => wrap(by_arn, Need::Admin),
        "WriteRecords" => wrap(db, Need::Write),
        "DescribeDatabase" | "DescribeTable" | "ListTables" => wrap(db, Need::See),
        "ListTagsForResource" => wrap(by_arn, Need::See),
        "CreateBatchLoadTask" => wrap(
            v.get("TargetDatabaseName")
                .and_then(Value::as_str)
                .map(str::to_string),
            Need::Write,
        ),
        "CreateScheduledQuery" => wrap(
            v.pointer("/TargetConfiguration/TimestreamConfiguration/DatabaseName")
                .and_then(Value::as_str)
                .map(str::to_string),
            Need::Write,
        ),
        _ => Need::Authenticated,
    }
}

/// Checks `need` for `principal`; the error names the user and resource as AWS does.
pub fn authorize(
    principal: &Principal,
    need: &Need,
    operation: &str,
    region: &str,
    account: &str,
) -> Result<(), AuthFailure> {
    let (ok, db) = match need {
        Need::Authenticated => return Ok(()),
        Need::See(db) => (principal.can_see(db), db),
        Need::Write(db) => (principal.can_write(db), db),
        Need::Admin(db) => (principal.can_admin(db), db),
    };
    if ok {
        return Ok(());
    }
    Err(AuthFailure::Denied(format!(
        "User: arn:aws:iam::{account}:user/{} is not authorized to perform: timestream:{operation} on resource: {}",
        principal.name,
        arn::database_arn(region, account, db)
    )))
}

/// Verifies the request's signature against the users' keys.
pub fn authenticate(
    store: &hourglass_auth::AuthStore,
    request: &sigv4::Request<'_>,
) -> Result<Arc<Principal>, (String, AuthFailure)> {
    let pending = sigv4::prepare(request, SERVICE, chrono::Utc::now()).map_err(|f| {
        let who = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| sigv4::parse_authorization(&String::from_utf8_lossy(v)).ok())
            .map(|a| a.access_key_id)
            .unwrap_or_else(|| "-".into());
        (who, f)
    })?;
    let key = pending.access_key_id().to_string();
    let Some((principal, secret)) = store.sigv4_secret(&key) else {
        return Err((key, AuthFailure::UnknownCredential));
    };
    pending
        .verify(&secret)
        .map_err(|f| (principal.name.clone(), f))?;
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_need_the_documented_grants() {
        assert_eq!(
            need("CreateDatabase", br#"{"DatabaseName":"d"}"#),
            Need::Admin("d".into())
        );
        assert_eq!(
            need("WriteRecords", br#"{"DatabaseName":"d","TableName":"t"}"#),
            Need::Write("d".into())
        );
        assert_eq!(
            need(
                "TagResource",
                br#"{"ResourceARN":"arn:aws:timestream:us-east-1:1:database/d/table/t"}"#
            ),
            Need::Admin("d".into())
        );
        assert_eq!(need("Query", b"{}"), Need::Authenticated);
        assert_eq!(
            need(
                "CreateBatchLoadTask",
                br#"{"TargetDatabaseName":"d","TargetTableName":"t"}"#
            ),
            Need::Write("d".into())
        );
        assert_eq!(
            need("DescribeBatchLoadTask", br#"{"TaskId":"AB12"}"#),
            Need::Authenticated
        );
        assert_eq!(target(br#"{"TaskId":"AB12"}"#), "batch-load-task/AB12");
        assert!(is_management("CreateBatchLoadTask") && !is_management("ListBatchLoadTasks"));
        assert_eq!(
            need(
                "CreateScheduledQuery",
                br#"{"Name":"q","TargetConfiguration":{"TimestreamConfiguration":{"DatabaseName":"d"}}}"#
            ),
            Need::Write("d".into())
        );
        assert_eq!(
            need("CreateScheduledQuery", br#"{"Name":"q"}"#),
            Need::Authenticated
        );
        assert_eq!(
            need("DeleteScheduledQuery", br#"{"ScheduledQueryArn":"x"}"#),
            Need::Authenticated
        );
        assert!(is_management("ExecuteScheduledQuery") && !is_management("DescribeScheduledQuery"));
        assert_eq!(
            target(br#"{"ScheduledQueryArn":"arn:aws:timestream:r:1:scheduled-query/q-1"}"#),
            "arn:aws:timestream:r:1:scheduled-query/q-1"
        );
        assert_eq!(
            target(br#"{"Name":"q","ScheduleConfiguration":{},"TargetConfiguration":{"TimestreamConfiguration":{"DatabaseName":"d"}}}"#),
            "scheduled-query/q"
        );
        assert_eq!(need("DeleteTable", b"not json"), Need::Authenticated);
        assert_eq!(target(br#"{"DatabaseName":"d","TableName":"t"}"#), "d.t");
        let reader = Principal::user(
            "r",
            vec![hourglass_auth::Grant {
                database: "d".into(),
                permission: hourglass_auth::Permission::Read,
            }],
        );
        assert!(authorize(
            &reader,
            &Need::See("d".into()),
            "DescribeDatabase",
            "r",
            "a"
        )
        .is_ok());
        let e = authorize(
            &reader,
            &Need::Write("d".into()),
            "WriteRecords",
            "us-east-1",
            "0",
        )
        .unwrap_err();
        assert_eq!(e, AuthFailure::Denied("User: arn:aws:iam::0:user/r is not authorized to perform: timestream:WriteRecords on resource: arn:aws:timestream:us-east-1:0:database/d".into()));
    }
}
