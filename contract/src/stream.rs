//! How snapshots travel from the control plane to the gateways.
//!
//! A gateway opens one long-lived request, `GET /v1/snapshots?after=<version>` with
//! `Authorization: Bearer <token>`, and reads newline-delimited JSON [`Snapshot`]s from the response
//! body: at once the current one if it is newer than `after`, then each new version as it is made.
//! Nothing is polled, so a thousand gateways cost the manager a thousand idle connections and one
//! serialisation per change. Snapshots carry credentials, hence the token; a wrong one gets 401.
//!
//! The other way, each gateway posts its counters ([`GatewayReport`]) to `POST /v1/reports` every
//! [`REPORT_INTERVAL`], with the same token. The manager derives each pipeline's flow health from
//! them, so no Prometheus has to run for it: a thousand gateways make about 70 small requests a
//! second.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Snapshot;

/// The path gateways subscribe to.
pub const SNAPSHOTS_PATH: &str = "/v1/snapshots";
/// Query parameter naming the newest version the subscriber already has.
pub const AFTER_PARAM: &str = "after";
/// The path gateways post their counters to.
pub const REPORTS_PATH: &str = "/v1/reports";
/// How often a gateway reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(15);
/// The largest report body the manager reads.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// One gateway's cumulative counters since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    /// The gateway's name (its pod name in a cluster).
    pub gateway: String,
    /// Random per process: counters restart from zero with a new one.
    pub boot_id: String,
    /// Seconds since the process started, so a receiver that sees a gateway for the first time can
    /// tell counters that grew recently from counters that grew long ago.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// The snapshot version the gateway runs.
    pub snapshot_version: u64,
    /// Spans refused to clients because no pipeline could take them (back-pressure).
    pub refused_spans: u64,
    /// Per pipeline.
    #[serde(default)]
    pub pipelines: Vec<PipelineCounters>,
}

/// One pipeline's cumulative counters in one gateway; the Collector's exporter metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineCounters {
    /// Pipeline name.
    pub name: String,
    /// Spans the backend accepted.
    pub sent_spans: u64,
    /// Spans given up on after trying.
    pub send_failed_spans: u64,
    /// Spans dropped because the pipeline's queue was full.
    pub enqueue_failed_spans: u64,
}

/// One line of the stream.
pub fn encode_line(snapshot: &Snapshot) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(snapshot)?;
    line.push(b'\n');
    Ok(line)
}

/// Parses one line of the stream.
pub fn decode_line(line: &[u8]) -> Result<Snapshot, serde_json::Error> {
    serde_json::from_slice(line)
}

/// Compares a presented token with the expected one without leaking, through timing, how much of it
/// matched.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a snapshot goes through the line encoding.
    /// Guarantees: it comes back equal, on exactly one line.
    #[test]
    fn line_round_trip() {
        let s = Snapshot { version: 3, ..Snapshot::default() };
        let line = encode_line(&s).unwrap();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(decode_line(&line[..line.len() - 1]).unwrap(), s);
    }

    #[test]
    fn tokens() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
    }
}
