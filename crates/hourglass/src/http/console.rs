//! The web console (`hourglass-console`'s embedded files) over HTTP: `GET /` and `GET /console/`
//! answer its page, `GET /console/{*path}` its scripts and styles. No credentials are needed for
//! these files (the page shows a login form with `--require-auth`; its API calls carry the
//! token), so [`router`] is merged outside the authentication middleware.
//!
//! Every answer carries the console's security headers (a Content-Security-Policy that allows
//! scripts from this server only, no inline script; `nosniff`; no framing), its caching rule
//! (content-hashed files immutable, the page `no-cache`), an ETag (`If-None-Match` gives 304) and
//! the gzip copy when the client accepts gzip.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hourglass_console::Asset;

/// The Content-Security-Policy of the console's files: scripts, styles and API calls from this
/// server only (styles may be inline: the editor and the charts set them from script).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The console's routes (merge outside the authentication middleware: these files are public).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/console/", get(index))
        .route("/console/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(hourglass_console::asset(hourglass_console::INDEX), &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(hourglass_console::asset(&path), &headers)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn serve(asset: Option<&'static Asset>, headers: &HeaderMap) -> Response {
    let mut response = match asset {
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file in the console\n",
        )
            .into_response(),
        Some(asset) => {
            let fresh = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
            let mut response = if fresh {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                match asset.gzip.filter(|_| accepts_gzip(headers)) {
                    Some(gz) => (
                        [
                            (header::CONTENT_TYPE, asset.content_type),
                            (header::CONTENT_ENCODING, "gzip"),
                        ],
                        gz,
                    )
                        .into_response(),
                    None => {
                        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
                    }
                }
            };
            let h = response.headers_mut();
            h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(asset.cache_control()),
            );
            if asset.gzip.is_some() {
                h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            }
            response
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )));
        assert!(accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "br;q=1.0, GZIP;q=0.5"
        )));
        assert!(!accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "gzip;q=0, br"
        )));
        assert!(!accepts_gzip(&with(header::ACCEPT_ENCODING, "identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_page_has_security_headers_and_a_matching_etag_gives_304() {
        let index = hourglass_console::asset("").expect("index embedded");
        let r = serve(Some(index), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let r = serve(Some(index), &with(header::IF_NONE_MATCH, index.etag));
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        let r = serve(None, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
