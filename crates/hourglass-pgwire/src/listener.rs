//! The PostgreSQL accept loop and connection lifecycle: admission, the startup timeout, and
//! shutdown with a deadline.
//!
//! * Every accepted connection first asks the shared [`Admission`] (a global limit over HTTP and
//!   PostgreSQL together, and a limit per peer address). A refused one gets PostgreSQL's
//!   `FATAL 53300 too_many_connections` ErrorResponse, written without waiting, and is closed at
//!   once: no task is spawned for it.
//! * Startup (SSL negotiation, the TLS handshake, the startup message and authentication) must
//!   finish within [`PgSettings::startup_timeout`] (PostgreSQL's `authentication_timeout`);
//!   otherwise the connection is closed.
//! * [`PgServer::shutdown`] stops accepting, closes idle connections (FATAL `57P01`, as a
//!   PostgreSQL fast shutdown does), lets running statements finish until
//!   [`PgSettings::shutdown_timeout`], then closes whatever remains.
//!
//! The per-connection loop is pgwire's `process_socket` with these additions and the protocol
//! guards of [`crate::connection`]; messages are processed by pgwire's own `process_message`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use hourglass_auth::Security;
use hourglass_core::connections::{Admission, Protocol, Refusal};
use hourglass_query::QueryEngine;
use parking_lot::Mutex;
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::process_message;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::{connection, Handlers, Service};

/// How long the last message to a client being closed (a FATAL ErrorResponse) may take.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after a failed accept (out of descriptors, say) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connection handling settings of the PostgreSQL listener.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Limits shared with the HTTP listener.
    pub admission: Admission,
    /// Time to finish SSL negotiation, startup and authentication.
    pub startup_timeout: Duration,
    /// How long [`PgServer::shutdown`] lets running statements finish.
    pub shutdown_timeout: Duration,
    /// Where `UNLOAD` may write (`--unload-buckets`).
    pub unload: Arc<hourglass_unload::Destinations>,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            admission: Admission::default(),
            // PostgreSQL's authentication_timeout.
            startup_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            unload: Arc::default(),
        }
    }
}

/// A running PostgreSQL listener.
pub struct PgServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PgServer {
    /// Binds `addr` and starts accepting connections (trust, no TLS, no limits).
    pub async fn start(addr: SocketAddr, query: QueryEngine) -> std::io::Result<PgServer> {
        Self::start_with(
            addr,
            query,
            Security::disabled(),
            None,
            PgSettings::default(),
        )
        .await
    }

