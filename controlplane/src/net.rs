//! Serving one of the manager's listeners (the snapshot channel, the admission webhook, the
//! operations endpoints), hardened against clients that connect and then stall or go quiet:
//!
//! - accepting backs off when it fails, e.g. out of file descriptors, and warns at a bounded rate
//!   ([`tracegw_runtime::AcceptBackoff`]);
//! - at most [`ServerLimits::max_connections`] connections are open per listener; one more is closed
//!   at once;
//! - a connection must finish its TLS handshake within [`ServerLimits::handshake_timeout`], send a
//!   request's head within [`ServerLimits::header_read_timeout`] of its first byte (or of the
//!   connection's start), and a request's body within [`ServerLimits::body_read_timeout`]
//!   (`BodyReader`); a keep-alive connection with no request in flight is closed after
//!   [`ServerLimits::idle_timeout`]. A long-lived response (a gateway's snapshot stream) is a request
//!   in flight: it is never idle.
//!
//! Each deadline that fires, each connection refused and each failed accept is counted in the
//! manager's metrics, labelled with the listener.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracegw_runtime::{AcceptBackoff, RateLimitedLog, WARN_INTERVAL};

use crate::metrics::ManagerMetrics;

/// How long a client may take to send a request's head (from its first byte, or from the start of
/// the connection for the first request).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body once its head arrived. The API server gives
/// up on the webhook after its 15 s timeout anyway.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a keep-alive connection may wait for its next request. Longer than the gateways' report
/// interval (15 s), so their report connection is reused.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take for the TLS handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per listener. The snapshot channel holds one long-lived stream per gateway (one
/// per node), plus report connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;

/// Marks "no request head being read".
const NO_HEAD: u64 = u64::MAX;
/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Deadlines and the connection cap of one listener. Each default is defined once, above; the CLI
/// reads them from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// See [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`DEFAULT_BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

/// Which deadline closed a connection (the `deadline` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// The TLS handshake did not finish.
    Handshake,
    /// A request's head did not arrive.
    Header,
    /// A request's body did not arrive.
    Body,
    /// A keep-alive connection stayed without a request.
    Idle,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than allowed.
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    /// Not complete within the body deadline.
    #[error("the request body did not arrive within {}s", .0.as_secs())]
    Timeout(Duration),
    /// The connection failed while reading.
    #[error("cannot read the request body: {0}")]
    Read(String),
}

/// Reads request bodies within the listener's body deadline, counting the ones that miss it.
#[derive(Clone, Debug)]
pub(crate) struct BodyReader {
    listener: &'static str,
    timeout: Duration,
    metrics: ManagerMetrics,
}

/// One listener being served.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    /// `snapshots`, `webhook` or `admin`: logs and the `listener` label.
    pub name: &'static str,
    /// Its deadlines and cap.
    pub limits: ServerLimits,
    /// Where deadlines and refusals are counted.
    pub metrics: ManagerMetrics,
}

/// What one connection is doing, shared by its reader, its requests and its watchdog. Times are
/// milliseconds since `start`.
#[derive(Debug)]
struct ConnState {
    start: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    h2: AtomicBool,
    first_read: AtomicBool,
    changed: Notify,
}

/// A request in flight; dropped when its response has been sent (or abandoned).
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

/// A response body that keeps its request in flight until it is dropped.
struct Guarded<B> {
    inner: B,
    _in_flight: InFlight,
}

/// The connection's byte stream, noting when a request's head starts to arrive.
struct Tracked<S> {
    inner: S,
    conn: Arc<ConnState>,
}

/// The service for one connection: counts requests in flight around `handler`.
#[derive(Clone)]
struct Service<H> {
    handler: H,
    conn: Arc<ConnState>,
}

// === impl ServerLimits ===

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

// === impl Deadline ===

impl Deadline {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Header => "header",
            Self::Body => "body",
            Self::Idle => "idle",
        }
    }
}

// === impl BodyReader ===

impl BodyReader {
    /// Reads the whole body, at most `max_bytes`, within the deadline.
    pub(crate) async fn read(&self, body: Incoming, max_bytes: usize) -> Result<Bytes, BodyError> {
        match tokio::time::timeout(self.timeout, Limited::new(body, max_bytes).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max_bytes)),
            Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
            Err(_) => {
                self.metrics.deadline_fired(self.listener, Deadline::Body.as_str());
                tracing::debug!(listener = self.listener, "a request body did not arrive in time");
                Err(BodyError::Timeout(self.timeout))
            }
        }
    }
}

// === impl Server ===

impl Server {
    /// A listener called `name`.
    pub(crate) fn new(name: &'static str, limits: ServerLimits, metrics: ManagerMetrics) -> Self {
        Self { name, limits, metrics }
    }

    /// Reads bodies under this listener's body deadline.
    pub(crate) fn body_reader(&self) -> BodyReader {
        BodyReader {
            listener: self.name,
            timeout: self.limits.body_read_timeout,
            metrics: self.metrics.clone(),
        }
    }

