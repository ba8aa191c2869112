//! Local mode: TracePipeline and Secret YAML files on disk become snapshots.
//!
//! The path is re-read on an interval and compared by content. Polling rather than `notify`: Kubernetes
//! updates mounted ConfigMaps and Secrets by swapping a `..data` symlink, which inotify-based watchers
//! are known to miss, and reading a few small files once a second costs nothing measurable.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracegw_contract::{Reason, Resolution};

use crate::admin::{Health, PipelineState};
use crate::metrics::Metrics;
use crate::pipeline::Router;

/// Watches a pipelines path and applies every change.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    router: Arc<Router>,
    health: Arc<Health>,
    metrics: Metrics,
    changes: ChangeDetector,
    version: u64,
}

/// Tells when the files under a path changed and then stayed the same for one poll.
#[derive(Debug, Default)]
pub struct ChangeDetector {
    fingerprint: Option<u64>,
    candidate: Option<u64>,
}

/// What one poll of a path found.
#[derive(Debug)]
pub enum Change {
    /// Nothing new to apply.
    None,
    /// New, settled content to read and apply.
    Settled,
    /// The path cannot be read; reported once per outage.
    Unreadable(tracegw_contract::load::LoadError),
}

// === impl ChangeDetector ===

impl ChangeDetector {
    /// Polls `path`. The first successful read counts as settled at once (start-up); later changes
    /// must stay the same for one interval, because an editor or `kubectl cp` may be halfway through
    /// writing and a half-written file can still be valid YAML that lacks pipelines.
    pub fn poll(&mut self, path: &Path) -> Change {
        let fingerprint = match fingerprint(path) {
            Ok(f) => f,
            Err(e) => {
                if self.fingerprint == Some(0) {
                    return Change::None;
                }
                self.fingerprint = Some(0);
                return Change::Unreadable(e);
            }
        };
        if self.fingerprint == Some(fingerprint) {
            return Change::None;
        }
        if self.candidate != Some(fingerprint) && self.fingerprint.is_some() {
            self.candidate = Some(fingerprint);
            return Change::None;
        }
        self.candidate = None;
        self.fingerprint = Some(fingerprint);
        Change::Settled
    }
}

// === impl FileSource ===

impl FileSource {
    /// A source for `path`; nothing is read until [`FileSource::poll`].
    pub fn new(path: PathBuf, router: Arc<Router>, health: Arc<Health>, metrics: Metrics) -> Self {
        Self { path, router, health, metrics, changes: ChangeDetector::default(), version: 0 }
    }

    /// Reads the path and applies it if it changed. Returns whether a snapshot was applied.
    pub fn poll(&mut self) -> bool {
        match self.changes.poll(&self.path) {
            Change::None => return false,
            Change::Unreadable(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot read pipelines; keeping the configuration in force");
                self.metrics.reloaded(false);
                return false;
            }
            Change::Settled => {}
        }
        let resolution = match tracegw_contract::resolve_path(&self.path, self.version + 1) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "invalid pipelines file; keeping the configuration in force");
                self.metrics.reloaded(false);
                return false;
            }
        };
        self.version += 1;
        self.apply(resolution);
        self.metrics.reloaded(true);
        true
    }

    fn apply(&self, resolution: Resolution) {
        let report = self.router.apply(&resolution.snapshot);
        let mut states = Vec::new();
        for status in &resolution.statuses {
            match &status.result {
                Ok(()) => {
                    let failed = report.failed.iter().find(|(n, _)| *n == status.name);
                    match failed {
                        Some((_, e)) => {
                            tracing::error!(pipeline = %status.name, reason = Reason::TlsConfigurationInvalid.as_str(), field = "spec.output.otlp.tls", error = %e, "pipeline not started");
                            states.push(PipelineState {
                                name: status.name.clone(),
                                running: false,
                                reason: Some(Reason::TlsConfigurationInvalid.as_str().into()),
                                message: Some(format!("TLS configuration invalid: {e}")),
                            });
                        }
                        None => states.push(PipelineState {
                            name: status.name.clone(),
                            running: true,
                            reason: None,
                            message: None,
                        }),
                    }
                }
                Err(e) => {
                    tracing::error!(pipeline = %status.name, reason = e.reason.as_str(), field = %e.field, message = %e.message, "pipeline is invalid and does not run");
                    states.push(PipelineState {
                        name: status.name.clone(),
                        running: false,
                        reason: Some(e.reason.as_str().into()),
                        message: Some(e.to_string()),
                    });
                }
            }
        }
        let invalid = states.iter().filter(|s| !s.running).count();
        self.metrics.pipelines_invalid.set(invalid as i64);
        tracing::info!(
            version = resolution.snapshot.version,
            started = ?report.started, kept = ?report.kept, stopped = ?report.stopped, invalid,
            "configuration applied"
        );
        self.health.set_statuses(states);
        self.health.set_configured();
    }

    /// Polls until `stop` fires.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        every(interval, stop, || {
            self.poll();
        })
        .await;
    }
}

/// Calls `tick` every `interval` (late ticks are delayed, not bunched) until `stop` fires.
pub async fn every(interval: Duration, stop: CancellationToken, mut tick: impl FnMut()) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => tick(),
        }
    }
}

/// A hash of the names and contents of the files that would be read.
fn fingerprint(path: &Path) -> Result<u64, tracegw_contract::load::LoadError> {
    let mut hasher = DefaultHasher::new();
    for file in tracegw_contract::load::files(path)? {
        file.hash(&mut hasher);
        let content = std::fs::read(&file)
            .map_err(|source| tracegw_contract::load::LoadError::Io { path: file.clone(), source })?;
        content.hash(&mut hasher);
    }
    // Zero marks "unreadable"; a real fingerprint is never zero.
    Ok(hasher.finish() | 1)
}
