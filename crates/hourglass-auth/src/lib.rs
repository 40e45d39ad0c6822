//! Authentication, authorisation and the audit trail of Hourglass (`serve --require-auth`).
//!
//! | module | what |
//! |---|---|
//! | [`permission`] | grants (`read`, `write`, `admin` on a database or `*`) and the [`Principal`] a request runs as |
//! | [`users`] | the users file (`<data-dir>/users.json`): add, remove, rotate, grant (`docs/format/users.md`) |
//! | [`store`] | the server's view of the users file, reloaded when it changes; credential lookups |
//! | [`sigv4`] | AWS Signature Version 4 verification (the Timestream API) |
//! | [`scram`] | SCRAM-SHA-256 (the PostgreSQL wire protocol), verifying against stored keys |
//! | [`audit`] | the append-only JSON-lines audit log (`docs/format/audit-log.md`) |
//! | [`crypto`] | hashing, HMAC, PBKDF2, AES-256-GCM sealing with `<data-dir>/auth.key`, atomic 0600 files |
//! | [`failure`] | why authentication failed, for each protocol to shape its own answer |
//!
//! All cryptography is `ring`'s; comparisons of secrets are constant-time (`subtle`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod crypto;
pub mod failure;
pub mod permission;
pub mod scram;
pub mod sigv4;
pub mod store;
pub mod users;

pub use audit::{AuditEvent, AuditLog};
pub use failure::AuthFailure;
pub use permission::{Grant, Permission, Principal};
pub use store::AuthStore;

use std::sync::Arc;

/// What every interface needs for security: the users (when `--require-auth`) and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// `Some` when authentication is required.
    pub store: Option<Arc<AuthStore>>,
    /// The audit log (management operations are recorded even with authentication off).
    pub audit: Option<Arc<AuditLog>>,
    /// Refuse connections that are not TLS (`--require-tls`; HTTP is TLS-only whenever a
    /// certificate is configured, so this matters to the PostgreSQL endpoint).
    pub require_tls: bool,
}

impl Security {
    /// Authentication off, no audit log (tests).
    pub fn disabled() -> Security {
        Security::default()
    }

    /// Whether requests must authenticate.
    pub fn required(&self) -> bool {
        self.store.is_some()
    }

    /// Appends an audit event (failures to append are logged).
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        user: &str,
        peer: &str,
        interface: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) {
        if let Some(log) = &self.audit {
            log.record(AuditEvent::now(
                user, peer, interface, action, target, outcome, detail,
            ));
        }
    }
}
