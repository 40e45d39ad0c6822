//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, server side, verifying against the
//! stored keys only (the password is never stored): `StoredKey = H(HMAC(SaltedPassword, "Client
//! Key"))`, `ServerKey = HMAC(SaltedPassword, "Server Key")`, `SaltedPassword = PBKDF2(password,
//! salt, 4096)`. On TLS connections `SCRAM-SHA-256-PLUS` binds the exchange to the server's
//! certificate (RFC 5929 `tls-server-end-point`, the only channel binding type PostgreSQL
//! offers): [`ChannelBinding`], [`tls_server_end_point`].

use serde::{Deserialize, Serialize};

mod end_point;
pub use end_point::tls_server_end_point;

use crate::crypto::{self, b64, ct_eq, hmac_sha256, pbkdf2_sha256, sha256};
use hourglass_core::{Error, Result};

pub const ITERATIONS: u32 = 4096;
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// The mechanism with channel binding.
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The channel binding type of [`MECHANISM_PLUS`].
pub const CHANNEL_BINDING_TYPE: &str = "tls-server-end-point";

/// Identifies one SCRAM secret (a hash of all of it): a session remembers the fingerprint of
/// the secret it logged in with, and a different one later means the password was rotated.
pub type Fingerprint = [u8; 32];

/// What the client's choice of mechanism means for channel binding.
#[derive(Debug, Clone, Copy)]
pub enum ChannelBinding<'a> {
    /// No channel binding on this connection (not TLS): only `SCRAM-SHA-256` was offered.
    Unsupported,
    /// `SCRAM-SHA-256-PLUS` was offered (with this binding data) and the client chose plain
    /// `SCRAM-SHA-256`: its GS2 flag must not claim that the server lacks channel binding.
    Offered(&'a [u8]),
    /// The client chose `SCRAM-SHA-256-PLUS`: it must bind to this data.
    Selected(&'a [u8]),
}

/// What is stored for a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramSecret {
    pub iterations: u32,
    /// base64.
    pub salt: String,
    /// base64.
    pub stored_key: String,
    /// base64.
    pub server_key: String,
}

impl ScramSecret {
    pub fn derive(password: &str) -> Result<ScramSecret> {
        let salt = crypto::random_bytes::<16>()?;
        Ok(Self::derive_with(password, &salt, ITERATIONS))
    }

    pub fn derive_with(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let salted = pbkdf2_sha256(password.as_bytes(), salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramSecret {
            iterations,
            salt: b64(salt),
            stored_key: b64(&sha256(&client_key)),
            server_key: b64(&hmac_sha256(&salted, b"Server Key")),
        }
    }

    /// The [`Fingerprint`] of this secret.
    pub fn fingerprint(&self) -> Fingerprint {
        sha256(
            format!(
                "{}\n{}\n{}\n{}",
                self.iterations, self.salt, self.stored_key, self.server_key
            )
            .as_bytes(),
        )
    }
}

/// The server's state between its first message and the client's final one.
#[derive(Debug, Clone)]
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    /// The channel binding data the client bound to (`SCRAM-SHA-256-PLUS`), else empty.
    binding: Vec<u8>,
    nonce: String,
    /// `None` for an unknown user (the exchange runs to the end and fails, like PostgreSQL's mock
    /// authentication, so user names cannot be probed).
    secret: Option<(Vec<u8>, Vec<u8>)>,
}

fn bad(message: &str) -> Error {
    Error::invalid(format!("malformed SCRAM message: {message}"))
}

/// A per-process random key for the salts of unknown users: the same user name gets the same
/// salt on every attempt, as a real user would, so probing cannot tell them apart.
fn mock_salt(user: &str) -> Result<String> {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = match KEY.get() {
        Some(k) => k,
        None => {
            let fresh = crypto::random_bytes::<32>()?;
            KEY.get_or_init(|| fresh)
        }
    };
    Ok(b64(&hmac_sha256(key, user.as_bytes())[..16]))
}

/// Handles the client-first message of `user` (no channel binding); answers the server-first
/// message.
pub fn server_first(
    client_first: &[u8],
    user: &str,
    secret: Option<&ScramSecret>,
) -> Result<(String, Exchange)> {
    server_first_bound(client_first, user, secret, ChannelBinding::Unsupported)
}

