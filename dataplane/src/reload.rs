//! Local mode: TracePipeline and Secret YAML files on disk become snapshots. A `Telemetry` named
//! `default` among them sets the enrichment as the control plane's snapshots do.
//!
//! The path is re-read on an interval and compared by content. Polling rather than `notify`: Kubernetes
//! updates mounted ConfigMaps and Secrets by swapping a `..data` symlink, which inotify-based watchers
//! are known to miss, and reading a few small files once a second costs nothing measurable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::load::{Change, ChangeDetector};
use tracegw_contract::{EnrichmentSettings, Resolution};

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
    /// Where the `default` Telemetry's settings go, for the pod index.
    settings: Option<watch::Sender<Option<EnrichmentSettings>>>,
}

// === impl FileSource ===

impl FileSource {
    /// A source for `path`; nothing is read until [`FileSource::poll`].
    pub fn new(path: PathBuf, router: Arc<Router>, health: Arc<Health>, metrics: Metrics) -> Self {
        Self { path, router, health, metrics, changes: ChangeDetector::default(), version: 0, settings: None }
    }

    /// Also publishes the enrichment settings of the `default` Telemetry in the files to `settings`
    /// (`None` while the files hold none, so the flags apply).
    pub fn with_settings(mut self, settings: watch::Sender<Option<EnrichmentSettings>>) -> Self {
        self.settings = Some(settings);
        self
    }

    fn apply_telemetry(&self) {
        let Some(tx) = &self.settings else { return };
        let next = match tracegw_contract::telemetry::default_in(&self.path) {
            Ok(Some(Ok(t))) => Some(t.settings().to_enrichment()),
            Ok(Some(Err(broken))) => {
                tracing::error!(path = %broken.source.display(), field = %broken.field, error = %broken.message, "the Telemetry is not valid; enriching by the flags");
                None
            }
            Ok(None) => None,
            // The pipelines just read; a file that vanished since is read again at the next change.
            Err(_) => return,
        };
        tx.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                tracing::info!(settings = ?next, "enrichment settings from the Telemetry");
                *current = next;
            }
            changed
        });
    }

    /// Reads the path and applies it if it changed. Returns whether a snapshot was applied.
    pub fn poll(&mut self) -> bool {
        match self.changes.poll(&self.path) {
            Change::None => return false,
            Change::Unreadable(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot read pipelines; keeping the configuration in force");
                self.health.set_waiting_for(e.to_string());
                self.metrics.reloaded(false);
                return false;
            }
            Change::Settled => {}
        }
        let resolution = match tracegw_contract::resolve_path(
            &self.path,
            tracegw_contract::ResolveOptions::at_version(self.version + 1),
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "invalid pipelines file; keeping the configuration in force");
                self.health.set_waiting_for(format!("invalid pipelines file: {e}"));
                self.metrics.reloaded(false);
                return false;
            }
        };
        self.version += 1;
        self.apply(resolution);
        self.apply_telemetry();
        self.metrics.reloaded(true);
        true
    }

    fn apply(&self, resolution: Resolution) {
        apply(&self.router, &self.health, &self.metrics, resolution);
    }

    /// Polls until `stop` fires.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        every(interval, stop, || {
            self.poll();
        })
        .await;
    }
}

