//! What a client may make a receiver hold, and for how long: deadlines on reading headers and bodies,
//! an idle limit on connections, HTTP/2 keepalive pings, and a cap on open connections per listener.
//! Together with the memory budget ([`crate::budget`]) they keep a broken or hostile client (one
//! that sends slowly, stops half-way, or opens connections and leaves them) from pinning the
//! gateway's memory or connections. Each limit is counted when it fires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::metrics::Metrics;

/// A client must send a request's headers (HTTP/1) within this long of starting them.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body (or gRPC message) that makes no progress for this long is abandoned. It bounds
/// the pause between two pieces, not the whole transfer, so a slow honest client sending a large
/// body still finishes.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection with no request for this long is closed (HTTP/1 keep-alive, HTTP/2 GOAWAY). SDKs
/// export every few seconds and reconnect when they need to.
pub const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// HTTP/2 connections are pinged this often when quiet, to find peers that vanished...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// ...and closed when a ping is not answered within this long.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per listener; more are closed as soon as they are accepted. A node's pods and
/// sidecars need a few each; an idle HTTP/2 connection costs about 16 KiB.
pub const MAX_CONNECTIONS: usize = 2048;

/// Connection and request limits of a receiver. The defaults are the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`BODY_IDLE_TIMEOUT`].
    pub body_idle_timeout: Duration,
    /// See [`CONNECTION_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// See [`KEEPALIVE_INTERVAL`].
    pub keepalive_interval: Duration,
    /// See [`KEEPALIVE_TIMEOUT`].
    pub keepalive_timeout: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
}

/// One listener's connection accounting and limit counters.
#[derive(Debug)]
pub struct ListenerLimits {
    limits: ConnectionLimits,
    open: AtomicUsize,
    open_gauge: Gauge,
    rejected: Counter,
    /// A connection closed because it did not send headers in time or answer a keepalive ping.
    pub read_timeouts: Counter,
    /// A request abandoned because its body stalled.
    pub body_timeouts: Counter,
    /// A connection closed because it was idle.
    pub idle_closed: Counter,
}

/// A place among a listener's open connections; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ListenerLimits>);

/// Requests a connection has started and how many are running, for its idle check. Cheap enough to
/// touch on every request: two relaxed atomics, no clock read.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    in_flight: AtomicUsize,
}

/// Marks a request as running until dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

/// A connection that can be asked to finish its requests and close: hyper's server connections
/// (whose own trait is sealed), and test doubles.
pub trait Graceful: Future {
    /// Stops taking new requests and closes once the running ones are answered.
    fn close_gracefully(self: Pin<&mut Self>);
}

impl<C: GracefulConnection> Graceful for C {
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// A connection closed gracefully when the server shuts down or when it stays idle. Idle means no
/// request running and none started over a whole `idle_timeout`, so a connection is closed between
/// one and two idle periods after its last request.
pub struct Watched<C> {
    connection: Pin<Box<C>>,
    /// The token, for a cheap check, and its future, polled only to register the task's waker.
    token: CancellationToken,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    idle: Pin<Box<Sleep>>,
    /// The waker the shutdown and idle futures were last polled with. Both keep it registered until
    /// they fire, so while the task's waker stays the same (it does, for a task or [`super::inline`]'s
    /// round waker) they are only checked, not polled: polling them on every turn of a busy
    /// connection cost about 13 instructions per span.
    registered: Option<std::task::Waker>,
    idle_timeout: Duration,
    activity: Arc<Activity>,
    started_at_last_check: u64,
    closing: bool,
    listener: Arc<ListenerLimits>,
}

// === impl ConnectionLimits ===

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            idle_timeout: CONNECTION_IDLE_TIMEOUT,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

// === impl ListenerLimits ===

impl ListenerLimits {
    /// The accounting of one listener (`transport` labels its metrics).
    pub fn new(limits: ConnectionLimits, metrics: &Metrics, transport: &str) -> Arc<Self> {
        let timeout = |kind: &str| metrics.receiver_timeout(transport, kind);
        Arc::new(Self {
            limits,
            open: AtomicUsize::new(0),
            open_gauge: metrics.receiver_connections(transport),
            rejected: metrics.receiver_connections_rejected(transport),
            read_timeouts: timeout("read"),
            body_timeouts: timeout("body"),
            idle_closed: timeout("idle"),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// A slot for a new connection, or `None` (counted) when the listener is at its cap.
    pub fn admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.rejected.inc();
            return None;
        }
        self.open_gauge.inc();
        Some(ConnectionSlot(Arc::clone(self)))
    }

    /// Counts a connection that ended with `error` if a read deadline ended it.
    pub fn count_connection_error(&self, error: &(dyn std::error::Error + 'static)) {
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
            self.read_timeouts.inc();
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.open_gauge.dec();
    }
}

// === impl Activity ===

impl Activity {
    /// A request starts; it counts as running until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> RequestGuard {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl Watched ===

impl<C: Graceful> Watched<C> {
    /// Watches `connection`, whose requests report to `activity`.
    pub fn new(
        connection: C,
        activity: Arc<Activity>,
        shutdown: CancellationToken,
        listener: Arc<ListenerLimits>,
    ) -> Self {
        let idle_timeout = listener.limits.idle_timeout;
        Self {
            connection: Box::pin(connection),
            token: shutdown.clone(),
            shutdown: Box::pin(shutdown.cancelled_owned()),
            registered: None,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            activity,
            started_at_last_check: 0,
            closing: false,
            listener,
        }
    }

    /// Whether the idle timer found the connection idle; re-arms it when not.
    fn idle_fired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.idle.as_mut().poll(cx).is_ready() {
            let started = self.activity.started.load(Ordering::Relaxed);
            let running = self.activity.in_flight.load(Ordering::Relaxed);
            if started == self.started_at_last_check && running == 0 {
                return true;
            }
            self.started_at_last_check = started;
            let next = tokio::time::Instant::now() + self.idle_timeout;
            self.idle.as_mut().reset(next);
        }
        false
    }

    /// Whether the connection should close now: the server shuts down, or it was idle. The futures
    /// are polled (registering `cx`'s waker) on the first turn, after the waker changed, and when
    /// one of them is due; otherwise two loads answer.
    fn should_close(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let fresh = !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if (fresh || self.token.is_cancelled()) && self.shutdown.as_mut().poll(cx).is_ready() {
            return Some(true);
        }
        if (fresh || self.idle.is_elapsed()) && self.idle_fired(cx) {
            return Some(false);
        }
        if fresh {
            self.registered = Some(cx.waker().clone());
        }
        None
    }
}

impl<C: Graceful> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.closing
            && let Some(shutting_down) = this.should_close(cx)
        {
            if !shutting_down {
                this.listener.idle_closed.inc();
            }
            this.closing = true;
            this.connection.as_mut().close_gracefully();
        }
        this.connection.as_mut().poll(cx)
    }
}

impl<C> std::fmt::Debug for Watched<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("closing", &self.closing).finish_non_exhaustive()
    }
}

