//! Mapping the project's error kinds to HTTP, once. Each endpoint family shapes the body as its
//! clients expect ([`ErrorStyle`]): InfluxDB v1 `{"error": ...}`, v2 `{"code": ..., "message": ...}`,
//! InfluxDB 3 `{"error": ..., "data": ...}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hourglass_core::{Error, ErrorKind};

/// The status code of an error kind.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::ResourceExhausted | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Corruption | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
    }
}

/// How an endpoint family shapes error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    V1,
    V2,
    V3,
}

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub style: ErrorStyle,
    pub message: String,
    /// InfluxDB 3's per-line details.
    pub data: Option<serde_json::Value>,
}

impl HttpError {
    pub fn new(style: ErrorStyle, error: Error) -> Self {
        HttpError {
            status: status_for(error.kind),
            style,
            message: error.message,
            data: None,
        }
    }

    pub fn with_status(style: ErrorStyle, status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            style,
            message: message.into(),
            data: None,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = match self.style {
            ErrorStyle::V1 => serde_json::json!({ "error": self.message }),
            ErrorStyle::V2 => serde_json::json!({
                "code": v2_code(self.status),
                "message": self.message,
            }),
            ErrorStyle::V3 => match self.data {
                Some(data) => serde_json::json!({ "error": self.message, "data": data }),
                None => serde_json::json!({ "error": self.message }),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn v2_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::NOT_FOUND => "not found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "request too large",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::TOO_MANY_REQUESTS => "too many requests",
        _ => "internal error",
    }
}