/// Swaps in a snapshot and publishes every pipeline's state; shared by every config source.
pub fn apply(router: &Router, health: &Health, metrics: &Metrics, resolution: Resolution) {
    let report = router.apply(&resolution.snapshot);
    let mut states = Vec::new();
    for status in &resolution.statuses {
        match &status.result {
            Ok(_) => {
                let failed = report.failed.iter().find(|(n, _)| *n == status.name);
                match failed {
                    Some((_, crate::export::BuildError::Processing(e))) => {
                        tracing::error!(pipeline = %status.name, reason = e.reason.as_str(), field = %e.field, message = %e.message, "pipeline not started");
                        states.push(PipelineState {
                            name: status.name.clone(),
                            running: false,
                            reason: Some(e.reason.as_str().into()),
                            message: Some(e.to_string()),
                        });
                    }
                    Some((_, e)) => {
                        let (reason, field) = e.reason();
                        tracing::error!(pipeline = %status.name, reason = reason.as_str(), field, error = %e, "pipeline not started");
                        let message = match e {
                            crate::export::BuildError::Tls(_) => format!("TLS configuration invalid: {e}"),
                            _ => e.to_string(),
                        };
                        states.push(PipelineState {
                            name: status.name.clone(),
                            running: false,
                            reason: Some(reason.as_str().into()),
                            message: Some(message),
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
    metrics.pipelines_invalid.set(invalid as i64);
    tracing::info!(
        version = resolution.snapshot.version,
        started = ?report.started, kept = ?report.kept, stopped = ?report.stopped, invalid,
        "configuration applied"
    );
    health.set_statuses(states);
    health.set_pipelines_running(report.started.len() + report.kept.len());
    health.set_configured();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: the gateway starts on a pipelines path that does not exist.
    /// Guarantees: it is not ready, and says it cannot read that path and why.
    #[tokio::test]
    async fn an_unreadable_path_is_the_reason_for_not_being_ready() {
        let metrics = Metrics::default();
        let router = Arc::new(Router::new(crate::pipeline::PipelineSettings::default(), metrics.clone()));
        let health = Arc::new(Health::default());
        health.set_listening();
        let path = PathBuf::from("/nonexistent/otlp-gateway-pipelines.yaml");
        let mut source = FileSource::new(path, router, Arc::clone(&health), metrics);
        assert!(!source.poll());
        let reason = health.not_ready_reason().unwrap_or_default();
        assert!(
            reason.starts_with(
                "no configuration loaded yet: cannot read /nonexistent/otlp-gateway-pipelines.yaml: "
            ),
            "{reason}"
        );
        assert!(reason.contains("No such file"), "{reason}");
    }

    /// Scenario: a gateway on a pipelines file with one pipeline, then the file emptied, then a
    /// pipeline whose endpoint is invalid, then a valid one again.
    /// Guarantees: with no pipeline running it is not ready, and `/readyz` and `/status` say that no
    /// TracePipeline is configured (or that none of those configured runs) and that exports are
    /// refused; with a pipeline running it is ready again.
    #[tokio::test]
    async fn no_running_pipeline_is_the_reason_for_not_being_ready() {
        let metrics = Metrics::default();
        let router = Arc::new(Router::new(crate::pipeline::PipelineSettings::default(), metrics.clone()));
        let health = Arc::new(Health::default());
        health.set_listening();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipelines.yaml");
        let pipeline = |endpoint: &str| {
            format!(
                "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: p\nspec:\n  output:\n    otlp:\n      endpoint:\n        value: {endpoint}\n"
            )
        };
        let mut source = FileSource::new(path.clone(), Arc::clone(&router), Arc::clone(&health), metrics);
        let mut step = |content: String| {
            std::fs::write(&path, content).unwrap();
            // The detector applies a change once the file has stayed the same for one more poll.
            for _ in 0..3 {
                if source.poll() {
                    return;
                }
            }
            panic!("the change was not applied");
        };
        step(pipeline("http://127.0.0.1:4317"));
        assert_eq!(health.not_ready_reason(), None);
        step(String::new());
        assert_eq!(router.load().pipelines.len(), 0);
        assert_eq!(
            health.not_ready_reason().as_deref(),
            Some("no TracePipeline is configured: every export is refused with 503 / UNAVAILABLE")
        );
        assert!(!health.is_ready());
        step(pipeline("not a url"));
        let reason = health.not_ready_reason().unwrap_or_default();
        assert!(reason.starts_with("none of the 1 configured TracePipelines runs"), "{reason}");
        step(pipeline("http://127.0.0.1:4318"));
        assert_eq!(health.not_ready_reason(), None);
        router.shutdown(Duration::ZERO).await;
    }
}