/// [`server_first`] with channel binding: the GS2 flag must agree with `binding` as RFC 5802
/// §6 and PostgreSQL require (`p=tls-server-end-point` exactly when `SCRAM-SHA-256-PLUS` was
/// chosen; `y`, "the client could bind but thinks the server cannot", is refused when the
/// server offered `-PLUS`, a downgrade).
pub fn server_first_bound(
    client_first: &[u8],
    user: &str,
    secret: Option<&ScramSecret>,
    binding: ChannelBinding<'_>,
) -> Result<(String, Exchange)> {
    let text = std::str::from_utf8(client_first).map_err(|_| bad("not UTF-8"))?;
    // gs2-header: cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or("");
    let authzid = parts.next().ok_or_else(|| bad("no GS2 header"))?;
    let bare = parts
        .next()
        .ok_or_else(|| bad("no client-first-message-bare"))?;
    let bound = match (flag, binding) {
        ("n", ChannelBinding::Selected(_)) | ("y", ChannelBinding::Selected(_)) => {
            return Err(Error::invalid(
                "the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include \
                 channel binding data",
            ))
        }
        ("y", ChannelBinding::Offered(_)) => {
            return Err(Error::invalid(
                "SCRAM channel binding negotiation error: the client supports channel binding \
                 but thinks the server does not; this server does support channel binding",
            ))
        }
        ("n" | "y", _) => Vec::new(),
        (f, ChannelBinding::Selected(data)) if f.starts_with("p=") => {
            if &f[2..] != CHANNEL_BINDING_TYPE {
                return Err(Error::invalid(format!(
                    "unsupported SCRAM channel-binding type \"{}\"",
                    &f[2..]
                )));
            }
            data.to_vec()
        }
        (f, _) if f.starts_with("p=") => {
            return Err(Error::invalid(
                "the client selected SCRAM-SHA-256 without channel binding, but the SCRAM \
                 message includes channel binding data",
            ))
        }
        _ => return Err(bad("bad channel binding flag")),
    };
    let gs2_header = format!("{flag},{authzid},");
    let client_nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("no client nonce"))?;
    let server_nonce = b64(&crypto::random_bytes::<18>()?);
    let nonce = format!("{client_nonce}{server_nonce}");
    let (salt, iterations, keys) = match secret {
        Some(s) => (
            s.salt.clone(),
            s.iterations,
            Some((crypto::unb64(&s.stored_key)?, crypto::unb64(&s.server_key)?)),
        ),
        None => (mock_salt(user)?, ITERATIONS, None),
    };
    let server_first = format!("r={nonce},s={salt},i={iterations}");
    Ok((
        server_first.clone(),
        Exchange {
            client_first_bare: bare.to_string(),
            server_first,
            gs2_header,
            binding: bound,
            nonce,
            secret: keys,
        },
    ))
}

