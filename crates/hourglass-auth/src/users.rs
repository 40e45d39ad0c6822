//! The users file, `<data-dir>/users.json` (format: `docs/format/users.md`), and the operations of
//! `hourglass user`: add, list, remove, rotate, grant, revoke.
//!
//! Each user has three credentials, generated here and shown once:
//! * an AWS access key id and secret access key (SigV4, the Timestream API): the secret must be
//!   recoverable to verify signatures, so it is sealed with AES-256-GCM under `auth.key`;
//! * an InfluxDB token (line protocol, `/api/v3/query_sql`): stored as its SHA-256;
//! * a PostgreSQL password: stored as SCRAM-SHA-256 salt, iterations, StoredKey and ServerKey, as
//!   PostgreSQL stores it (the password itself cannot be recovered).
//!
//! The file is replaced atomically (temporary file, fsync, rename; mode 0600).

use std::path::{Path, PathBuf};

use hourglass_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, SealingKey};
use crate::permission::{Grant, Permission, ALL_DATABASES};
use crate::scram::{self, ScramSecret};

pub const USERS_FILE: &str = "users.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsersFile {
    pub version: u32,
    pub users: Vec<UserRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub grants: Vec<Grant>,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339 of the last `rotate` (or of creation).
    pub rotated: String,
    pub sigv4: SigV4Record,
    pub token: TokenRecord,
    pub scram: ScramSecret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigV4Record {
    pub access_key_id: String,
    /// base64(nonce ‖ AES-256-GCM ciphertext ‖ tag) of the secret access key, AAD = the key id.
    pub secret_sealed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The token's first characters, to tell tokens apart in listings.
    pub prefix: String,
}

/// Credentials in the clear, as `user add` and `user rotate` print them (once).
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub user: String,
    pub grants: Vec<Grant>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: String,
    pub password: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(USERS_FILE)
}

/// Reads the users file; a missing file is no users.
pub fn load(data_dir: &Path) -> Result<UsersFile> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let file: UsersFile = serde_json::from_slice(&bytes).map_err(|e| {
                Error::corruption(format!("{} is not a valid users file: {e}", path.display()))
            })?;
            if file.version != FORMAT_VERSION {
                return Err(Error::corruption(format!(
                    "{} has format version {}; this build reads {FORMAT_VERSION}",
                    path.display(),
                    file.version
                )));
            }
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile {
            version: FORMAT_VERSION,
            users: vec![],
        }),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), &e)),
    }
}

pub fn save(data_dir: &Path, file: &UsersFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(file)
        .map_err(|e| Error::internal(format!("encoding the users file: {e}")))?;
    crypto::write_atomic(&path(data_dir), &bytes)
}

/// A user name: 1-64 characters of `[A-Za-z0-9_.@-]`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "user name '{name}' must be 1-64 characters of letters, digits, '_', '.', '@', '-'"
        )))
    }
}

