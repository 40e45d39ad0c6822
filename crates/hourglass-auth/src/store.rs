//! The server's view of the users file: credential lookups for each protocol, reloaded without a
//! restart when `users.json` changes (its modification time and size are checked at most once
//! per second, and on every lookup that finds nothing, so a user just added works at once).
//! Open sessions re-resolve their user with [`AuthStore::current`] at each statement: a cheap
//! lookup in the kept snapshot, so removals, rotations and grant changes reach them within the
//! same second as new requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hourglass_core::Result;
use parking_lot::{Mutex, RwLock};

use crate::crypto::{self, ct_eq, SealingKey};
use crate::permission::Principal;
use crate::scram::{Fingerprint, ScramSecret};
use crate::users;

const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Snapshot {
    stamp: Option<(SystemTime, u64)>,
    /// access key id → (principal, secret access key).
    by_key: HashMap<String, (Arc<Principal>, String)>,
    /// hex SHA-256 of the token → principal.
    by_token: HashMap<String, Arc<Principal>>,
    /// user name → the user's principal and password-like credentials.
    by_name: HashMap<String, Named>,
}

/// What a user name resolves to.
struct Named {
    principal: Arc<Principal>,
    /// hex SHA-256 of the token.
    token_hash: String,
    scram: ScramSecret,
    /// [`ScramSecret::fingerprint`] of `scram`, computed once per reload.
    fingerprint: Fingerprint,
}

/// Users and credentials, as the server sees them.
pub struct AuthStore {
    data_dir: PathBuf,
    snapshot: RwLock<Snapshot>,
    last_check: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl AuthStore {
    /// Loads the users of `data_dir` (none is fine: every request is then refused).
    pub fn open(data_dir: &Path) -> Result<AuthStore> {
        let store = AuthStore {
            data_dir: data_dir.to_path_buf(),
            snapshot: RwLock::new(Snapshot::default()),
            last_check: Mutex::new(None),
        };
        store.reload()?;
        Ok(store)
    }

    fn reload(&self) -> Result<()> {
        let path = users::path(&self.data_dir);
        let stamp = stamp(&path);
        let file = users::load(&self.data_dir)?;
        let mut snap = Snapshot {
            stamp,
            ..Snapshot::default()
        };
        if !file.users.is_empty() {
            let key = SealingKey::load(&self.data_dir, false)?;
            for u in file.users {
                let principal = Arc::new(Principal::user(u.name.clone(), u.grants.clone()));
                match key.open(&u.sigv4.access_key_id, &u.sigv4.secret_sealed) {
                    Ok(secret) => {
                        snap.by_key.insert(
                            u.sigv4.access_key_id.clone(),
                            (
                                principal.clone(),
                                String::from_utf8_lossy(&secret).into_owned(),
                            ),
                        );
                    }
                    Err(e) => {
                        tracing::error!(user = %u.name, error = %e, "SigV4 secret unreadable")
                    }
                }
                snap.by_token
                    .insert(u.token.sha256.clone(), principal.clone());
                let fingerprint = u.scram.fingerprint();
                snap.by_name.insert(
                    u.name.clone(),
                    Named {
                        principal,
                        token_hash: u.token.sha256,
                        scram: u.scram,
                        fingerprint,
                    },
                );
            }
        }
        *self.snapshot.write() = snap;
        Ok(())
    }

    /// Reloads when the file changed; `force` skips the once-per-second limit.
    fn refresh(&self, force: bool) {
        {
            let mut last = self.last_check.lock();
            if !force && last.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let current = stamp(&users::path(&self.data_dir));
        if current == self.snapshot.read().stamp {
            return;
        }
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "reloading the users file failed; keeping the previous users");
        } else {
            tracing::info!("users file reloaded");
        }
    }

    fn lookup<T>(&self, f: impl Fn(&Snapshot) -> Option<T>) -> Option<T> {
        self.refresh(false);
        if let Some(found) = f(&self.snapshot.read()) {
            return Some(found);
        }
        self.refresh(true);
        f(&self.snapshot.read())
    }

    /// The principal and secret access key of a SigV4 access key id.
    pub fn sigv4_secret(&self, access_key_id: &str) -> Option<(Arc<Principal>, String)> {
        self.lookup(|s| s.by_key.get(access_key_id).cloned())
    }

