//! Local mode: Pod, Node, Namespace and ConfigMap objects from YAML files (`--pods PATH`), re-read when
//! they change, feeding the pod index as a cluster watch would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Enricher;
use super::index::{IndexConfig, PodStore};
use super::pods::{ClusterMeta, NodeMeta, PodMeta};
use super::settings::{SettingsRx, effective};
use tracegw_contract::load::{Change, ChangeDetector};

/// Feeds the index from files.
#[derive(Debug)]
pub struct PodFileSource {
    path: PathBuf,
    enricher: Arc<Enricher>,
    store: PodStore,
    node_name: Option<String>,
    changes: ChangeDetector,
    base: IndexConfig,
    settings: Option<SettingsRx>,
    /// Cluster facts pushed by the control plane; they win over the files'.
    pushed_cluster: Option<ClusterMeta>,
    /// The service mode of the gateway's flags, in force while no settings say otherwise.
    flag_mode: super::ServiceMode,
}

// === impl PodFileSource ===

impl PodFileSource {
    /// A source for `path`; nothing is read until [`PodFileSource::poll`].
    pub fn new(
        path: PathBuf,
        enricher: Arc<Enricher>,
        config: IndexConfig,
        settings: Option<SettingsRx>,
    ) -> Self {
        let node_name = config.node_name.clone();
        let flag_mode = enricher.mode();
        Self {
            path,
            enricher,
            store: PodStore::new(config.clone()),
            node_name,
            changes: ChangeDetector::default(),
            base: config,
            settings,
            pushed_cluster: None,
            flag_mode,
        }
    }

    /// Applies settings pushed since the last poll; a change of label rules re-reads the files.
    fn apply_settings(&mut self) {
        let Some(rx) = self.settings.as_mut() else { return };
        if !rx.has_changed().unwrap_or(false) {
            return;
        }
        let e = effective(&self.base, rx.borrow_and_update().as_ref());
        self.enricher.set_mode(e.mode.unwrap_or(self.flag_mode));
        self.pushed_cluster = e.cluster;
        if let Some(c) = &self.pushed_cluster {
            self.store.set_cluster(c.clone());
        }
        self.store.reconfigure(e.config);
        // Read the files again: dropped labels may be wanted now, and the index must be republished.
        self.changes = ChangeDetector::default();
    }

    /// Applies a change of the files and expires deleted pods; publishes when anything changed.
    pub fn poll(&mut self) {
        self.apply_settings();
        let now = Instant::now();
        match self.changes.poll(&self.path) {
            Change::None => {}
            Change::Unreadable(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot read pods; keeping the index in force");
            }
            Change::Settled => {
                // Each document is reduced to the few fields enrichment uses as soon as it is read.
                let mut pods = Vec::new();
                let mut nodes = Vec::new();
                let mut cluster = ClusterMeta::default();
                let read = tracegw_contract::load::visit_path(&self.path, |v| {
                    if let Some(p) = PodMeta::from_object(&v) {
                        pods.push(p);
                    } else if let Some(n) = NodeMeta::from_object(&v) {
                        nodes.push(n);
                    } else {
                        cluster.observe(&v);
                    }
                });
                match read {
                    Ok(()) => {
                        let node = match &self.node_name {
                            Some(name) => nodes.into_iter().find(|n| &n.name == name),
                            None if nodes.len() == 1 => nodes.pop(),
                            None => None,
                        };
                        self.store.set_node(node);
                        self.store.set_cluster(self.pushed_cluster.clone().unwrap_or(cluster));
                        self.store.replace_all(pods, now);
                        self.store.sweep(now);
                        let index = self.store.snapshot();
                        tracing::info!(pods = index.pods, "pod index loaded");
                        self.enricher.publish(index);
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, "invalid pods file; keeping the index in force"),
                }
            }
        }
        if self.store.sweep(now) > 0 {
            self.enricher.publish(self.store.snapshot());
        }
    }

    /// Polls until `stop` fires.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        crate::reload::every(interval, stop, || self.poll()).await;
    }
}
