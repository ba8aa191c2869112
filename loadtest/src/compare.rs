//! `loadtest compare SCENARIO`: the same measured run for a candidate gateway and a baseline (another
//! gateway binary, or rotel), interleaved round by round, reported as medians and as the ratio of
//! CPU per span.
//!
//! This machine's speed drifts by tens of per cent within an hour, far more than most changes are
//! worth. A ratio between two forwarders run back to back under the same drift is what holds still,
//! so rounds alternate which one goes first (ABBA) and the ratio is taken per round before the
//! median.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::{Value, json};

use crate::run::{self, Peer, RunArgs};

/// Flags of `loadtest compare`.
#[derive(Clone, Debug, clap::Args)]
pub struct CompareArgs {
    /// The candidate's run: scenario, load and gateway binary, as for `loadtest run`.
    #[command(flatten)]
    pub run: RunArgs,
    /// Baseline: another gateway binary, run with the same scenario, load and flags.
    #[arg(long)]
    pub baseline_bin: Option<PathBuf>,
    /// Baseline: rotel on the same load (it always exports gzip; compare with the `gzip` scenario).
    #[arg(long, conflicts_with = "baseline_bin")]
    pub baseline_rotel: bool,
    /// Baseline: the same gateway on another scenario (`loadtest compare ottl --baseline-scenario
    /// single` prices a pipeline's OTTL processing).
    #[arg(long, value_enum, conflicts_with_all = ["baseline_bin", "baseline_rotel"])]
    pub baseline_scenario: Option<run::Scenario>,
    /// Rounds; each runs the candidate and the baseline once.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// The figures of one run that a comparison reports.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Figures {
    cpu_us_per_span: f64,
    user_us_per_span: f64,
    system_us_per_span: f64,
    spans_per_s: f64,
    rss_peak_mib: f64,
    p99_ms: f64,
    lost: u64,
    duplicated: u64,
}

// === impl Figures ===

impl Figures {
    fn of(result: &Value) -> Self {
        let f = |key: &str| result[key].as_f64().unwrap_or(0.0);
        Self {
            cpu_us_per_span: f("forwarder_cpu_us_per_span"),
            user_us_per_span: f("forwarder_user_us_per_span"),
            system_us_per_span: f("forwarder_system_us_per_span"),
            spans_per_s: f("achieved_spans_per_s"),
            rss_peak_mib: f("rss_peak_mib"),
            p99_ms: f("latency_p99_us") / 1000.0,
            lost: result["lost_spans"].as_u64().unwrap_or(0),
            duplicated: result["duplicated_spans"].as_u64().unwrap_or(0),
        }
    }

    fn line(&self) -> String {
        format!(
            "{:>9.0} spans/s  cpu {:5.2} µs/span (user {:5.2}, system {:5.2})  rss peak {:5.1} MiB  p99 {:4.0} ms  lost {}  dup {}",
            self.spans_per_s,
            self.cpu_us_per_span,
            self.user_us_per_span,
            self.system_us_per_span,
            self.rss_peak_mib,
            self.p99_ms,
            self.lost,
            self.duplicated
        )
    }
}

// === free functions ===

/// Runs the comparison; progress goes to stderr, the summary is returned.
pub async fn run(args: CompareArgs) -> anyhow::Result<Value> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut baseline = args.run.clone();
    let baseline_name = if args.baseline_rotel {
        baseline.peer = Peer::Rotel;
        "rotel".to_string()
    } else if let Some(bin) = &args.baseline_bin {
        baseline.gateway_bin = Some(bin.clone());
        bin.display().to_string()
    } else if let Some(scenario) = args.baseline_scenario {
        baseline.scenario = scenario;
        format!("scenario {scenario:?}").to_lowercase()
    } else {
        bail!("name a baseline: --baseline-bin PATH, --baseline-rotel or --baseline-scenario NAME");
    };
    let mut candidates = Vec::new();
    let mut baselines = Vec::new();
    for round in 0..args.rounds {
        let candidate_first = round % 2 == 0;
        for candidate in [candidate_first, !candidate_first] {
            let (which, run_args) =
                if candidate { ("candidate", &args.run) } else { ("baseline ", &baseline) };
            let figures = Figures::of(&run::run(run_args.clone()).await?);
            eprintln!("round {} {which} {}", round + 1, figures.line());
            if candidate { &mut candidates } else { &mut baselines }.push(figures);
        }
    }
    Ok(summary(&candidates, &baselines, &baseline_name))
}

