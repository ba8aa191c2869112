//! `otlp-gateway` binary: flags, logging, signals. Everything else lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use otlp_gateway::batch::BatchLimits;
use otlp_gateway::export::{ExportSettings, RetryPolicy};
use otlp_gateway::pipeline::PipelineSettings;
use otlp_gateway::process::enrich::ServiceMode;
use otlp_gateway::process::enrich::index::{IndexConfig, LabelRule};
use otlp_gateway::receiver::ReceiverSettings;
use otlp_gateway::receiver::limits::ConnectionLimits;
use otlp_gateway::{Gateway, GatewayConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration that cannot start (EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn defaults() -> GatewayConfig {
    GatewayConfig::default()
}

fn hd(d: std::time::Duration) -> humantime::Duration {
    d.into()
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ServiceEnrichment {
    KymaLegacy,
    Otel,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Node-local OTLP trace gateway: receives OTLP over gRPC and HTTP, batches per TracePipeline and
/// exports to each pipeline's backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TracePipeline and Secret YAML: a file or a directory; re-read when it changes.
    #[arg(long, env = "OTLP_GATEWAY_PIPELINES", default_value_os_t = defaults().pipelines)]
    pipelines: PathBuf,
    /// Take config snapshots from telemetry-manager at this URL (e.g. http://127.0.0.1:9090) instead of
    /// reading --pipelines.
    #[arg(long, env = "OTLP_GATEWAY_SNAPSHOT_URL")]
    snapshot_url: Option<String>,
    /// File with the token telemetry-manager expects.
    #[arg(long, env = "OTLP_GATEWAY_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The manager's stored copy of its latest snapshot (mounted from its Secret): run at start
    /// while the manager cannot be reached.
    #[arg(long, env = "OTLP_GATEWAY_SNAPSHOT_FILE")]
    snapshot_file: Option<PathBuf>,
    /// The certificate telemetry-manager serves snapshots with (PEM); the only one trusted for an
    /// https:// --snapshot-url. Without it the system's roots are used.
    #[arg(long, env = "OTLP_GATEWAY_SNAPSHOT_CA")]
    snapshot_ca: Option<PathBuf>,
    /// This gateway's name in counter reports to the manager.
    #[arg(long, env = "MY_POD_NAME", default_value_t = defaults().report_name)]
    report_name: String,
    /// How often counters are reported to the manager.
    #[arg(long, default_value_t = hd(defaults().report_interval))]
    report_interval: humantime::Duration,
    /// OTLP/gRPC listen address.
    #[arg(long, default_value_t = defaults().otlp_grpc_addr)]
    otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, default_value_t = defaults().otlp_http_addr)]
    otlp_http_addr: SocketAddr,
    /// Health endpoints (/healthz, /readyz, /status).
    #[arg(long, default_value_t = defaults().health_addr)]
    health_addr: SocketAddr,
    /// Prometheus metrics (/metrics).
    #[arg(long, default_value_t = defaults().metrics_addr)]
    metrics_addr: SocketAddr,
    /// Largest request accepted, in bytes after decompression (413 / RESOURCE_EXHAUSTED above it).
    #[arg(long, default_value_t = defaults().receiver.max_request_bytes)]
    max_request_bytes: usize,
    /// Memory budget for request bytes in flight (read, decompressed, queued); requests beyond it get
    /// 503 / UNAVAILABLE with a retry delay. Default: 60 % of the container's memory limit (Kyma's
    /// memory limiter: 75 % limit, 15 % spike), or of the machine's memory without a limit.
    #[arg(long)]
    memory_budget_bytes: Option<usize>,
    /// A client must send a request's headers (HTTP/1.1) within this long.
    #[arg(long, default_value_t = hd(defaults().receiver.limits.header_read_timeout))]
    header_read_timeout: humantime::Duration,
    /// A request body or gRPC message that makes no progress for this long is abandoned.
    #[arg(long, default_value_t = hd(defaults().receiver.limits.body_idle_timeout))]
    body_idle_timeout: humantime::Duration,
    /// Connections without a request for this long are closed.
    #[arg(long, default_value_t = hd(defaults().receiver.limits.idle_timeout))]
    connection_idle_timeout: humantime::Duration,
    /// Quiet HTTP/2 connections are pinged this often...
    #[arg(long, default_value_t = hd(defaults().receiver.limits.keepalive_interval))]
    keepalive_interval: humantime::Duration,
    /// ...and closed when a ping is not answered within this long.
    #[arg(long, default_value_t = hd(defaults().receiver.limits.keepalive_timeout))]
    keepalive_timeout: humantime::Duration,
    /// Open connections per OTLP listener; more are closed on arrival.
    #[arg(long, default_value_t = defaults().receiver.limits.max_connections)]
    max_connections: usize,
    /// How often the pipelines path is checked for changes.
    #[arg(long, default_value_t = hd(defaults().reload_interval))]
    reload_interval: humantime::Duration,
    /// Time to drain queues on SIGTERM/SIGINT before giving up on what is left.
    #[arg(long, default_value_t = hd(defaults().shutdown_grace))]
    shutdown_grace: humantime::Duration,
    /// Queue budget of the gateway, in spans, divided among the pipelines as Kyma divides its 256
    /// batches (each gets whole batches of --batch-max-spans: 256/N of them by default).
    #[arg(long, default_value_t = defaults().pipeline.queue_capacity_spans)]
    queue_capacity_spans: usize,
    /// Queue budget of the gateway, in encoded bytes of the queued spans, divided evenly among the
    /// pipelines.
    #[arg(long, default_value_t = defaults().pipeline.queue_capacity_bytes)]
    queue_capacity_bytes: usize,
    /// Concurrent exports per pipeline.
    #[arg(long, default_value_t = defaults().pipeline.max_in_flight_exports)]
    max_in_flight_exports: usize,
    /// Most spans per exported batch.
    #[arg(long, default_value_t = defaults().pipeline.batch.max_spans)]
    batch_max_spans: usize,
    /// Most bytes per exported batch (before compression).
    #[arg(long, default_value_t = defaults().pipeline.batch.max_bytes)]
    batch_max_bytes: usize,
    /// A batch is sent after this long even if it is not full.
    #[arg(long, default_value_t = hd(defaults().pipeline.batch.flush_interval))]
    batch_timeout: humantime::Duration,
    /// Time allowed for one export attempt.
    #[arg(long, default_value_t = hd(defaults().pipeline.export.timeout))]
    export_timeout: humantime::Duration,
    /// First retry delay.
    #[arg(long, default_value_t = hd(defaults().pipeline.export.retry.initial_interval))]
    retry_initial_interval: humantime::Duration,
    /// Largest retry delay.
    #[arg(long, default_value_t = hd(defaults().pipeline.export.retry.max_interval))]
    retry_max_interval: humantime::Duration,
    /// Give up on a batch after this long; 0s retries forever.
    #[arg(long, default_value_t = hd(defaults().pipeline.export.retry.max_elapsed))]
    retry_max_elapsed: humantime::Duration,
    /// gzip level for exports: 1 uses ISA-L, the cheapest in CPU; 2..9 use libdeflate, smaller
    /// output for more CPU; 0 stores without compressing.
    #[arg(long, default_value_t = defaults().pipeline.export.gzip_level, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// zstd level for exports.
    #[arg(long, default_value_t = defaults().pipeline.export.zstd_level)]
    zstd_level: i32,
    /// Enrich resources with Kubernetes metadata from Pod, Node, Namespace and ConfigMap YAML (a file
    /// or directory, re-read when it changes).
    #[arg(long, env = "OTLP_GATEWAY_PODS")]
    pods: Option<PathBuf>,
    /// Enrich from the Kubernetes API (in-cluster service account, else KUBECONFIG): watch this node's
    /// pods, the node and the cluster facts. Needs --node-name.
    #[arg(long, env = "OTLP_GATEWAY_KUBERNETES")]
    kubernetes: bool,
    /// Service attribute rules: `kyma-legacy` (Kyma's default) or `otel` (OpenTelemetry conventions).
    #[arg(long, value_enum, default_value_t = ServiceEnrichment::KymaLegacy)]
    service_enrichment: ServiceEnrichment,
    /// How long readiness waits for the first pod list before serving without enrichment.
    #[arg(long, default_value_t = hd(defaults().pod_sync_timeout))]
    pod_sync_timeout: humantime::Duration,
    /// This node's name: only its pods are indexed, and its labels give cloud.* and host.*.
    #[arg(long, env = "MY_NODE_NAME")]
    node_name: Option<String>,
    /// Pod label to copy as `k8s.pod.label.<key>` (repeatable).
    #[arg(long = "pod-label")]
    pod_labels: Vec<String>,
    /// Pod label prefix to copy as `k8s.pod.label.<key>` (repeatable).
    #[arg(long = "pod-label-prefix")]
    pod_label_prefixes: Vec<String>,
    /// `k8s.cluster.name`; defaults to KUBERNETES_SERVICE_HOST.
    #[arg(long)]
    cluster_name: Option<String>,
    /// How long a deleted pod stays resolvable.
    #[arg(long, default_value_t = hd(defaults().index.delete_grace))]
    pod_delete_grace: humantime::Duration,
    /// Runtime worker threads; 0 uses one per available core. One is cheapest per span; more raise
    /// the ceiling for nodes with heavy traffic (PERF.md).
    #[arg(long, default_value_t = otlp_gateway::app::DEFAULT_WORKER_THREADS)]
    worker_threads: usize,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `otlp_gateway=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

// === impl Args ===

impl Args {
    fn config(&self) -> GatewayConfig {
        let d = defaults();
        GatewayConfig {
            otlp_grpc_addr: self.otlp_grpc_addr,
            otlp_http_addr: self.otlp_http_addr,
            health_addr: self.health_addr,
            metrics_addr: self.metrics_addr,
            receiver: ReceiverSettings {
                max_request_bytes: self.max_request_bytes,
                memory_budget_bytes: self.memory_budget_bytes,
                limits: ConnectionLimits {
                    header_read_timeout: self.header_read_timeout.into(),
                    body_idle_timeout: self.body_idle_timeout.into(),
                    idle_timeout: self.connection_idle_timeout.into(),
                    keepalive_interval: self.keepalive_interval.into(),
                    keepalive_timeout: self.keepalive_timeout.into(),
                    max_connections: self.max_connections,
                },
            },
            pipelines: self.pipelines.clone(),
            reload_interval: self.reload_interval.into(),
            shutdown_grace: self.shutdown_grace.into(),
            pods: self.pods.clone(),
            kubernetes: self.kubernetes,
            snapshot_url: self.snapshot_url.clone(),
            token_file: self.token_file.clone(),
            snapshot_file: self.snapshot_file.clone(),
            snapshot_ca: self.snapshot_ca.clone(),
            report_name: self.report_name.clone(),
            report_interval: self.report_interval.into(),
            service_mode: match self.service_enrichment {
                ServiceEnrichment::KymaLegacy => ServiceMode::KymaLegacy,
                ServiceEnrichment::Otel => ServiceMode::Otel,
            },
            pod_sync_timeout: self.pod_sync_timeout.into(),
            index: IndexConfig {
                node_name: self.node_name.clone(),
                pod_labels: self
                    .pod_labels
                    .iter()
                    .map(|k| LabelRule::Key(k.clone()))
                    .chain(self.pod_label_prefixes.iter().map(|p| LabelRule::Prefix(p.clone())))
                    .collect(),
                cluster_name: self.cluster_name.clone(),
                delete_grace: self.pod_delete_grace.into(),
            },
            pipeline: PipelineSettings {
                queue_capacity_spans: self.queue_capacity_spans,
                queue_capacity_bytes: self.queue_capacity_bytes,
                max_in_flight_exports: self.max_in_flight_exports,
                batch: BatchLimits {
                    max_spans: self.batch_max_spans,
                    max_bytes: self.batch_max_bytes,
                    flush_interval: self.batch_timeout.into(),
                },
                export: ExportSettings {
                    retry: RetryPolicy {
                        initial_interval: self.retry_initial_interval.into(),
                        max_interval: self.retry_max_interval.into(),
                        max_elapsed: self.retry_max_elapsed.into(),
                        ..d.pipeline.export.retry
                    },
                    timeout: self.export_timeout.into(),
                    gzip_level: self.gzip_level,
                    zstd_level: self.zstd_level,
                },
            },
        }
    }
}

/// Logs to stderr; colours only on a terminal (and not with `NO_COLOR`), so files and collectors get
/// plain text.
fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    otlp_gateway::app::tune_allocator();
    let args = Args::parse();
    init_logging(args.log_format, &args.log_level);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.worker_threads > 0 {
        builder.worker_threads(args.worker_threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let gateway = match Gateway::start(args.config()).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let signal = tracegw_runtime::terminated().await;
        tracing::info!(%signal, "signal received: draining");
        let report = gateway.shutdown().await;
        let lost: u64 = report.dropped.iter().map(|(_, n)| n).sum();
        tracing::info!(undelivered_spans = lost, "stopped");
        ExitCode::SUCCESS
    })
}
