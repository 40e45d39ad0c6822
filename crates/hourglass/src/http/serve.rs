//! The HTTP server loop (instead of `axum::serve`): admission, connection timeouts, TLS
//! handshakes with a deadline, and an ordered shutdown with a deadline.
//!
//! Each admitted connection ([`super::listener`]) gets one task that runs the TLS handshake (if
//! any, bounded by the header read timeout), then serves HTTP/1.1 with hyper's connection
//! builder and the axum router. The task closes the connection per [`super::activity`]'s rules
//! (header read, idle and body read timeouts; requests in flight are never cut). Each request
//! carries `ConnectInfo<PeerAddr>` for the authentication middleware.
//!
//! Shutdown ([`HttpServer::shutdown`]'s signal): stop accepting; close idle connections and
//! connections in the middle of a request head; let requests in flight finish (hyper's graceful
//! shutdown: keep-alive off, the connection closes after its response); after the shutdown
//! timeout, close whatever remains.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use hourglass_core::connections::Permit;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

pub use super::activity::Timeouts;
use super::activity::{Activity, TimedBody, TrackedBody, TrackedIo};
use super::auth::PeerAddr;
use super::listener::Listener;

/// Timeouts of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub timeouts: Timeouts,
    /// How long shutdown lets requests in flight finish.
    pub shutdown_timeout: Duration,
}

/// Serves `router` on `listener` until `stop` turns true (or its sender is dropped), then shuts
/// down within the shutdown timeout.
pub async fn serve(
    mut listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    settings: HttpSettings,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let service = TowerToHyperService::new(router);
    let mut connections = JoinSet::new();
    let connection_stop = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            (tcp, peer, permit) = listener.accept() => {
                connections.spawn(connection(
                    tcp,
                    peer,
                    permit,
                    acceptor.clone(),
                    service.clone(),
                    settings.timeouts,
                    connection_stop.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let deadline = super::activity::later(Instant::now(), settings.shutdown_timeout);
    loop {
        tokio::select! {
            joined = connections.join_next() => if joined.is_none() { break },
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(
                    connections = connections.len(),
                    "closing HTTP connections still busy after the shutdown timeout"
                );
                connections.abort_all();
                break;
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

/// One connection, from the TLS handshake to the close.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    acceptor: Option<TlsAcceptor>,
    service: TowerToHyperService<Router>,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let _permit = permit;
    let activity = Activity::new();
    let service = ConnService {
        inner: service,
        peer,
        activity: activity.clone(),
        body_timeout: timeouts.body_read,
    };
    match acceptor {
        None => {
            drive(
                TrackedIo::new(tcp, activity.clone()),
                service,
                activity,
                timeouts,
                stop,
            )
            .await
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(timeouts.header_read, acceptor.accept(tcp));
            let tls = tokio::select! {
                _ = stopped(&mut stop) => return,
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            drive(
                TrackedIo::new(tls, activity.clone()),
                service,
                activity,
                timeouts,
                stop,
            )
            .await
        }
    }
}

/// Serves HTTP/1.1 on `io` until the client closes, a timeout closes, or shutdown.
async fn drive<I>(
    io: TrackedIo<I>,
    service: ConnService,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = service.peer;
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own header read timeout (activity.rs): hyper's also runs while a keep-alive
    // connection waits for its next request, which is the idle timeout's job.
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(&timeouts);
        let changed = activity.changed.notified();
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = stopped(&mut stop), if !closing => {
                if activity.reading_head() {
                    // Half a request: nothing of it was acted on, nothing is lost.
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = changed => {
                if activity.close_requested() && !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = sleep_until(deadline) => {
                if activity.deadline(&timeouts).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "HTTP connection closed by a timeout");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The router as a hyper service of one connection: adds the peer address, times the request
/// body, and tracks the request until its response body ends.
#[derive(Clone)]
struct ConnService {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.start_request();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(PeerAddr(self.peer)));
        let body = TimedBody::new(body, self.body_timeout, self.activity.clone());
        let response = self.inner.call(Request::from_parts(parts, body));
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| TrackedBody::new(body, in_flight)))
        })
    }
}

/// Resolves once `stop` turns true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    /// Reads one short response (or nothing: the connection was closed).
    async fn response(s: &mut TcpStream) -> String {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => String::new(),
        }
    }

    /// Why the header read timeout is ours: hyper's (1.x) also runs while a keep-alive
    /// connection waits for its next request, so it would double as an idle timeout.
    #[tokio::test]
    async fn hyper_header_read_timeout_also_cuts_the_keep_alive_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(axum::body::Body::from("ok")))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_millis(500));
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(900)).await;
        let _ = s.write_all(REQUEST).await;
        assert_eq!(response(&mut s).await, "", "hyper kept the idle connection");
        server.await.unwrap();
    }

    fn settings(header_ms: u64, idle_ms: u64) -> HttpSettings {
        HttpSettings {
            timeouts: Timeouts {
                header_read: Duration::from_millis(header_ms),
                idle: Duration::from_millis(idle_ms),
                body_read: Duration::from_secs(5),
            },
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    async fn start(
        settings: HttpSettings,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let tcp = super::super::listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Listener::new(tcp, Default::default(), false);
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, None, router, settings, stop_rx));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn keep_alive_outlives_the_header_timeout_until_the_idle_timeout() {
        let (addr, stop, task) = start(settings(300, 1000)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(600)).await;
        s.write_all(REQUEST).await.unwrap();
        assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(response(&mut s).await, "", "idle connection not closed");
        // A new connection that sends nothing gets the header timeout.
        let mut quiet = TcpStream::connect(addr).await.unwrap();
        let t0 = std::time::Instant::now();
        assert_eq!(response(&mut quiet).await, "");
        assert!(t0.elapsed() < Duration::from_millis(1000));
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_does_not_wait_for_a_half_sent_request() {
        let (addr, stop, task) = start(settings(60_000, 60_000)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = std::time::Instant::now();
        let _ = stop.send(true);
        task.await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(response(&mut s).await, "");
    }
}
