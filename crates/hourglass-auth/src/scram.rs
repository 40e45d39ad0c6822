//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, server side, verifying against the
//! stored keys only (the password is never stored): `StoredKey = H(HMAC(SaltedPassword, "Client
//! Key"))`, `ServerKey = HMAC(SaltedPassword, "Server Key")`, `SaltedPassword = PBKDF2(password,
//! salt, 4096)`. Channel binding (`SCRAM-SHA-256-PLUS`) is not offered.

use serde::{Deserialize, Serialize};

use crate::crypto::{self, b64, ct_eq, hmac_sha256, pbkdf2_sha256, sha256};
use hourglass_core::{Error, Result};

pub const ITERATIONS: u32 = 4096;
pub const MECHANISM: &str = "SCRAM-SHA-256";

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
}

/// The server's state between its first message and the client's final one.
#[derive(Debug, Clone)]
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
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

/// Handles the client-first message of `user`; answers the server-first message.
pub fn server_first(
    client_first: &[u8],
    user: &str,
    secret: Option<&ScramSecret>,
) -> Result<(String, Exchange)> {
    let text = std::str::from_utf8(client_first).map_err(|_| bad("not UTF-8"))?;
    // gs2-header: cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or("");
    let authzid = parts.next().ok_or_else(|| bad("no GS2 header"))?;
    let bare = parts
        .next()
        .ok_or_else(|| bad("no client-first-message-bare"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err(Error::invalid(
                "channel binding (SCRAM-SHA-256-PLUS) is not supported",
            ))
        }
        _ => return Err(bad("bad channel binding flag")),
    }
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
    if channel != Some(b64(exchange.gs2_header.as_bytes()).as_str()) {
        return Err(bad("channel binding does not match the GS2 header"));
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
        let without_proof = format!("c=biws,r={nonce}");
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
    fn rfc7677_stored_and_server_keys() {
        // RFC 7677 §3: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; the
        // server signature there is computed from these keys.
        let salt = crypto::unb64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let s = ScramSecret::derive_with("pencil", &salt, 4096);
        let ex = Exchange {
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            gs2_header: "n,,".into(),
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
