//! `telemetry-manager` binary.
//!
//! - `telemetry-manager --kubernetes`: in a cluster (service account, else KUBECONFIG): reconciles
//!   TracePipelines, runs the gateway DaemonSet, pushes snapshots, writes status.
//! - `telemetry-manager --pipelines PATH --token-file FILE`: local mode, renders snapshots from
//!   TracePipeline/Secret YAML, serves them to gateways (`otlp-gateway --snapshot-url http://ADDR
//!   --token-file FILE`), and prints each pipeline's conditions whenever they change.
//! - `telemetry-manager check --pipelines PATH [--max-pipelines N | --unlimited-pipelines]`: validates
//!   once and prints the conditions, then the status of the `default` Telemetry if the files hold it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use telemetry_manager::cluster::{self, ClusterConfig, EnrichmentFlags};
use telemetry_manager::conditions::{self, FlowHealth, GatewayHealth, Verdict};
use telemetry_manager::flow::FlowSettings;
use telemetry_manager::gateway::GatewaySettings;
use telemetry_manager::local::{self, LocalConfig};
use telemetry_manager::logging::LogFilter;
use telemetry_manager::net::{self, ServerLimits};
use telemetry_manager::webhook_cert::WebhookSettings;
use tracegw_contract::{PodLabelRule, ResolveOptions, ServiceMode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for flags that cannot work (EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// How long a stop waits for a reconcile pass in progress; within the manager's termination grace
/// period (10 s in deploy/).
const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Where local mode serves when no address is given.
const LOCAL_SNAPSHOT_ADDR: &str = "127.0.0.1:9090";

fn defaults() -> ClusterConfig {
    ClusterConfig::default()
}

fn gateway_defaults() -> GatewaySettings {
    GatewaySettings::default()
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

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Control plane for otlp-gateway: reconciles TracePipelines and pushes config snapshots"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run in a cluster: watch TracePipelines and Secrets, run the gateway DaemonSet, write status.
    #[arg(long, env = "TELEMETRY_MANAGER_KUBERNETES")]
    kubernetes: bool,
    /// Local mode: TracePipeline and Secret YAML, a file or a directory; re-read when it changes.
    #[arg(long)]
    pipelines: Option<PathBuf>,
    /// Local mode: the token gateways must present; created with a random value if the file is missing.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Where gateways subscribe to snapshots and report their counters [default: 127.0.0.1:9090
    /// locally, 0.0.0.0:9090 in a cluster].
    #[arg(long)]
    snapshot_addr: Option<SocketAddr>,
    /// The TracePipeline validating admission webhook (HTTPS, certificate provisioned by the manager)
    /// in a cluster.
    #[arg(long, default_value_t = telemetry_manager::webhook::DEFAULT_ADDR)]
    webhook_addr: SocketAddr,
    /// Operations endpoints (/metrics, /healthz, /readyz) in a cluster.
    #[arg(long, default_value_t = defaults().admin_addr)]
    admin_addr: SocketAddr,
    /// At most this many TracePipelines run (the oldest); Kyma's limit is 5.
    #[arg(long, global = true, default_value_t = tracegw_contract::DEFAULT_MAX_PIPELINES)]
    max_pipelines: usize,
    /// Lift the pipeline limit (Kyma's experimental mode).
    #[arg(long, global = true)]
    unlimited_pipelines: bool,
    /// Flow health looks at the gateways' counters over this window.
    #[arg(long, default_value_t = FlowSettings::default().window.into())]
    flow_window: humantime::Duration,
    /// Namespace of the manager and the gateway.
    #[arg(long, env = "POD_NAMESPACE", default_value_t = gateway_defaults().namespace)]
    namespace: String,
    /// The otlp-gateway image the DaemonSet runs.
    #[arg(long, env = "GATEWAY_IMAGE", default_value_t = gateway_defaults().image)]
    gateway_image: String,
    /// Image pull policy of the gateway.
    #[arg(long, default_value_t = gateway_defaults().image_pull_policy)]
    gateway_image_pull_policy: String,
    /// PriorityClass of the gateway pods; empty for none.
    #[arg(long, default_value_t = gateway_defaults().priority_class)]
    gateway_priority_class: String,
    /// Memory limit of each gateway pod.
    #[arg(long, default_value_t = gateway_defaults().memory_limit)]
    gateway_memory_limit: String,
    /// Runtime worker threads per gateway; 0 leaves the gateway's default (one).
    #[arg(long, default_value_t = gateway_defaults().worker_threads)]
    gateway_worker_threads: usize,
    /// The URL gateways reach this manager at [default: https://telemetry-manager.<namespace>.svc:9090].
    #[arg(long)]
    manager_url: Option<String>,
    /// Serve the snapshot channel in plain HTTP instead of TLS (e.g. when a mesh already encrypts it;
    /// give an http:// --manager-url then).
    #[arg(long)]
    snapshot_plaintext: bool,
    /// Service attribute rules passed to every gateway.
    #[arg(long, value_enum, default_value_t = ServiceEnrichment::KymaLegacy)]
    service_enrichment: ServiceEnrichment,
    /// Pod label to copy as `k8s.pod.label.<key>` (repeatable).
    #[arg(long = "pod-label")]
    pod_labels: Vec<String>,
    /// Pod label prefix to copy as `k8s.pod.label.<key>` (repeatable).
    #[arg(long = "pod-label-prefix")]
    pod_label_prefixes: Vec<String>,
    /// `k8s.cluster.name`; defaults to the API server's host, as Kyma's.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Close a connection whose request head has not arrived this long after its first byte.
    #[arg(long, default_value_t = net::DEFAULT_HEADER_READ_TIMEOUT.into())]
    header_read_timeout: humantime::Duration,
    /// Answer a request whose body has not arrived this long after its head (and close it).
    #[arg(long, default_value_t = net::DEFAULT_BODY_READ_TIMEOUT.into())]
    body_read_timeout: humantime::Duration,
    /// Close a keep-alive connection without a request for this long.
    #[arg(long, default_value_t = net::DEFAULT_IDLE_TIMEOUT.into())]
    idle_timeout: humantime::Duration,
    /// Close a connection whose TLS handshake has not finished within this long.
    #[arg(long, default_value_t = net::DEFAULT_HANDSHAKE_TIMEOUT.into())]
    handshake_timeout: humantime::Duration,
    /// At most this many open connections per listener (snapshots, webhook, admin); more are closed
    /// at once.
    #[arg(long, default_value_t = net::DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    max_connections: usize,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `telemetry_manager=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate TracePipeline/Secret YAML and print each pipeline's ConfigurationGenerated condition,
    /// then the state and TraceComponentsHealthy of the `default` Telemetry if the files hold it.
    /// Exits 1 when any pipeline or the Telemetry is invalid or there is no pipeline, 2 when the YAML
    /// cannot be read.
    Check {
        /// A YAML file or a directory of them.
        #[arg(long)]
        pipelines: Option<PathBuf>,
    },
}

// === impl Cli ===

impl Cli {
    fn max_pipelines(&self) -> Option<usize> {
        (!self.unlimited_pipelines).then_some(self.max_pipelines)
    }

    fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: self.header_read_timeout.into(),
            body_read_timeout: self.body_read_timeout.into(),
            idle_timeout: self.idle_timeout.into(),
            handshake_timeout: self.handshake_timeout.into(),
            max_connections: self.max_connections,
        }
    }

    fn cluster_config(&self) -> ClusterConfig {
        let d = defaults();
        ClusterConfig {
            gateway: GatewaySettings {
                namespace: self.namespace.clone(),
                image: self.gateway_image.clone(),
                image_pull_policy: self.gateway_image_pull_policy.clone(),
                priority_class: self.gateway_priority_class.clone(),
                memory_limit: self.gateway_memory_limit.clone(),
                worker_threads: self.gateway_worker_threads,
                manager_url: self.manager_url.clone().unwrap_or_else(|| {
                    let url = telemetry_manager::gateway::manager_url(&self.namespace);
                    if self.snapshot_plaintext { url.replacen("https://", "http://", 1) } else { url }
                }),
                ..gateway_defaults()
            },
            max_pipelines: self.max_pipelines(),
            snapshot_addr: self.snapshot_addr.unwrap_or(d.snapshot_addr),
            admin_addr: self.admin_addr,
            flow: FlowSettings { window: self.flow_window.into(), ..FlowSettings::default() },
            tls: !self.snapshot_plaintext,
            webhook: Some(WebhookSettings { addr: self.webhook_addr, ..WebhookSettings::default() }),
            limits: self.limits(),
            // Set by `main` from the installed subscriber.
            log_filter: None,
            enrichment: EnrichmentFlags {
                service_mode: match self.service_enrichment {
                    ServiceEnrichment::KymaLegacy => ServiceMode::KymaLegacy,
                    ServiceEnrichment::Otel => ServiceMode::Otel,
                },
                pod_labels: self
                    .pod_labels
                    .iter()
                    .map(|k| PodLabelRule::Key(k.clone()))
                    .chain(self.pod_label_prefixes.iter().map(|p| PodLabelRule::KeyPrefix(p.clone())))
                    .collect(),
                cluster_name: self.cluster_name.clone(),
            },
        }
    }
}

