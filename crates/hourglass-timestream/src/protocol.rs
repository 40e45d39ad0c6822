//! The AWS JSON 1.0 envelope: targets, request decoding, error bodies and status codes.
//!
//! Every error leaves as `{"__type": "<Name>", "Message": "..."}` (plus `RejectedRecords` for
//! [`ApiError::rejected_records`]) with Timestream's status code. Project errors
//! ([`hourglass_core::Error`]) are classified in exactly one place, [`ApiError::from`].

use std::borrow::Cow;
use std::fmt;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hourglass_auth::AuthFailure;
use hourglass_core::{Error, ErrorKind};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::Value;

/// `X-Amz-Target` prefix of both Timestream services.
pub const TARGET_PREFIX: &str = "Timestream_20181101.";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The `__type` (an exception shape name of the Timestream models).
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Members added to the body (`RejectedRecords`).
    pub extra: Option<serde_json::Map<String, Value>>,
}

impl ApiError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            extra: None,
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", 400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new("ConflictException", 409, message)
    }
    pub fn quota(message: impl Into<String>) -> Self {
        Self::new("ServiceQuotaExceededException", 402, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServerException", 500, message)
    }
    /// What AWS answers to a target it does not know (with a `Message` added).
    pub fn unknown_operation(target: &str) -> Self {
        let message = if target.is_empty() {
            "The request has no X-Amz-Target header; expected Timestream_20181101.<Operation>"
                .to_string()
        } else {
            format!("Operation '{target}' is not known to the Timestream API")
        };
        Self::new(
            "com.amazon.coral.service#UnknownOperationException",
            404,
            message,
        )
    }
    /// `RejectedRecordsException` (419) listing `rejected` (`{RecordIndex, Reason,
    /// ExistingVersion?}` objects).
    pub fn rejected_records(rejected: Vec<Value>) -> Self {
        let mut e = Self::new(
            "RejectedRecordsException",
            419,
            "One or more records have been rejected. See RejectedRecords for details.",
        );
        let mut extra = serde_json::Map::new();
        extra.insert("RejectedRecords".into(), Value::Array(rejected));
        e.extra = Some(extra);
        e
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert("__type".into(), Value::String(self.code.to_string()));
        map.insert("Message".into(), Value::String(self.message.clone()));
        if let Some(extra) = &self.extra {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The one mapping from the project's error kinds to Timestream exceptions.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e.kind {
            ErrorKind::InvalidInput => ApiError::validation(e.message),
            ErrorKind::NotFound => ApiError::not_found(e.message),
            ErrorKind::Conflict => ApiError::conflict(e.message),
            // Memory budget full, query limits: the SDKs retry throttling with backoff.
            ErrorKind::ResourceExhausted => ApiError::new("ThrottlingException", 429, e.message),
            ErrorKind::Unavailable | ErrorKind::Corruption | ErrorKind::Internal => {
                ApiError::internal(e.message)
            }
            ErrorKind::Unauthenticated => ApiError::from(AuthFailure::UnknownCredential),
            ErrorKind::PermissionDenied => ApiError::from(AuthFailure::Denied(e.message)),
        }
    }
}

/// Authentication failures as AWS answers them (coral error names; botocore and the SDKs keep
/// the part after `#`). AWS JSON services answer signature problems with 400; a missing
/// Authorization header is 403, a missing grant `AccessDeniedException` 403.
impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing => ApiError::new(
                "com.amazon.coral.service#MissingAuthenticationTokenException",
                403,
                "Missing Authentication Token",
            ),
            AuthFailure::Malformed(m) => ApiError::new(
                "com.amazon.coral.service#IncompleteSignatureException",
                400,
                m,
            ),
            AuthFailure::UnknownCredential => ApiError::new(
                "com.amazon.coral.service#UnrecognizedClientException",
                400,
                "The security token included in the request is invalid.",
            ),
            AuthFailure::BadCredential(m) | AuthFailure::Expired(m) => {
                ApiError::new("com.amazon.coral.service#InvalidSignatureException", 400, m)
            }
            AuthFailure::Denied(m) => ApiError::new("AccessDeniedException", 403, m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, body).into_response();
        set_headers(&mut response);
        response
    }
}

/// A successful answer with a JSON body.
pub fn ok_body(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    set_headers(&mut response);
    response
}

fn set_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
}

/// Decodes a request body; an empty body is `{}`. Malformed JSON and members of the wrong type
/// are a `ValidationException` naming the member (AWS style: `records.1.member.version`).
pub fn decode<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        body
    };
    match serde_json::from_slice::<T>(body) {
        Ok(v) => Ok(v),
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let path = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => aws_path(e.path()),
                Ok(_) => String::new(),
            };
            Err(decode_error(&first, &path))
        }
    }
}

fn decode_error(e: &serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::validation(format!("The request body is not valid JSON: {e}"))
        }
        Category::Data => {
            let text = e.to_string();
            let detail = text.split(" at line ").next().unwrap_or(&text);
            if path.is_empty() || path == "." {
                ApiError::validation(format!("1 validation error detected: {detail}"))
            } else {
                ApiError::validation(format!(
                    "1 validation error detected: Value at '{path}' failed to satisfy constraint: {detail}"
                ))
            }
        }
    }
}

