//! The HTTP listener: binding with a deep accept queue, admission against the shared connection
//! limits, and TCP_NODELAY on every admitted connection.
//!
//! Responses leave in several writes (headers, then streamed chunks); with Nagle on, a small last
//! write waits for the client's delayed ACK, adding about 40 ms to a short query.
//!
//! A connection over a limit is answered `503 Service Unavailable` with `Connection: close`
//! (plain HTTP only: a TLS client would not understand it), written without waiting, and closed
//! at once; no task is spawned for it.

use std::net::SocketAddr;
use std::time::Duration;

use hourglass_core::connections::{Admission, Permit, Protocol, Refusal};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// What a refused plain-HTTP client reads before the connection closes.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Connection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 1\r\n\
Content-Length: 37\r\n\
\r\n\
too many connections: try again later";

/// Pause after a failed accept (out of descriptors, say) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connections the kernel completes before they are accepted (capped by `net.core.somaxconn`):
/// a burst of connections waits here instead of having its SYNs dropped (a 1 s retry each).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket (SO_REUSEADDR, as `TcpListener::bind`) with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections and admits them.
pub struct Listener {
    tcp: TcpListener,
    admission: Admission,
    /// Whether the port serves https (a refused client then gets no 503).
    tls: bool,
    last_warning: Option<Instant>,
}

impl Listener {
    pub fn new(tcp: TcpListener, admission: Admission, tls: bool) -> Self {
        Listener {
            tcp,
            admission,
            tls,
            last_warning: None,
        }
    }

    /// The next admitted connection (refused ones are closed here).
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr, Permit) {
        loop {
            match self.tcp.accept().await {
                Ok((tcp, peer)) => match self.admission.try_admit(peer.ip(), Protocol::Http) {
                    Ok(permit) => {
                        let _ = tcp.set_nodelay(true);
                        return (tcp, peer, permit);
                    }
                    Err(refusal) => self.refuse(tcp, peer, refusal),
                },
                Err(e) => {
                    if self.warn_now() {
                        tracing::warn!(error = %e, "HTTP accept failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    fn refuse(&mut self, tcp: TcpStream, peer: SocketAddr, refusal: Refusal) {
        if !self.tls {
            // Into the socket's send buffer (empty: the connection is new), or not at all.
            let _ = tcp.try_write(REFUSED);
        }
        drop(tcp);
        if self.warn_now() {
            tracing::warn!(%peer, limit = refusal.name(),
                "refusing HTTP connections: connection limit reached");
        }
    }

    /// True at most every 10 s (keeps a flood from flooding the log too).
    fn warn_now(&mut self) -> bool {
        let now = Instant::now();
        match self.last_warning {
            Some(t) if now.duration_since(t) < Duration::from_secs(10) => false,
            _ => {
                self.last_warning = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusal_content_length_matches() {
        let text = std::str::from_utf8(super::REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
