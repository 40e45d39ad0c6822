//! Error type of the WAL.

use std::io;
use std::path::PathBuf;

/// Errors returned by the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation on `path` failed.
    #[error("WAL I/O error on {}: {source}", path.display())]
    Io {
        /// File or directory the operation was on.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// A segment contains damage that is not a torn tail. The WAL refuses to
    /// open rather than silently skip acknowledged data.
    #[error("corrupt WAL segment {} at byte offset {offset}: {reason}", segment.display())]
    Corrupt {
        /// Path of the damaged segment file.
        segment: PathBuf,
        /// Byte offset in the file where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The segment was written by a newer (or unknown) format version.
    #[error("WAL segment {} has unsupported format version {version}", segment.display())]
    UnsupportedVersion {
        /// Path of the segment file.
        segment: PathBuf,
        /// Version found in its header.
        version: u32,
    },
    /// The payload exceeds [`crate::format::MAX_ENTRY_LEN`].
    #[error("WAL entry of {len} bytes exceeds the maximum of {max} bytes")]
    EntryTooLarge {
        /// Payload length.
        len: usize,
        /// Maximum payload length.
        max: u64,
    },
    /// The WAL has been closed; no more appends or rotations.
    #[error("WAL is closed")]
    Closed,
    /// The callback passed to `replay` failed with a non-WAL error.
    #[error("WAL replay callback failed: {0}")]
    Replay(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        segment: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        WalError::Corrupt {
            segment: segment.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True if the error is an I/O error caused by a full disk or an
    /// exhausted quota. Appends fail with such an error and the WAL keeps
    /// working, so a caller can shed load and retry once space returns.
    pub fn is_disk_full(&self) -> bool {
        match self {
            WalError::Io { source, .. } => is_disk_full_io(source),
            _ => false,
        }
    }
}

fn is_disk_full_io(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::StorageFull {
        return true;
    }
    // EDQUOT maps to a kind that is not stable on our MSRV.
    #[cfg(target_os = "linux")]
    if e.raw_os_error() == Some(122) {
        return true;
    }
    false
}

/// Builds an equivalent `io::Error` so one failure can be reported to every
/// appender of a group (io::Error is not Clone). The OS error code, and thus
/// the kind, is preserved.
pub(crate) fn clone_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl WalError {
    /// Duplicates an error for another waiter of the same failed group.
    pub(crate) fn duplicate(&self) -> WalError {
        match self {
            WalError::Io { path, source } => WalError::Io {
                path: path.clone(),
                source: clone_io_error(source),
            },
            WalError::Corrupt {
                segment,
                offset,
                reason,
            } => WalError::Corrupt {
                segment: segment.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            WalError::UnsupportedVersion { segment, version } => WalError::UnsupportedVersion {
                segment: segment.clone(),
                version: *version,
            },
            WalError::EntryTooLarge { len, max } => WalError::EntryTooLarge {
                len: *len,
                max: *max,
            },
            WalError::Closed => WalError::Closed,
            WalError::Replay(e) => WalError::Replay(e.to_string().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn disk_full_detection_survives_duplication() {
        let e = WalError::io("/x", io::Error::from_raw_os_error(28)); // ENOSPC
        assert!(e.is_disk_full());
        assert!(e.duplicate().is_disk_full());
        let other = WalError::io("/x", io::Error::other("boom"));
        assert!(!other.is_disk_full());
        assert!(!WalError::Closed.is_disk_full());
    }
}
