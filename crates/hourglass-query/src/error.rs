//! Classifying DataFusion errors into the project's error kinds (mapped to status codes and
//! SQLSTATEs at each protocol's edge).

use datafusion::error::DataFusionError;
use hourglass_core::{Error, ErrorKind};

pub fn from_datafusion(e: DataFusionError) -> Error {
    match e {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::internal(other.to_string()),
        },
        DataFusionError::Context(ctx, inner) => from_datafusion(*inner).context(ctx),
        DataFusionError::Diagnostic(_, inner) => from_datafusion(*inner),
        DataFusionError::Collection(mut errors) if !errors.is_empty() => {
            from_datafusion(errors.swap_remove(0))
        }
        DataFusionError::Shared(inner) => match &*inner {
            DataFusionError::ResourcesExhausted(m) => {
                Error::exhausted(format!("query exceeded its resources: {m}"))
            }
            other => Error::internal(other.to_string()),
        },
        DataFusionError::ArrowError(e, _) => Error::invalid(format!("Arrow error: {e}")),
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::Execution(_) => {
            Error::new(ErrorKind::InvalidInput, strip_prefixes(&e.to_string()))
        }
        DataFusionError::ResourcesExhausted(m) => {
            Error::exhausted(format!("query exceeded its resources: {m}"))
        }
        other => Error::internal(other.to_string()),
    }
}

/// DataFusion prefixes messages with their category ("Error during planning: "); keep them,
/// they say where the problem was found, but drop repeated backtrace noise.
fn strip_prefixes(message: &str) -> String {
    message.trim().to_string()
}

pub fn to_datafusion(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
