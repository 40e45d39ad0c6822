//! Who a session runs as, re-checked at each statement (simple Query, Parse, Describe,
//! Execute): the user is looked up again in the [`AuthStore`]'s snapshot (which re-reads the
//! users file at most once per second), so changes reach open sessions within the same second
//! as new requests.
//!
//! * The user was removed, or its password rotated since the session logged in (the
//!   fingerprint of its SCRAM secret differs): the session ends with FATAL `28000`, recorded
//!   in the audit log (action `authenticate`, outcome `unauthenticated`).
//! * Its grants changed: the session's catalog is rebuilt for the new grants
//!   ([`SessionCatalog::apply`]) and statements prepared before are planned again
//!   ([`SessionCatalog::generation`]), so the statement runs with the grants of now.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, SchemaProvider};
use hourglass_auth::scram::Fingerprint;
use hourglass_auth::{AuthStore, Principal, Security};
use parking_lot::RwLock;
use pgwire::error::{PgWireError, PgWireResult};

use crate::catalog::WithPgCatalog;
use crate::errors::{fatal, INVALID_AUTHORIZATION};

/// How a connection logged in (a session extension, inserted when startup finishes).
pub struct Login {
    /// The principal at login.
    pub principal: Arc<Principal>,
    /// `None` with authentication off.
    check: Option<Recheck>,
}

/// What re-checking an authenticated login needs.
struct Recheck {
    user: String,
    fingerprint: Fingerprint,
    store: Arc<AuthStore>,
    security: Security,
    peer: String,
    database: String,
}

impl Login {
    /// Authentication off: everything allowed, nothing to re-check.
    pub fn trust() -> Login {
        Login {
            principal: Arc::new(Principal::unrestricted()),
            check: None,
        }
    }

    /// A SCRAM login of `principal` with the secret whose fingerprint is `fingerprint`.
    pub(crate) fn authenticated(
        principal: Arc<Principal>,
        fingerprint: Fingerprint,
        store: Arc<AuthStore>,
        security: Security,
        peer: String,
        database: String,
    ) -> Login {
        Login {
            check: Some(Recheck {
                user: principal.name.clone(),
                fingerprint,
                store,
                security,
                peer,
                database,
            }),
            principal,
        }
    }

    /// The principal this session runs as now, or the FATAL error that ends it (audited).
    pub(crate) fn current(&self) -> PgWireResult<Arc<Principal>> {
        let Some(check) = &self.check else {
            return Ok(self.principal.clone());
        };
        let message = match check.store.current(&check.user) {
            Some((principal, fingerprint)) if fingerprint == check.fingerprint => {
                return Ok(principal)
            }
            Some(_) => format!(
                "terminating connection: the password of user \"{}\" was rotated; log in \
                 with the new one",
                check.user
            ),
            None => format!(
                "terminating connection: user \"{}\" was removed",
                check.user
            ),
        };
        check.security.audit(
            &check.user,
            &check.peer,
            "postgres",
            "authenticate",
            &check.database,
            "unauthenticated",
            &message,
        );
        tracing::info!(user = %check.user, peer = %check.peer, "{message}");
        Err(fatal(INVALID_AUTHORIZATION, message))
    }
}

/// Builds the catalog a principal sees.
type MakeCatalog = Box<dyn Fn(&Arc<Principal>) -> Arc<WithPgCatalog> + Send + Sync>;

/// The session's `hourglass` catalog (with `pg_catalog`), rebuilt when the grants change.
pub struct SessionCatalog {
    make: MakeCatalog,
    state: RwLock<State>,
}

struct State {
    principal: Arc<Principal>,
    catalog: Arc<WithPgCatalog>,
    /// Incremented at each change of grants.
    generation: u64,
}

impl std::fmt::Debug for SessionCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("SessionCatalog")
            .field("principal", &state.principal.name)
            .field("generation", &state.generation)
            .finish_non_exhaustive()
    }
}

impl SessionCatalog {
    pub fn new(
        principal: Arc<Principal>,
        make: impl Fn(&Arc<Principal>) -> Arc<WithPgCatalog> + Send + Sync + 'static,
    ) -> SessionCatalog {
        let catalog = make(&principal);
        SessionCatalog {
            make: Box::new(make),
            state: RwLock::new(State {
                principal,
                catalog,
                generation: 0,
            }),
        }
    }

    /// The principal the session runs as now.
    pub fn principal(&self) -> Arc<Principal> {
        self.state.read().principal.clone()
    }

    /// Makes `principal`'s grants the session's: a no-op when they are the same (the usual
    /// case, a pointer comparison while the users file is unchanged). Returns the principal
    /// replaced when the grants changed.
    pub fn apply(&self, principal: Arc<Principal>) -> Option<Arc<Principal>> {
        {
            let state = self.state.read();
            if Arc::ptr_eq(&state.principal, &principal) {
                return None;
            }
        }
        let mut state = self.state.write();
        if *state.principal == *principal {
            // The users file was reloaded (another user changed): keep the new pointer so the
            // next check is a pointer comparison again.
            state.principal = principal;
            return None;
        }
        tracing::info!(user = %principal.name, "grants changed; applying them to the open session");
        state.catalog = (self.make)(&principal);
        state.generation += 1;
        Some(std::mem::replace(&mut state.principal, principal))
    }

    /// Changes with the grants: a statement planned under another generation is planned again.
    pub fn generation(&self) -> u64 {
        self.state.read().generation
    }

    fn current(&self) -> Arc<WithPgCatalog> {
        self.state.read().catalog.clone()
    }
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.current().schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.current().schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        self.current().register_schema(name, schema)
    }
}

/// The error of a statement arriving on a connection that never logged in (pgwire processes
/// messages after a failed startup in some paths): refused, never run as anyone.
pub(crate) fn not_logged_in() -> PgWireError {
    fatal(
        INVALID_AUTHORIZATION,
        "the connection has not authenticated",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hourglass_auth::{Grant, Permission};

    #[test]
    fn grants_are_applied_only_when_they_change() {
        let read = |db: &str| Grant {
            database: db.into(),
            permission: Permission::Read,
        };
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = builds.clone();
        let alice = Arc::new(Principal::user("alice", vec![read("a")]));
        let catalog = SessionCatalog::new(alice.clone(), move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(WithPgCatalog::new(
                Arc::new(datafusion::catalog::MemoryCatalogProvider::new()),
                vec![],
            ))
        });
        assert!(catalog.apply(alice.clone()).is_none());
        let same = Principal::user("alice", vec![read("a")]);
        assert!(catalog.apply(Arc::new(same)).is_none());
        assert_eq!(
            (
                catalog.generation(),
                builds.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (0, 1)
        );
        let more = Principal::user("alice", vec![read("a"), read("b")]);
        let previous = catalog.apply(Arc::new(more)).unwrap();
        assert_eq!(previous.grants, vec![read("a")]);
        assert_eq!(
            (
                catalog.generation(),
                builds.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (1, 2)
        );
    }
}
