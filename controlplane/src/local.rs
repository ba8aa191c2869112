//! Local mode: snapshots rendered from the same TracePipeline/Secret YAML that `otlp-gateway
//! --pipelines` reads, re-rendered when the files change, served to subscribed gateways, and each
//! pipeline's conditions printed whenever they change. The same pure resolution and the same
//! condition rules as in a cluster; the gateway's health is whether any gateway follows the stream.
//! A `Telemetry` named `default` among the files sets the snapshots' enrichment and gets its status
//! printed too, as in a cluster ([`crate::telemetry`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::load::{Change, ChangeDetector};
use tracegw_contract::{DEFAULT_MAX_PIPELINES, Resolution, ResolveOptions, Snapshot};

use crate::conditions::{self, GatewayHealth, Verdict};
use crate::crd::Condition;
use crate::flow::{FlowSettings, FlowTracker};
use crate::metrics::ManagerMetrics;
use crate::net::ServerLimits;
use crate::snapshots::{self, Channel, TokenError};

/// How often the files are checked and the conditions re-evaluated.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What local mode needs.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// TracePipeline/Secret YAML file or directory.
    pub pipelines: PathBuf,
    /// Where gateways subscribe.
    pub snapshot_addr: SocketAddr,
    /// The shared token; created with a random value if missing.
    pub token_file: PathBuf,
    /// At most this many pipelines run; `None` is unlimited.
    pub max_pipelines: Option<usize>,
    /// Flow health window.
    pub flow: FlowSettings,
    /// Deadlines and the connection cap of the snapshot listener.
    pub limits: ServerLimits,
}

/// Starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token is unavailable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running local manager.
#[derive(Debug)]
pub struct LocalManager {
    /// Bound snapshot address.
    pub addr: SocketAddr,
    /// Stops serving and watching.
    pub stop: CancellationToken,
    /// The latest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The manager's metrics (subscribers, reports).
    pub metrics: ManagerMetrics,
}

/// Re-renders on change and reports conditions.
struct Renderer<R> {
    path: PathBuf,
    max_pipelines: Option<usize>,
    changes: ChangeDetector,
    tx: watch::Sender<Arc<Snapshot>>,
    flow: Arc<Mutex<FlowTracker>>,
    metrics: ManagerMetrics,
    resolution: Option<Resolution>,
    conditions: BTreeMap<String, Vec<Condition>>,
    /// The `default` Telemetry among the files, and the status last reported for it.
    telemetry: Option<tracegw_contract::telemetry::Telemetry>,
    telemetry_lines: Vec<String>,
    report: R,
}

// === impl LocalConfig ===

impl LocalConfig {
    /// Kyma's limit and flow window for `pipelines`, serving on `snapshot_addr`.
    pub fn new(pipelines: PathBuf, snapshot_addr: SocketAddr, token_file: PathBuf) -> Self {
        Self {
            pipelines,
            snapshot_addr,
            token_file,
            max_pipelines: Some(DEFAULT_MAX_PIPELINES),
            flow: FlowSettings::default(),
            limits: ServerLimits::default(),
        }
    }
}

// === impl Renderer ===

impl<R: Fn(String)> Renderer<R> {
    /// Reads the files if they changed, then re-evaluates every condition.
    fn poll(&mut self) {
        match self.changes.poll(&self.path) {
            Change::None => {}
            Change::Unreadable(e) => (self.report)(format!("error: {e}; keeping the last snapshot")),
            Change::Settled => self.render(),
        }
        self.evaluate();
    }

    fn render(&mut self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        // Wall-clock milliseconds keep versions increasing across manager restarts, so a gateway that
        // asks for "after N" is never stuck behind a restarted manager.
        let version = (now.as_millis() as u64).max(self.tx.borrow().version + 1);
        let options =
            ResolveOptions { version, now: now.as_secs() as i64, max_pipelines: self.max_pipelines };
        let mut resolution = match tracegw_contract::resolve_path(&self.path, options) {
            Ok(r) => r,
            Err(e) => {
                (self.report)(format!("error: {e}; keeping the last snapshot"));
                return;
            }
        };
        self.telemetry = match tracegw_contract::telemetry::default_in(&self.path) {
            Ok(Some(Ok(t))) => Some(t),
            Ok(Some(Err(broken))) => {
                (self.report)(format!(
                    "error: {}: Telemetry {} is not valid at {}: {}; enriching as without it",
                    broken.source.display(),
                    broken.name,
                    broken.field,
                    broken.message
                ));
                None
            }
            Ok(None) | Err(_) => None,
        };
        resolution.snapshot.enrichment = self.telemetry.as_ref().map(|t| t.settings().to_enrichment());
        let current = self.tx.borrow().clone();
        let mut unversioned = resolution.snapshot.clone();
        unversioned.version = current.version;
        if *current != unversioned || current.version == 0 {
            self.metrics.snapshot_version.set(resolution.snapshot.version as i64);
            self.tx.send_replace(Arc::new(resolution.snapshot.clone()));
        }
        self.resolution = Some(resolution);
    }

