//! Per-connection session state that statements change, kept in the connection's session
//! extensions: whether a transaction block is open (and failed), its savepoints (`SAVEPOINT`,
//! `RELEASE`, `ROLLBACK TO`: queries are read-only, so they only need to be remembered), and the
//! parameters `SET` changed (`SHOW` answers them; `RESET` and `DISCARD ALL` undo them).

use std::collections::HashMap;

use parking_lot::Mutex;
use pgwire::error::PgWireError;
use pgwire::messages::response::TransactionStatus;

use crate::errors::pg_error;

/// `25P01`: a savepoint statement outside a transaction block.
pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
/// `25P02`: a statement other than `ROLLBACK` in a failed transaction block.
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
/// `3B001`: `RELEASE` or `ROLLBACK TO` a savepoint that does not exist.
pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";

/// The state; one per connection.
#[derive(Debug, Default)]
pub struct SessionState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    in_block: bool,
    failed: bool,
    savepoints: Vec<String>,
    params: HashMap<String, String>,
}

impl SessionState {
    /// Takes the transaction status the client was last told (before a query string or an
    /// Execute): errors answered elsewhere fail the block, and an idle status ends it.
    pub fn sync(&self, status: TransactionStatus) {
        let mut inner = self.inner.lock();
        match status {
            TransactionStatus::Idle => {
                inner.in_block = false;
                inner.failed = false;
                inner.savepoints.clear();
            }
            TransactionStatus::Transaction => inner.in_block = true,
            TransactionStatus::Error => {
                inner.in_block = true;
                inner.failed = true;
            }
        }
    }

    /// `BEGIN`.
    pub fn begin(&self) {
        self.inner.lock().in_block = true;
    }

    /// `COMMIT` or `ROLLBACK`: whether the block had failed (a failed block's `COMMIT` is
    /// answered `ROLLBACK`).
    pub fn end(&self) -> bool {
        let mut inner = self.inner.lock();
        let failed = inner.failed;
        inner.in_block = false;
        inner.failed = false;
        inner.savepoints.clear();
        failed
    }

    /// A statement failed.
    pub fn fail(&self) {
        let mut inner = self.inner.lock();
        if inner.in_block {
            inner.failed = true;
        }
    }

    /// Whether a transaction block is open.
    pub fn in_block(&self) -> bool {
        self.inner.lock().in_block
    }

    /// Whether the open transaction block failed (statements other than `ROLLBACK [TO]` and
    /// `COMMIT` are refused, `25P02`).
    pub fn failed(&self) -> bool {
        let inner = self.inner.lock();
        inner.in_block && inner.failed
    }

    /// The status to tell the client after a statement, from the one pgwire computed: a block
    /// `ROLLBACK TO` recovered is in transaction again.
    pub fn status(&self, computed: TransactionStatus) -> TransactionStatus {
        let inner = self.inner.lock();
        match computed {
            TransactionStatus::Error if inner.in_block && !inner.failed => {
                TransactionStatus::Transaction
            }
            other => other,
        }
    }

    /// `SAVEPOINT name`.
    pub fn savepoint(&self, name: &str) -> Result<(), PgWireError> {
        let mut inner = self.inner.lock();
        if !inner.in_block {
            return Err(pg_error(
                NO_ACTIVE_SQL_TRANSACTION,
                "SAVEPOINT can only be used in transaction blocks",
            ));
        }
        inner.savepoints.push(name.to_string());
        Ok(())
    }

    /// `RELEASE name` (`rollback: false`) or `ROLLBACK TO name`: the savepoints after `name`
    /// go, and `name` too when released. Rolling back recovers a failed block.
    pub fn back_to(&self, name: &str, rollback: bool) -> Result<(), PgWireError> {
        let mut inner = self.inner.lock();
        let what = if rollback {
            "ROLLBACK TO SAVEPOINT"
        } else {
            "RELEASE SAVEPOINT"
        };
        if !inner.in_block {
            return Err(pg_error(
                NO_ACTIVE_SQL_TRANSACTION,
                format!("{what} can only be used in transaction blocks"),
            ));
        }
        let Some(i) = inner.savepoints.iter().rposition(|s| s == name) else {
            return Err(pg_error(
                INVALID_SAVEPOINT_SPECIFICATION,
                format!("savepoint \"{name}\" does not exist"),
            ));
        };
        if rollback {
            inner.savepoints.truncate(i + 1);
            inner.failed = false;
        } else {
            inner.savepoints.truncate(i);
        }
        Ok(())
    }

    /// `SET name = value`.
    pub fn set(&self, name: &str, value: &str) {
        self.inner
            .lock()
            .params
            .insert(name.to_string(), value.to_string());
    }

    /// The value `SET` gave `name`, if any.
    pub fn param(&self, name: &str) -> Option<String> {
        self.inner.lock().params.get(name).cloned()
    }

    /// `RESET name`, or every parameter (`RESET ALL`, `DISCARD ALL`).
    pub fn reset(&self, name: Option<&str>) {
        let mut inner = self.inner.lock();
        match name {
            Some(name) => {
                inner.params.remove(name);
            }
            None => inner.params.clear(),
        }
    }

    /// `settings` with the values `SET` gave (names `SHOW` did not know are added).
    pub fn settings(&self, settings: &[(String, String)]) -> Vec<(String, String)> {
        let inner = self.inner.lock();
        let mut out: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| (k.clone(), inner.params.get(k).unwrap_or(v).clone()))
            .collect();
        for (k, v) in &inner.params {
            if !out.iter().any(|(name, _)| name == k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoints_and_parameters() {
        let s = SessionState::default();
        assert!(s.savepoint("a").is_err());
        s.begin();
        s.savepoint("a").unwrap();
        s.savepoint("b").unwrap();
        s.fail();
        s.back_to("a", true).unwrap();
        assert!(!s.inner.lock().failed);
        assert!(s.back_to("b", false).is_err());
        s.back_to("a", false).unwrap();
        assert!(s.back_to("a", true).is_err());
        assert!(!s.end());
        s.set("application_name", "x");
        let base = vec![("application_name".to_string(), String::new())];
        assert_eq!(s.settings(&base)[0].1, "x");
        s.reset(None);
        assert_eq!(s.settings(&base)[0].1, "");
    }
}
