//! The seam between the Timestream API and scheduled queries.
//!
//! Scheduled queries run Timestream-dialect queries and write their results through this
//! crate's WriteRecords path, so they live above it (crate `hourglass-scheduler`). The API's
//! ScheduledQuery operations, and tagging of `scheduled-query/...` ARNs, reach them through
//! [`ScheduledQueries`], which the server installs on the [`crate::Service`] once both exist
//! ([`crate::Service::install_scheduled_queries`]). Without one installed, the operations answer
//! as before: an empty list, and `ValidationException` for a create.

use std::sync::Arc;

use async_trait::async_trait;
use hourglass_auth::Principal;

use crate::protocol::ApiError;

/// The ScheduledQuery operations, served by the scheduler.
#[async_trait]
pub trait ScheduledQueries: Send + Sync {
    /// Runs `operation` (`CreateScheduledQuery`, ..., or `TagResource` / `UntagResource` /
    /// `ListTagsForResource` on a scheduled-query ARN) for `principal`; `Ok` is the JSON body.
    async fn call(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError>;
}

/// The operations [`ScheduledQueries`] serves.
pub const OPERATIONS: [&str; 6] = [
    "CreateScheduledQuery",
    "DeleteScheduledQuery",
    "DescribeScheduledQuery",
    "ExecuteScheduledQuery",
    "ListScheduledQueries",
    "UpdateScheduledQuery",
];

/// Whether a tagging request names a scheduled query (`...:scheduled-query/<name>`).
pub fn names_scheduled_query(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("ResourceARN").and_then(|a| a.as_str()).map(is_arn))
        .unwrap_or(false)
}

/// Whether `arn` is a Timestream scheduled-query ARN.
pub fn is_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let head: Vec<&str> = parts.by_ref().take(5).collect();
    head.len() == 5
        && head[0] == "arn"
        && head[2] == "timestream"
        && parts
            .next()
            .is_some_and(|r| r.starts_with("scheduled-query/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_scheduled_query_arns() {
        assert!(is_arn(
            "arn:aws:timestream:us-east-1:000000000000:scheduled-query/rollup-0123"
        ));
        assert!(!is_arn("arn:aws:timestream:us-east-1:0:database/db"));
        assert!(names_scheduled_query(
            br#"{"ResourceARN": "arn:aws:timestream:eu-west-1:1:scheduled-query/x-1"}"#
        ));
        assert!(!names_scheduled_query(br#"{"ResourceARN": 5}"#));
    }
}