    /// The principal owning an InfluxDB token.
    pub fn by_token(&self, token: &str) -> Option<Arc<Principal>> {
        let hash = crypto::sha256_hex(token.as_bytes());
        self.lookup(|s| s.by_token.get(&hash).cloned())
    }

    /// InfluxDB v1 `u`/`p`: the user's name and token. `Err(true)` = unknown user, `Err(false)`
    /// = wrong token.
    pub fn by_user_token(
        &self,
        user: &str,
        token: &str,
    ) -> std::result::Result<Arc<Principal>, bool> {
        let hash = crypto::sha256_hex(token.as_bytes());
        let Some((principal, expected)) = self.lookup(|s| {
            s.by_name
                .get(user)
                .map(|n| (n.principal.clone(), n.token_hash.clone()))
        }) else {
            return Err(true);
        };
        if ct_eq(hash.as_bytes(), expected.as_bytes()) {
            Ok(principal)
        } else {
            // The token may have been rotated a moment ago.
            self.refresh(true);
            match self.snapshot.read().by_name.get(user) {
                Some(n) if ct_eq(hash.as_bytes(), n.token_hash.as_bytes()) => {
                    Ok(n.principal.clone())
                }
                _ => Err(false),
            }
        }
    }

    /// The principal and SCRAM secret of a PostgreSQL user.
    pub fn scram(&self, user: &str) -> Option<(Arc<Principal>, ScramSecret)> {
        self.lookup(|s| {
            s.by_name
                .get(user)
                .map(|n| (n.principal.clone(), n.scram.clone()))
        })
    }

    /// A user as it is now, for a session that logged in earlier: its principal (current grants)
    /// and the [`Fingerprint`] of its SCRAM secret (a session whose login fingerprint differs
    /// logged in with credentials since rotated). `None` when the user was removed. The users
    /// file is checked at most once per second (and once more when the user is not found), so
    /// calling this at every statement costs a map lookup.
    pub fn current(&self, user: &str) -> Option<(Arc<Principal>, Fingerprint)> {
        self.lookup(|s| {
            s.by_name
                .get(user)
                .map(|n| (n.principal.clone(), n.fingerprint))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::{Grant, Permission};

    #[test]
    fn users_added_later_are_found_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        assert!(store.by_token("nope").is_none());
        let c = users::add(
            dir.path(),
            "alice",
            vec![Grant {
                database: "db".into(),
                permission: Permission::Read,
            }],
        )
        .unwrap();
        assert_eq!(store.by_token(&c.token).unwrap().name, "alice");
        let (p, secret) = store.sigv4_secret(&c.access_key_id).unwrap();
        assert_eq!(
            (p.name.as_str(), secret.as_str()),
            ("alice", c.secret_access_key.as_str())
        );
        assert!(store.by_user_token("alice", &c.token).is_ok());
        assert!(!store.by_user_token("alice", "x").unwrap_err());
        assert!(store.by_user_token("bob", "x").unwrap_err());
        assert!(store.scram("alice").is_some());
        let (_, before) = store.current("alice").unwrap();
        assert_eq!(before, store.scram("alice").unwrap().1.fingerprint());
        let r = users::rotate(dir.path(), "alice").unwrap();
        assert!(store.by_token(&r.token).is_some());
        users::remove(dir.path(), "alice").unwrap();
        std::thread::sleep(CHECK_EVERY);
        assert!(store.by_token(&r.token).is_none());
        assert!(store.current("alice").is_none());
        let _ = before;
    }

    #[test]
    fn current_sees_rotation_and_grant_changes_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let read = |db: &str| Grant {
            database: db.into(),
            permission: Permission::Read,
        };
        users::add(dir.path(), "bob", vec![read("a")]).unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let (p, login) = store.current("bob").unwrap();
        assert_eq!(p.grants, vec![read("a")]);
        // The cheap path: the same snapshot, the same principal.
        let (again, _) = store.current("bob").unwrap();
        assert!(Arc::ptr_eq(&p, &again));
        users::grant(dir.path(), "bob", vec![read("b")]).unwrap();
        std::thread::sleep(CHECK_EVERY);
        let (p, fingerprint) = store.current("bob").unwrap();
        assert_eq!(p.grants, vec![read("a"), read("b")]);
        assert_eq!(fingerprint, login, "a grant is not a rotation");
        users::rotate(dir.path(), "bob").unwrap();
        std::thread::sleep(CHECK_EVERY);
        let (_, rotated) = store.current("bob").unwrap();
        assert_ne!(rotated, login);
    }
}
