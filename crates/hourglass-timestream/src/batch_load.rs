//! The seam between the Timestream API and batch load.
//!
//! Batch load tasks read CSV objects from S3 and write their rows through this crate's
//! WriteRecords path, so they live above it (crate `hourglass-batchload`). The API's batch load
//! operations reach them through [`BatchLoad`], which the server installs on the
//! [`crate::Service`] once both exist ([`crate::Service::install_batch_load`]). Without one
//! installed, the operations answer as before: an empty list, `ResourceNotFoundException` for a
//! task id, and `ValidationException` for a create.

use std::sync::Arc;

use async_trait::async_trait;
use hourglass_auth::Principal;

use crate::protocol::ApiError;

/// The batch load operations, served by the batch loader.
#[async_trait]
pub trait BatchLoad: Send + Sync {
    /// Runs `operation` (one of [`OPERATIONS`]) for `principal`; `Ok` is the JSON body.
    async fn call(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError>;
}

/// The operations [`BatchLoad`] serves.
pub const OPERATIONS: [&str; 4] = [
    "CreateBatchLoadTask",
    "DescribeBatchLoadTask",
    "ListBatchLoadTasks",
    "ResumeBatchLoadTask",
];
