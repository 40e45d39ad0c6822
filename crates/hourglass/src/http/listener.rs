//! The plain-HTTP listener: a TCP listener that turns Nagle's algorithm off on every connection.
//!
//! Responses leave in several writes (headers, then streamed chunks); with Nagle on, a small last
//! write waits for the client's delayed ACK, adding about 40 ms to a short query.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub struct NoDelayListener(pub TcpListener);

impl axum::serve::Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = tcp.set_nodelay(true);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