// === free functions ===

/// Awaits the next piece of a request body, giving up (`None`) when none arrives within `within`.
/// A piece that is already there is taken without arming a timer, so the common case costs nothing.
pub async fn within<F: Future + Unpin>(mut next: F, within: Duration) -> Option<F::Output> {
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut next).poll(cx))).await;
    match first {
        Poll::Ready(output) => Some(output),
        Poll::Pending => tokio::time::timeout(within, next).await.ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that ends once asked to shut down gracefully.
    struct Conn {
        asked: bool,
    }

    impl Future for Conn {
        type Output = Result<(), std::io::Error>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            if self.asked { Poll::Ready(Ok(())) } else { Poll::Pending }
        }
    }

    impl Graceful for Conn {
        fn close_gracefully(mut self: Pin<&mut Self>) {
            self.asked = true;
        }
    }

    fn listener(max_connections: usize) -> Arc<ListenerLimits> {
        let limits = ConnectionLimits {
            idle_timeout: Duration::from_secs(10),
            max_connections,
            ..ConnectionLimits::default()
        };
        ListenerLimits::new(limits, &Metrics::default(), "http")
    }

    /// Scenario: a connection whose requests keep coming for 35 s (one running for 12 s of it),
    /// then stop, with a 10 s idle limit (paused clock).
    /// Guarantees: it is not closed while requests come or run, and is closed (and counted) within
    /// two idle periods of the last request.
    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_and_busy_ones_are_not() {
        let listener = listener(10);
        let activity = Arc::new(Activity::default());
        let shutdown = CancellationToken::new();
        let watched =
            Watched::new(Conn { asked: false }, Arc::clone(&activity), shutdown, Arc::clone(&listener));
        let task = tokio::spawn(watched);
        for _ in 0..5 {
            drop(activity.start());
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        let long = activity.start();
        tokio::time::sleep(Duration::from_secs(12)).await;
        drop(long);
        let last = tokio::time::Instant::now();
        assert!(!task.is_finished(), "closed while busy");
        task.await.unwrap().unwrap();
        let closed_after = last.elapsed();
        assert!(closed_after <= Duration::from_secs(20), "closed {closed_after:?} after the last request");
        assert_eq!(listener.idle_closed.get(), 1);
    }

    /// Scenario: the server shuts down while a connection is open.
    /// Guarantees: the connection is asked to close at once, and it is not counted as idle.
    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_connections() {
        let listener = listener(10);
        let shutdown = CancellationToken::new();
        let watched =
            Watched::new(Conn { asked: false }, Arc::default(), shutdown.clone(), Arc::clone(&listener));
        let task = tokio::spawn(watched);
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_millis(10), task).await.unwrap().unwrap().unwrap();
        assert_eq!(listener.idle_closed.get(), 0);
    }

    /// Scenario: three connections offered to a listener capped at two, one of them then closing.
    /// Guarantees: the third is refused and counted; a slot freed by a closed connection is reused.
    #[test]
    fn connections_are_capped() {
        let listener = listener(2);
        let a = listener.admit().unwrap();
        let _b = listener.admit().unwrap();
        assert!(listener.admit().is_none());
        assert_eq!(listener.rejected.get(), 1);
        drop(a);
        assert!(listener.admit().is_some());
    }

    /// Scenario: a body piece that is ready, one that comes in time, and one that never comes.
    /// Guarantees: the first two are returned; the last gives up after the deadline (paused clock).
    #[tokio::test(start_paused = true)]
    async fn stalled_bodies_give_up() {
        assert_eq!(within(std::future::ready(1), Duration::from_secs(1)).await, Some(1));
        let later = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            2
        });
        assert_eq!(within(later, Duration::from_secs(1)).await, Some(2));
        let start = tokio::time::Instant::now();
        assert_eq!(within(std::future::pending::<()>(), Duration::from_secs(1)).await, None);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