/// Medians of each side and of the per-round ratios (baseline CPU over candidate CPU: above 1 the
/// candidate is cheaper).
fn summary(candidates: &[Figures], baselines: &[Figures], baseline_name: &str) -> Value {
    let side = |runs: &[Figures]| {
        json!({
            "cpu_us_per_span": median(runs.iter().map(|f| f.cpu_us_per_span)),
            "user_us_per_span": median(runs.iter().map(|f| f.user_us_per_span)),
            "system_us_per_span": median(runs.iter().map(|f| f.system_us_per_span)),
            "spans_per_s": median(runs.iter().map(|f| f.spans_per_s)),
            "rss_peak_mib": median(runs.iter().map(|f| f.rss_peak_mib)),
            "p99_ms": median(runs.iter().map(|f| f.p99_ms)),
            "cpu_us_per_span_each": runs.iter().map(|f| f.cpu_us_per_span).collect::<Vec<_>>(),
            "lost_spans": runs.iter().map(|f| f.lost).sum::<u64>(),
            "duplicated_spans": runs.iter().map(|f| f.duplicated).sum::<u64>(),
        })
    };
    let ratios: Vec<f64> = candidates
        .iter()
        .zip(baselines)
        .filter(|(c, _)| c.cpu_us_per_span > 0.0)
        .map(|(c, b)| b.cpu_us_per_span / c.cpu_us_per_span)
        .collect();
    let differences: Vec<f64> =
        candidates.iter().zip(baselines).map(|(c, b)| c.cpu_us_per_span - b.cpu_us_per_span).collect();
    json!({
        "baseline": baseline_name,
        "rounds": candidates.len(),
        "cpu_us_per_span_added_median": median(differences.iter().copied()),
        "candidate": side(candidates),
        "baseline_runs": side(baselines),
        "cpu_ratio_baseline_over_candidate": median(ratios.iter().copied()),
        "cpu_ratio_min": ratios.iter().copied().fold(f64::INFINITY, f64::min),
        "cpu_ratio_max": ratios.iter().copied().fold(0.0, f64::max),
    })
}

pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

/// A human-readable summary.
pub fn table(summary: &Value) -> String {
    let num = |v: &Value, key: &str| v[key].as_f64().unwrap_or(0.0);
    let side = |v: &Value| {
        format!(
            "{:.2} µs/span (user {:.2}, system {:.2}), rss peak {:.1} MiB, p99 {:.0} ms",
            num(v, "cpu_us_per_span"),
            num(v, "user_us_per_span"),
            num(v, "system_us_per_span"),
            num(v, "rss_peak_mib"),
            num(v, "p99_ms"),
        )
    };
    format!(
        "{} rounds, medians\ncandidate: {}\nbaseline ({}): {}\nbaseline / candidate CPU per span: {:.2}x (rounds {:.2}x to {:.2}x); candidate adds {:+.3} µs/span (median per round)\n",
        summary["rounds"],
        side(&summary["candidate"]),
        summary["baseline"].as_str().unwrap_or(""),
        side(&summary["baseline_runs"]),
        num(summary, "cpu_ratio_baseline_over_candidate"),
        num(summary, "cpu_ratio_min"),
        num(summary, "cpu_ratio_max"),
        num(summary, "cpu_us_per_span_added_median"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn figures(cpu: f64) -> Figures {
        Figures {
            cpu_us_per_span: cpu,
            user_us_per_span: cpu / 2.0,
            system_us_per_span: cpu / 2.0,
            spans_per_s: 1000.0,
            rss_peak_mib: 20.0,
            p99_ms: 10.0,
            lost: 0,
            duplicated: 1,
        }
    }

    /// Scenario: three rounds whose costs move with the machine's drift.
    /// Guarantees: the ratio is the median of the per-round ratios (4, 1.2, 0.5 → 1.2), not the ratio
    /// of the two sides' medians (4 / 5 = 0.8); medians of odd and even counts are the middle value
    /// and the mean of the middle two; duplicates are summed.
    #[test]
    fn ratios_are_per_round_medians() {
        let candidates = [figures(1.0), figures(5.0), figures(6.0)];
        let baselines = [figures(4.0), figures(6.0), figures(3.0)];
        let s = summary(&candidates, &baselines, "old");
        assert_eq!(s["cpu_ratio_baseline_over_candidate"], 1.2);
        assert_eq!(s["cpu_ratio_min"], 0.5);
        assert_eq!(s["cpu_ratio_max"], 4.0);
        assert_eq!(s["candidate"]["cpu_us_per_span"], 5.0);
        assert_eq!(s["baseline_runs"]["cpu_us_per_span"], 4.0);
        assert_eq!(s["baseline_runs"]["duplicated_spans"], 3);
        // Per-round differences -3, -1, 3: the median is -1.
        assert_eq!(s["cpu_us_per_span_added_median"], -1.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(table(&s).contains("1.20x (rounds 0.50x to 4.00x)"), "{}", table(&s));
    }
}
