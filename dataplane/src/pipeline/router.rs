//! The set of running pipelines, published through `arc-swap`: receivers read it without a lock, and a
//! new snapshot replaces it atomically. Pipelines whose configuration did not change are carried over
//! with their queues and in-flight batches; a removed or changed pipeline drains in the background once
//! the last receiver holding the old table lets go of it, so a reload loses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracegw_contract::Snapshot;

use super::{DrainReport, Pipeline, PipelineSettings, queue_share};
use crate::export::BuildError;
use crate::metrics::{Metrics, gauge_value};

/// What receivers see: the pipelines of one snapshot.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Snapshot version.
    pub version: u64,
    /// Whether any snapshot was applied yet.
    pub loaded: bool,
    /// Running pipelines, in name order.
    pub pipelines: Vec<Arc<Pipeline>>,
}

/// Routes requests to pipelines and owns their tasks.
#[derive(Debug)]
pub struct Router {
    table: ArcSwap<RouteTable>,
    settings: PipelineSettings,
    metrics: Metrics,
    hard_stop: CancellationToken,
    tasks: Mutex<JoinSet<DrainReport>>,
}

/// The effect of applying a snapshot.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Pipelines started (new or changed).
    pub started: Vec<String>,
    /// Pipelines kept running as they were.
    pub kept: Vec<String>,
    /// Pipelines removed; they drain in the background.
    pub stopped: Vec<String>,
    /// Pipelines whose exporter could not be built (e.g. unusable TLS material).
    pub failed: Vec<(String, BuildError)>,
}

// === impl Router ===

impl Router {
    /// A router with no pipelines yet.
    pub fn new(settings: PipelineSettings, metrics: Metrics) -> Self {
        Self {
            table: ArcSwap::from_pointee(RouteTable::default()),
            settings,
            metrics,
            hard_stop: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// The current table; cheap and lock-free, for the hot path.
    pub fn load(&self) -> arc_swap::Guard<Arc<RouteTable>> {
        self.table.load()
    }

    /// Swaps in the pipelines of `snapshot`. Called by one writer at a time.
    pub fn apply(&self, snapshot: &Snapshot) -> ApplyReport {
        let current = self.table.load_full();
        let mut report = ApplyReport::default();
        let mut pipelines = Vec::with_capacity(snapshot.pipelines.len());
        let share = queue_share(&self.settings, snapshot.pipelines.len());
        for config in &snapshot.pipelines {
            if let Some(existing) = current.pipelines.iter().find(|p| p.config() == config) {
                pipelines.push(Arc::clone(existing));
                report.kept.push(config.name.clone());
                continue;
            }
            let stop = self.hard_stop.child_token();
            match Pipeline::spawn(config.clone(), &self.settings, share, &self.metrics, stop) {
                Ok((pipeline, task)) => {
                    self.track(task);
                    pipelines.push(pipeline);
                    report.started.push(config.name.clone());
                }
                Err(e) => report.failed.push((config.name.clone(), e)),
            }
        }
        for old in &current.pipelines {
            if !pipelines.iter().any(|p| Arc::ptr_eq(p, old)) {
                report.stopped.push(old.config().name.clone());
            }
        }
        let running = pipelines.len();
        // The budget is divided among the pipelines that run; pipelines kept from the last table take
        // their new share too.
        let share = queue_share(&self.settings, running);
        for pipeline in &pipelines {
            pipeline.set_queue_share(share);
        }
        self.table.store(Arc::new(RouteTable { version: snapshot.version, loaded: true, pipelines }));
        self.metrics.pipelines_running.set(running as i64);
        self.metrics.config_version.set(gauge_value(snapshot.version));
        report
    }

    fn track(&self, task: tokio::task::JoinHandle<DrainReport>) {
        let Ok(mut tasks) = self.tasks.lock() else { return };
        // Reap tasks that already ended so the set does not grow with every reload.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { task.await.unwrap_or_default() });
    }

    /// Stops routing, lets every pipeline flush and drain for up to `grace`, then stops the rest and
    /// returns what each pipeline could not send.
    pub async fn shutdown(&self, grace: Duration) -> Vec<DrainReport> {
        self.table.store(Arc::new(RouteTable { loaded: false, ..RouteTable::default() }));
        let mut tasks = match self.tasks.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(_) => return Vec::new(),
        };
        let mut reports = Vec::new();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            tokio::select! {
                next = tasks.join_next() => match next {
                    Some(Ok(report)) => reports.push(report),
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline), if !self.hard_stop.is_cancelled() => {
                    self.hard_stop.cancel();
                }
            }
        }
        reports
    }
}