/// Verifies the client-final message. `Ok(Some(server_final))` when the proof is right,
/// `Ok(None)` when it is wrong (or the user is unknown), `Err` when the message is malformed.
pub fn verify_final(exchange: &Exchange, client_final: &[u8]) -> Result<Option<String>> {
    let text = std::str::from_utf8(client_final).map_err(|_| bad("not UTF-8"))?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| bad("no client proof"))?;
    let mut channel = None;
    let mut nonce = None;
    for attr in without_proof.split(',') {
        if let Some(c) = attr.strip_prefix("c=") {
            channel = Some(c);
        } else if let Some(r) = attr.strip_prefix("r=") {
            nonce = Some(r);
        }
    }
    let mut expected = exchange.gs2_header.as_bytes().to_vec();
    expected.extend_from_slice(&exchange.binding);
    let expected = b64(&expected);
    if !channel.is_some_and(|c| ct_eq(c.as_bytes(), expected.as_bytes())) {
        return Err(Error::invalid(
            "SCRAM channel binding check failed: the channel binding data does not match",
        ));
    }
    if nonce != Some(exchange.nonce.as_str()) {
        return Err(bad("nonce does not match"));
    }
    let proof = crypto::unb64(proof).map_err(|_| bad("proof is not base64"))?;
    let Some((stored_key, server_key)) = &exchange.secret else {
        return Ok(None);
    };
    let auth_message = format!(
        "{},{},{}",
        exchange.client_first_bare, exchange.server_first, without_proof
    );
    let client_signature = hmac_sha256(stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Ok(None);
    }
    let client_key: Vec<u8> = proof
        .iter()
        .zip(client_signature.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    if !ct_eq(&sha256(&client_key), stored_key) {
        return Ok(None);
    }
    let server_signature = hmac_sha256(server_key, auth_message.as_bytes());
    Ok(Some(format!("v={}", b64(&server_signature))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side of the exchange, for the tests.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        client_final_bound(password, client_first_bare, server_first, "biws")
    }

    /// [`client_final`] with the `c=` attribute given (base64 of GS2 header + binding data).
    fn client_final_bound(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        channel: &str,
    ) -> String {
        let mut salt = "";
        let mut iterations = 0u32;
        let mut nonce = "";
        for attr in server_first.split(',') {
            if let Some(s) = attr.strip_prefix("s=") {
                salt = s;
            } else if let Some(i) = attr.strip_prefix("i=") {
                iterations = i.parse().unwrap();
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = r;
            }
        }
        let salted = pbkdf2_sha256(
            password.as_bytes(),
            &crypto::unb64(salt).unwrap(),
            iterations,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let without_proof = format!("c={channel},r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hmac_sha256(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", b64(&proof))
    }

    #[test]
    fn right_password_verifies_and_wrong_does_not() {
        let secret = ScramSecret::derive("pencil").unwrap();
        let first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
        let (sfirst, ex) = server_first(first.as_bytes(), "u", Some(&secret)).unwrap();
        let ok = client_final("pencil", "n=,r=rOprNGfwEbeRWgbNEkqO", &sfirst);
        assert!(verify_final(&ex, ok.as_bytes()).unwrap().is_some());
        let wrong = client_final("pen", "n=,r=rOprNGfwEbeRWgbNEkqO", &sfirst);
        assert!(verify_final(&ex, wrong.as_bytes()).unwrap().is_none());
        let (sf, unknown) = server_first(first.as_bytes(), "nobody", None).unwrap();
        let (sf2, _) = server_first(first.as_bytes(), "nobody", None).unwrap();
        let salt = |s: &str| {
            s.split(",s=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(salt(&sf), salt(&sf2));
        let any = client_final("pencil", "n=,r=rOprNGfwEbeRWgbNEkqO", &sf);
        assert!(verify_final(&unknown, any.as_bytes()).unwrap().is_none());
        assert!(server_first(b"p=tls-server-end-point,,n=,r=x", "u", Some(&secret)).is_err());
        assert!(verify_final(&ex, b"garbage").is_err());
    }

    #[test]
    fn channel_binding_must_match_the_mechanism_and_the_certificate() {
        let secret = ScramSecret::derive("pencil").unwrap();
        let cert_hash = b"the certificate's hash";
        let bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL";
        let plus = format!("p=tls-server-end-point,,{bare}");
        let selected = ChannelBinding::Selected(cert_hash);
        let (sfirst, ex) =
            server_first_bound(plus.as_bytes(), "u", Some(&secret), selected).unwrap();
        let mut bound = b"p=tls-server-end-point,,".to_vec();
        bound.extend_from_slice(cert_hash);
        let ok = client_final_bound("pencil", bare, &sfirst, &b64(&bound));
        assert!(verify_final(&ex, ok.as_bytes()).unwrap().is_some());
        // Bound to another certificate (a man in the middle's): refused, not just "wrong".
        let mut other = b"p=tls-server-end-point,,".to_vec();
        other.extend_from_slice(b"another certificate");
        let mitm = client_final_bound("pencil", bare, &sfirst, &b64(&other));
        assert!(verify_final(&ex, mitm.as_bytes()).is_err());
        // The flag must agree with the mechanism chosen.
        let n = format!("n,,{bare}");
        let y = format!("y,,{bare}");
        assert!(server_first_bound(n.as_bytes(), "u", Some(&secret), selected).is_err());
        assert!(server_first_bound(y.as_bytes(), "u", Some(&secret), selected).is_err());
        let offered = ChannelBinding::Offered(cert_hash);
        assert!(server_first_bound(plus.as_bytes(), "u", Some(&secret), offered).is_err());
        assert!(server_first_bound(y.as_bytes(), "u", Some(&secret), offered).is_err());
        assert!(server_first_bound(n.as_bytes(), "u", Some(&secret), offered).is_ok());
        let unsupported = ChannelBinding::Unsupported;
        assert!(server_first_bound(y.as_bytes(), "u", Some(&secret), unsupported).is_ok());
        let other_type = format!("p=tls-unique,,{bare}");
        assert!(server_first_bound(other_type.as_bytes(), "u", Some(&secret), selected).is_err());
    }

    #[test]
    fn fingerprints_differ_per_secret() {
        let a = ScramSecret::derive("pencil").unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(
            a.fingerprint(),
            ScramSecret::derive("pencil").unwrap().fingerprint()
        );
    }

    #[test]
    fn rfc7677_stored_and_server_keys() {
        // RFC 7677 §3: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; the
        // server signature there is computed from these keys.
        let salt = crypto::unb64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let s = ScramSecret::derive_with("pencil", &salt, 4096);
        let ex = Exchange {
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            gs2_header: "n,,".into(),
            binding: vec![],
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            secret: Some((
                crypto::unb64(&s.stored_key).unwrap(),
                crypto::unb64(&s.server_key).unwrap(),
            )),
        };
        let fin = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            verify_final(&ex, fin).unwrap().as_deref(),
            Some("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        );
    }
}
