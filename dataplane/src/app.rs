//! Composition: binds the listeners, starts the config source and the pipelines, and stops them in
//! order: readiness off, listeners closed (in-flight requests finish and are queued), batches flushed,
//! queues drained for up to the grace period, and whatever is left counted and logged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Health, Role};
use crate::metrics::Metrics;
use crate::pipeline::{PipelineSettings, Router};
use crate::process::enrich::index::IndexConfig;
use crate::process::enrich::kube::{Settings as KubeSettings, SyncState};
use crate::process::enrich::source::PodFileSource;
use crate::process::enrich::{Enricher, ServiceMode};
use crate::receiver::grpc::{self, TraceService};
use crate::receiver::{Ingest, ReceiverSettings, Receiving, http};
use crate::reload::FileSource;
use crate::report::Reporter;
use crate::subscribe::Subscriber;

/// Runtime worker threads by default (0 would be one per core). One thread spends 1.09–1.16x less
/// CPU per span than two on every load measured below saturation (PERF.md): with two, tokio hands
/// work to the idle worker and every hand-off is a `futex` call and a context switch. Its ceiling
/// is lower for uncompressed traffic on one connection (446–460k against 513–531k spans/s here) and
/// no lower with gzip; a node that needs more sets `--worker-threads`.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// Everything the gateway process needs. Each default is defined here once; the CLI reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// OTLP/gRPC listen address.
    pub otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    pub otlp_http_addr: SocketAddr,
    /// Health endpoints.
    pub health_addr: SocketAddr,
    /// Prometheus metrics.
    pub metrics_addr: SocketAddr,
    /// Request size, memory budget and connection limits of the receivers.
    pub receiver: ReceiverSettings,
    /// TracePipeline/Secret YAML file or directory.
    pub pipelines: PathBuf,
    /// How often the pipelines path is re-read.
    pub reload_interval: Duration,
    /// Time allowed to drain queues on shutdown.
    pub shutdown_grace: Duration,
    /// Per-pipeline settings.
    pub pipeline: PipelineSettings,
    /// Enrichment from Pod/Node/Namespace/ConfigMap YAML files; `None` leaves resources as sent.
    pub pods: Option<PathBuf>,
    /// Pod index settings (node name, pod labels, cluster name, delete grace).
    pub index: IndexConfig,
    /// Enrichment from the Kubernetes API (in-cluster config or KUBECONFIG), watching this node's pods.
    pub kubernetes: bool,
    /// How long readiness waits for the first pod list before serving without enrichment.
    pub pod_sync_timeout: Duration,
    /// How `service.*` attributes are resolved.
    pub service_mode: ServiceMode,
    /// Take config snapshots from the control plane at this URL instead of reading `pipelines`.
    pub snapshot_url: Option<String>,
    /// The token for `snapshot_url`.
    pub token_file: Option<PathBuf>,
    /// The manager's stored copy of its latest snapshot, run when the manager cannot be reached.
    pub snapshot_file: Option<PathBuf>,
    /// The certificate the manager serves the snapshot channel with (PEM), for `https://` URLs.
    pub snapshot_ca: Option<PathBuf>,
    /// This gateway's name in counter reports to the manager.
    pub report_name: String,
    /// How often counters are reported to the manager.
    pub report_interval: Duration,
}

/// Starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Flags that do not go together.
    #[error("{0}")]
    Config(String),
    /// No Kubernetes client could be configured.
    #[error("cannot configure the Kubernetes client: {0}")]
    Kube(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Bound OTLP/gRPC address.
    pub otlp_grpc_addr: SocketAddr,
    /// Bound OTLP/HTTP address.
    pub otlp_http_addr: SocketAddr,
    /// Bound health address.
    pub health_addr: SocketAddr,
    /// Bound metrics address.
    pub metrics_addr: SocketAddr,
    /// Metric families, for in-process tests.
    pub metrics: Metrics,
    health: Arc<Health>,
    router: Arc<Router>,
    stop_receivers: CancellationToken,
    stop_admin: CancellationToken,
    receivers: JoinSet<()>,
    admin: JoinSet<()>,
    /// The thread serving health and metrics ([`admin::spawn_thread`]).
    admin_thread: std::thread::JoinHandle<()>,
    grace: Duration,
}

/// What shutdown could not deliver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Spans dropped, per exporter, with a non-zero count.
    pub dropped: Vec<(String, u64)>,
}

// === impl GatewayConfig ===

impl Default for GatewayConfig {
    fn default() -> Self {
        let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
        Self {
            otlp_grpc_addr: any(4317),
            otlp_http_addr: any(4318),
            health_addr: any(13133),
            metrics_addr: any(8888),
            receiver: ReceiverSettings::default(),
            pipelines: PathBuf::from("/etc/otlp-gateway/pipelines"),
            reload_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(25),
            pipeline: PipelineSettings::default(),
            pods: None,
            index: IndexConfig::default(),
            kubernetes: false,
            pod_sync_timeout: Duration::from_secs(10),
            service_mode: ServiceMode::default(),
            snapshot_url: None,
            token_file: None,
            snapshot_file: None,
            snapshot_ca: None,
            report_name: "otlp-gateway".into(),
            report_interval: tracegw_contract::stream::REPORT_INTERVAL,
        }
    }
}

