//! Local mode: Pod, Node, Namespace and ConfigMap objects from YAML files (`--pods PATH`), re-read when
//! they change, feeding the pod index as a cluster watch would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Enricher;
use super::index::{IndexConfig, PodStore};
use super::pods::{ClusterMeta, NodeMeta, PodMeta};
use tracegw_contract::load::{Change, ChangeDetector};

/// Feeds the index from files.
#[derive(Debug)]
pub struct PodFileSource {
    path: PathBuf,
    enricher: Arc<Enricher>,
    store: PodStore,
    node_name: Option<String>,
    changes: ChangeDetector,
}

// === impl PodFileSource ===

impl PodFileSource {
    /// A source for `path`; nothing is read until [`PodFileSource::poll`].
    pub fn new(path: PathBuf, enricher: Arc<Enricher>, config: IndexConfig) -> Self {
        let node_name = config.node_name.clone();
        Self { path, enricher, store: PodStore::new(config), node_name, changes: ChangeDetector::default() }
    }

    /// Applies a change of the files and expires deleted pods; publishes when anything changed.
    pub fn poll(&mut self) {
        let now = Instant::now();
        match self.changes.poll(&self.path) {
            Change::None => {}
            Change::Unreadable(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot read pods; keeping the index in force");
            }
            Change::Settled => match tracegw_contract::load::load_path(&self.path) {
                Ok(objects) => {
                    let mut pods = Vec::new();
                    let mut nodes = Vec::new();
                    let mut cluster = ClusterMeta::default();
                    for v in &objects.others {
                        if let Some(p) = PodMeta::from_object(v) {
                            pods.push(p);
                        } else if let Some(n) = NodeMeta::from_object(v) {
                            nodes.push(n);
                        } else {
                            cluster.observe(v);
                        }
                    }
                    let node = match &self.node_name {
                        Some(name) => nodes.into_iter().find(|n| &n.name == name),
                        None if nodes.len() == 1 => nodes.pop(),
                        None => None,
                    };
                    self.store.set_node(node);
                    self.store.set_cluster(cluster);
                    self.store.replace_all(pods, now);
                    self.store.sweep(now);
                    let index = self.store.snapshot();
                    tracing::info!(pods = index.pods, "pod index loaded");
                    self.enricher.publish(index);
                    return;
                }
                Err(e) => tracing::error!(error = %e, "invalid pods file; keeping the index in force"),
            },
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
