//! In a cluster: one reconciler for all TracePipelines.
//!
//! Every pipeline's verdict depends on the others (the oldest five run) and the gateways run one
//! configuration made of all of them, so the reconciler works on the whole picture rather than one
//! object at a time: any change (a pipeline, a referenced Secret, a gateway object or pod, a timer)
//! marks the world dirty, and after a short debounce one pass
//!
//! 1. resolves every pipeline against the Secrets it references (pure, [`tracegw_contract::resolve()`]);
//! 2. publishes a new snapshot version if the configuration changed, to the subscribed gateways and
//!    into the gateway Secret for cold starts;
//! 3. applies the gateway's objects (server-side apply, only those that differ from what the API
//!    server holds, so a steady cluster sees no writes and drift is repaired), or deletes them when
//!    no pipeline can run;
//! 4. writes each pipeline's conditions with server-side apply under one field manager, only when
//!    they changed;
//! 5. keeps the finalizer of the `default` Telemetry and writes its status the same way
//!    ([`crate::telemetry`]), whose settings also decide the snapshot's enrichment, and whose
//!    overrides ConfigMap can pause steps 2–5.
//!
//! A pass is idempotent: run twice on the same world it writes nothing the second time. Deleted
//! pipelines need no finalizer: they simply leave the next snapshot. The caches are kube-rs
//! reflectors fed by watches (pipelines; the manager's own objects by label; gateway pods; each
//! referenced Secret by name), so a pass reads no object from the API server.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Config as WatchConfig};
use kube::{Api, Client, Resource as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracegw_contract::{
    DEFAULT_MAX_PIPELINES, EnrichmentSettings, PipelineError, PodLabelRule, Reason, ResolveOptions,
    SecretStore, ServiceMode, Snapshot,
};

use crate::conditions::{self, Verdict};
use crate::crd::{self, Condition};
use crate::flow::{FlowSettings, FlowTracker};
use crate::gateway::{
    self, Desired, GATEWAY_NAME, GatewaySettings, MANAGED_BY, NAME_LABEL, SNAPSHOT_KEY, TOKEN_KEY,
};
use crate::metrics::{self, ManagerMetrics, Readiness};
use crate::secrets::{SecretId, SecretState, SecretUpdate, SecretWatches};
use crate::snapshots::{self, Channel};
use crate::webhook_cert::WebhookSettings;

/// The one field manager of everything the manager writes.
pub const FIELD_MANAGER: &str = "telemetry-manager";
/// Changes arriving within this long make one pass.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How long a pass waits for a newly referenced Secret's first list before reporting ValidationFailed.
const SECRET_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays after a failed pass.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long the manager trusts its own write over a cache that has not shown it yet. Watches deliver
/// a write within milliseconds; past this, the cache is right (e.g. someone deleted the object
/// right after it was created) and the next pass acts on it.
const RECENT_WRITE_TTL: Duration = Duration::from_secs(2);
/// How often the cluster's UID and provider are read again.
const CLUSTER_FACTS_REFRESH: Duration = Duration::from_secs(600);
/// How long the first pass waits for the Telemetry and overrides lists (a cluster without the
/// Telemetry CRD never lists them).
const MODULE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// Cluster-wide enrichment choices, passed to every gateway: the manager's flags, replaced as a whole
/// by the settings of the `default` Telemetry while it exists ([`crate::telemetry`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrichmentFlags {
    /// `service.*` rules.
    pub service_mode: ServiceMode,
    /// Pod labels to copy.
    pub pod_labels: Vec<PodLabelRule>,
    /// `k8s.cluster.name`; `None` uses the API server's host, as Kyma does.
    pub cluster_name: Option<String>,
}

/// Everything the in-cluster manager needs. Each default is defined here once; the CLI reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// How the gateway runs.
    pub gateway: GatewaySettings,
    /// At most this many pipelines run; `None` is unlimited.
    pub max_pipelines: Option<usize>,
    /// Where gateways subscribe and report.
    pub snapshot_addr: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub admin_addr: SocketAddr,
    /// Flow health window.
    pub flow: FlowSettings,
    /// Enrichment settings for the snapshot.
    pub enrichment: EnrichmentFlags,
    /// Serve the snapshot channel over TLS with the manager's own certificate (see [`crate::tls`]).
    pub tls: bool,
    /// Serve the TracePipeline admission webhook and provision its certificates and configuration
    /// (see [`crate::webhook_cert`]). Off in the library's default, so that embedding and tests bind
    /// nothing unasked; the binary turns it on in `--kubernetes` mode.
    pub webhook: Option<WebhookSettings>,
    /// Deadlines and the connection cap of each listener (snapshots, webhook, admin).
    pub limits: crate::net::ServerLimits,
    /// The manager's log filter, which `global.logLevel` of the overrides ConfigMap sets; `None`
    /// when the embedding program does not let the manager change its logging (the library's default).
    pub log_filter: Option<crate::logging::LogFilter>,
}

/// Starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The API server refused or failed a request needed to start.
    #[error("cannot read {what}: {source}")]
    Kube {
        /// What was being read.
        what: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The system's random source failed.
    #[error("cannot generate a token: {0}")]
    Random(String),
    /// The serving certificate cannot be made, stored or used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The serving certificate cannot be stored.
    #[error("cannot store the serving certificate: {0}")]
    StoreCert(#[source] kube::Error),
    /// The admission webhook's certificates or configuration cannot be provisioned.
    #[error(transparent)]
    Webhook(#[from] crate::webhook_cert::WebhookCertError),
    /// The admission webhook's certificate cannot be served.
    #[error(transparent)]
    WebhookTls(#[from] crate::webhook::WebhookError),
}

/// A pass that could not finish; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{action} {object}: {source}")]
pub struct ReconcileError {
    action: &'static str,
    object: String,
    #[source]
    source: kube::Error,
}

/// A running manager.
#[derive(Debug)]
pub struct ClusterManager {
    /// Bound snapshot address.
    pub snapshot_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    /// Bound admission webhook address, when it is served.
    pub webhook_addr: Option<SocketAddr>,
    /// The certificate the webhook serves, when it is served.
    pub webhook_cert: Option<Arc<crate::webhook::CertSlot>>,
    /// The manager's metrics.
    pub metrics: ManagerMetrics,
    /// Stops everything.
    pub stop: CancellationToken,
    /// The newest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<()>,
}

/// One TracePipeline as read from the cache.
#[derive(Debug)]
struct Observed {
    name: String,
    generation: Option<i64>,
    resource_version: Option<String>,
    conditions: Vec<Condition>,
    /// The typed object, or why it does not read as a TracePipeline.
    spec: Result<tracegw_contract::pipeline::TracePipeline, PipelineError>,
}

/// Key of an object the manager owns.
type ObjectKey = (&'static str, Option<String>, String);

/// A write of the manager's whose watch event may not have arrived: the resource version the cache
/// held before it, when it was made, and what it wrote.
#[derive(Debug)]
struct Recent<T> {
    before: Option<String>,
    at: Instant,
    value: T,
}

impl<T> Recent<T> {
    fn new(before: Option<String>, value: T) -> Self {
        Self { before, at: Instant::now(), value }
    }

    /// Whether the cache still shows the state from before the write.
    fn pending(&self, cached: &Option<String>) -> bool {
        self.before == *cached && self.at.elapsed() < RECENT_WRITE_TTL
    }
}

/// The reconciler's state between passes.
struct Reconciler {
    client: Client,
    config: ClusterConfig,
    metrics: ManagerMetrics,
    ready: Arc<Readiness>,
    pipeline_resource: ApiResource,
    pipelines: Store<DynamicObject>,
    owned: Vec<(&'static str, ApiResource, bool, Store<DynamicObject>)>,
    pods: Store<Pod>,
    secret_watches: SecretWatches,
    secret_states: HashMap<SecretId, SecretState>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    token: Arc<String>,
    /// The certificate gateways trust for the channel; empty when it is plain.
    ca_pem: String,
    flow: Arc<Mutex<FlowTracker>>,
    /// Writes whose watch event has not arrived yet: the resource version the cache held before, and
    /// what the API server answered.
    recent_applies: HashMap<ObjectKey, Recent<Value>>,
    recent_deletes: HashMap<ObjectKey, Recent<()>>,
    recent_status: HashMap<String, Recent<Vec<Condition>>>,
    cluster_facts: (Option<String>, Option<String>),
    facts_read: Option<Instant>,
    next_check: Option<i64>,
    logged: HashMap<String, Vec<String>>,
    /// The `default` Telemetry and the overrides (see [`crate::telemetry`]).
    module: crate::telemetry::ModuleState,
    /// What the admission webhook's loop learns of the module after each pass.
    webhook_link: watch::Sender<crate::webhook_cert::ModuleLink>,
}

// === impl ReconcileError ===

impl From<crate::telemetry::ModuleError> for ReconcileError {
    fn from(e: crate::telemetry::ModuleError) -> Self {
        Self { action: e.action, object: format!("Telemetry {}", e.name), source: e.source }
    }
}

// === impl ClusterConfig ===

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            gateway: GatewaySettings::default(),
            max_pipelines: Some(DEFAULT_MAX_PIPELINES),
            snapshot_addr: SocketAddr::from(([0, 0, 0, 0], 9090)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            flow: FlowSettings::default(),
            enrichment: EnrichmentFlags::default(),
            tls: true,
            webhook: None,
            limits: crate::net::ServerLimits::default(),
            log_filter: None,
        }
    }
}

impl ClusterConfig {
    /// The ports the manager's NetworkPolicy admits.
    pub fn manager_ports(&self) -> gateway::ManagerPorts {
        gateway::ManagerPorts {
            snapshots: self.snapshot_addr.port(),
            webhook: self.webhook.as_ref().map(|w| w.addr.port()),
            admin: self.admin_addr.port(),
        }
    }
}

// === impl ClusterManager ===

impl ClusterManager {
    /// Waits until the manager stops.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

// === free functions ===

fn unix_now() -> (i64, u64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.as_millis() as u64)
}

fn owned_kinds() -> [(&'static str, &'static str, bool); 7] {
    [
        ("v1", "ServiceAccount", true),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", false),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false),
        ("v1", "Service", true),
        ("apps/v1", "DaemonSet", true),
        ("v1", "Secret", true),
        ("networking.k8s.io/v1", "NetworkPolicy", true),
    ]
}

fn resource_for(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn dynamic_api(client: &Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// Drives a reflector, poking `trigger` on every event.
fn spawn_reflector<K>(
    api: Api<K>,
    config: WatchConfig,
    writer: reflector::store::Writer<K>,
    trigger: mpsc::UnboundedSender<()>,
    what: &'static str,
    stop: CancellationToken,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    tokio::spawn(async move {
        let stream = reflector::reflector(writer, watcher::watcher(api, config)).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = stream.next() => e,
            };
            match event {
                None => return,
                Some(Ok(_)) => {
                    if trigger.send(()).is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(watch = what, error = %e, "watch failed; retrying with backoff")
                }
            }
        }
    });
}

/// Reads the token and the last snapshot from the gateway Secret; a missing Secret means a new token.
async fn load_secret(client: &Client, namespace: &str) -> Result<(String, Option<Snapshot>), StartError> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(GATEWAY_NAME)
        .await
        .map_err(|source| StartError::Kube { what: format!("Secret {namespace}/{GATEWAY_NAME}"), source })?;
    let data = secret.and_then(|s| s.data).unwrap_or_default();
    let text = |key: &str| data.get(key).and_then(|v| String::from_utf8(v.0.clone()).ok());
    let token = match text(TOKEN_KEY).filter(|t| !t.trim().is_empty()) {
        Some(t) => t.trim().to_string(),
        None => snapshots::random_token().map_err(|e| StartError::Random(e.to_string()))?,
    };
    let snapshot = text(SNAPSHOT_KEY).and_then(|s| serde_json::from_str::<Snapshot>(&s).ok());
    Ok((token, snapshot))
}

/// The manager's serving certificate: the stored one if it still serves the manager's names, else a
/// new one, stored for the next start.
async fn serving_cert(
    client: &Client,
    config: &ClusterConfig,
) -> Result<crate::tls::ServingCert, StartError> {
    use crate::tls::{SERVING_SECRET, ServingCert, names_for};
    let namespace = &config.gateway.namespace;
    let names = names_for(&config.gateway.manager_url);
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let stored = api
        .get_opt(SERVING_SECRET)
        .await
        .map_err(|source| StartError::Kube { what: format!("Secret {namespace}/{SERVING_SECRET}"), source })?
        .and_then(|s| s.data)
        .and_then(|d| {
            let text = |k: &str| d.get(k).and_then(|v| String::from_utf8(v.0.clone()).ok());
            Some(ServingCert { cert_pem: text("tls.crt")?, key_pem: text("tls.key")? })
        });
    let (now, _) = unix_now();
    if let Some(cert) = stored.filter(|c| c.usable_for(&names, now)) {
        return Ok(cert);
    }
    tracing::info!(names = ?names, "creating the snapshot channel's serving certificate");
    let cert = ServingCert::generate(&names, now)?;
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": SERVING_SECRET, "namespace": namespace,
                     "labels": {MANAGED_BY.0: MANAGED_BY.1, "app.kubernetes.io/name": "telemetry-manager"}},
        "data": {"tls.crt": b64(&cert.cert_pem), "tls.key": b64(&cert.key_pem)},
    });
    api.patch(SERVING_SECRET, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(StartError::StoreCert)?;
    Ok(cert)
}

