//! What one HTTP connection is doing, for its timeouts ([`super::serve`]).
//!
//! [`Activity`] is fed by three wrappers: [`TrackedIo`] around the socket (bytes read, writes
//! blocked), [`TimedBody`] around each request body (a minimum transfer rate), and
//! [`TrackedBody`] around each response body (the request is in flight until its response body
//! ends). From that, [`Activity::deadline`] says when the connection is to be closed:
//!
//! | state | closed after |
//! |---|---|
//! | new, nothing received | header read timeout from the accept |
//! | request head being received | header read timeout from its first byte |
//! | idle between requests | idle timeout from the end of the last response |
//! | request in flight (body read, query running, response streaming) | never, unless the client stops reading the response: idle timeout from the write that blocked |
//!
//! A request body must arrive within the body read timeout plus one second per
//! [`BODY_MIN_RATE`] bytes received; past it the body read fails and the connection is closed
//! after its response.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes per second a request body must keep up, after the body read timeout's grace period.
pub const BODY_MIN_RATE: u64 = 1024;

/// `at + after`, or a year from now if that is not representable (a huge configured timeout).
pub fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400))
}

/// The timeouts of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub body_read: Duration,
}

/// Shared state of one connection (the socket wrapper, the service and the connection's task).
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds since `epoch` when the last request ended (0 before the first).
    idle_since: AtomicU64,
    /// Milliseconds since `epoch` + 1 when the first byte of the next request head came; 0: none.
    head_started: AtomicU64,
    /// Milliseconds since `epoch` + 1 since when a write waits for the client; 0: none.
    write_blocked: AtomicU64,
    /// Close after the current response (a request body timed out).
    close: AtomicBool,
    /// Wakes the connection's task to look at the state again.
    pub changed: Notify,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
            close: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64, after: Duration) -> Instant {
        later(self.epoch, Duration::from_millis(ms).saturating_add(after))
    }

    fn on_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started
                .store(self.now_ms() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    fn on_write(&self, blocked: bool) {
        let current = self.write_blocked.load(Ordering::Relaxed);
        if blocked && current == 0 {
            self.write_blocked
                .store(self.now_ms() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        } else if !blocked && current != 0 {
            self.write_blocked.store(0, Ordering::Relaxed);
        }
    }

    /// A request head was read: the request is in flight until the returned guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// True while part of a request head has come and its request has not started: nothing of
    /// it was acted on yet.
    pub fn reading_head(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) != 0
    }

    /// True once a request body timed out.
    pub fn close_requested(&self) -> bool {
        self.close.load(Ordering::Relaxed)
    }

    /// When the connection is to be closed unless something happens first; `None`: not while
    /// it stays in this state.
    pub fn deadline(&self, t: &Timeouts) -> Option<Instant> {
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return (blocked != 0).then(|| self.at(blocked - 1, t.idle));
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            return Some(self.at(head - 1, t.header_read));
        }
        let wait = if self.requests.load(Ordering::Relaxed) == 0 {
            t.header_read
        } else {
            t.idle
        };
        Some(self.at(self.idle_since.load(Ordering::Relaxed), wait))
    }
}

/// A request in flight; dropping it (the response body ended or was dropped) ends it.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
        a.changed.notify_one();
    }
}

/// The socket (plain or TLS), reporting reads and blocked writes to [`Activity`].
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.on_write(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.activity.on_write(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.activity.on_write(polled.is_pending());
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body that fails when it arrives too slowly.
pub struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    started: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
    activity: Arc<Activity>,
}

/// The error of a request body that did not arrive in time.
#[derive(Debug)]
pub struct BodyTimeout {
    received: u64,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body timed out after {} bytes (too slow)",
            self.received
        )
    }
}

impl std::error::Error for BodyTimeout {}

impl TimedBody {
    pub fn new(inner: Incoming, timeout: Duration, activity: Arc<Activity>) -> Self {
        TimedBody {
            inner,
            timeout,
            started: None,
            received: 0,
            timer: None,
            timed_out: false,
            activity,
        }
    }

    fn deadline(&self, started: Instant) -> Instant {
        let earned = Duration::from_millis(self.received.saturating_mul(1000) / BODY_MIN_RATE);
        later(started, self.timeout.saturating_add(earned))
    }

    fn fail(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.timed_out = true;
        self.activity.close.store(true, Ordering::Relaxed);
        self.activity.changed.notify_one();
        Poll::Ready(Some(Err(Box::new(BodyTimeout {
            received: self.received,
        }))))
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return this.fail();
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    let deadline = this.deadline(started);
                    if let Some(timer) = this.timer.as_mut() {
                        timer.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline(started);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return this.fail();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body; the request is in flight until it ends or is dropped.
pub struct TrackedBody {
    inner: axum::body::Body,
    in_flight: Option<InFlight>,
}

impl TrackedBody {
    pub fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        TrackedBody {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
