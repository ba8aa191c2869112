//! Flow health from the gateways' own counters, without a Prometheus: every gateway posts its
//! cumulative per-pipeline counters ([`GatewayReport`]); the tracker keeps each gateway's reports of
//! the last [`FlowSettings::window`] and judges each pipeline the way Kyma's self-monitor alert rules
//! do over their rate window:
//!
//! - spans dropped (send failed or enqueue failed) and none sent: all data dropped;
//! - spans dropped and some sent: some data dropped;
//! - otherwise, spans refused to clients on any pipeline's gateway: throttling (the receiver is
//!   shared, so this applies to every pipeline, as in Kyma);
//! - otherwise healthy.
//!
//! A gateway's counters restart with its process; a new boot id starts a new series counted from
//! zero, and a counter that goes down is taken as a restart too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracegw_contract::stream::{GatewayReport, REPORT_INTERVAL};

use crate::conditions::FlowHealth;

/// How flow is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSettings {
    /// The window counters are compared over (Kyma's alert rules use 5 minutes).
    pub window: Duration,
    /// A gateway silent for longer is no longer counted.
    pub stale_after: Duration,
    /// How often the reconciler re-evaluates flow health (a pass that changes nothing writes nothing).
    pub evaluate_every: Duration,
}

/// The reports of every gateway.
#[derive(Debug)]
pub struct FlowTracker {
    settings: FlowSettings,
    started: Instant,
    gateways: HashMap<String, Series>,
}

/// One gateway process's reports, oldest first.
#[derive(Debug)]
struct Series {
    boot_id: String,
    /// When the process started, from its first report's uptime: its counters were zero then.
    started: Instant,
    samples: Vec<(Instant, GatewayReport)>,
}

/// Counter increases over the window, summed over gateways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    /// Spans delivered.
    pub sent: u64,
    /// Spans given up on or not queued.
    pub dropped: u64,
}

// === impl FlowSettings ===

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            stale_after: REPORT_INTERVAL * 3,
            evaluate_every: Duration::from_secs(5),
        }
    }
}

// === impl FlowTracker ===

impl FlowTracker {
    /// An empty tracker; `now` is when the manager started.
    pub fn new(settings: FlowSettings, now: Instant) -> Self {
        Self { settings, started: now, gateways: HashMap::new() }
    }

    /// Takes one report.
    pub fn record(&mut self, report: GatewayReport, now: Instant) {
        let started = now.checked_sub(Duration::from_secs(report.uptime_seconds)).unwrap_or(self.started);
        let series = self.gateways.entry(report.gateway.clone()).or_insert_with(|| Series {
            boot_id: report.boot_id.clone(),
            started,
            samples: Vec::new(),
        });
        if series.boot_id != report.boot_id {
            *series = Series { boot_id: report.boot_id.clone(), started, samples: Vec::new() };
        }
        series.samples.push((now, report));
        let horizon = self.settings.window;
        // Keep one sample older than the window as the baseline of the increase.
        let keep_from =
            series.samples.iter().rposition(|(t, _)| now.duration_since(*t) > horizon).unwrap_or(0);
        series.samples.drain(..keep_from);
    }

    /// Gateways with a recent report.
    pub fn reporting(&self, now: Instant) -> usize {
        self.gateways.values().filter(|s| s.fresh(now, self.settings.stale_after)).count()
    }

    fn deltas(&self, now: Instant, pick: impl Fn(&GatewayReport) -> (u64, u64)) -> Deltas {
        let mut total = Deltas::default();
        for series in self.gateways.values().filter(|s| s.fresh(now, self.settings.window)) {
            let Some((_, last)) = series.samples.last() else { continue };
            // The baseline: the newest sample at least a window old, else zero when the process
            // started within the window, else the oldest sample (the manager has not watched this
            // gateway for a whole window yet, and what it counted before is not recent).
            let base = series
                .samples
                .iter()
                .rev()
                .find(|(t, _)| now.duration_since(*t) >= self.settings.window)
                .map(|(_, r)| pick(r))
                .or_else(|| (now.duration_since(series.started) < self.settings.window).then_some((0, 0)))
                .unwrap_or_else(|| series.samples.first().map_or((0, 0), |(_, r)| pick(r)));
            let (sent, dropped) = pick(last);
            // A counter that went down restarted: count it from zero.
            total.sent += if sent >= base.0 { sent - base.0 } else { sent };
            total.dropped += if dropped >= base.1 { dropped - base.1 } else { dropped };
        }
        total
    }

    /// Increases over the window for one pipeline.
    pub fn pipeline_deltas(&self, pipeline: &str, now: Instant) -> Deltas {
        self.deltas(now, |r| {
            r.pipelines
                .iter()
                .find(|p| p.name == pipeline)
                .map_or((0, 0), |p| (p.sent_spans, p.send_failed_spans + p.enqueue_failed_spans))
        })
    }

    /// Spans refused to clients over the window, all gateways.
    pub fn refused(&self, now: Instant) -> u64 {
        self.deltas(now, |r| (r.refused_spans, 0)).sent
    }

    /// The flow health of one pipeline.
    pub fn health(&self, pipeline: &str, now: Instant) -> FlowHealth {
        if self.reporting(now) == 0 {
            if now.duration_since(self.started) < self.settings.stale_after {
                return FlowHealth::Pending;
            }
            return FlowHealth::ProbingFailed(format!(
                "No OTLP gateway reported its counters in the last {}s; the telemetry flow cannot be checked",
                self.settings.stale_after.as_secs()
            ));
        }
        let d = self.pipeline_deltas(pipeline, now);
        if d.dropped > 0 && d.sent == 0 {
            FlowHealth::AllDataDropped
        } else if d.dropped > 0 {
            FlowHealth::SomeDataDropped
        } else if self.refused(now) > 0 {
            FlowHealth::Throttling
        } else {
            FlowHealth::Healthy
        }
    }
}

