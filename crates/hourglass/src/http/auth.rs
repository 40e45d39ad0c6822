//! Authentication of the HTTP interface (with `--require-auth`), as one middleware over every
//! route. It records the peer address, then by route:
//!
//! | routes | needs |
//! |---|---|
//! | `/health`, `/ping` | nothing |
//! | `POST /` (Timestream API) | SigV4, checked by `hourglass-timestream` itself |
//! | line protocol writes | a token; the handler checks `write` on the database |
//! | `/api/v3/query_sql`, `/query` (InfluxQL) | a token; the query sees only databases with `read` |
//! | `/api/v1/prom/write`, `/api/v1/prom/read` | a token; the handler checks `write` / `read` on the database |
//! | `/metrics` | a token |
//! | `/admin/*` | a token of an operator (`admin` on `*`) |
//!
//! A token is `Authorization: Token <token>` or `Bearer <token>`, or InfluxDB 1.x's user name and
//! token as `u`/`p` query parameters or HTTP Basic. Failures are 401 (403 for a missing grant) in
//! the endpoint's error shape, and are recorded in the audit log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hourglass_auth::{AuthFailure, Principal, Security};

use super::{AppState, ErrorStyle, HttpError};

/// The peer address of a connection, inserted into every request as `ConnectInfo<PeerAddr>` by
/// the server loop (`super::serve`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Who a request runs as, and from where (a request extension every handler can read).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub peer: String,
}

impl Caller {
    /// Checks a grant; a denial is recorded and answered 403.
    pub fn require(
        &self,
        security: &Security,
        allowed: bool,
        action: &str,
        target: &str,
        style: ErrorStyle,
    ) -> Result<(), HttpError> {
        if allowed {
            return Ok(());
        }
        let failure = AuthFailure::Denied(format!(
            "user '{}' may not {action} database '{target}'",
            self.principal.name
        ));
        security.audit(
            &self.principal.name,
            &self.peer,
            "http",
            action,
            target,
            failure.outcome(),
            &failure.message(),
        );
        Err(HttpError::new(style, failure.error()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Open,
    Timestream,
    Token,
    Operator,
}

fn classify(path: &str) -> (Route, ErrorStyle) {
    match path {
        "/health" | "/ping" => (Route::Open, ErrorStyle::V3),
        "/" => (Route::Timestream, ErrorStyle::V3),
        "/write" | "/query" => (Route::Token, ErrorStyle::V1),
        "/api/v2/write" => (Route::Token, ErrorStyle::V2),
        p if p.starts_with("/admin/") => (Route::Operator, ErrorStyle::V3),
        _ => (Route::Token, ErrorStyle::V3),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Names a scheme that is not accepted, only when it is a scheme some client really sends
/// (AWS4-HMAC-SHA256 on the wrong route, Digest, ...); anything else may be a credential sent
/// without a scheme and is not repeated.
fn scheme_name(scheme: &str) -> String {
    const KNOWN: [&str; 7] = [
        "AWS4-HMAC-SHA256",
        "Digest",
        "Negotiate",
        "NTLM",
        "HOBA",
        "Mutual",
        "DPoP",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(scheme))
        .map(|k| format!(" '{k}'"))
        .unwrap_or_default()
}

/// The claimed identity and the outcome of checking it.
fn authenticate(
    security: &Security,
    req: &Request,
) -> (String, Result<Arc<Principal>, AuthFailure>) {
    let Some(store) = &security.store else {
        return ("anonymous".into(), Ok(Arc::new(Principal::unrestricted())));
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let user_token = |user: String, token: String| match store.by_user_token(&user, &token) {
        Ok(p) => (user, Ok(p)),
        // An unknown name is not recorded: it may be a token typed into the user field.
        Err(true) => ("-".into(), Err(AuthFailure::UnknownCredential)),
        Err(false) => (
            user,
            Err(AuthFailure::BadCredential("authorization failed".into())),
        ),
    };
    if let Some(value) = authorization {
        // Any whitespace separates the scheme from the credential (a tab included); nothing of
        // the header is ever echoed: without a recognised scheme the whole value may be a token.
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        let rest = rest.trim();
        return match scheme.to_ascii_lowercase().as_str() {
            "token" | "bearer" => match store.by_token(rest) {
                Some(p) => (p.name.clone(), Ok(p)),
                None => ("-".into(), Err(AuthFailure::UnknownCredential)),
            },
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded.as_deref().and_then(|d| d.split_once(':')) {
                    Some((u, p)) => user_token(u.to_string(), p.to_string()),
                    None => (
                        "-".into(),
                        Err(AuthFailure::Malformed("malformed Basic credentials".into())),
                    ),
                }
            }
            _ => (
                "-".into(),
                Err(AuthFailure::Malformed(format!(
                    "unsupported authorization scheme{}: use Token, Bearer or Basic",
                    scheme_name(scheme)
                ))),
            ),
        };
    }
    let query = req.uri().query().unwrap_or("");
    match (query_param(query, "u"), query_param(query, "p")) {
        (Some(u), Some(p)) => user_token(u, p),
        (u, _) => (u.unwrap_or_else(|| "-".into()), Err(AuthFailure::Missing)),
    }
}

/// The middleware: peer address, authentication, operator check.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0 .0.to_string())
        .unwrap_or_else(|| "-".into());
    req.extensions_mut()
        .insert(hourglass_timestream::Peer(peer.clone()));
    let (route, style) = classify(req.uri().path());
    let security = &state.security;
    if !security.required() || matches!(route, Route::Open | Route::Timestream) {
        req.extensions_mut().insert(Caller {
            principal: Arc::new(Principal::unrestricted()),
            peer,
        });
        return next.run(req).await;
    }
    let action = format!("{} {}", req.method(), req.uri().path());
    let (who, outcome) = authenticate(security, &req);
    let principal = match outcome {
        Ok(p) => p,
        Err(failure) => {
            security.audit(
                &who,
                &peer,
                "http",
                &action,
                "",
                failure.outcome(),
                &failure.message(),
            );
            let message = match failure {
                AuthFailure::Missing => {
                    "authentication required: send Authorization: Token <token>".to_string()
                }
                AuthFailure::Malformed(m) => m,
                _ => "authorization failed".to_string(),
            };
            let mut response =
                HttpError::new(style, hourglass_core::Error::unauthenticated(message))
                    .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Token"),
            );
            return response;
        }
    };
    let caller = Caller { principal, peer };
    if route == Route::Operator {
        if let Err(e) = caller.require(
            security,
            caller.principal.is_operator(),
            &action,
            "*",
            style,
        ) {
            return e.into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}
