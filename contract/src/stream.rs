//! How snapshots travel from the control plane to the gateways.
//!
//! A gateway opens one long-lived request, `GET /v1/snapshots?after=<version>` with
//! `Authorization: Bearer <token>`, and reads newline-delimited JSON [`Snapshot`]s from the response
//! body: at once the current one if it is newer than `after`, then each new version as it is made.
//! Nothing is polled, so a thousand gateways cost the manager a thousand idle connections and one
//! serialisation per change. Snapshots carry credentials, hence the token; a wrong one gets 401.

use crate::Snapshot;

/// The path gateways subscribe to.
pub const SNAPSHOTS_PATH: &str = "/v1/snapshots";
/// Query parameter naming the newest version the subscriber already has.
pub const AFTER_PARAM: &str = "after";

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
        let s = Snapshot { version: 3, pipelines: vec![] };
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
