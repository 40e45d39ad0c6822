//! The one error classification of the project.
//!
//! Libraries return [`Error`], which carries a [`ErrorKind`] and a message written for the client
//! (naming what was wrong and where). Each protocol maps the kind once at its edge: HTTP status and
//! Timestream `__type`, SQLSTATE, line protocol error codes.

use std::fmt;

/// What class of failure an [`Error`] is; decides status codes at every protocol edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The client sent something malformed or not allowed (HTTP 400).
    InvalidInput,
    /// A named database, table or resource does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with existing state (HTTP 409).
    Conflict,
    /// A bound was reached: memory budget, body size, query limits (HTTP 429/503/413).
    ResourceExhausted,
    /// The server cannot take the request now: shutting down, disk full (HTTP 503).
    Unavailable,
    /// Stored data failed a check: CRC mismatch, unreadable file (HTTP 500).
    Corruption,
    /// A bug or an unexpected environment failure (HTTP 500).
    Internal,
    /// The caller did not prove who it is: no, unknown or wrong credentials (HTTP 401).
    Unauthenticated,
    /// The caller is known but lacks the permission the request needs (HTTP 403).
    PermissionDenied,
}

impl ErrorKind {
    /// A short stable name, used in logs and JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Internal => "internal",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
        }
    }
}

/// An error with its classification and a client-facing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceExhausted, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    /// Classifies an I/O error: a full disk is `Unavailable` (writes resume when space returns),
    /// everything else `Internal`. `what` names the file or operation.
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        };
        Self::new(kind, format!("{what}: {err}"))
    }
    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
