//! Exponential backoff with jitter, bounded by a total time, where the server may dictate the next delay.
//!
//! Hand-written rather than `backon`: the delay must be replaceable per attempt by the server's
//! `Retry-After` or `RetryInfo`, and the bound is on elapsed wall time, not on attempts. That is a
//! dozen lines here and would be a wrapper around the crate's iterator there.

use std::time::Duration;

/// Retry settings; defaults are Kyma's (`retry_on_failure`: 5 s, 30 s, 300 s) with the Collector's
/// multiplier and jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// First delay.
    pub initial_interval: Duration,
    /// Largest delay between attempts.
    pub max_interval: Duration,
    /// Give up once this much time has passed since the first attempt; zero retries forever.
    pub max_elapsed: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Each delay is drawn from `delay * (1 ± randomization)`.
    pub randomization: f64,
}

/// The delays of one batch's attempts.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    next: Duration,
    elapsed: Duration,
}

// === impl RetryPolicy ===

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            multiplier: 1.5,
            randomization: 0.5,
        }
    }
}

impl RetryPolicy {
    /// A fresh backoff.
    pub fn backoff(&self) -> Backoff {
        Backoff { policy: *self, next: self.initial_interval, elapsed: Duration::ZERO }
    }
}

// === impl Backoff ===

impl Backoff {
    /// The delay before the next attempt, or `None` when the time budget is spent. `elapsed` is the time
    /// since the first attempt; `server` is a delay the backend asked for.
    pub fn next_delay(&mut self, elapsed: Duration, server: Option<Duration>) -> Option<Duration> {
        self.elapsed = elapsed;
        let delay = match server {
            Some(d) => d,
            None => {
                let base = self.next.as_secs_f64();
                let spread = base * self.policy.randomization;
                let jittered = base - spread + fastrand::f64() * 2.0 * spread;
                self.next = self.next.mul_f64(self.policy.multiplier).min(self.policy.max_interval);
                Duration::from_secs_f64(jittered.max(0.0))
            }
        };
        if self.policy.max_elapsed.is_zero() {
            return Some(delay);
        }
        let left = self.policy.max_elapsed.checked_sub(self.elapsed)?;
        if delay > left {
            // A server that asks us to wait past the budget is telling us this batch will not make it.
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: repeated failures with Kyma's defaults.
    /// Guarantees: delays grow by 1.5 within ±50 % jitter, never beyond 30 s (+jitter), and stop at 300 s.
    #[test]
    fn grows_caps_and_stops() {
        let policy = RetryPolicy::default();
        let mut b = policy.backoff();
        let mut elapsed = Duration::ZERO;
        let mut delays = Vec::new();
        while let Some(d) = b.next_delay(elapsed, None) {
            delays.push(d);
            elapsed += d;
        }
        assert!(delays[0] >= Duration::from_millis(2500) && delays[0] <= Duration::from_millis(7500));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(45)));
        assert!(elapsed <= Duration::from_secs(300));
        assert!(delays.len() >= 8, "{delays:?}");
    }

    /// Scenario: the server sends Retry-After.
    /// Guarantees: its delay is used as is, unless it would pass the time budget.
    #[test]
    fn server_delay_wins_within_budget() {
        let mut b = RetryPolicy::default().backoff();
        assert_eq!(b.next_delay(Duration::ZERO, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(b.next_delay(Duration::from_secs(299), Some(Duration::from_secs(2))), None);
    }
}
