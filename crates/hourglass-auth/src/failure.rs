//! Why a request was not let through. Each protocol shapes its own answer from these (Timestream
//! `__type`s in `hourglass-timestream/src/protocol.rs`, HTTP 401/403 in the binary's
//! `http/errors.rs`, SQLSTATEs in `hourglass-pgwire/src/errors.rs`); [`AuthFailure::error`] gives
//! the project-wide classification.

use std::fmt;

use hourglass_core::{Error, ErrorKind};

/// An authentication or authorisation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// The Authorization header or credential scope is malformed (incomplete).
    Malformed(String),
    /// The access key, token or user is not known.
    UnknownCredential,
    /// The signature, token or password does not match.
    BadCredential(String),
    /// The signature's timestamp is outside the allowed clock skew.
    Expired(String),
    /// Authenticated, but the grant needed is missing.
    Denied(String),
}

impl AuthFailure {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthFailure::Denied(_) => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unauthenticated,
        }
    }

    /// The audit log's `outcome` of this failure.
    pub fn outcome(&self) -> &'static str {
        match self {
            AuthFailure::Denied(_) => "denied",
            _ => "unauthenticated",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AuthFailure::Missing => "authentication required".into(),
            AuthFailure::Malformed(m) | AuthFailure::BadCredential(m) => m.clone(),
            AuthFailure::UnknownCredential => "unknown credentials".into(),
            AuthFailure::Expired(m) | AuthFailure::Denied(m) => m.clone(),
        }
    }

    pub fn error(&self) -> Error {
        Error::new(self.kind(), self.message())
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<AuthFailure> for Error {
    fn from(f: AuthFailure) -> Error {
        f.error()
    }
}
