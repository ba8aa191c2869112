//! In a cluster: the pod index fed by kube-rs watchers. Pods are watched with the field selector
//! `spec.nodeName=<node>`, so memory follows the node's pods, not the cluster's; the node object gives
//! `cloud.*` and `host.*`; namespace `kube-system` and ConfigMap `kube-system/shoot-info` give the
//! cluster's UID and provider. No Kubernetes object is kept: each event is reduced to the few fields
//! enrichment uses.
//!
//! A re-list (after `410 Gone` or a broken watch) replaces the index only when the new list is
//! complete, so enrichment never runs on a half-built index; watch errors back off and retry.
//!
//! Under a control plane, the cluster facts and the enrichment settings arrive in its snapshots
//! ([`super::settings`]) and the gateway reads nothing but its node and its node's pods.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::Enricher;
use super::index::{IndexConfig, PodStore};
use super::pods::{ClusterMeta, NodeMeta, PodMeta};
use super::settings::{SettingsRx, effective};

/// How often a changed index is published at most; many pod events in a burst make one snapshot.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// How often deleted pods past their grace period are swept, and cluster facts re-read.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the first full pod list has been applied.
#[derive(Debug, Default)]
pub struct SyncState {
    synced: AtomicBool,
}

// === impl SyncState ===

impl SyncState {
    /// The first list is in the index.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.synced.store(true, Ordering::Release);
    }
}

// === free functions ===

/// Applies settings to the writer; returns whether the pods must be listed again.
fn apply_settings(store: &mut PodStore, enricher: &Enricher, e: super::settings::Effective) -> bool {
    if let Some(mode) = e.mode {
        enricher.set_mode(mode);
    }
    if let Some(cluster) = e.cluster {
        store.set_cluster(cluster);
    }
    store.reconfigure(e.config)
}

/// Resolves when the pushed settings change (`true`), or their sender is gone (`false`); never
/// without a control plane.
async fn settings_changed(rx: &mut Option<SettingsRx>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

fn pod_meta(pod: &Pod) -> Option<PodMeta> {
    // One definition of "the fields we use": the same reader as for local files.
    let value = serde_json::to_value(pod).ok()?;
    PodMeta::from_object(&value)
}

fn node_meta(node: &Node) -> Option<NodeMeta> {
    NodeMeta::from_object(&serde_json::to_value(node).ok()?)
}

async fn cluster_meta(client: &Client) -> ClusterMeta {
    let mut cluster = ClusterMeta::default();
    match Api::<Namespace>::all(client.clone()).get_opt("kube-system").await {
        Ok(Some(ns)) => cluster.observe(&serde_json::to_value(&ns).unwrap_or_default()),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot read namespace kube-system; k8s.cluster.uid stays unset")
        }
    }
    match Api::<ConfigMap>::namespaced(client.clone(), "kube-system").get_opt("shoot-info").await {
        Ok(Some(cm)) => cluster.observe(&serde_json::to_value(&cm).unwrap_or_default()),
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(error = %e, "cannot read kube-system/shoot-info; cloud.provider stays unset")
        }
    }
    cluster
}

/// Where the cluster facts and enrichment settings come from.
#[derive(Debug)]
pub enum Settings {
    /// The gateway's flags, or the `Telemetry` among its pipelines files when this receiver has one
    /// ([`crate::reload::FileSource`] sends it), and the cluster facts read from the API.
    Local(Option<SettingsRx>),
    /// Snapshots from the control plane; the API is not asked for cluster facts.
    Pushed(SettingsRx),
}

/// Watches this node's pods, the node and the cluster facts until `stop` fires, publishing the index
/// into `enricher`. `sync` turns true once the first complete pod list is published.
pub async fn run(
    client: Client,
    node_name: String,
    config: IndexConfig,
    enricher: Arc<Enricher>,
    sync: Arc<SyncState>,
    settings: Settings,
    stop: CancellationToken,
) {
    let base = IndexConfig { node_name: Some(node_name.clone()), ..config };
    let mut store = PodStore::new(base.clone());
    let mut pushed = match settings {
        Settings::Local(rx) => {
            store.set_cluster(cluster_meta(&client).await);
            rx.map(|mut rx| {
                // Settings from files carry no cluster facts, so the API's stay in force.
                let e = effective(&base, rx.borrow_and_update().as_ref());
                apply_settings(&mut store, &enricher, e);
                rx
            })
        }
        Settings::Pushed(mut rx) => {
            let e = effective(&base, rx.borrow_and_update().as_ref());
            apply_settings(&mut store, &enricher, e);
            Some(rx)
        }
    };
    let pod_stream = || {
        watcher::watcher(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
        )
        .default_backoff()
        .boxed()
    };
    let nodes = watcher::watcher(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
    )
    .default_backoff();
    let mut pods = pod_stream();
    let mut nodes = std::pin::pin!(nodes);
    let mut listing: Option<Vec<PodMeta>> = None;
    let (mut pods_listed, mut node_listed) = (false, false);
    let mut dirty = false;
    let mut publish = tokio::time::interval(PUBLISH_INTERVAL);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            event = pods.next() => match event {
                None => return,
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying with backoff"),
                Some(Ok(Event::Init)) => listing = Some(Vec::new()),
                Some(Ok(Event::InitApply(pod))) => {
                    if let (Some(list), Some(meta)) = (listing.as_mut(), pod_meta(&pod)) {
                        list.push(meta);
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    let list = listing.take().unwrap_or_default();
                    store.replace_all(list, Instant::now());
                    pods_listed = true;
                    dirty = true;
                }
                Some(Ok(Event::Apply(pod))) => {
                    if let Some(meta) = pod_meta(&pod) {
                        store.upsert(meta);
                        dirty = true;
                    }
                }
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        store.delete(uid, Instant::now());
                        dirty = true;
                    }
                }
            },
            event = nodes.next() => match event {
                Some(Ok(Event::Apply(node) | Event::InitApply(node))) => {
                    store.set_node(node_meta(&node));
                    dirty = true;
                }
                Some(Ok(Event::InitDone)) => {
                    node_listed = true;
                    dirty = true;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying with backoff"),
                _ => {}
            },
            _ = publish.tick() => {
                // Nothing is published before both the pods and the node are known, so no span is
                // enriched from a half-built index.
                if dirty && pods_listed && node_listed {
                    let index = store.snapshot();
                    if !sync.is_synced() {
                        tracing::info!(pods = index.pods, node = %node_name, "pod index synced");
                    }
                    enricher.publish(index);
                    sync.set();
                    dirty = false;
                }
            }
            _ = sweep.tick() => {
                if store.sweep(Instant::now()) > 0 {
                    dirty = true;
                }
            }
            changed = settings_changed(&mut pushed) => {
                let Some(rx) = pushed.as_mut().filter(|_| changed) else {
                    pushed = None;
                    continue;
                };
                let e = effective(&base, rx.borrow_and_update().as_ref());
                if apply_settings(&mut store, &enricher, e) {
                    // Labels the old rules dropped are needed now: list the pods again. The index
                    // in force keeps serving until the new list is complete.
                    tracing::info!("pod label rules changed: listing this node's pods again");
                    pods = pod_stream();
                    listing = None;
                }
                dirty = true;
            }
        }
    }
}
