//! The parts of a PostgreSQL connection's loop that guard the protocol (the loop itself, with
//! its timeouts and shutdown, is in the listener):
//!
//! * [`negotiate`]: pgwire's SSL negotiation and TLS handshake, noting the certificate the
//!   handshake used (for SCRAM-SHA-256-PLUS, [`ServerEndPoint`]) and refusing plaintext that
//!   arrived after the SSLRequest, before the handshake (as PostgreSQL does since
//!   CVE-2021-23214: it would otherwise be read as if it had come over TLS).
//! * [`next_message`]: each message is checked ([`crate::frame`]) before pgwire decodes it, so
//!   a malformed one is a FATAL `08P01` (audited before login), never a panic.
//! * [`answer_error`]: pgwire's `process_error`, except that every error before login is
//!   FATAL and that after a FATAL error the connection ends (pgwire's would go on reading,
//!   with the connection marked ready for queries).

use std::sync::Arc;

use futures::SinkExt;
use hourglass_auth::{scram, Security};
use parking_lot::Mutex;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::{DecodeContext, PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, MaybeTls, PgWireMessageServerCodec};
use pgwire::tokio::tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use pgwire::tokio::tokio_rustls::rustls::sign::CertifiedKey;
use pgwire::tokio::TlsAcceptor;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::auth::{audit_refusal, ServerEndPoint};
use crate::errors::PROTOCOL_VIOLATION;
use crate::frame::{self, Frame, Phase, Violation};

/// A negotiated connection (`S`: the extended protocol's statement type).
pub(crate) type PgSocket<S> = Framed<MaybeTls, PgWireMessageServerCodec<S>>;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// How long a FATAL answer may take to send.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the connection has not logged in yet.
pub(crate) fn before_login(state: PgWireConnectionState) -> bool {
    matches!(
        state,
        PgWireConnectionState::AwaitingSslRequest
            | PgWireConnectionState::AwaitingStartup
            | PgWireConnectionState::AuthenticationInProgress
    )
}

/// pgwire's SSL negotiation and TLS handshake; `None` when the connection is over (direct TLS
/// without a certificate, or plaintext injected after the SSLRequest, refused).
pub(crate) async fn negotiate<S>(
    socket: TcpStream,
    acceptor: Option<TlsAcceptor>,
    security: &Security,
) -> std::io::Result<Option<PgSocket<S>>> {
    let seen = Arc::new(Mutex::new(None));
    let acceptor = acceptor.map(|a| recording(&a, seen.clone()));
    let Some(mut socket) = negotiate_tls(socket, acceptor).await? else {
        return Ok(None);
    };
    if socket.is_secure() {
        if !socket.read_buffer().is_empty() {
            refuse(
                &mut socket,
                security,
                Violation("received unencrypted data after SSL request".into()),
            )
            .await;
            return Ok(None);
        }
        if let Some(end_point) = seen.lock().take() {
            socket
                .session_extensions()
                .insert(ServerEndPoint(end_point));
        }
    }
    Ok(Some(socket))
}

/// An acceptor like `acceptor` whose certificate choice is noted in `seen` (as channel binding
/// data): rustls does not tell a server connection which certificate it presented.
fn recording(acceptor: &TlsAcceptor, seen: Arc<Mutex<Option<Vec<u8>>>>) -> TlsAcceptor {
    let mut config = (**acceptor.config()).clone();
    config.cert_resolver = Arc::new(Recording {
        inner: config.cert_resolver.clone(),
        seen,
    });
    TlsAcceptor::from(Arc::new(config))
}

#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ResolvesServerCert>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ResolvesServerCert for Recording {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.inner.resolve(hello)?;
        if let Ok(cert) = key.end_entity_cert() {
            *self.seen.lock() = scram::tls_server_end_point(cert.as_ref());
        }
        Some(key)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// The next message, checked before pgwire decodes it (from a buffer holding that message
/// alone). `None` when the connection is over: the client closed it, or sent a malformed
/// message, which was answered FATAL `08P01` (and audited before login). Cancel-safe: bytes
/// read are kept in the connection's read buffer.
pub(crate) async fn next_message<S>(
    socket: &mut PgSocket<S>,
    security: &Security,
) -> Option<PgWireFrontendMessage> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let phase = match socket.state() {
            PgWireConnectionState::AwaitingSslRequest | PgWireConnectionState::AwaitingStartup => {
                Phase::Startup
            }
            PgWireConnectionState::AuthenticationInProgress => Phase::Authenticating,
            _ => Phase::Session,
        };
        match frame::check(socket.read_buffer(), phase) {
            Ok(Frame::Complete(len)) => {
                let mut message = socket.read_buffer_mut().split_to(len);
                let mut context = DecodeContext::new(socket.protocol_version());
                context.awaiting_frontend_ssl = false;
                context.awaiting_frontend_startup = phase == Phase::Startup;
                let violation = match PgWireFrontendMessage::decode(&mut message, &context) {
                    Ok(Some(decoded)) => return Some(decoded),
                    Ok(None) => Violation("incomplete message from client".into()),
                    Err(e) => Violation(ErrorInfo::from(e).message),
                };
                refuse(socket, security, violation).await;
                return None;
            }
            Ok(Frame::Incomplete) => match socket.get_mut().read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    if !socket.read_buffer().is_empty() && before_login(socket.state()) {
                        // PostgreSQL logs "incomplete message from client"; nobody to answer.
                        audit_refusal(security, socket, "incomplete message from client");
                    }
                    return None;
                }
                Ok(n) => socket.read_buffer_mut().extend_from_slice(&chunk[..n]),
            },
            Err(violation) => {
                refuse(socket, security, violation).await;
                return None;
            }
        }
    }
}

/// Answers a protocol violation with FATAL `08P01` and closes; audited before login.
async fn refuse<S>(socket: &mut PgSocket<S>, security: &Security, Violation(message): Violation) {
    if before_login(socket.state()) {
        audit_refusal(security, socket, &message);
    }
    tracing::debug!(peer = %socket.socket_addr(), %message, "postgres protocol violation");
    let info = ErrorInfo::new("FATAL".to_owned(), PROTOCOL_VIOLATION.to_owned(), message);
    // A client that does not read cannot hold the connection open.
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, async {
        let _ = socket
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await;
        let _ = socket.close().await;
    })
    .await;
}

/// Answers an error of pgwire's `process_message`. `Ok(false)` when the connection must end
/// (a FATAL error, which every error before login is).
pub(crate) async fn answer_error<S>(
    socket: &mut PgSocket<S>,
    error: PgWireError,
    is_extended_query: bool,
) -> std::io::Result<bool> {
    if let PgWireError::IoError(e) = error {
        return Err(e);
    }
    let mut info = ErrorInfo::from(error);
    if before_login(socket.state()) {
        info.severity = "FATAL".to_owned();
    }
    if info.is_fatal() {
        let farewell = async {
            socket
                .send(PgWireBackendMessage::ErrorResponse(info.into()))
                .await?;
            socket.close().await
        };
        // Ends the connection either way; a client that does not read cannot hold it open.
        if let Ok(sent) = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await {
            sent?;
        }
        return Ok(false);
    }
    socket
        .feed(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    let status = socket.transaction_status().to_error_state();
    socket.set_transaction_status(status);
    if is_extended_query {
        // Messages up to the next Sync are discarded (pgwire's AwaitingSync state).
        socket.set_state(PgWireConnectionState::AwaitingSync);
    } else {
        socket.set_state(PgWireConnectionState::ReadyForQuery);
        socket
            .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
    }
    socket.flush().await?;
    Ok(true)
}