/// Starts watching, serving snapshots and reconciling.
pub async fn start(client: Client, config: ClusterConfig) -> Result<ClusterManager, StartError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
    };
    let snapshot_listener = bind(config.snapshot_addr).await?;
    let admin_listener = bind(config.admin_addr).await?;
    let webhook_listener = match &config.webhook {
        Some(w) => Some(bind(w.addr).await?),
        None => None,
    };
    let snapshot_addr = snapshot_listener.local_addr().unwrap_or(config.snapshot_addr);
    let admin_addr = admin_listener.local_addr().unwrap_or(config.admin_addr);
    let namespace = config.gateway.namespace.clone();
    let (token, stored) = load_secret(&client, &namespace).await?;
    let token = Arc::new(token);
    let metrics = ManagerMetrics::default();
    let stop = CancellationToken::new();
    let ready = Arc::new(Readiness::default());
    let initial = stored.unwrap_or_default();
    metrics.snapshot_version.set(initial.version as i64);
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(initial));
    let flow = Arc::new(Mutex::new(FlowTracker::new(config.flow, Instant::now())));
    let channel = Channel::new(Arc::clone(&token), snapshot_rx.clone(), Arc::clone(&flow), metrics.clone());
    let (tls, ca_pem) = if config.tls {
        let cert = serving_cert(&client, &config).await?;
        (Some(cert.server_config()?), cert.cert_pem)
    } else {
        (None, String::new())
    };
    // Everything that can fail comes before the first server is spawned.
    let mut webhook_addr = None;
    let mut webhook_cert = None;
    let (webhook_link, link_rx) = watch::channel(crate::webhook_cert::ModuleLink::default());
    if let (Some(listener), Some(settings)) = (webhook_listener, config.webhook.clone()) {
        webhook_addr = Some(listener.local_addr().unwrap_or(settings.addr));
        let provisioned = crate::webhook_cert::start(
            client.clone(),
            namespace.clone(),
            settings,
            metrics.clone(),
            link_rx,
            stop.clone(),
        )
        .await?;
        let webhook_tls =
            crate::webhook::server_config(Arc::clone(&provisioned.slot)).inspect_err(|_| stop.cancel())?;
        let limits = config.limits;
        tokio::spawn(crate::webhook::serve_with_limits(
            listener,
            webhook_tls,
            metrics.clone(),
            limits,
            stop.clone(),
        ));
        webhook_cert = Some(provisioned.slot);
    }
    tokio::spawn(snapshots::serve(snapshot_listener, channel, tls, config.limits, stop.clone()));
    tokio::spawn(metrics::serve(
        admin_listener,
        metrics.clone(),
        Arc::clone(&ready),
        config.limits,
        stop.clone(),
    ));

    let (trigger_tx, trigger_rx) = mpsc::unbounded_channel();
    let pipeline_resource = ApiResource::erase::<crd::TracePipeline>(&());
    let writer = reflector::store::Writer::new(pipeline_resource.clone());
    let pipelines = writer.as_reader();
    spawn_reflector(
        Api::<DynamicObject>::all_with(client.clone(), &pipeline_resource),
        WatchConfig::default(),
        writer,
        trigger_tx.clone(),
        "tracepipelines",
        stop.clone(),
    );
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let mut owned = Vec::new();
    for (api_version, kind, namespaced) in owned_kinds() {
        let ar = resource_for(api_version, kind);
        let writer = reflector::store::Writer::new(ar.clone());
        let reader = writer.as_reader();
        let api = dynamic_api(&client, &ar, namespaced.then_some(namespace.as_str()));
        spawn_reflector(
            api,
            WatchConfig::default().labels(&selector),
            writer,
            trigger_tx.clone(),
            kind,
            stop.clone(),
        );
        owned.push((kind, ar, namespaced, reader));
    }
    let (pods, pod_writer) = reflector::store();
    spawn_reflector(
        Api::<Pod>::namespaced(client.clone(), &namespace),
        WatchConfig::default().labels(&format!("{}={}", NAME_LABEL.0, NAME_LABEL.1)),
        pod_writer,
        trigger_tx.clone(),
        "gateway pods",
        stop.clone(),
    );
    let module = {
        use crate::telemetry::{self, OVERRIDES_CONFIGMAP};
        let resource = telemetry::resource();
        let writer = reflector::store::Writer::new(resource.clone());
        let telemetries = writer.as_reader();
        let by_name = |name: &str| WatchConfig::default().fields(&format!("metadata.name={name}"));
        spawn_reflector(
            Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource),
            by_name(tracegw_contract::telemetry::DEFAULT_NAME),
            writer,
            trigger_tx.clone(),
            "telemetry",
            stop.clone(),
        );
        let (overrides, writer) = reflector::store();
        spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &namespace),
            by_name(OVERRIDES_CONFIGMAP),
            writer,
            trigger_tx.clone(),
            "overrides",
            stop.clone(),
        );
        telemetry::ModuleState::new(
            client.clone(),
            namespace.clone(),
            telemetries,
            overrides,
            config.log_filter.clone(),
        )
    };
    let (secret_tx, secret_rx) = mpsc::unbounded_channel();
    // The manager's NetworkPolicy admits the ports actually bound.
    let mut config = config;
    (config.snapshot_addr, config.admin_addr) = (snapshot_addr, admin_addr);
    if let (Some(w), Some(addr)) = (config.webhook.as_mut(), webhook_addr) {
        w.addr = addr;
    }
    let reconciler = Reconciler {
        module,
        webhook_link,
        secret_watches: SecretWatches::new(client.clone(), secret_tx),
        client,
        config,
        metrics: metrics.clone(),
        ready,
        pipeline_resource,
        pipelines,
        owned,
        pods,
        secret_states: HashMap::new(),
        snapshot_tx,
        token,
        ca_pem,
        flow,
        recent_applies: HashMap::new(),
        recent_deletes: HashMap::new(),
        recent_status: HashMap::new(),
        cluster_facts: (None, None),
        facts_read: None,
        next_check: None,
        logged: HashMap::new(),
    };
    let task = tokio::spawn(reconciler.run(trigger_rx, secret_rx, stop.clone()));
    Ok(ClusterManager {
        snapshot_addr,
        admin_addr,
        webhook_addr,
        webhook_cert,
        metrics,
        stop,
        snapshots: snapshot_rx,
        task,
    })
}