/// `Records[0].Dimensions[2].Name` as AWS writes it: `records.1.member.dimensions.3.member.name`.
fn aws_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() {
            out.push('.');
        }
        match segment {
            serde_path_to_error::Segment::Map { key } => out.push_str(&lower_camel(key)),
            serde_path_to_error::Segment::Seq { index } => {
                out.push_str(&format!("{}.member", index + 1));
            }
            serde_path_to_error::Segment::Enum { variant } => out.push_str(variant),
            serde_path_to_error::Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// `DatabaseName` -> `databaseName`.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// AWS's validation message for one constraint: `value` is shown quoted (or `null`).
pub fn constraint_error(value: Option<&str>, path: &str, constraint: &str) -> ApiError {
    let value = match value {
        None => "null".to_string(),
        Some(v) if v.len() > 256 => format!("'{}...'", truncate(v, 256)),
        Some(v) => format!("'{v}'"),
    };
    ApiError::validation(format!(
        "1 validation error detected: Value {value} at '{path}' failed to satisfy constraint: {constraint}"
    ))
}

pub fn required(path: &str) -> ApiError {
    constraint_error(None, path, "Member must not be null")
}

/// Checks a string's length in characters against the model's `min..=max`.
pub fn check_length(
    value: &str,
    path: &str,
    min: usize,
    max: Option<usize>,
) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len < min {
        return Err(constraint_error(
            Some(value),
            path,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if let Some(max) = max {
        if len > max {
            return Err(constraint_error(
                Some(value),
                path,
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
    }
    Ok(())
}

/// Checks a string against an enum of the model.
pub fn check_enum<'v>(value: &'v str, path: &str, allowed: &[&str]) -> Result<&'v str, ApiError> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(constraint_error(
            Some(value),
            path,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

/// Checks an integer against the model's range.
pub fn check_range(value: i64, path: &str, min: i64, max: i64) -> Result<(), ApiError> {
    let text = value.to_string();
    if value < min {
        return Err(constraint_error(
            Some(&text),
            path,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(constraint_error(
            Some(&text),
            path,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A JSON string borrowed from the request body when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JStr<'a>(pub Cow<'a, str>);

impl JStr<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for JStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Epoch seconds with a fraction, as the JSON protocol writes `timestamp` shapes.
pub fn epoch_seconds(nanos: i64) -> Value {
    let millis = nanos.div_euclid(1_000_000);
    serde_json::Number::from_f64(millis as f64 / 1000.0)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Req<'a> {
        #[serde(borrow)]
        records: Option<Vec<Rec<'a>>>,
    }
    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Rec<'a> {
        #[serde(borrow)]
        measure_name: Option<JStr<'a>>,
        version: Option<i64>,
    }

    #[test]
    fn type_errors_name_the_member_aws_style() {
        let err = decode::<Req>(br#"{"Records":[{"Version":1},{"Version":"x"}]}"#).unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(
            err.message.contains("'records.2.member.version'"),
            "{}",
            err.message
        );
        let err = decode::<Req>(b"{not json").unwrap_err();
        assert!(err
            .message
            .starts_with("The request body is not valid JSON"));
        let ok: Req = decode(b"").unwrap();
        assert!(ok.records.is_none());
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let body = br#"{"Records":[{"MeasureName":"cpu"},{"MeasureName":"a\"b"}]}"#;
        let req: Req = decode(body).unwrap();
        let recs = req.records.unwrap();
        assert!(matches!(
            recs[0].measure_name.as_ref().unwrap().0,
            Cow::Borrowed("cpu")
        ));
        assert_eq!(recs[1].measure_name.as_ref().unwrap().as_str(), "a\"b");
    }

    #[test]
    fn error_kinds_map_to_timestream_exceptions() {
        let cases = [
            (Error::invalid("x"), "ValidationException", 400),
            (Error::not_found("x"), "ResourceNotFoundException", 404),
            (Error::conflict("x"), "ConflictException", 409),
            (Error::exhausted("x"), "ThrottlingException", 429),
            (Error::unavailable("x"), "InternalServerException", 500),
            (Error::internal("x"), "InternalServerException", 500),
        ];
        for (e, code, status) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.code, api.status.as_u16()), (code, status));
        }
        let rejected = ApiError::rejected_records(vec![serde_json::json!({"RecordIndex": 1})]);
        let body: Value = serde_json::from_slice(&rejected.body()).unwrap();
        assert_eq!(body["__type"], "RejectedRecordsException");
        assert_eq!(body["RejectedRecords"][0]["RecordIndex"], 1);
        assert_eq!(rejected.status.as_u16(), 419);
    }

    #[test]
    fn timestamps_are_epoch_seconds_with_fraction() {
        assert_eq!(
            epoch_seconds(1_601_940_687_325_000_000).to_string(),
            "1601940687.325"
        );
    }
}
