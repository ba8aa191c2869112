//! `loadtest sweep SCENARIO --rates R1,R2,…`: the forwarder's CPU per span at several offered loads,
//! for our gateway and, with `--with-rotel`, for rotel on the same load, the two interleaved at
//! each rate (ABBA over the rounds, as `loadtest compare` does). Prints one JSON document, which
//! `loadtest plot cpu` draws.

use anyhow::bail;
use serde_json::{Value, json};

use crate::compare::median;
use crate::run::{self, Peer, RunArgs};

/// Flags of `loadtest sweep`.
#[derive(Clone, Debug, clap::Args)]
pub struct SweepArgs {
    /// The runs: scenario, load shape and gateway binary, as for `loadtest run` (its `--rate` is
    /// replaced by each of `--rates`).
    #[command(flatten)]
    pub run: RunArgs,
    /// Offered loads in spans/s, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rates: Vec<u64>,
    /// Run rotel (`--rotel-bin`) on the same load at each rate too.
    #[arg(long)]
    pub with_rotel: bool,
    /// Runs per forwarder and rate; the point is their median.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

// === free functions ===

/// Runs the sweep; progress goes to stderr, the result is returned.
pub async fn run(args: SweepArgs) -> anyhow::Result<Value> {
    if args.rounds == 0 || args.rates.is_empty() {
        bail!("--rounds must be at least 1 and --rates name at least one rate");
    }
    let peers: &[Peer] = if args.with_rotel { &[Peer::Gateway, Peer::Rotel] } else { &[Peer::Gateway] };
    let mut points = Vec::new();
    for &rate in &args.rates {
        let mut results: Vec<Vec<Value>> = vec![Vec::new(); peers.len()];
        for round in 0..args.rounds {
            let mut order: Vec<usize> = (0..peers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let run_args = RunArgs { rate, peer: peers[i], ..args.run.clone() };
                let result = run::run(run_args).await?;
                eprintln!(
                    "rate {rate} round {} {:<7} {:.2} µs/span at {:.0} spans/s",
                    round + 1,
                    peer_name(peers[i]),
                    result["forwarder_cpu_us_per_span"].as_f64().unwrap_or(0.0),
                    result["achieved_spans_per_s"].as_f64().unwrap_or(0.0),
                );
                results[i].push(result);
            }
        }
        for (peer, runs) in peers.iter().zip(&results) {
            points.push(point(*peer, rate, runs));
        }
    }
    let shape = args.run.scenario.shape(&args.run.shape);
    Ok(json!({
        "scenario": format!("{:?}", args.run.scenario).to_lowercase(),
        "protocol": shape.protocol,
        "spans_per_request": shape.spans_per_request,
        "attributes": shape.attributes,
        "attribute_bytes": shape.attribute_bytes,
        "random_values": shape.random_values,
        "rounds": args.rounds,
        "points": points,
    }))
}

fn peer_name(peer: Peer) -> &'static str {
    match peer {
        Peer::Gateway => "gateway",
        Peer::Rotel => "rotel",
    }
}

/// One forwarder at one rate: the medians of its runs, and each run's CPU per span.
fn point(peer: Peer, rate: u64, runs: &[Value]) -> Value {
    let each = |key: &str| runs.iter().map(|r| r[key].as_f64().unwrap_or(0.0)).collect::<Vec<_>>();
    let med = |key: &str| median(each(key).into_iter());
    json!({
        "peer": peer_name(peer),
        "offered_spans_per_s": rate,
        "achieved_spans_per_s": med("achieved_spans_per_s"),
        "cpu_us_per_span": med("forwarder_cpu_us_per_span"),
        "user_us_per_span": med("forwarder_user_us_per_span"),
        "system_us_per_span": med("forwarder_system_us_per_span"),
        "rss_peak_mib": med("rss_peak_mib"),
        "latency_p99_us": med("latency_p99_us"),
        "cpu_us_per_span_each": each("forwarder_cpu_us_per_span"),
        "lost_spans": runs.iter().map(|r| r["lost_spans"].as_u64().unwrap_or(0)).sum::<u64>(),
    })
}

/// A human-readable table of a sweep.
pub fn table(sweep: &Value) -> String {
    let mut out = format!(
        "{} ({} spans/request, {} attributes of {} bytes), medians of {} round(s)\n",
        sweep["scenario"].as_str().unwrap_or(""),
        sweep["spans_per_request"],
        sweep["attributes"],
        sweep["attribute_bytes"],
        sweep["rounds"],
    );
    for p in sweep["points"].as_array().into_iter().flatten() {
        let num = |key: &str| p[key].as_f64().unwrap_or(0.0);
        out += &format!(
            "{:<8} offered {:>8.0}  achieved {:>8.0} spans/s  cpu {:6.2} µs/span (user {:.2}, system {:.2})  rss peak {:5.1} MiB  lost {}\n",
            p["peer"].as_str().unwrap_or(""),
            num("offered_spans_per_s"),
            num("achieved_spans_per_s"),
            num("cpu_us_per_span"),
            num("user_us_per_span"),
            num("system_us_per_span"),
            num("rss_peak_mib"),
            p["lost_spans"],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: three runs of one forwarder at one rate.
    /// Guarantees: the point holds the medians and every run's CPU per span, and sums the losses.
    #[test]
    fn a_point_is_the_median_of_its_runs() {
        let run = |cpu: f64, lost: u64| json!({"forwarder_cpu_us_per_span": cpu, "achieved_spans_per_s": 1000.0 * cpu, "lost_spans": lost});
        let p = point(Peer::Rotel, 50_000, &[run(3.0, 0), run(1.0, 2), run(2.0, 0)]);
        assert_eq!(p["peer"], "rotel");
        assert_eq!(p["offered_spans_per_s"], 50_000);
        assert_eq!(p["cpu_us_per_span"], 2.0);
        assert_eq!(p["achieved_spans_per_s"], 2000.0);
        assert_eq!(p["cpu_us_per_span_each"], json!([3.0, 1.0, 2.0]));
        assert_eq!(p["lost_spans"], 2);
        let t = table(&json!({"scenario": "gzip", "rounds": 3, "points": [p]}));
        assert!(t.contains("rotel    offered    50000"), "{t}");
    }
}
