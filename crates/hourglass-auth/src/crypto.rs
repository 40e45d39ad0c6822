//! Cryptographic primitives (all from `ring`) and the file helpers the users store relies on:
//! SHA-256, HMAC-SHA-256, PBKDF2-HMAC-SHA-256, random bytes, constant-time equality, AES-256-GCM
//! sealing of secrets with the data directory's key file, and atomic 0600 file replacement.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hourglass_core::{Error, Result};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The key file that seals recoverable secrets (SigV4 secret access keys).
pub const KEY_FILE: &str = "auth.key";

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// PBKDF2-HMAC-SHA-256 with a 32-byte output (SCRAM's `Hi()`).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    let iterations =
        std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::internal("the system random number generator failed"))?;
    Ok(out)
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::corruption(format!("bad base64 in the users file: {e}")))
}

/// The data directory's sealing key (`auth.key`, 32 random bytes, mode 0600), created on first
/// use.
pub struct SealingKey {
    key: LessSafeKey,
}

impl SealingKey {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(KEY_FILE)
    }

    /// Loads the key, creating it when `create` and it does not exist.
    pub fn load(data_dir: &Path, create: bool) -> Result<SealingKey> {
        let path = Self::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let fresh = random_bytes::<32>()?;
                write_atomic(&path, &fresh)?;
                fresh.to_vec()
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), &e)),
        };
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| Error::corruption(format!("{} is not a 32-byte key", path.display())))?;
        Ok(SealingKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plain` bound to `context` (the access key id): base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<String> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::internal("sealing a secret failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        Ok(b64(&out))
    }

    /// Decrypts what [`SealingKey::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        let raw = unb64(sealed)?;
        if raw.len() < NONCE_LEN {
            return Err(Error::corruption("a sealed secret is too short"));
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::corruption("a sealed secret has a bad nonce"))?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| {
                Error::corruption(format!(
                    "the secret of access key {context} does not open with auth.key"
                ))
            })?;
        Ok(plain.to_vec())
    }
}

/// Replaces `path` atomically: a temporary file in the same directory (mode 0600), fsynced,
/// renamed over `path`, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}", tmp.display()), &e);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            &e,
        )
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_context() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealingKey::load(dir.path(), true).unwrap();
        let sealed = key.seal("AKID1", b"secret").unwrap();
        assert_eq!(key.open("AKID1", &sealed).unwrap(), b"secret");
        assert!(key.open("AKID2", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(SealingKey::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1, dkLen=64), first 32 bytes.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }
}