    /// Binds `addr` and starts accepting connections, authenticating per `security`, offering
    /// TLS with `tls`, and admitting and timing connections per `settings`.
    pub async fn start_with(
        addr: SocketAddr,
        query: QueryEngine,
        security: Security,
        tls: Option<Arc<pgwire::tokio::tokio_rustls::rustls::ServerConfig>>,
        settings: PgSettings,
    ) -> std::io::Result<PgServer> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let acceptor = tls.map(pgwire::tokio::TlsAcceptor::from);
        let handlers = Arc::new(Handlers {
            service: Arc::new(Service {
                query,
                cancels: Arc::new(Mutex::new(std::collections::HashMap::new())),
                unload: settings.unload.clone(),
                security: security.clone(),
            }),
            security,
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, handlers, settings, stop_rx));
        Ok(PgServer { addr, stop, task })
    }

    /// Stops accepting, closes idle connections, lets running statements finish within the
    /// shutdown timeout, then closes every connection left.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops at once (crash simulation).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Arc<Handlers>,
    settings: PgSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    let connection_stop = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let permit = match settings.admission.try_admit(peer.ip(), Protocol::Postgres) {
                        Ok(permit) => permit,
                        Err(refusal) => {
                            refuse(&socket, refusal);
                            if warn_now(&mut last_warning) {
                                tracing::warn!(%peer, limit = refusal.name(),
                                    "refusing PostgreSQL connections: connection limit reached");
                            }
                            continue;
                        }
                    };
                    let _ = socket.set_nodelay(true);
                    let handlers = handlers.clone();
                    let acceptor = acceptor.clone();
                    let stop = connection_stop.clone();
                    let startup_timeout = settings.startup_timeout;
                    connections.spawn(async move {
                        let _permit = permit;
                        if let Err(e) =
                            serve_connection(socket, acceptor, handlers, startup_timeout, stop).await
                        {
                            tracing::debug!(%peer, error = %e, "postgres connection ended");
                        }
                    });
                }
                Err(e) => {
                    if warn_now(&mut last_warning) {
                        tracing::warn!(error = %e, "postgres accept failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Connections saw the stop signal too: idle ones are closing, busy ones finish their
    // statement first.
    let deadline = Instant::now()
        .checked_add(settings.shutdown_timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400));
    loop {
        tokio::select! {
            joined = connections.join_next() => if joined.is_none() { break },
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(
                    connections = connections.len(),
                    "closing PostgreSQL connections still busy after the shutdown timeout"
                );
                connections.abort_all();
                break;
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Binds a listening socket (SO_REUSEADDR, as `TcpListener::bind`) whose accept queue holds a
/// burst of connections (capped by `net.core.somaxconn`) instead of dropping their SYNs.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// True at most every 10 s (keeps a flood from flooding the log too).
fn warn_now(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    match last {
        Some(t) if now.duration_since(*t) < Duration::from_secs(10) => false,
        _ => {
            *last = Some(now);
            true
        }
    }
}

/// A FATAL ErrorResponse, encoded by hand (for writing without a codec or a task).
fn encode_fatal(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + message.len());
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(b'E');
    out.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

/// Tells a refused client why (as PostgreSQL does), without waiting: the socket is closed when
/// the caller drops it.
fn refuse(socket: &TcpStream, refusal: Refusal) {
    let message = match refusal {
        Refusal::TooManyConnections => "sorry, too many clients already",
        Refusal::TooManyFromPeer => "sorry, too many connections from this address",
    };
    // 53300: too_many_connections.
    let _ = socket.try_write(&encode_fatal("53300", message));
}

fn fatal(code: &str, message: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(
        ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message.to_owned()).into(),
    )
}

/// One connection: pgwire's `process_socket` loop with a configurable startup timeout, a
/// shutdown that closes the connection between statements, and the protocol guards of
/// [`crate::connection`] (checked framing, FATAL errors that end the connection).
async fn serve_connection(
    socket: TcpStream,
    acceptor: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Arc<Handlers>,
    startup_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let startup_deadline = tokio::time::sleep(startup_timeout);
    tokio::pin!(startup_deadline);
    let security = &handlers.security;
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => {
            tracing::debug!("postgres connection closed: no startup within the timeout");
            return Ok(());
        }
        _ = stopped(&mut stop) => return Ok(()),
        negotiated = connection::negotiate(socket, acceptor, security) => negotiated?,
    };
    // Over already: direct TLS without a certificate, or a refused negotiation.
    let Some(mut socket) = negotiated else {
        return Ok(());
    };

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();

    loop {
        let in_startup = connection::before_login(socket.state());
        let message = tokio::select! {
            _ = &mut startup_deadline, if in_startup => {
                tracing::debug!("postgres connection closed: startup not finished within the timeout");
                // PostgreSQL: "canceling authentication due to timeout", 57014 query_canceled.
                let _ = tokio::time::timeout(
                    FAREWELL_TIMEOUT,
                    socket.send(fatal("57014", "canceling authentication due to timeout")),
                )
                .await;
                break;
            }
            _ = stopped(&mut stop) => {
                if !in_startup {
                    let _ = tokio::time::timeout(
                        FAREWELL_TIMEOUT,
                        socket.send(fatal(
                            "57P01",
                            "terminating connection due to administrator command",
                        )),
                    )
                    .await;
                }
                break;
            }
            message = connection::next_message(&mut socket, security) => message,
        };
        let Some(message) = message else {
            break;
        };
        // A Terminate ('X') means the client is disconnecting: close (asyncpg waits for it).
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(is_extended_query) => is_extended_query,
            _ => message.is_extended_query(),
        };
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
            error_handler.on_error(&socket, &mut e);
            if !connection::answer_error(&mut socket, e, is_extended_query).await? {
                break;
            }
        }
    }
    Ok(())
}

/// Resolves once `stop` turns true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_error_response_encoding() {
        let bytes = encode_fatal("53300", "sorry, too many clients already");
        assert_eq!(bytes[0], b'E');
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        assert_eq!(len + 1, bytes.len());
        let body = &bytes[5..];
        assert!(body.ends_with(b"\0\0"));
        let fields: Vec<&[u8]> = body.split(|b| *b == 0).filter(|f| !f.is_empty()).collect();
        assert_eq!(
            fields,
            vec![
                &b"SFATAL"[..],
                b"VFATAL",
                b"C53300",
                b"Msorry, too many clients already"
            ]
        );
    }
}