// === free functions ===

/// Logs to stderr; colours only on a terminal (and not with `NO_COLOR`), so files and collectors get
/// plain text. The filter sits behind a reload layer, so that the overrides ConfigMap can change it
/// while the manager runs; the returned handle does that.
fn init_logging(format: LogFormat, filter: &str) -> Option<LogFilter> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter_layer, handle) = match LogFilter::new(filter).or_else(|_| LogFilter::new("info")) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("warning: no logging: {e}");
            return None;
        }
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter_layer);
    match format {
        LogFormat::Text => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
    }
    Some(handle)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check { pipelines }) = &cli.command {
        let Some(pipelines) = pipelines.as_ref().or(cli.pipelines.as_ref()) else {
            eprintln!("error: check needs --pipelines PATH (a YAML file or a directory of them)");
            return ExitCode::from(EXIT_USAGE);
        };
        return check(pipelines, cli.max_pipelines());
    }
    let log_filter = init_logging(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.kubernetes {
        let config = ClusterConfig { log_filter, ..cli.cluster_config() };
        return runtime.block_on(run_cluster(config));
    }
    let (Some(pipelines), Some(token_file)) = (cli.pipelines.clone(), cli.token_file.clone()) else {
        eprintln!(
            "error: give --kubernetes, or --pipelines and --token-file for local mode (or use `check`)"
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let addr =
        cli.snapshot_addr.unwrap_or_else(|| LOCAL_SNAPSHOT_ADDR.parse().unwrap_or(defaults().snapshot_addr));
    let config = LocalConfig {
        max_pipelines: cli.max_pipelines(),
        flow: FlowSettings { window: cli.flow_window.into(), ..FlowSettings::default() },
        limits: cli.limits(),
        ..LocalConfig::new(pipelines, addr, token_file)
    };
    runtime.block_on(serve_local(config))
}

async fn run_cluster(config: ClusterConfig) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot configure the Kubernetes client");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let manager = match cluster::start(client, config).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        snapshot_addr = %manager.snapshot_addr,
        admin_addr = %manager.admin_addr,
        webhook_addr = ?manager.webhook_addr,
        "telemetry-manager started"
    );
    let signal = tracegw_runtime::terminated().await;
    tracing::info!(%signal, "stopping");
    manager.stop.cancel();
    if tokio::time::timeout(STOP_TIMEOUT, manager.wait()).await.is_err() {
        tracing::warn!(timeout = ?STOP_TIMEOUT, "a reconcile pass did not finish; stopping anyway");
    }
    tracing::info!("telemetry-manager stopped");
    ExitCode::SUCCESS
}