/// Grants from parallel `--database` / `--permission` lists (one permission applies to all
/// databases when only one is given).
pub fn grants_from(databases: &[String], permissions: &[String]) -> Result<Vec<Grant>> {
    if databases.is_empty() {
        return Err(Error::invalid(
            "at least one --database is required ('*' = all)",
        ));
    }
    if permissions.len() != 1 && permissions.len() != databases.len() {
        return Err(Error::invalid(
            "give one --permission for all databases, or one per --database",
        ));
    }
    let mut grants = Vec::new();
    for (i, db) in databases.iter().enumerate() {
        let text = permissions
            .get(i)
            .or(permissions.first())
            .map(String::as_str)
            .unwrap_or("");
        let permission = Permission::parse(text).ok_or_else(|| {
            Error::invalid(format!("permission '{text}' is not read, write or admin"))
        })?;
        let database = db.trim().to_string();
        if database.is_empty() {
            return Err(Error::invalid("--database must not be empty"));
        }
        if database != ALL_DATABASES {
            hourglass_core::names::validate_database_name(&database)?;
        }
        let grant = Grant {
            database,
            permission,
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants.sort();
    Ok(grants)
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn access_key_id() -> Result<String> {
    let raw = crypto::random_bytes::<16>()?;
    let body: String = raw
        .iter()
        .map(|b| KEY_ALPHABET[(*b as usize) % KEY_ALPHABET.len()] as char)
        .collect();
    Ok(format!("HGAK{body}"))
}

fn fresh_credentials(
    key: &SealingKey,
    name: &str,
    grants: &[Grant],
) -> Result<(Credentials, SigV4Record, TokenRecord, ScramSecret)> {
    let access_key_id = access_key_id()?;
    let secret_access_key = crypto::b64(&crypto::random_bytes::<30>()?);
    let token = format!("hgt_{}", hex::encode(crypto::random_bytes::<32>()?));
    let password = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        crypto::random_bytes::<24>()?,
    );
    let sigv4 = SigV4Record {
        secret_sealed: key.seal(&access_key_id, secret_access_key.as_bytes())?,
        access_key_id: access_key_id.clone(),
    };
    let token_record = TokenRecord {
        sha256: crypto::sha256_hex(token.as_bytes()),
        prefix: token.chars().take(12).collect(),
    };
    let scram = scram::ScramSecret::derive(&password)?;
    let creds = Credentials {
        user: name.to_string(),
        grants: grants.to_vec(),
        access_key_id,
        secret_access_key,
        token,
        password,
    };
    Ok((creds, sigv4, token_record, scram))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Adds a user with fresh credentials.
pub fn add(data_dir: &Path, name: &str, grants: Vec<Grant>) -> Result<Credentials> {
    validate_name(name)?;
    let mut file = load(data_dir)?;
    if file.users.iter().any(|u| u.name == name) {
        return Err(Error::conflict(format!("user '{name}' already exists")));
    }
    let key = SealingKey::load(data_dir, true)?;
    let (creds, sigv4, token, scram) = fresh_credentials(&key, name, &grants)?;
    let at = now();
    file.users.push(UserRecord {
        name: name.to_string(),
        grants,
        created: at.clone(),
        rotated: at,
        sigv4,
        token,
        scram,
    });
    save(data_dir, &file)?;
    Ok(creds)
}

/// Replaces every credential of a user (the old ones stop working at the server's next reload).
pub fn rotate(data_dir: &Path, name: &str) -> Result<Credentials> {
    let mut file = load(data_dir)?;
    let key = SealingKey::load(data_dir, true)?;
    let user = user_mut(&mut file, name)?;
    let (creds, sigv4, token, scram) = fresh_credentials(&key, name, &user.grants)?;
    user.sigv4 = sigv4;
    user.token = token;
    user.scram = scram;
    user.rotated = now();
    save(data_dir, &file)?;
    Ok(creds)
}

pub fn remove(data_dir: &Path, name: &str) -> Result<()> {
    let mut file = load(data_dir)?;
    let before = file.users.len();
    file.users.retain(|u| u.name != name);
    if file.users.len() == before {
        return Err(Error::not_found(format!("user '{name}' does not exist")));
    }
    save(data_dir, &file)
}

/// Adds grants to an existing user.
pub fn grant(data_dir: &Path, name: &str, grants: Vec<Grant>) -> Result<Vec<Grant>> {
    change_grants(data_dir, name, |held| {
        for g in grants {
            if !held.contains(&g) {
                held.push(g);
            }
        }
        held.sort();
        Ok(())
    })
}

/// Removes grants from an existing user: exactly the grants named (revoking `read` leaves an
/// `admin` grant, which implies it; `*` is a grant of its own). A grant the user does not hold
/// is an error and nothing changes. Returns the grants left.
pub fn revoke(data_dir: &Path, name: &str, grants: Vec<Grant>) -> Result<Vec<Grant>> {
    change_grants(data_dir, name, |held| {
        if let Some(g) = grants.iter().find(|g| !held.contains(g)) {
            return Err(Error::not_found(format!(
                "user '{name}' has no {} grant on '{}'",
                g.permission.as_str(),
                g.database
            )));
        }
        held.retain(|g| !grants.contains(g));
        Ok(())
    })
}

/// The record of user `name` in `file`.
fn user_mut<'a>(file: &'a mut UsersFile, name: &str) -> Result<&'a mut UserRecord> {
    file.users
        .iter_mut()
        .find(|u| u.name == name)
        .ok_or_else(|| Error::not_found(format!("user '{name}' does not exist")))
}

/// Applies `change` to the grants of user `name` and saves the file (nothing is saved when it
/// fails); returns the grants the user then holds.
fn change_grants(
    data_dir: &Path,
    name: &str,
    change: impl FnOnce(&mut Vec<Grant>) -> Result<()>,
) -> Result<Vec<Grant>> {
    let mut file = load(data_dir)?;
    let user = user_mut(&mut file, name)?;
    change(&mut user.grants)?;
    let result = user.grants.clone();
    save(data_dir, &file)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_rotate_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let grants = grants_from(
            &["db1".into(), "*".into()],
            &["read".into(), "admin".into()],
        )
        .unwrap();
        let c = add(dir.path(), "alice", grants.clone()).unwrap();
        assert!(c.token.starts_with("hgt_") && c.access_key_id.starts_with("HGAK"));
        assert!(add(dir.path(), "alice", grants).is_err());
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(!text.contains(&c.token) && !text.contains(&c.secret_access_key));
        assert!(!text.contains(&c.password));
        let r = rotate(dir.path(), "alice").unwrap();
        assert_ne!(r.token, c.token);
        assert_eq!(load(dir.path()).unwrap().users.len(), 1);
        remove(dir.path(), "alice").unwrap();
        assert!(remove(dir.path(), "alice").is_err());
        assert!(grants_from(&["db".into()], &["owner".into()]).is_err());
        let read_db1 = grants_from(&["db1".into()], &["read".into()]).unwrap();
        add(dir.path(), "bob", read_db1.clone()).unwrap();
        grant(
            dir.path(),
            "bob",
            grants_from(&["db2".into()], &["write".into()]).unwrap(),
        )
        .unwrap();
        let left = revoke(dir.path(), "bob", read_db1.clone()).unwrap();
        assert_eq!(
            left,
            grants_from(&["db2".into()], &["write".into()]).unwrap()
        );
        assert_eq!(load(dir.path()).unwrap().users[0].grants, left);
        assert!(revoke(dir.path(), "bob", read_db1.clone()).is_err());
        assert!(revoke(dir.path(), "nobody", read_db1).is_err());
        assert!(validate_name("bad name").is_err());
    }
}