// === impl Series ===

impl Series {
    fn fresh(&self, now: Instant, within: Duration) -> bool {
        self.samples.last().is_some_and(|(t, _)| now.duration_since(*t) <= within)
    }
}

#[cfg(test)]
mod tests {
    use tracegw_contract::stream::PipelineCounters;

    use super::*;

    fn report(gateway: &str, boot: &str, sent: u64, failed: u64, refused: u64) -> GatewayReport {
        GatewayReport {
            gateway: gateway.into(),
            boot_id: boot.into(),
            uptime_seconds: 1,
            snapshot_version: 1,
            refused_spans: refused,
            pipelines: vec![PipelineCounters {
                name: "p".into(),
                sent_spans: sent,
                send_failed_spans: failed,
                enqueue_failed_spans: 0,
            }],
        }
    }

    fn settings() -> FlowSettings {
        FlowSettings {
            window: Duration::from_secs(60),
            stale_after: Duration::from_secs(30),
            ..FlowSettings::default()
        }
    }

    /// Scenario: two gateways report rising sent counters; then one starts failing while the other
    /// still delivers; then both only fail; later the failures age out of the window.
    /// Guarantees: healthy, some dropped, all dropped, healthy again, as Kyma's alert rules decide.
    #[test]
    fn drops_over_the_window() {
        let t0 = Instant::now();
        let mut tracker = FlowTracker::new(settings(), t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        tracker.record(report("a", "1", 100, 0, 0), at(1));
        tracker.record(report("b", "1", 100, 0, 0), at(1));
        tracker.record(report("a", "1", 200, 0, 0), at(15));
        tracker.record(report("b", "1", 200, 0, 0), at(15));
        assert_eq!(tracker.health("p", at(15)), FlowHealth::Healthy);
        tracker.record(report("a", "1", 200, 50, 0), at(30));
        tracker.record(report("b", "1", 300, 0, 0), at(30));
        assert_eq!(tracker.health("p", at(30)), FlowHealth::SomeDataDropped);
        // A minute and more later both only fail: nothing sent within the window.
        for s in [45, 60, 75, 90, 105] {
            tracker.record(report("a", "1", 200, 50 + s, 0), at(s));
            tracker.record(report("b", "1", 300, s, 0), at(s));
        }
        assert_eq!(tracker.health("p", at(105)), FlowHealth::AllDataDropped);
        // Recovery: sending again, no new failures; after a window the old drops no longer count.
        for s in [120, 135, 150, 165, 180] {
            tracker.record(report("a", "1", 200 + s, 155, 0), at(s));
            tracker.record(report("b", "1", 300 + s, 105, 0), at(s));
        }
        assert_eq!(tracker.health("p", at(180)), FlowHealth::Healthy);
        assert_eq!(tracker.pipeline_deltas("p", at(180)).dropped, 0);
    }

    /// Scenario: a gateway restarts (new boot id, counters from zero) and, separately, refuses clients.
    /// Guarantees: the restart is not mistaken for a drop or a negative rate; refusals mean throttling.
    #[test]
    fn restarts_and_throttling() {
        let t0 = Instant::now();
        let mut tracker = FlowTracker::new(settings(), t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        tracker.record(report("a", "1", 1000, 0, 0), at(1));
        tracker.record(report("a", "2", 10, 0, 0), at(20));
        assert_eq!(tracker.pipeline_deltas("p", at(20)), Deltas { sent: 10, dropped: 0 });
        assert_eq!(tracker.health("p", at(20)), FlowHealth::Healthy);
        tracker.record(report("a", "2", 20, 0, 7), at(35));
        assert_eq!(tracker.health("p", at(35)), FlowHealth::Throttling);
    }

    /// Scenario: the manager restarts and meets a gateway that has run for a day with failures long
    /// ago; its later reports show only deliveries.
    /// Guarantees: old failures are not blamed on the present flow.
    #[test]
    fn old_counters_are_not_recent_drops() {
        let t0 = Instant::now();
        let mut tracker = FlowTracker::new(settings(), t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut old = report("a", "1", 5000, 700, 0);
        old.uptime_seconds = 86_400;
        tracker.record(old.clone(), at(1));
        assert_eq!(tracker.health("p", at(1)), FlowHealth::Healthy);
        old.pipelines[0].sent_spans = 5100;
        old.uptime_seconds += 15;
        tracker.record(old, at(16));
        assert_eq!(tracker.pipeline_deltas("p", at(16)), Deltas { sent: 100, dropped: 0 });
        assert_eq!(tracker.health("p", at(16)), FlowHealth::Healthy);
    }

    /// Scenario: no gateway has reported, first just after start, then long after; then a report
    /// arrives and the gateway falls silent.
    /// Guarantees: pending at first (keep the status), probing failed later, and again when the
    /// only gateway goes stale.
    #[test]
    fn silence_means_unknown() {
        let t0 = Instant::now();
        let mut tracker = FlowTracker::new(settings(), t0);
        assert_eq!(tracker.health("p", t0 + Duration::from_secs(5)), FlowHealth::Pending);
        assert!(matches!(tracker.health("p", t0 + Duration::from_secs(40)), FlowHealth::ProbingFailed(_)));
        tracker.record(report("a", "1", 1, 0, 0), t0 + Duration::from_secs(41));
        assert_eq!(tracker.health("p", t0 + Duration::from_secs(42)), FlowHealth::Healthy);
        assert!(matches!(tracker.health("p", t0 + Duration::from_secs(100)), FlowHealth::ProbingFailed(_)));
    }
}
