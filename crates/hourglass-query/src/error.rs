//! Classifying DataFusion errors into the project's error kinds (mapped to status codes and
//! SQLSTATEs at each protocol's edge).
//!
//! An error is classified by what it is, under any wrapping: DataFusion carries the errors of
//! other operators and of Arrow kernels inside `External`, `Context`, `Shared` (an input several
//! operators share) and Arrow's `ExternalError`, so a query refused for its memory or time limit
//! can arrive several layers deep; it is still resources exhausted (HTTP 503), not internal.

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use hourglass_core::{Error, ErrorKind};

pub fn from_datafusion(e: DataFusionError) -> Error {
    classify(&e)
}

fn classify(e: &DataFusionError) -> Error {
    match e {
        DataFusionError::External(inner) => {
            from_wrapped(inner.as_ref()).unwrap_or_else(|| Error::internal(inner.to_string()))
        }
        DataFusionError::Context(ctx, inner) => classify(inner).context(ctx),
        DataFusionError::Diagnostic(_, inner) => classify(inner),
        DataFusionError::Collection(errors) => match errors.first() {
            Some(first) => classify(first),
            None => Error::internal(e.to_string()),
        },
        DataFusionError::Shared(inner) => classify(inner),
        DataFusionError::ArrowError(a, _) => from_arrow(a),
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

/// An error another one carries, when it is one we classify: ours (as it is), DataFusion's or
/// Arrow's (unwrapped in turn).
fn from_wrapped(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    if let Some(ours) = e.downcast_ref::<Error>() {
        return Some(ours.clone());
    }
    if let Some(df) = e.downcast_ref::<DataFusionError>() {
        return Some(classify(df));
    }
    e.downcast_ref::<ArrowError>().map(from_arrow)
}

/// An Arrow error: what it carries when that is ours, DataFusion's or Arrow's; otherwise invalid
/// input (a kernel refusing its arguments: a cast, an overflow, a division by zero).
fn from_arrow(e: &ArrowError) -> Error {
    if let ArrowError::ExternalError(inner) = e {
        if let Some(found) = from_wrapped(inner.as_ref()) {
            return found;
        }
    }
    Error::invalid(format!("Arrow error: {e}"))
}

/// DataFusion prefixes messages with their category ("Error during planning: "); keep them,
/// they say where the problem was found, but drop repeated backtrace noise.
fn strip_prefixes(message: &str) -> String {
    message.trim().to_string()
}

pub fn to_datafusion(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn exhausted() -> DataFusionError {
        DataFusionError::ResourcesExhausted("Failed to allocate 1 MiB".into())
    }

    #[test]
    fn resources_exhausted_is_found_under_any_wrapping() {
        let wrapped = [
            exhausted(),
            DataFusionError::External(Box::new(exhausted())),
            DataFusionError::Context("while sorting".into(), Box::new(exhausted())),
            DataFusionError::Shared(Arc::new(exhausted())),
            DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(exhausted()))),
                None,
            ),
            DataFusionError::External(Box::new(ArrowError::ExternalError(Box::new(
                DataFusionError::Shared(Arc::new(DataFusionError::Context(
                    "join".into(),
                    Box::new(DataFusionError::External(Box::new(exhausted()))),
                ))),
            )))),
            DataFusionError::Collection(vec![DataFusionError::Shared(Arc::new(exhausted()))]),
            to_datafusion(Error::exhausted("the query exceeded its 30 s time limit")),
            DataFusionError::Shared(Arc::new(to_datafusion(Error::exhausted("time")))),
        ];
        for e in wrapped {
            let shown = e.to_string();
            let ours = from_datafusion(e);
            assert_eq!(ours.kind, ErrorKind::ResourceExhausted, "{shown}: {ours}");
        }
        // Context is kept in the message.
        let e = from_datafusion(DataFusionError::Context(
            "while sorting".into(),
            Box::new(DataFusionError::External(Box::new(exhausted()))),
        ));
        assert!(e.message.starts_with("while sorting: "), "{e}");
        assert!(e.message.contains("Failed to allocate 1 MiB"), "{e}");
    }

    #[test]
    fn other_errors_keep_their_kinds() {
        assert_eq!(
            from_datafusion(DataFusionError::Plan("no column x".into())).kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            from_datafusion(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None
            ))
            .kind,
            ErrorKind::InvalidInput
        );
        let other: Box<dyn std::error::Error + Send + Sync> = "a broken pipe".into();
        assert_eq!(
            from_datafusion(DataFusionError::External(other)).kind,
            ErrorKind::Internal
        );
        assert_eq!(
            from_datafusion(DataFusionError::Shared(Arc::new(
                DataFusionError::Internal("bug".into())
            )))
            .kind,
            ErrorKind::Internal
        );
        assert_eq!(
            from_datafusion(to_datafusion(Error::permission_denied("no"))).kind,
            ErrorKind::PermissionDenied
        );
    }
}
