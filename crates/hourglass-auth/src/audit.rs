//! The audit log: `<data-dir>/audit.log`, one JSON object per line, appended and fsynced before
//! the action it records is answered (format: `docs/format/audit-log.md`). It records management
//! operations, user administration, admin endpoints, authentication failures and permission
//! denials: who, what, on what, when, from where, and how it ended. Queryable as
//! `system.audit_log`.

use std::io::Write;
use std::path::{Path, PathBuf};

use hourglass_core::{Error, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub const AUDIT_FILE: &str = "audit.log";

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// The user name (`anonymous` with authentication off; the claimed name or key id when
    /// authentication failed; `-` when none was given).
    pub user: String,
    /// The peer address (`ip:port`), or `local` for the command line.
    pub peer: String,
    /// `timestream`, `http`, `postgres` or `cli`.
    pub interface: String,
    /// The operation: `CreateDatabase`, `user add`, `POST /admin/flush`, `authenticate`, ...
    pub action: String,
    /// What it acted on: a database, `db.table`, a user name; empty when none.
    pub target: String,
    /// `ok`, `error`, `denied` or `unauthenticated`.
    pub outcome: String,
    /// The error message or other detail; empty when none.
    pub detail: String,
}

impl AuditEvent {
    pub fn now(
        user: &str,
        peer: &str,
        interface: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) -> AuditEvent {
        AuditEvent {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            user: user.into(),
            peer: peer.into(),
            interface: interface.into(),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            detail: detail.into(),
        }
    }
}

/// An open audit log; appends are serialised and each is fsynced.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(AUDIT_FILE)
}

impl AuditLog {
    pub fn open(data_dir: &Path) -> Result<AuditLog> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("creating {}", data_dir.display()), &e))?;
        let path = path(data_dir);
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), &e))?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event (one `write` of the whole line, then `fdatasync`).
    pub fn append(&self, event: &AuditEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::internal(format!("encoding an audit event: {e}")))?;
        line.push(b'\n');
        let mut file = self.file.lock();
        file.write_all(&line)
            .and_then(|_| file.sync_data())
            .map_err(|e| Error::io(format!("appending to {}", self.path.display()), &e))
    }

    /// Appends, logging (not returning) a failure: for callers that answer regardless.
    pub fn record(&self, event: AuditEvent) {
        if let Err(e) = self.append(&event) {
            tracing::error!(error = %e, action = %event.action, "audit log append failed");
        }
    }
}

/// Reads every event of the log at `path`; a missing file is empty, a torn last line is skipped.
pub fn read_all(path: &Path) -> Result<Vec<AuditEvent>> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), &e)),
    };
    Ok(text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_append_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let e = AuditEvent::now("alice", "127.0.0.1:5", "cli", "user add", "bob", "ok", "");
        log.append(&e).unwrap();
        log.append(&e).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        let back = read_all(log.path()).unwrap();
        assert_eq!(back, vec![e.clone(), e]);
    }
}
