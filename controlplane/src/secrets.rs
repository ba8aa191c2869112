//! Watches exactly the Secrets that pipelines reference, one watch per Secret (field selector on its
//! name), started when a pipeline starts referring to it and stopped when none does. This is what
//! Kyma does too: the manager never lists every Secret of the cluster, and a rotation reaches the
//! reconciler as a watch event within moments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `(namespace, name)` of a Secret.
pub type SecretId = (String, String);

/// What the manager knows about one referenced Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretState {
    /// The watch has not delivered its first list yet.
    Pending,
    /// The Secret does not exist.
    Missing,
    /// The Secret and its raw values.
    Present(BTreeMap<String, Vec<u8>>),
    /// The API server refused or failed the watch before it ever listed.
    Failed(String),
}

/// A change of one Secret, sent by its watch.
#[derive(Debug)]
pub struct SecretUpdate {
    /// Which Secret.
    pub id: SecretId,
    /// Its state now.
    pub state: SecretState,
}

/// The running watches.
pub struct SecretWatches {
    client: Client,
    updates: mpsc::UnboundedSender<SecretUpdate>,
    running: HashMap<SecretId, (CancellationToken, Instant)>,
}

// === impl SecretWatches ===

impl std::fmt::Debug for SecretWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWatches").field("running", &self.running.len()).finish()
    }
}

impl SecretWatches {
    /// No watches yet; updates go to `updates`.
    pub fn new(client: Client, updates: mpsc::UnboundedSender<SecretUpdate>) -> Self {
        Self { client, updates, running: HashMap::new() }
    }

    /// Starts watches for newly referenced Secrets and stops those no longer referenced. Returns the
    /// ones started now.
    pub fn ensure(&mut self, wanted: &BTreeSet<SecretId>) -> Vec<SecretId> {
        self.running.retain(|id, (stop, _)| {
            let keep = wanted.contains(id);
            if !keep {
                stop.cancel();
            }
            keep
        });
        let mut started = Vec::new();
        for id in wanted {
            if self.running.contains_key(id) {
                continue;
            }
            let stop = CancellationToken::new();
            tokio::spawn(watch_one(self.client.clone(), id.clone(), self.updates.clone(), stop.clone()));
            self.running.insert(id.clone(), (stop, Instant::now()));
            started.push(id.clone());
        }
        started
    }

    /// When the watch of `id` started, if it runs.
    pub fn started(&self, id: &SecretId) -> Option<Instant> {
        self.running.get(id).map(|(_, at)| *at)
    }

    /// Stops every watch.
    pub fn stop_all(&mut self) {
        for (stop, _) in self.running.values() {
            stop.cancel();
        }
        self.running.clear();
    }
}

impl Drop for SecretWatches {
    fn drop(&mut self) {
        self.stop_all();
    }
}

// === free functions ===

fn values(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> =
        secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    // `stringData` is write-only in a real cluster; honour it where an API returns it anyway.
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

async fn watch_one(
    client: Client,
    id: SecretId,
    updates: mpsc::UnboundedSender<SecretUpdate>,
    stop: CancellationToken,
) {
    let api = Api::<Secret>::namespaced(client, &id.0);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", id.1));
    let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut listing: Option<Option<Secret>> = None;
    let send = |state| updates.send(SecretUpdate { id: id.clone(), state }).is_ok();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = stream.next() => e,
        };
        let alive = match event {
            None => return,
            Some(Ok(Event::Init)) => {
                listing = Some(None);
                true
            }
            Some(Ok(Event::InitApply(s))) => {
                listing = Some(Some(s));
                true
            }
            Some(Ok(Event::InitDone)) => match listing.take().flatten() {
                Some(s) => send(SecretState::Present(values(&s))),
                None => send(SecretState::Missing),
            },
            Some(Ok(Event::Apply(s))) => send(SecretState::Present(values(&s))),
            Some(Ok(Event::Delete(_))) => send(SecretState::Missing),
            Some(Err(e)) => {
                tracing::warn!(namespace = %id.0, secret = %id.1, error = %e, "watching a referenced Secret failed; retrying");
                send(SecretState::Failed(e.to_string()))
            }
        };
        if !alive {
            return;
        }
    }
}
