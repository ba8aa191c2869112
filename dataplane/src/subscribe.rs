//! Config from the control plane: one long-lived, authenticated stream of versioned snapshots
//! (`tracegw_contract::stream`). Each newer snapshot is applied atomically; when the manager cannot be
//! reached the gateway keeps running its last good snapshot and reconnects with backoff, asking only
//! for versions newer than the one it has.
//!
//! In a cluster the manager also stores its latest snapshot in the Secret mounted into the gateway
//! (`--snapshot-file`). A gateway that starts while the manager is away runs that copy, and while
//! disconnected it picks up newer copies as the kubelet refreshes the mount.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::header::AUTHORIZATION;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::stream::{AFTER_PARAM, SNAPSHOTS_PATH, decode_line};
use tracegw_contract::{EnrichmentSettings, Generated, PipelineStatus, Resolution, Snapshot};

use crate::admin::Health;
use crate::link::ManagerLink;
use crate::metrics::Metrics;
use crate::pipeline::Router;

/// First reconnect delay; doubles up to [`MAX_RECONNECT_DELAY`].
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(200);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);
/// The longest snapshot line accepted.
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Follows the manager's snapshot stream.
#[derive(Debug)]
pub struct Subscriber {
    /// The manager; the token and certificate are re-read on every connection, so a rotation is
    /// picked up.
    pub link: ManagerLink,
    /// The manager's stored copy of its latest snapshot, if mounted.
    pub snapshot_file: Option<PathBuf>,
    /// Where snapshots go.
    pub router: Arc<Router>,
    /// Readiness and `/status`.
    pub health: Arc<Health>,
    /// Reload counters.
    pub metrics: Metrics,
    /// Where pushed enrichment settings go.
    pub settings: watch::Sender<Option<EnrichmentSettings>>,
}

// === impl Subscriber ===

impl Subscriber {
    /// Runs until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        let mut version = 0u64;
        let mut delay = FIRST_RECONNECT_DELAY;
        self.health
            .set_waiting_for(format!("waiting for the first snapshot from the manager at {}", self.link.url));
        loop {
            self.apply_stored(&mut version);
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                outcome = self.follow(&mut version) => outcome,
            };
            match outcome {
                Ok(()) => {
                    tracing::warn!(url = %self.link.url, version, "snapshot stream ended; reconnecting");
                    delay = FIRST_RECONNECT_DELAY;
                }
                Err(e) => {
                    tracing::warn!(url = %self.link.url, version, error = %e, ?delay, "snapshot stream failed; keeping the configuration in force");
                    self.health.set_waiting_for(format!(
                        "no snapshot from the manager at {} yet ({e}); retrying",
                        self.link.url
                    ));
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    /// Applies the stored copy if it is newer than what runs.
    fn apply_stored(&self, version: &mut u64) {
        let Some(path) = &self.snapshot_file else { return };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the stored snapshot");
                return;
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<Snapshot>(&text) {
            Ok(s) if s.version > *version => {
                tracing::info!(version = s.version, path = %path.display(), "applying the stored snapshot");
                *version = s.version;
                self.apply(s);
                self.metrics.reloaded(true);
            }
            Ok(_) => {}
            Err(e) => {
                self.metrics.reloaded(false);
                tracing::warn!(path = %path.display(), error = %e, "the stored snapshot is unreadable; ignoring it");
            }
        }
    }

    fn apply(&self, snapshot: Snapshot) {
        if let Some(e) = &snapshot.enrichment {
            self.settings.send_if_modified(|current| {
                let changed = current.as_ref() != Some(e);
                if changed {
                    *current = Some(e.clone());
                }
                changed
            });
        }
        let statuses = snapshot
            .pipelines
            .iter()
            .map(|p| PipelineStatus { name: p.name.clone(), result: Ok(Generated::default()) })
            .collect();
        crate::reload::apply(
            &self.router,
            &self.health,
            &self.metrics,
            Resolution { snapshot, statuses, next_check: None },
        );
    }

    /// One connection: applies snapshots until the stream ends.
    async fn follow(&self, version: &mut u64) -> Result<(), String> {
        let client = self.link.client::<Empty<bytes::Bytes>>()?;
        let auth = self.link.authorization()?;
        let uri: Uri =
            format!("{}{SNAPSHOTS_PATH}?{AFTER_PARAM}={version}", self.link.url.trim_end_matches('/'))
                .parse()
                .map_err(|e| format!("invalid snapshot URL: {e}"))?;
        let request =
            Request::get(uri).header(AUTHORIZATION, auth).body(Empty::new()).map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| crate::link::unreachable(&e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err("the manager refused our token".into()),
            other => return Err(format!("the manager answered {other}")),
        }
        let mut body = response.into_body();
        let mut pending = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("stream broken: {e}"))?;
            let Ok(data) = frame.into_data() else { continue };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line = pending.split_to(end + 1);
                let snapshot = match decode_line(&line[..end]) {
                    Ok(s) => s,
                    Err(e) => {
                        self.metrics.reloaded(false);
                        return Err(format!("undecodable snapshot: {e}"));
                    }
                };
                if snapshot.version <= *version {
                    continue;
                }
                *version = snapshot.version;
                self.apply(snapshot);
                self.metrics.reloaded(true);
            }
            if pending.remaining() > MAX_LINE_BYTES {
                return Err("snapshot line too long".into());
            }
        }
        Ok(())
    }
}