    fn evaluate(&mut self) {
        let Some(resolution) = &self.resolution else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let gateway = match self.metrics.subscribers.get() {
            0 => GatewayHealth::NotReady("No gateway follows the snapshot stream".into()),
            _ => GatewayHealth::Ready,
        };
        let flow = self.flow.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = Vec::new();
        for status in &resolution.statuses {
            let verdict = match &status.result {
                Ok(g) => Verdict::Generated(g.cert_expiry),
                Err(e) => Verdict::Rejected(e.clone()),
            };
            let previous = self.conditions.get(&status.name).cloned().unwrap_or_default();
            let previous_flow = previous.iter().find(|c| c.type_ == conditions::TYPE_FLOW_HEALTHY);
            let health = flow.health(&status.name, Instant::now());
            let next = conditions::with_transition_times(
                conditions::conditions(&verdict, &gateway, &health, None, now, previous_flow),
                &previous,
                &conditions::rfc3339(now),
            );
            let old_lines = conditions::lines(&status.name, &previous);
            for line in conditions::lines(&status.name, &next) {
                if !old_lines.contains(&line) {
                    (self.report)(line);
                }
            }
            self.conditions.insert(status.name.clone(), next);
            seen.push(status.name.clone());
        }
        let gone: Vec<String> = self.conditions.keys().filter(|k| !seen.contains(k)).cloned().collect();
        for name in gone {
            (self.report)(format!("{name}\tdeleted"));
            self.conditions.remove(&name);
        }
        let lines = match &self.telemetry {
            Some(t) => {
                let pipelines: Vec<(String, Vec<Condition>)> =
                    self.conditions.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let status = crate::telemetry::local_status_of(t, &pipelines);
                crate::telemetry::lines(&t.metadata.name, &status)
            }
            None => Vec::new(),
        };
        for line in &lines {
            if !self.telemetry_lines.contains(line) {
                (self.report)(line.clone());
            }
        }
        self.telemetry_lines = lines;
    }
}

// === free functions ===

/// Renders the files and starts serving. Condition lines go to `report` whenever they change.
pub async fn start(
    config: LocalConfig,
    report: impl Fn(String) + Send + 'static,
) -> Result<LocalManager, StartError> {
    let token = snapshots::load_or_create_token(&config.token_file)?;
    let listener = TcpListener::bind(config.snapshot_addr)
        .await
        .map_err(|source| StartError::Bind { addr: config.snapshot_addr, source })?;
    let addr = listener.local_addr().unwrap_or(config.snapshot_addr);
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let stop = CancellationToken::new();
    let metrics = ManagerMetrics::default();
    let flow = Arc::new(Mutex::new(FlowTracker::new(config.flow, Instant::now())));
    let mut renderer = Renderer {
        path: config.pipelines,
        max_pipelines: config.max_pipelines,
        changes: ChangeDetector::default(),
        tx,
        flow: Arc::clone(&flow),
        metrics: metrics.clone(),
        resolution: None,
        conditions: BTreeMap::new(),
        telemetry: None,
        telemetry_lines: Vec::new(),
        report,
    };
    renderer.poll();
    let channel = Channel::new(Arc::new(token), rx.clone(), flow, metrics.clone());
    tokio::spawn(snapshots::serve(listener, channel, None, config.limits, stop.clone()));
    let watch_stop = stop.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = watch_stop.cancelled() => return,
                _ = ticker.tick() => renderer.poll(),
            }
        }
    });
    Ok(LocalManager { addr, stop, snapshots: rx, metrics })
}
