//! RFC 5929 `tls-server-end-point` channel binding data: the hash of the server's certificate
//! (DER), with the hash function of the certificate's signature algorithm, SHA-256 when that
//! is MD5 or SHA-1. Read from the certificate with a minimal DER reader (only the outer
//! structure and the signature AlgorithmIdentifier are looked at).

use ring::digest;

/// OID content bytes of the signature algorithms (and RSASSA-PSS hash algorithms) we know.
const MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const SHA1_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const SHA256_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const SHA384_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const SHA512_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// `[0]` (explicit, constructed): RSASSA-PSS-params' hashAlgorithm.
const CONTEXT_0: u8 = 0xa0;

/// The channel binding data of a server certificate (DER), or `None` when its signature
/// algorithm has no usable hash (Ed25519, SHA-224) or the DER cannot be read: the server then
/// does not offer `SCRAM-SHA-256-PLUS`.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (tag, certificate, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _tbs, rest) = tlv(certificate)?;
    let (tag, algorithm, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, params) = tlv(algorithm)?;
    if tag != OID {
        return None;
    }
    let hash = match oid {
        MD5_RSA | SHA1_RSA | SHA1_ECDSA | SHA256_RSA | SHA256_ECDSA => &digest::SHA256,
        SHA384_RSA | SHA384_ECDSA => &digest::SHA384,
        SHA512_RSA | SHA512_ECDSA => &digest::SHA512,
        RSA_PSS => pss_hash(params)?,
        _ => return None,
    };
    Some(digest::digest(hash, cert_der).as_ref().to_vec())
}

/// The hash of RSASSA-PSS parameters (`SEQUENCE { [0] AlgorithmIdentifier DEFAULT sha1, ... }`).
fn pss_hash(params: &[u8]) -> Option<&'static digest::Algorithm> {
    let (tag, fields, _) = tlv(params)?;
    if tag != SEQUENCE {
        return None;
    }
    let oid = match tlv(fields) {
        Some((CONTEXT_0, explicit, _)) => {
            let (_, algorithm, _) = tlv(explicit)?;
            let (tag, oid, _) = tlv(algorithm)?;
            (tag == OID).then_some(oid)?
        }
        _ => SHA1,
    };
    match oid {
        SHA1 | SHA256 => Some(&digest::SHA256),
        SHA384 => Some(&digest::SHA384),
        SHA512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// One DER tag-length-value: `(tag, value, what follows)`.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: SEQUENCE { tbs, AlgorithmIdentifier(oid, params), BIT STRING }.
    fn cert(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![OID, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        algorithm.extend_from_slice(params);
        let mut body = vec![SEQUENCE, 3, 0x02, 0x01, 0x01];
        body.push(SEQUENCE);
        body.push(algorithm.len() as u8);
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x02, 0x00, 0xff]);
        let mut out = vec![SEQUENCE, 0x81, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        for (oid, len) in [
            (SHA256_ECDSA, 32),
            (SHA1_RSA, 32),
            (MD5_RSA, 32),
            (SHA384_ECDSA, 48),
            (SHA512_RSA, 64),
        ] {
            let c = cert(oid, &[]);
            let data = tls_server_end_point(&c).unwrap();
            assert_eq!(data.len(), len);
        }
        let c = cert(SHA256_RSA, &[0x05, 0x00]);
        assert_eq!(
            tls_server_end_point(&c).unwrap(),
            digest::digest(&digest::SHA256, &c).as_ref()
        );
        // RSASSA-PSS with SHA-384 in its parameters; without, SHA-1 → SHA-256.
        let mut hash = vec![SEQUENCE, 2 + SHA384.len() as u8, OID, SHA384.len() as u8];
        hash.extend_from_slice(SHA384);
        let mut params = vec![SEQUENCE, 2 + hash.len() as u8, CONTEXT_0, hash.len() as u8];
        params.extend_from_slice(&hash);
        assert_eq!(
            tls_server_end_point(&cert(RSA_PSS, &params)).unwrap().len(),
            48
        );
        assert_eq!(
            tls_server_end_point(&cert(RSA_PSS, &[SEQUENCE, 0]))
                .unwrap()
                .len(),
            32
        );
        // Ed25519: no hash, no channel binding; garbage: none either.
        assert!(tls_server_end_point(&cert(&[0x2b, 0x65, 0x70], &[])).is_none());
        assert!(tls_server_end_point(b"\x30\x82\xff").is_none());
        assert!(tls_server_end_point(b"").is_none());
    }
}