// === impl Reconciler ===

impl Reconciler {
    async fn run(
        mut self,
        mut triggers: mpsc::UnboundedReceiver<()>,
        mut secret_updates: mpsc::UnboundedReceiver<SecretUpdate>,
        stop: CancellationToken,
    ) {
        // No pass before every cache holds a complete list: a pass on a half-filled cache would
        // delete objects it merely has not seen yet.
        let stores_ready = async {
            let _ = self.pipelines.wait_until_ready().await;
            for (_, _, _, store) in &self.owned {
                let _ = store.wait_until_ready().await;
            }
            let _ = self.pods.wait_until_ready().await;
            self.module.wait_ready(MODULE_SYNC_TIMEOUT).await;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = stores_ready => {}
        }
        let mut dirty = true;
        let mut retry_delay = FIRST_RETRY;
        let mut wake: Option<tokio::time::Instant> = None;
        let mut flow_tick = tokio::time::interval(self.config.flow.evaluate_every);
        loop {
            if !dirty {
                let sleep_until =
                    wake.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    _ = stop.cancelled() => {
                        self.secret_watches.stop_all();
                        return;
                    }
                    t = triggers.recv() => {
                        if t.is_none() { return; }
                    }
                    u = secret_updates.recv() => match u {
                        Some(u) => self.secret_update(u),
                        None => return,
                    },
                    _ = flow_tick.tick() => {}
                    _ = tokio::time::sleep_until(sleep_until) => {}
                }
            }
            // Let a burst of events settle into one pass.
            tokio::time::sleep(DEBOUNCE).await;
            while triggers.try_recv().is_ok() {}
            while let Ok(u) = secret_updates.try_recv() {
                self.secret_update(u);
            }
            let started = Instant::now();
            match self.reconcile().await {
                Ok(next) => {
                    tracing::debug!(took = ?started.elapsed(), "reconcile pass done");
                    self.metrics.reconciled(true);
                    self.ready.set();
                    dirty = false;
                    retry_delay = FIRST_RETRY;
                    wake = next.map(tokio::time::Instant::from_std);
                }
                Err(e) => {
                    self.metrics.reconciled(false);
                    tracing::warn!(error = %e, retry_in = ?retry_delay, "reconcile failed; retrying");
                    dirty = false;
                    wake = Some(tokio::time::Instant::now() + retry_delay);
                    retry_delay = (retry_delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    fn secret_update(&mut self, update: SecretUpdate) {
        if !self.secret_states.contains_key(&update.id) {
            return;
        }
        let current = self.secret_states.get(&update.id);
        // A watch that fails after it listed keeps its last known state; it re-lists by itself.
        if matches!(update.state, SecretState::Failed(_))
            && matches!(current, Some(SecretState::Present(_) | SecretState::Missing))
        {
            return;
        }
        self.secret_states.insert(update.id, update.state);
    }

    /// Reads every TracePipeline from the cache.
    fn observed(&self) -> Vec<Observed> {
        let mut out = Vec::new();
        for object in self.pipelines.state() {
            if object.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = object.metadata.name.clone().unwrap_or_default();
            let value = serde_json::to_value(&*object).unwrap_or_default();
            let conditions: Vec<Condition> = value
                .pointer("/status/conditions")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default();
            let spec = serde_path_to_error::deserialize::<_, crd::TracePipeline>(value)
                .map(|p| p.to_contract())
                .map_err(|e| {
                    let path = e.path().to_string();
                    PipelineError::new(
                        Reason::SpecInvalid,
                        if path == "." { "spec".into() } else { path },
                        e.inner().to_string(),
                    )
                });
            out.push(Observed {
                name,
                generation: object.metadata.generation,
                resource_version: object.metadata.resource_version.clone(),
                conditions,
                spec,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The cluster's UID and provider, read again now and then.
    async fn cluster_facts(&mut self) -> (Option<String>, Option<String>) {
        if self.facts_read.is_some_and(|at| at.elapsed() < CLUSTER_FACTS_REFRESH) {
            return self.cluster_facts.clone();
        }
        let uid = match Api::<Namespace>::all(self.client.clone()).get_opt("kube-system").await {
            Ok(ns) => ns.and_then(|n| n.metadata.uid),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read namespace kube-system; k8s.cluster.uid stays unset");
                self.cluster_facts.0.clone()
            }
        };
        let provider = match Api::<ConfigMap>::namespaced(self.client.clone(), "kube-system")
            .get_opt("shoot-info")
            .await
        {
            Ok(cm) => cm
                .and_then(|c| c.data)
                .and_then(|d| d.get("provider").cloned())
                .and_then(|p| tracegw_contract::snapshot::cloud_provider_from_shoot_info(&p)),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read kube-system/shoot-info; cloud.provider stays unset");
                self.cluster_facts.1.clone()
            }
        };
        self.cluster_facts = (uid, provider);
        self.facts_read = Some(Instant::now());
        self.cluster_facts.clone()
    }

    /// One pass. Returns when to run again without any event (certificate thresholds, a Secret
    /// whose first list is late).
    async fn reconcile(&mut self) -> Result<Option<Instant>, ReconcileError> {
        let (now, now_ms) = unix_now();
        let observed = self.observed();
        let module = self.module.observe();
        if !module.overrides.telemetry_paused {
            let pipelines_exist = !self.pipelines.state().is_empty();
            self.module.finalize(&module, pipelines_exist).await?;
        }
        let link = self.module.webhook_link(&module);
        self.webhook_link.send_if_modified(|current| {
            let changed = *current != link;
            *current = link;
            changed
        });
        let service_mode = crate::telemetry::enrichment_flags(&module, &self.config.enrichment).service_mode;
        self.metrics.set_service_enrichment(service_mode);
        if module.overrides.tracing_paused {
            self.write_module_status(&module, &HashMap::new(), now).await?;
            return Ok(None);
        }

        // Referenced Secrets: watch exactly those, and wait briefly for new watches' first lists.
        let refs: HashMap<&str, Vec<SecretId>> = observed
            .iter()
            .filter_map(|o| o.spec.as_ref().ok().map(|p| (o.name.as_str(), p)))
            .map(|(n, p)| (n, p.spec.secret_refs().into_iter().map(|r| (r.namespace, r.name)).collect()))
            .collect();
        let wanted: BTreeSet<SecretId> = refs.values().flatten().cloned().collect();
        for id in self.secret_watches.ensure(&wanted) {
            self.secret_states.insert(id, SecretState::Pending);
        }
        self.secret_states.retain(|id, _| wanted.contains(id));
        let mut wake: Option<Instant> = None;
        let mut blocked: HashMap<&str, String> = HashMap::new();
        for (pipeline, ids) in &refs {
            for id in ids {
                match self.secret_states.get(id) {
                    Some(SecretState::Pending) => {
                        let started = self.secret_watches.started(id).unwrap_or_else(Instant::now);
                        if started.elapsed() < SECRET_SYNC_TIMEOUT {
                            // Not known yet: decide nothing about anyone until it is.
                            return Ok(Some(started + SECRET_SYNC_TIMEOUT));
                        }
                        blocked.insert(
                            pipeline,
                            format!("no answer for Secret '{}' of Namespace '{}'", id.1, id.0),
                        );
                    }
                    Some(SecretState::Failed(why)) => {
                        blocked.insert(
                            pipeline,
                            format!("cannot read Secret '{}' of Namespace '{}': {why}", id.1, id.0),
                        );
                    }
                    _ => {}
                }
            }
        }
        let mut store = SecretStore::default();
        for ((ns, name), state) in &self.secret_states {
            if let SecretState::Present(values) = state {
                store.insert_raw(ns, name, values.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
            }
        }

        // Verdicts.
        let checkable: Vec<tracegw_contract::pipeline::TracePipeline> = observed
            .iter()
            .filter(|o| !blocked.contains_key(o.name.as_str()))
            .filter_map(|o| o.spec.as_ref().ok().cloned())
            .collect();
        let options = ResolveOptions { version: 0, now, max_pipelines: self.config.max_pipelines };
        let resolution = tracegw_contract::resolve(&checkable, &store, options);
        let mut verdicts: HashMap<String, Verdict> = HashMap::new();
        for s in &resolution.statuses {
            let v = match &s.result {
                Ok(g) => Verdict::Generated(g.cert_expiry),
                Err(e) => Verdict::Rejected(e.clone()),
            };
            verdicts.insert(s.name.clone(), v);
        }
        let current = Arc::clone(&self.snapshot_tx.borrow());
        let mut pipelines = resolution.snapshot.pipelines;
        for o in &observed {
            if let Err(e) = &o.spec {
                verdicts.insert(o.name.clone(), Verdict::Rejected(e.clone()));
            }
            if let Some(why) = blocked.get(o.name.as_str()) {
                verdicts.insert(o.name.clone(), Verdict::ValidationFailed(why.clone()));
                // Keep running what ran: an API hiccup must not cut a working pipeline off.
                if let Some(p) = current.pipelines.iter().find(|p| p.name == o.name) {
                    pipelines.push(p.clone());
                }
            }
        }
        pipelines.sort_by(|a, b| a.name.cmp(&b.name));

        // The snapshot.
        let (uid, provider) = self.cluster_facts().await;
        let flags = &crate::telemetry::enrichment_flags(&module, &self.config.enrichment);
        let enrichment = EnrichmentSettings {
            service_mode: flags.service_mode,
            pod_labels: flags.pod_labels.clone(),
            cluster_name: flags
                .cluster_name
                .clone()
                .or_else(|| std::env::var("KUBERNETES_SERVICE_HOST").ok()),
            cluster_uid: uid,
            cloud_provider: provider,
        };
        let mut next = Snapshot { version: current.version, pipelines, enrichment: Some(enrichment) };
        // Paused by the overrides: the gateways keep the configuration they have.
        let gateway_paused = module.overrides.otlp_gateway_paused;
        if *current != next && !gateway_paused {
            // Wall-clock milliseconds keep versions increasing across manager restarts.
            next.version = now_ms.max(current.version + 1);
            tracing::info!(
                version = next.version,
                pipelines = next.pipelines.len(),
                "new configuration snapshot"
            );
            self.metrics.snapshot_version.set(next.version as i64);
            self.snapshot_tx.send_replace(Arc::new(next.clone()));
        }
        let running = next.pipelines.len();
        self.metrics.set_pipelines(running, observed.len().saturating_sub(running));

        // The gateway's objects.
        let snapshot_json = serde_json::to_string(&next).unwrap_or_default();
        let mut desired =
            if running > 0 { gateway::gateway_objects(&self.config.gateway) } else { Vec::new() };
        // The Secret stays while the module does (token and stored snapshot for cold starts).
        if running > 0 || !self.module.removed() {
            desired
                .insert(0, gateway::secret(&self.config.gateway, &self.token, &snapshot_json, &self.ca_pem));
        }
        desired
            .insert(0, gateway::manager_network_policy(&self.config.gateway, &self.config.manager_ports()));
        if !gateway_paused {
            self.apply_objects(&desired).await?;
        }

        // Status.
        let health = {
            let ds = self.live("DaemonSet", Some(&self.config.gateway.namespace), GATEWAY_NAME);
            let ds: Option<DaemonSet> = ds.and_then(|v| serde_json::from_value(v).ok());
            let pods = self.pods.state();
            let pods: Vec<&Pod> = pods.iter().map(|p| &**p).collect();
            crate::health::gateway_health(ds.as_ref(), &pods)
        };
        let flows: HashMap<String, conditions::FlowHealth> = {
            let flow = self.flow.lock().unwrap_or_else(|p| p.into_inner());
            observed.iter().map(|o| (o.name.clone(), flow.health(&o.name, Instant::now()))).collect()
        };
        let stamp = conditions::rfc3339(now);
        let mut fresh: HashMap<String, Vec<Condition>> = HashMap::new();
        for o in &observed {
            let Some(verdict) = verdicts.get(&o.name) else { continue };
            let previous = match self.recent_status.get(&o.name) {
                Some(r) if r.pending(&o.resource_version) => r.value.clone(),
                _ => o.conditions.clone(),
            };
            let previous_flow = previous.iter().find(|c| c.type_ == conditions::TYPE_FLOW_HEALTHY);
            let flow = flows.get(&o.name).cloned().unwrap_or(conditions::FlowHealth::Pending);
            let next = conditions::with_transition_times(
                conditions::conditions(verdict, &health, &flow, o.generation, now, previous_flow),
                &previous,
                &stamp,
            );
            let lines = conditions::lines(&o.name, &next);
            if self.logged.get(&o.name) != Some(&lines) {
                for line in &lines {
                    tracing::info!(condition = %line, "pipeline status");
                }
                self.logged.insert(o.name.clone(), lines);
            }
            if conditions::differ(&previous, &next) {
                self.write_status(o, &next).await?;
            }
            fresh.insert(o.name.clone(), next);
        }
        self.write_module_status(&module, &fresh, now).await?;
        self.logged.retain(|name, _| observed.iter().any(|o| &o.name == name));
        self.recent_applies.retain(|_, r| r.at.elapsed() < RECENT_WRITE_TTL);
        self.recent_deletes.retain(|_, r| r.at.elapsed() < RECENT_WRITE_TTL);
        self.recent_status.retain(|name, _| observed.iter().any(|o| &o.name == name));

        self.next_check = resolution.next_check;
        let cert_wake = self
            .next_check
            .map(|at| Instant::now() + Duration::from_secs(at.saturating_sub(now).max(0) as u64));
        wake = match (wake, cert_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(wake)
    }

    /// Writes the Telemetry's status from every TracePipeline's conditions (`fresh` from this pass,
    /// else as the cache holds them) and the gateway Services that exist.
    async fn write_module_status(
        &mut self,
        module: &crate::telemetry::ModuleView,
        fresh: &HashMap<String, Vec<Condition>>,
        now: i64,
    ) -> Result<(), ReconcileError> {
        if module.overrides.telemetry_paused {
            return Ok(());
        }
        let mut all: Vec<(String, Vec<Condition>)> = self
            .pipelines
            .state()
            .iter()
            .map(|o| {
                let name = o.metadata.name.clone().unwrap_or_default();
                let conditions = fresh.get(&name).cloned().unwrap_or_else(|| {
                    o.data
                        .pointer("/status/conditions")
                        .and_then(|c| serde_json::from_value(c.clone()).ok())
                        .unwrap_or_default()
                });
                (name, conditions)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let views: Vec<crate::telemetry::PipelineConditions<'_>> = all
            .iter()
            .map(|(name, conditions)| crate::telemetry::PipelineConditions { name, conditions })
            .collect();
        let namespace = self.config.gateway.namespace.clone();
        let otlp = self.live("Service", Some(&namespace), gateway::OTLP_SERVICE).is_some();
        let traces = self.live("Service", Some(&namespace), gateway::LEGACY_TRACES_SERVICE).is_some();
        self.module.write_status(module, &views, otlp, traces, &conditions::rfc3339(now)).await?;
        Ok(())
    }

    /// The live object, with the manager's own recent writes accounted for.
    fn live(&self, kind: &'static str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let (_, _, _, store) = self.owned.iter().find(|(k, ..)| *k == kind)?;
        let cached = store.state().into_iter().find(|o| {
            o.metadata.name.as_deref() == Some(name) && o.metadata.namespace.as_deref() == namespace
        });
        let cached_rv = cached.as_ref().and_then(|o| o.metadata.resource_version.clone());
        let key: ObjectKey = (kind, namespace.map(str::to_string), name.to_string());
        if self.recent_deletes.get(&key).is_some_and(|r| r.pending(&cached_rv)) {
            return None;
        }
        if let Some(r) = self.recent_applies.get(&key).filter(|r| r.pending(&cached_rv)) {
            return Some(r.value.clone());
        }
        cached.and_then(|o| serde_json::to_value(&*o).ok())
    }

    /// Applies what differs, deletes what is no longer wanted.
    async fn apply_objects(&mut self, desired: &[Desired]) -> Result<(), ReconcileError> {
        for d in desired {
            let kind = self.owned.iter().map(|(k, ..)| *k).find(|k| *k == d.kind).unwrap_or("");
            let live = self.live(kind, d.namespace.as_deref(), &d.name);
            if live.as_ref().is_some_and(|l| gateway::is_subset(&d.object, l)) {
                continue;
            }
            let ar = resource_for(d.api_version, d.kind);
            let api = dynamic_api(&self.client, &ar, d.namespace.as_deref());
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let answer = api
                .patch(&d.name, &params, &Patch::Apply(&d.object))
                .await
                .map_err(|source| ReconcileError { action: "cannot apply", object: d.describe(), source })?;
            tracing::info!(object = %d.describe(), drift = live.is_some(), "applied");
            self.metrics.applied(d.kind);
            let key: ObjectKey = (kind, d.namespace.clone(), d.name.clone());
            let before = self.cached_rv(kind, d.namespace.as_deref(), &d.name);
            self.recent_deletes.remove(&key);
            self.recent_applies
                .insert(key, Recent::new(before, serde_json::to_value(&answer).unwrap_or_default()));
        }
        // Objects the manager owns that are no longer wanted.
        let mut unwanted = Vec::new();
        for (kind, ar, namespaced, store) in &self.owned {
            for o in store.state() {
                let name = o.metadata.name.clone().unwrap_or_default();
                let namespace = o.metadata.namespace.clone();
                let wanted =
                    desired.iter().any(|d| d.kind == *kind && d.name == name && d.namespace == namespace);
                // Only objects the manager created: its labels also select nothing else by name.
                let ours = matches!(
                    name.as_str(),
                    GATEWAY_NAME
                        | gateway::OTLP_SERVICE
                        | gateway::LEGACY_TRACES_SERVICE
                        | gateway::METRICS_SERVICE
                        | gateway::OTLP_NETWORK_POLICY
                        | gateway::METRICS_NETWORK_POLICY
                );
                if !wanted && ours {
                    unwanted.push((
                        *kind,
                        ar.clone(),
                        *namespaced,
                        namespace,
                        name,
                        o.metadata.resource_version.clone(),
                    ));
                }
            }
        }
        for (kind, ar, _, namespace, name, rv) in unwanted {
            let key: ObjectKey = (kind, namespace.clone(), name.clone());
            if self.recent_deletes.get(&key).is_some_and(|r| r.pending(&rv)) {
                continue;
            }
            let api = dynamic_api(&self.client, &ar, namespace.as_deref());
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(source) => {
                    return Err(ReconcileError {
                        action: "cannot delete",
                        object: format!("{kind} {name}"),
                        source,
                    });
                }
            }
            tracing::info!(kind, %name, "deleted: no TracePipeline can run");
            self.metrics.deleted(kind);
            self.recent_applies.remove(&key);
            self.recent_deletes.insert(key, Recent::new(rv, ()));
        }
        Ok(())
    }

    fn cached_rv(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<String> {
        let (_, _, _, store) = self.owned.iter().find(|(k, ..)| *k == kind)?;
        store
            .state()
            .into_iter()
            .find(|o| {
                o.metadata.name.as_deref() == Some(name) && o.metadata.namespace.as_deref() == namespace
            })
            .and_then(|o| o.metadata.resource_version.clone())
    }

    async fn write_status(&mut self, o: &Observed, next: &[Condition]) -> Result<(), ReconcileError> {
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &self.pipeline_resource);
        let patch = json!({
            "apiVersion": crd::TracePipeline::api_version(&()),
            "kind": crd::TracePipeline::kind(&()),
            "status": {"conditions": next},
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(&o.name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => {}
            // Deleted meanwhile: nothing to report on.
            Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
            Err(source) => {
                return Err(ReconcileError {
                    action: "cannot write status of",
                    object: format!("TracePipeline {}", o.name),
                    source,
                });
            }
        }
        self.metrics.status_writes.inc();
        self.recent_status.insert(o.name.clone(), Recent::new(o.resource_version.clone(), next.to_vec()));
        Ok(())
    }
}