async fn serve_local(config: LocalConfig) -> ExitCode {
    // Each condition line as it changes, stamped with the time it changed.
    let report = |line: String| println!("{}\t{line}", timestamp());
    let manager = match local::start(config, report).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Kept exactly so (no timestamp): `loadtest fanout` and scripts read the address from this line.
    eprintln!("serving snapshots on {}", manager.addr);
    let signal = tracegw_runtime::terminated().await;
    tracing::info!(%signal, "stopping");
    manager.stop.cancel();
    tracing::info!("telemetry-manager stopped");
    ExitCode::SUCCESS
}

/// A count of at least one.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a whole number of at least 1")),
    }
}

/// Now in UTC, RFC 3339 with milliseconds, as the log lines of `tracing` carry it.
fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = conditions::rfc3339(now.as_secs() as i64);
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), now.subsec_millis())
}

fn check(path: &Path, max_pipelines: Option<usize>) -> ExitCode {
    let objects = match tracegw_contract::load::load_path(path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let others: Vec<(&str, &str)> = objects
        .others
        .iter()
        .map(|o| {
            let field = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            (field("kind"), field("apiVersion"))
        })
        .collect();
    for (kind, api_version) in &others {
        if let Some(hint) = near_miss(kind, api_version) {
            eprintln!(
                "warning: {} holds a document that is not read as a TracePipeline: {hint}",
                path.display()
            );
        }
    }
    if objects.pipelines.is_empty() && objects.broken_pipelines.is_empty() {
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        let described =
            others.iter().map(|(k, v)| format!("{} ({v})", if k.is_empty() { "no kind" } else { k }));
        for kind in described.chain(objects.secrets.iter().map(|_| "Secret (v1)".to_string())) {
            *kinds.entry(kind).or_default() += 1;
        }
        let found: Vec<String> =
            kinds.iter().map(|(k, n)| if *n == 1 { k.clone() } else { format!("{n} x {k}") }).collect();
        let found = if found.is_empty() { "no documents".to_string() } else { found.join(", ") };
        eprintln!(
            "error: no TracePipeline in {}: a TracePipeline has `apiVersion: {}` (or {}) and `kind: \
             TracePipeline`; found {found}",
            path.display(),
            tracegw_contract::pipeline::API_VERSION_V1BETA1,
            tracegw_contract::pipeline::API_VERSION_V1ALPHA1,
        );
        return ExitCode::FAILURE;
    }
    let options = ResolveOptions { max_pipelines, ..ResolveOptions::at_version(1) };
    let resolution = match tracegw_contract::resolve_path(path, options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut evaluated = Vec::new();
    for status in &resolution.statuses {
        let verdict = match &status.result {
            Ok(g) => Verdict::Generated(g.cert_expiry),
            Err(e) => Verdict::Rejected(e.clone()),
        };
        let all = conditions::conditions(
            &verdict,
            &GatewayHealth::Ready,
            &FlowHealth::Pending,
            None,
            options.now,
            None,
        );
        for line in conditions::lines(&status.name, &all[..1]) {
            println!("{line}");
        }
        // Kyma's condition message for the pipeline limit is fixed and does not say what the limit is.
        if let (Err(e), Some(max)) = (&status.result, max_pipelines)
            && e.reason == tracegw_contract::Reason::MaxPipelinesExceeded
        {
            println!(
                "{}\tlimit: at most {max} TracePipelines run, the oldest first (--max-pipelines N, or \
                 --unlimited-pipelines)",
                status.name
            );
        }
        evaluated.push((status.name.clone(), all));
    }
    let mut failed = resolution.statuses.iter().any(|s| s.result.is_err());
    // The module's status after the pipelines', when the files hold the `default` Telemetry.
    match telemetry_manager::telemetry::local_status(path, &evaluated) {
        Ok(Some(status)) => {
            for line in
                telemetry_manager::telemetry::lines(tracegw_contract::telemetry::DEFAULT_NAME, &status)
            {
                println!("{line}");
            }
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Why a document that looks meant as a TracePipeline is not read as one: a kind a few letters off,
/// or the kind in another API group.
fn near_miss(kind: &str, api_version: &str) -> Option<String> {
    const KIND: &str = "TracePipeline";
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if kind == KIND {
        return Some(format!(
            "kind TracePipeline with apiVersion '{api_version}': the API group must be {}",
            tracegw_contract::pipeline::GROUP
        ));
    }
    let close = edit_distance(&kind.to_ascii_lowercase(), &KIND.to_ascii_lowercase()) <= 3;
    (close || group == tracegw_contract::pipeline::GROUP)
        .then(|| format!("kind '{kind}' (apiVersion '{api_version}'); did you mean kind: TracePipeline?"))
}

/// Levenshtein distance, for the few short strings `near_miss` compares.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
