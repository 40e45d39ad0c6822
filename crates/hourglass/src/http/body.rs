//! Request bodies: gzip decoding with a bound on the decompressed size (no gzip bombs).

use std::io::Read;

use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;

use super::{ErrorStyle, HttpError};

/// The body, decompressed when `Content-Encoding: gzip`; at most `limit` bytes after decoding.
pub fn decode_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    style: ErrorStyle,
) -> Result<Bytes, HttpError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let decoder = flate2::read::MultiGzDecoder::new(body.as_ref());
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    HttpError::with_status(
                        style,
                        StatusCode::BAD_REQUEST,
                        format!("request body is not valid gzip: {e}"),
                    )
                })?;
            if out.len() > limit {
                return Err(HttpError::with_status(
                    style,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body decompresses to more than {limit} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err(HttpError::with_status(
            style,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding '{other}': send identity or gzip"),
        )),
    }
}