// === impl Gateway ===

impl Gateway {
    /// Binds every listener, loads the configuration once, and starts serving.
    pub async fn start(config: GatewayConfig) -> Result<Self, StartError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
        };
        let grpc_listener = bind(config.otlp_grpc_addr).await?;
        let http_listener = bind(config.otlp_http_addr).await?;
        let health_listener = bind(config.health_addr).await?;
        let metrics_listener = bind(config.metrics_addr).await?;
        let local = |l: &TcpListener, fallback| l.local_addr().unwrap_or(fallback);
        let otlp_grpc_addr = local(&grpc_listener, config.otlp_grpc_addr);
        let otlp_http_addr = local(&http_listener, config.otlp_http_addr);
        let health_addr = local(&health_listener, config.health_addr);
        let metrics_addr = local(&metrics_listener, config.metrics_addr);

        let metrics = Metrics::default();
        let registry = Arc::new(metrics.registry());
        let health = Arc::new(Health::default());
        let router = Arc::new(Router::new(config.pipeline, metrics.clone()));
        let enricher = (config.pods.is_some() || config.kubernetes)
            .then(|| Arc::new(Enricher::new(config.service_mode)));
        let kube = if config.kubernetes {
            let node = config.index.node_name.clone().ok_or_else(|| {
                StartError::Config("--kubernetes needs the node's name: --node-name or MY_NODE_NAME".into())
            })?;
            let client = kube::Client::try_default().await.map_err(|e| StartError::Kube(e.to_string()))?;
            Some((client, node))
        } else {
            None
        };
        let ingest = Arc::new(Ingest::new(Arc::clone(&router), enricher.clone(), &metrics));
        let stop_receivers = CancellationToken::new();
        let stop_admin = CancellationToken::new();

        let mut admin = JoinSet::new();
        let std_listener =
            |l: TcpListener, addr| l.into_std().map_err(|source| StartError::Bind { addr, source });
        let admin_thread = admin::spawn_thread(
            [
                (std_listener(health_listener, health_addr)?, Role::Health),
                (std_listener(metrics_listener, metrics_addr)?, Role::Metrics),
            ],
            Arc::clone(&health),
            Arc::clone(&registry),
            &metrics,
            stop_admin.clone(),
        )
        .map_err(|source| StartError::Bind { addr: health_addr, source })?;

        // Enrichment settings pushed by the control plane, for the pod index writer.
        let (settings_tx, settings_rx) = tokio::sync::watch::channel(None);
        let pushed = config.snapshot_url.is_some();
        match (&config.snapshot_url, &config.token_file) {
            (Some(url), Some(token_file)) => {
                let link = crate::link::ManagerLink {
                    url: url.clone(),
                    token_file: token_file.clone(),
                    ca_file: config.snapshot_ca.clone(),
                };
                let subscriber = Subscriber {
                    link: link.clone(),
                    snapshot_file: config.snapshot_file.clone(),
                    router: Arc::clone(&router),
                    health: Arc::clone(&health),
                    metrics: metrics.clone(),
                    settings: settings_tx,
                };
                admin.spawn(subscriber.run(stop_admin.clone()));
                let reporter = Reporter {
                    link,
                    name: config.report_name.clone(),
                    interval: config.report_interval,
                    router: Arc::clone(&router),
                    metrics: metrics.clone(),
                };
                admin.spawn(reporter.run(stop_admin.clone()));
            }
            (Some(_), None) => return Err(StartError::Config("--snapshot-url needs --token-file".into())),
            (None, _) => {
                let mut source = FileSource::new(
                    config.pipelines.clone(),
                    Arc::clone(&router),
                    Arc::clone(&health),
                    metrics.clone(),
                )
                .with_settings(settings_tx);
                source.poll();
                admin.spawn(source.run(config.reload_interval, stop_admin.clone()));
            }
        }

        if let (Some((client, node)), Some(enricher)) = (kube, &enricher) {
            let sync = Arc::new(SyncState::default());
            health.set_index_synced(false);
            admin.spawn(crate::process::enrich::kube::run(
                client,
                node,
                config.index.clone(),
                Arc::clone(enricher),
                Arc::clone(&sync),
                if pushed {
                    KubeSettings::Pushed(settings_rx.clone())
                } else {
                    KubeSettings::Local(Some(settings_rx.clone()))
                },
                stop_admin.clone(),
            ));
            let (health, metrics, timeout) = (Arc::clone(&health), metrics.clone(), config.pod_sync_timeout);
            // Readiness waits for the first complete pod list, for at most `timeout`; after that the
            // gateway serves without enrichment rather than not at all, and says so.
            admin.spawn(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                let mut warned = false;
                while !sync.is_synced() {
                    if !warned && tokio::time::Instant::now() >= deadline {
                        tracing::warn!(
                            ?timeout,
                            "no complete pod list yet: serving WITHOUT enrichment until it arrives"
                        );
                        health.set_index_synced(true);
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if warned {
                    tracing::info!("pod list complete: enrichment active");
                }
                metrics.pod_index_synced.set(1);
                health.set_index_synced(true);
            });
        }
        if let (Some(path), Some(enricher)) = (&config.pods, &enricher) {
            let mut pods = PodFileSource::new(
                path.clone(),
                Arc::clone(enricher),
                config.index.clone(),
                // Pushed by the manager, or from the Telemetry among the pipelines files.
                Some(settings_rx.clone()),
            );
            pods.poll();
            admin.spawn(pods.run(config.reload_interval, stop_admin.clone()));
        }

        let mut receivers = JoinSet::new();
        let receiving = Receiving::new(&config.receiver, &metrics);
        let service = TraceService::new(Arc::clone(&ingest), Arc::clone(&receiving));
        receivers.spawn(grpc::serve(grpc_listener, service, stop_receivers.clone()));
        receivers.spawn(http::serve(http_listener, ingest, receiving, stop_receivers.clone()));
        health.set_listening();
        // The configuration's source: the manager's URL, or the pipelines path (unused with a URL).
        match &config.snapshot_url {
            Some(url) => {
                tracing::info!(%otlp_grpc_addr, %otlp_http_addr, %health_addr, %metrics_addr, snapshot_url = %url, "otlp-gateway started")
            }
            None => {
                tracing::info!(%otlp_grpc_addr, %otlp_http_addr, %health_addr, %metrics_addr, pipelines = %config.pipelines.display(), "otlp-gateway started")
            }
        }

        Ok(Self {
            otlp_grpc_addr,
            otlp_http_addr,
            health_addr,
            metrics_addr,
            metrics,
            health,
            router,
            stop_receivers,
            stop_admin,
            receivers,
            admin,
            admin_thread,
            grace: config.shutdown_grace,
        })
    }

    /// Stops in order and reports what could not be delivered.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.health.set_draining();
        self.stop_receivers.cancel();
        while self.receivers.join_next().await.is_some() {}
        let reports = self.router.shutdown(self.grace).await;
        self.stop_admin.cancel();
        while self.admin.join_next().await.is_some() {}
        let admin_thread = self.admin_thread;
        if tokio::task::spawn_blocking(move || admin_thread.join()).await.is_err() {
            tracing::warn!("the admin thread did not stop cleanly");
        }
        let dropped: Vec<(String, u64)> = reports
            .into_iter()
            .filter(|r| r.dropped_spans > 0)
            .map(|r| (r.exporter_id, r.dropped_spans))
            .collect();
        for (exporter, spans) in &dropped {
            tracing::error!(%exporter, spans, "spans not delivered before the shutdown grace period ended");
        }
        ShutdownReport { dropped }
    }
}

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h, the same index in its v2
/// and v3); libmimalloc-sys names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// mimalloc v3's `allow_thp` option (`mi_option_allow_thp`); libmimalloc-sys names no constant.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Two memory settings, each measured in the pods10k load test (PERF.md):
/// - mimalloc keeps freed pages committed for a second by default. Under the gateway's steady churn
///   of request and batch buffers that holds tens of MiB it no longer uses; they are returned at once.
/// - mimalloc asks the kernel for transparent huge pages on its arenas, so a 2 MiB page that holds a
///   few live kilobytes counts whole in the RSS: a third of the gateway's RSS was such pages. The
///   gateway's working set is small and its buffers are pooled, so 4 KiB pages cost no measurable
///   CPU. The first arena is mapped (and advised) before `main` runs, so mimalloc's own switch comes
///   too late for it; the process-wide `PR_SET_THP_DISABLE` covers every fault from here on.
///
/// `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ALLOW_THP` still override. Call it first thing in `main`.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator, which mimalloc reads atomically; no code
        // relies on its previous value.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and sets one flag of this process; a
        // kernel without it fails the call, which leaves huge pages as they were.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Scenario: the allocator options the gateway tunes, read before and after tuning.
    /// Guarantees: the indexes name mimalloc v3's purge delay and THP switch (their distinctive
    /// defaults, and those of THP's neighbours, are what is read first), and tuning sets both to 0.
    #[test]
    fn allocator_options_are_the_right_ones() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some()
            || std::env::var_os("MIMALLOC_ALLOW_THP").is_some()
        {
            return;
        }
        // SAFETY: reads allocator options.
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(
            get(super::MI_OPTION_PURGE_DELAY),
            1000,
            "not mimalloc v3's purge delay default: wrong index?"
        );
        // page_max_reclaim (-1), page_cross_thread_max_reclaim (32), allow_thp (1).
        let around_thp = [
            get(super::MI_OPTION_ALLOW_THP - 2),
            get(super::MI_OPTION_ALLOW_THP - 1),
            get(super::MI_OPTION_ALLOW_THP),
        ];
        assert_eq!(around_thp, [-1, 32, 1], "not mimalloc v3's option layout: wrong THP index?");
        super::tune_allocator();
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY), 0);
        assert_eq!(get(super::MI_OPTION_ALLOW_THP), 0);
        // SAFETY: reads one flag of this process.
        #[cfg(target_os = "linux")]
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1, "THP still enabled");
    }
}
