//! Accepting connections without spinning. `accept(2)` fails at once, again and again, while the
//! process is out of file descriptors (`EMFILE`), the system is (`ENFILE`) or memory is short
//! (`ENOBUFS`, `ENOMEM`): a loop that retries at once burns a core and writes a warning per attempt.
//! [`AcceptBackoff`] waits between attempts, doubling from [`FIRST_ACCEPT_DELAY`] up to
//! [`MAX_ACCEPT_DELAY`], and warns at most once per [`WARN_INTERVAL`] with the number of failures it
//! did not log. A failure that concerns only the one connection (the client reset it before it was
//! taken) is retried at once: the next connection is unaffected.
//!
//! For a tokio listener, [`accept`] is the whole loop. Any other accept call goes through
//! [`accept_with`]. Both are cancel-safe, so they can sit in a `select!` next to a stop signal.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The wait after the first failed accept.
pub const FIRST_ACCEPT_DELAY: Duration = Duration::from_millis(10);
/// The longest wait between two accepts, however long accepting keeps failing.
pub const MAX_ACCEPT_DELAY: Duration = Duration::from_secs(1);
/// At most one warning per listener this often; the failures in between are counted in it.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// How an accept loop waits and warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// At most one warning this often.
    pub warn_every: Duration,
}

/// Logs at most once per interval and counts what it held back.
#[derive(Clone, Debug)]
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

/// The state of one accept loop: its name for the log, the next wait, and the warning limiter.
#[derive(Clone, Debug)]
pub struct AcceptBackoff {
    listener: String,
    policy: BackoffPolicy,
    delay: Duration,
    log: RateLimitedLog,
    errors: u64,
}

// === impl BackoffPolicy ===

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self { first: FIRST_ACCEPT_DELAY, max: MAX_ACCEPT_DELAY, warn_every: WARN_INTERVAL }
    }
}

// === impl RateLimitedLog ===

impl RateLimitedLog {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self { every, last: None, suppressed: 0 }
    }

    /// Whether to log at `now`: `Some(n)` with the number of lines held back since the last one
    /// logged, or `None` (and the line is counted) when the last one is too recent.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.saturating_duration_since(last) < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

// === impl AcceptBackoff ===

impl AcceptBackoff {
    /// The default policy for the listener called `listener` in the log (e.g. `"otlp-grpc"`).
    pub fn new(listener: impl Into<String>) -> Self {
        Self::with_policy(listener, BackoffPolicy::default())
    }

    /// Another policy, e.g. shorter waits in a test.
    pub fn with_policy(listener: impl Into<String>, policy: BackoffPolicy) -> Self {
        Self {
            listener: listener.into(),
            policy,
            delay: policy.first,
            log: RateLimitedLog::new(policy.warn_every),
            errors: 0,
        }
    }

    /// An accept succeeded: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.delay = self.policy.first;
    }

    /// An accept failed with `error`: counts it, warns if the limiter allows, and waits before the
    /// next attempt (not at all for a failure of that one connection). Cancel-safe: dropped while
    /// waiting, the next call waits the following, longer delay.
    pub async fn failed(&mut self, error: &io::Error) {
        self.errors += 1;
        if is_connection_error(error) {
            tracing::debug!(listener = %self.listener, error = %error, "a connection failed before it was accepted");
            return;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(self.policy.max);
        if let Some(suppressed) = self.log.allow(Instant::now()) {
            tracing::warn!(
                listener = %self.listener,
                error = %error,
                retry_in_ms = delay.as_millis() as u64,
                suppressed,
                "accepting a connection failed; backing off"
            );
        }
        tokio::time::sleep(delay).await;
    }

    /// Failed accepts so far, of either kind.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// What the next resource failure will wait.
    pub fn next_delay(&self) -> Duration {
        self.delay
    }

    /// The listener's name, as logged.
    pub fn listener(&self) -> &str {
        &self.listener
    }
}

// === free functions ===

/// Whether a failed accept concerns only the connection being accepted (reset or aborted by the
/// client, a signal, the peer's network gone), so the next accept can be tried at once. Everything
/// else (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, ...) is the process's or the system's lack of
/// resources and is waited out.
pub fn is_connection_error(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted
            | ConnectionReset
            | ConnectionRefused
            | Interrupted
            | WouldBlock
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// Runs `attempt` until it succeeds, recording each failure in `backoff` (waiting and warning as it
/// says). Cancel-safe when `attempt`'s future is.
pub async fn accept_with<T, F, Fut>(backoff: &mut AcceptBackoff, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    loop {
        match attempt().await {
            Ok(accepted) => {
                backoff.succeeded();
                return accepted;
            }
            Err(e) => backoff.failed(&e).await,
        }
    }
}

/// The next connection on `listener`, however many accepts fail first. Cancel-safe.
pub async fn accept(listener: &TcpListener, backoff: &mut AcceptBackoff) -> (TcpStream, SocketAddr) {
    accept_with(backoff, || listener.accept()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn emfile() -> io::Error {
        io::Error::other("Too many open files (os error 24)")
    }

    /// Scenario: accepting fails for 10 s of (paused) time with a resource error, then succeeds.
    /// Guarantees: the waits double from 10 ms to 1 s and stay there, so 10 s hold about 16
    /// attempts instead of a busy loop's millions; the first success resets the wait.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn resource_errors_back_off_exponentially_up_to_the_cap() {
        let attempts = AtomicU64::new(0);
        let started = Instant::now();
        let mut backoff = AcceptBackoff::new("test");
        let accepted = accept_with(&mut backoff, || {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            let failing = started.elapsed() < Duration::from_secs(10);
            async move { if failing { Err(emfile()) } else { Ok(n) } }
        })
        .await;
        let n = attempts.load(Ordering::Relaxed);
        // 10+20+...+640 ms = 1.27 s in 7 attempts, then one per second.
        assert!((14..=18).contains(&n), "{n} attempts in 10 s");
        assert_eq!(accepted, n - 1);
        assert_eq!(backoff.errors(), n - 1);
        assert_eq!(backoff.next_delay(), FIRST_ACCEPT_DELAY);
    }

    /// Scenario: a client resets its connection before it is accepted.
    /// Guarantees: the next accept is tried at once, and the backoff does not grow.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn connection_errors_retry_at_once() {
        let mut backoff = AcceptBackoff::new("test");
        let started = Instant::now();
        let mut left = 3;
        let out = accept_with(&mut backoff, || {
            left -= 1;
            let fail = left > 0;
            async move { if fail { Err(io::Error::from(io::ErrorKind::ConnectionAborted)) } else { Ok(()) } }
        })
        .await;
        assert_eq!(out, ());
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(backoff.errors(), 2);
        assert_eq!(backoff.next_delay(), FIRST_ACCEPT_DELAY);
    }

    /// Scenario: 1,000 lines offered to the limiter within 25 s.
    /// Guarantees: one per 10 s gets through (three), each with the count held back before it.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn log_limiter_lets_one_line_per_interval_through() {
        let mut log = RateLimitedLog::new(WARN_INTERVAL);
        let start = Instant::now();
        let mut passed = Vec::new();
        for i in 0..1000u64 {
            let now = start + Duration::from_millis(i * 25);
            if let Some(suppressed) = log.allow(now) {
                passed.push((i, suppressed));
            }
        }
        assert_eq!(passed, vec![(0, 0), (400, 399), (800, 399)]);
    }
}
