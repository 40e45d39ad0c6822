//! AWS Signature Version 4 verification, header form (`Authorization: AWS4-HMAC-SHA256
//! Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...`), as AWS
//! specifies it: canonical request (method, canonical URI, canonical query string, canonical
//! headers, signed headers, payload hash), string to sign, signing key derived from the secret
//! and the credential scope, constant-time comparison. `SignedHeaders` must include `host` and
//! `x-amz-date`; the payload hash is computed from the body (an `x-amz-content-sha256` header
//! must equal it); the request time must be within [`MAX_SKEW_SECS`] of the server's clock; the
//! scope's service must be the expected one (any region). Temporary credentials
//! (`X-Amz-Security-Token`) and query-string (presigned) signatures are not accepted.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::crypto::{ct_eq, hmac_sha256, sha256_hex};
use crate::failure::AuthFailure;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// AWS's clock skew limit.
pub const MAX_SKEW_SECS: i64 = 300;

/// A request to verify. Header names may be in any case; repeated headers appear repeatedly.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent (without `?`).
    pub query: &'a str,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.header_values(name)
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn incomplete(m: impl Into<String>) -> AuthFailure {
    AuthFailure::Malformed(m.into())
}

/// Parses an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization, AuthFailure> {
    let value = value.trim();
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            incomplete(format!(
                "Authorization header requires the {ALGORITHM} algorithm"
            ))
        })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing =
        |what: &str| incomplete(format!("Authorization header requires '{what}' parameter."));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(format!(
            "Credential should have 5 slash-separated parts, not {}.",
            scope.len()
        )));
    };
    if key.is_empty() {
        return Err(incomplete("Credential has no access key id"));
    }
    Ok(Authorization {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers: signed
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// AWS's URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX`; `/` kept when `keep_slash`.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical URI of a non-S3 service: dot segments removed, each segment URI-encoded again.
pub fn canonical_uri(path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let joined = segments.join("/");
    let joined = if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    };
    let joined = if path.ends_with('/') && !joined.ends_with('/') {
        format!("{joined}/")
    } else {
        joined
    };
    uri_encode(joined.as_bytes(), true)
}

/// The canonical query string: parameters decoded, re-encoded, sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: &[&[u8]]) -> String {
    values
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The canonical request for `signed_headers` (lower-case, in the header's order) and
/// `payload_hash`.
pub fn canonical_request(
    req: &Request<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut sorted = signed_headers.to_vec();
    sorted.sort();
    let mut headers = String::new();
    for name in &sorted {
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&canonical_header_value(&req.header_values(name)));
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        sorted.join(";"),
        payload_hash
    )
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

pub fn signature(secret: &str, auth: &Authorization, string_to_sign: &str) -> String {
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

fn amz(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A request whose header checks passed, waiting for the secret of its access key.
#[derive(Debug, Clone)]
pub struct Pending {
    pub authorization: Authorization,
    string_to_sign: String,
}

impl Pending {
    pub fn access_key_id(&self) -> &str {
        &self.authorization.access_key_id
    }

    /// Checks the signature with the access key's secret.
    pub fn verify(&self, secret: &str) -> Result<(), AuthFailure> {
        let expected = signature(secret, &self.authorization, &self.string_to_sign);
        if ct_eq(expected.as_bytes(), self.authorization.signature.as_bytes()) {
            Ok(())
        } else {
            Err(AuthFailure::BadCredential(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details."
                    .into(),
            ))
        }
    }
}

/// Checks everything but the signature itself: header shape, scope, date and skew, signed
/// headers, payload hash. `now` is the server's clock.
pub fn prepare(
    req: &Request<'_>,
    service: &str,
    now: DateTime<Utc>,
) -> Result<Pending, AuthFailure> {
    let Some(header) = req.header("authorization") else {
        return Err(AuthFailure::Missing);
    };
    if req.header("x-amz-security-token").is_some() {
        // Temporary (STS) credentials do not exist here.
        return Err(AuthFailure::UnknownCredential);
    }
    let auth = parse_authorization(&header)?;
    if auth.terminator != "aws4_request" {
        return Err(AuthFailure::BadCredential(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            auth.terminator
        )));
    }
    if auth.service != service {
        return Err(AuthFailure::BadCredential(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(AuthFailure::BadCredential(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let amz_date = req.header("x-amz-date").unwrap_or_default();
    let time = parse_amz_date(amz_date.trim()).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date '{amz_date}' is not of the form YYYYMMDD'T'HHMMSS'Z'"
        ))
    })?;
    if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(AuthFailure::BadCredential(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            amz_date.get(..8).unwrap_or("")
        )));
    }
    let skew = chrono::Duration::seconds(MAX_SKEW_SECS);
    if time < now - skew {
        return Err(AuthFailure::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            amz(time),
            amz(now - skew),
            amz(now)
        )));
    }
    if time > now + skew {
        return Err(AuthFailure::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            amz(time),
            amz(now + skew),
            amz(now)
        )));
    }
    let body_hash = sha256_hex(req.body);
    if let Some(claimed) = req.header("x-amz-content-sha256") {
        if !ct_eq(claimed.trim().as_bytes(), body_hash.as_bytes()) {
            return Err(AuthFailure::BadCredential(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
    }
    let canonical = canonical_request(req, &auth.signed_headers, &body_hash);
    let scope = format!(
        "{}/{}/{}/{}",
        auth.date, auth.region, auth.service, auth.terminator
    );
    Ok(Pending {
        string_to_sign: string_to_sign(amz_date.trim(), &scope, &canonical),
        authorization: auth,
    })
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's published SigV4 test suite (aws-sig-v4-test-suite, 2015-08-30):
    //! credential AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1,
    //! service `service`.
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";

    fn vector(
        method: &str,
        query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        signed: &str,
        signature: &str,
    ) -> (Request<'static>, String) {
        let mut headers = vec![
            ("Host".to_string(), b"example.amazonaws.com".to_vec()),
            ("X-Amz-Date".to_string(), DATE.as_bytes().to_vec()),
        ];
        for (k, v) in extra {
            headers.push((k.to_string(), v.as_bytes().to_vec()));
        }
        headers.push((
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={signature}"
            )
            .into_bytes(),
        ));
        let req = Request {
            method: Box::leak(method.to_string().into_boxed_str()),
            path: "/",
            query: Box::leak(query.to_string().into_boxed_str()),
            headers,
            body: Box::leak(body.to_vec().into_boxed_slice()),
        };
        (req, signature.to_string())
    }

    fn now() -> DateTime<Utc> {
        parse_amz_date(DATE).unwrap() + chrono::Duration::seconds(30)
    }

    #[test]
    fn get_vanilla() {
        let (req, _) = vector(
            "GET",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let creq = canonical_request(
            &req,
            &signed,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(DATE, "20150830/us-east-1/service/aws4_request", &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let pending = prepare(&req, "service", now()).unwrap();
        assert_eq!(pending.access_key_id(), "AKIDEXAMPLE");
        pending.verify(SECRET).unwrap();
        assert!(pending.verify("wrong").is_err());
    }

    #[test]
    fn post_vanilla_and_query_order() {
        let (req, _) = vector(
            "POST",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
        prepare(&req, "service", now())
            .unwrap()
            .verify(SECRET)
            .unwrap();
        let (req, _) = vector(
            "GET",
            "Param2=value2&Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
        prepare(&req, "service", now())
            .unwrap()
            .verify(SECRET)
            .unwrap();
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let (req, _) = vector(
            "POST",
            "",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        );
        let pending = prepare(&req, "service", now()).unwrap();
        pending.verify(SECRET).unwrap();
        // The body is signed: another body fails.
        let mut altered = req.clone();
        altered.body = b"Param1=value2";
        prepare(&altered, "service", now())
            .unwrap()
            .verify(SECRET)
            .unwrap_err();
    }

    #[test]
    fn skew_scope_and_missing_parts_are_refused() {
        let (req, _) = vector("GET", "", &[], b"", "host;x-amz-date", "00");
        let late = parse_amz_date(DATE).unwrap() + chrono::Duration::minutes(20);
        match prepare(&req, "service", late) {
            Err(AuthFailure::Expired(m)) => assert!(m.starts_with("Signature expired: 20150830T123600Z is now earlier than 20150830T125100Z (20150830T125600Z - 5 min.)"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            prepare(&req, "timestream", now()),
            Err(AuthFailure::BadCredential(_))
        ));
        let (req, _) = vector("GET", "", &[], b"", "host", "00");
        assert!(matches!(
            prepare(&req, "service", now()),
            Err(AuthFailure::BadCredential(_))
        ));
        let mut none = req.clone();
        none.headers.retain(|(n, _)| n != "Authorization");
        assert_eq!(
            prepare(&none, "service", now()).unwrap_err(),
            AuthFailure::Missing
        );
        assert!(matches!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c"),
            Err(AuthFailure::Malformed(_))
        ));
        assert!(parse_authorization("Basic abc").is_err());
    }
}