    /// Accepts and serves connections until `stop` fires, over TLS when `tls` is given. `handler`
    /// answers each request (HTTP/1.1 or HTTP/2).
    pub(crate) async fn serve<H, Fut, B>(
        self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        stop: CancellationToken,
        handler: H,
    ) where
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let permits = Arc::new(Semaphore::new(self.limits.max_connections.min(Semaphore::MAX_PERMITS)));
        let mut backoff = AcceptBackoff::new(self.name);
        let mut refusals = RateLimitedLog::new(WARN_INTERVAL);
        let accept_errors = self.metrics.accept_errors_of(self.name);
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = tracegw_runtime::accept_with(&mut backoff, || {
                    let accept_errors = accept_errors.clone();
                    let accepting = listener.accept();
                    async move { accepting.await.inspect_err(|_| { accept_errors.inc(); }) }
                }) => accepted,
            };
            let (stream, _) = accepted;
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                self.metrics.connection_refused(self.name);
                if let Some(suppressed) = refusals.allow(Instant::now()) {
                    tracing::warn!(
                        listener = self.name,
                        max_connections = self.limits.max_connections,
                        suppressed,
                        "connection limit reached; closing new connections"
                    );
                }
                drop(stream);
                continue;
            };
            let (server, tls, stop, handler) = (self.clone(), tls.clone(), stop.clone(), handler.clone());
            tokio::spawn(async move {
                let open = server.metrics.open_connections_of(server.name);
                open.inc();
                match tls {
                    Some(acceptor) => {
                        let handshake = acceptor.accept(stream);
                        match tokio::time::timeout(server.limits.handshake_timeout, handshake).await {
                            Ok(Ok(stream)) => server.connection(stream, stop, handler).await,
                            Ok(Err(e)) => {
                                tracing::debug!(listener = server.name, error = %e, "TLS handshake failed")
                            }
                            Err(_) => {
                                server.metrics.deadline_fired(server.name, Deadline::Handshake.as_str())
                            }
                        }
                    }
                    None => server.connection(stream, stop, handler).await,
                }
                open.dec();
                drop(permit);
            });
        }
    }

    /// Serves one connection until it ends, a deadline fires, or `stop` fires.
    async fn connection<S, H, Fut, B>(&self, stream: S, stop: CancellationToken, handler: H)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let conn = Arc::new(ConnState::new());
        let io = TokioIo::new(Tracked { inner: stream, conn: Arc::clone(&conn) });
        let service = Service { handler, conn: Arc::clone(&conn) };
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http2().max_header_list_size(64 * 1024);
        let served = builder.serve_connection(io, service);
        tokio::select! {
            _ = served => {}
            fired = watchdog(&conn, &self.limits) => {
                self.metrics.deadline_fired(self.name, fired.as_str());
                tracing::debug!(listener = self.name, deadline = fired.as_str(), "connection closed by a deadline");
            }
            _ = stop.cancelled() => {}
        }
    }
}

// === impl ConnState ===

impl ConnState {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            // The first request is expected at once.
            head_started: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            first_read: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NO_HEAD, Ordering::Release);
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// Bytes arrived: on an idle HTTP/1 connection they are the next request's head.
    fn bytes_read(&self, first: &[u8]) {
        if self.first_read.swap(false, Ordering::AcqRel) && first.starts_with(H2_PREFACE) {
            // HTTP/2 sends control frames (pings, window updates) between requests: only the idle
            // deadline applies between them.
            self.h2.store(true, Ordering::Release);
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Acquire)
            && self.head_started.load(Ordering::Acquire) == NO_HEAD
        {
            self.head_started.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// The next deadline, when no request is in flight.
    fn next_deadline(&self, limits: &ServerLimits) -> Option<(Instant, Deadline)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Acquire) {
            NO_HEAD => {
                Some((self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle_timeout, Deadline::Idle))
            }
            started => Some((self.at(started) + limits.header_read_timeout, Deadline::Header)),
        }
    }
}

// === impl InFlight ===

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now_ms(), Ordering::Release);
            self.0.head_started.store(NO_HEAD, Ordering::Release);
        }
        self.0.changed.notify_one();
    }
}

// === impl Guarded ===

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// === impl Tracked ===

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.bytes_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// === impl Service ===

impl<H, Fut, B> hyper::service::Service<Request<Incoming>> for Service<H>
where
    H: Fn(Request<Incoming>) -> Fut,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Unpin,
{
    type Response = Response<Guarded<B>>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.conn.begin();
        let answer = (self.handler)(req);
        Box::pin(async move {
            let response = answer.await;
            Ok(response.map(|inner| Guarded { inner, _in_flight: in_flight }))
        })
    }
}

// === free functions ===

/// Resolves with the deadline that fired on an idle or stalled connection; never while a request is
/// in flight.
async fn watchdog(conn: &ConnState, limits: &ServerLimits) -> Deadline {
    loop {
        let changed = conn.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match conn.next_deadline(limits) {
            None => changed.await,
            Some((at, fired)) => {
                if Instant::now() >= at {
                    return fired;
                }
                tokio::select! {
                    _ = &mut changed => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
        }
    }
}
