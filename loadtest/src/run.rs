//! `loadtest run SCENARIO`: one measured run. Starts the forwarder under test (our gateway, or rotel
//! with `--peer rotel`) as a process, the sinks and the generator in this process, samples the
//! forwarder's CPU time and RSS from /proc, and prints a table and one JSON line.
//!
//! Everything runs on one machine, so the generator and sinks compete with the forwarder for cores;
//! CPU per span is the forwarder's own CPU time divided by the spans it delivered, which that
//! competition does not inflate much, while throughput figures are bounded by the machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::generate::{self, GenerateArgs, LoadShape, Progress};
use crate::sink::{self, SinkArgs, SinkHandle};

/// Which forwarder to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// Our `otlp-gateway`.
    Gateway,
    /// rotel's `rotel-agent` (PyPI `rotel`), always exporting gzip over gRPC.
    Rotel,
}

/// Named scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One pipeline, uncompressed gRPC export.
    Single,
    /// One pipeline, gzip export at the gateway's default level.
    Gzip,
    /// Three pipelines, each to its own backend.
    Multi3,
    /// Five pipelines, each to its own backend.
    Multi5,
    /// One pipeline whose backend answers 503 to 70 % of requests (Kyma's backpressure test).
    Backpressure,
    /// Two pipelines: one backend down, one healthy.
    DeadBackend,
    /// One pipeline with enrichment from a 10,000-pod index; the generator's 127.0.0.x sources are
    /// pods of the index, so association is by connection.
    Pods10k,
    /// One pipeline with a Kyma-typical OTTL transform (an attribute set where a condition holds, on
    /// every span) and filter (health-check spans by name and attribute; none in the load, so every
    /// span is still checked and delivered).
    Ottl,
    /// Kyma's own load shape, what its published results (about 12–14k spans/s per core) were
    /// measured with: one pipeline, gzip export at the default level, requests of 512 spans with
    /// 40 attributes of 64 bytes each. Sets those three shape flags whatever they say.
    Kyma,
}

/// The `kyma` scenario's spans per request, attributes per span and bytes per attribute value.
pub const KYMA_SHAPE: (usize, usize, usize) = (512, 40, 64);

// === impl Scenario ===

impl Scenario {
    /// The load shape this scenario runs with: `shape`, or Kyma's for `kyma`.
    pub fn shape(self, shape: &LoadShape) -> LoadShape {
        let mut shape = shape.clone();
        if self == Self::Kyma {
            (shape.spans_per_request, shape.attributes, shape.attribute_bytes) = KYMA_SHAPE;
        }
        shape
    }

    /// The export compression of its pipelines.
    fn compression(self) -> &'static str {
        match self {
            Self::Gzip | Self::Kyma => "gzip",
            _ => "none",
        }
    }
}

/// The `ottl` scenario's processing, as a TracePipeline's `spec` lines.
const OTTL_PROCESSING: &str = r#"  transform:
    - conditions:
        - 'resource.attributes["service.name"] != nil'
      statements:
        - 'set(span.attributes["deployment.environment"], "production") where span.kind == SPAN_KIND_SERVER'
  filter:
    - conditions:
        - 'span.name == "GET /healthz" or span.attributes["http.route"] == "/healthz"'
        - 'IsMatch(span.attributes["url.path"], "^/(livez|readyz)$")'
"#;

/// Flags of `loadtest run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Forwarder under test.
    #[arg(long, value_enum, default_value_t = Peer::Gateway)]
    pub peer: Peer,
    /// Offered load in spans/s; 0 sends as fast as possible.
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
    /// Shape of the generated load.
    #[command(flatten)]
    pub shape: LoadShape,
    /// The gateway binary; defaults to `otlp-gateway` next to this binary.
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// The rotel agent binary; defaults to `rotel-agent` on PATH.
    #[arg(long, default_value = "rotel-agent")]
    pub rotel_bin: PathBuf,
    /// Batch timeout given to the forwarder.
    #[arg(long, default_value = "200ms")]
    pub batch_timeout: humantime::Duration,
    /// CPUs the forwarder may run on (`taskset -c` syntax, e.g. `1`): gives it cores of its own when
    /// the load test itself runs under `taskset -c` on the others.
    #[arg(long)]
    pub forwarder_cpus: Option<String>,
    /// Extra flags for the gateway.
    #[arg(long, allow_hyphen_values = true, num_args = 0..)]
    pub gateway_args: Vec<String>,
}

/// Samples of the forwarder's resource use.
#[derive(Debug, Default)]
struct Usage {
    cpu_start: CpuTime,
    cpu_end: CpuTime,
    samples: Vec<Sample>,
}

/// One sample of the run's timeline, taken every `SAMPLE_INTERVAL`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the load started.
    pub t_s: f64,
    /// The forwarder's resident set, KiB.
    pub rss_kib: u64,
    /// The forwarder's CPU time since the load started, seconds.
    pub cpu_s: f64,
    /// Spans the forwarder had accepted so far.
    pub sent_spans: u64,
    /// Spans the forwarder had refused so far (retryable: its queue was full).
    pub refused_spans: u64,
}

/// How often the forwarder's RSS, CPU time and the generator's counters are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// CPU time a process has used, in seconds: in its own code and in the kernel on its behalf. The
/// split shows how much of a forwarder's cost is system calls, TCP and scheduling, which no change
/// in its own code can remove.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuTime {
    pub user: f64,
    pub system: f64,
}

// === impl CpuTime ===

impl CpuTime {
    pub(crate) fn total(self) -> f64 {
        self.user + self.system
    }
}

impl std::ops::Sub for CpuTime {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self { user: self.user - rhs.user, system: self.system - rhs.system }
    }
}

// === impl Usage ===

impl Usage {
    fn rss_peak_mib(&self) -> f64 {
        self.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }

    fn rss_mean_mib(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|s| s.rss_kib).sum::<u64>() as f64 / self.samples.len() as f64 / 1024.0
    }

    /// The timeline as JSON: one object per sample.
    fn timeline(&self) -> Value {
        self.samples
            .iter()
            .map(|s| {
                json!({
                    "t_s": (s.t_s * 1000.0).round() / 1000.0,
                    "rss_mib": (s.rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
                    "cpu_s": (s.cpu_s * 1000.0).round() / 1000.0,
                    "sent_spans": s.sent_spans,
                    "refused_spans": s.refused_spans,
                })
            })
            .collect()
    }
}

// === free functions ===

/// utime and stime of a process.
pub(crate) fn cpu_time(pid: u32) -> anyhow::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields after the closing parenthesis are fixed.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    // USER_HZ is 100 on every Linux this runs on.
    Ok(CpuTime { user: utime / 100.0, system: stime / 100.0 })
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

/// The command that starts `program`, under `taskset -c CPUS` when `cpus` is given. `taskset` sets
/// the affinity and then executes the program in its place, so the process whose /proc entries are
/// sampled is the forwarder itself.
fn forwarder_command(program: &Path, cpus: Option<&str>) -> tokio::process::Command {
    match cpus {
        Some(cpus) => {
            let mut command = tokio::process::Command::new("taskset");
            command.args(["-c", cpus]).arg(program);
            command
        }
        None => tokio::process::Command::new(program),
    }
}

/// Names `taskset` in a start-up error when it is involved: it may be what is missing.
fn under_taskset(args: &RunArgs) -> String {
    args.forwarder_cpus.as_ref().map(|cpus| format!(" under `taskset -c {cpus}`")).unwrap_or_default()
}

fn default_gateway_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("otlp-gateway"))
}

/// Pods in the `pods10k` scenario.
const POD_INDEX_SIZE: usize = 10_000;

/// A node and `count` pods on it; the first `sources` use the generator's addresses 127.0.0.2.., the
/// rest 10.x.y.z.
fn pods_yaml(count: usize, sources: usize) -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: Node\nmetadata: {name: loadtest-node, labels: {topology.kubernetes.io/region: eu-1, kubernetes.io/arch: amd64}}\n",
    );
    for i in 0..count {
        let ip = if i < sources {
            format!("127.0.0.{}", 2 + i % 250)
        } else {
            format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
        };
        out += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: app-{i}-7d4b9c8f5d-abcde, namespace: team-{ns}, uid: uid-{i}, labels: {{app.kubernetes.io/name: app-{i}, pod-template-hash: 7d4b9c8f5d}}, ownerReferences: [{{kind: ReplicaSet, name: app-{i}-7d4b9c8f5d, controller: true}}]}}\nspec: {{nodeName: loadtest-node}}\nstatus: {{podIP: {ip}, startTime: '2026-11-25T08:00:00Z'}}\n",
            ns = i % 40
        );
    }
    out
}

fn pipeline_yaml(name: &str, endpoint: &str, compression: &str, processing: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\nspec:\n  output:\n    otlp:\n      compression: {compression}\n      endpoint:\n        value: {endpoint}\n{processing}---\n"
    )
}

async fn free_port() -> anyhow::Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?)
}

async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("forwarder did not listen on {addr} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn sink_args(fail_fraction: f64) -> SinkArgs {
    SinkArgs {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stats_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dump: None,
        fail_fraction,
        reject_fraction: 0.0,
        delay: Duration::ZERO.into(),
        down_for: Duration::ZERO.into(),
        max_runtime: Duration::from_secs(3600).into(),
    }
}

/// Runs one scenario and returns its result as JSON.
pub async fn run(args: RunArgs) -> anyhow::Result<Value> {
    let dir = tempfile_dir()?;
    let shape = args.scenario.shape(&args.shape);
    let (pipelines, fail_fraction, dead) = match args.scenario {
        Scenario::Single | Scenario::Gzip | Scenario::Kyma => (1, 0.0, false),
        Scenario::Multi3 => (3, 0.0, false),
        Scenario::Multi5 => (5, 0.0, false),
        Scenario::Backpressure => (1, 0.7, false),
        Scenario::DeadBackend => (2, 0.0, true),
        Scenario::Pods10k | Scenario::Ottl => (1, 0.0, false),
    };
    let compression = args.scenario.compression();
    let mut sinks: Vec<SinkHandle> = Vec::new();
    for _ in 0..pipelines {
        sinks.push(sink::start(sink_args(fail_fraction)).await?);
    }
    let dead_addr = free_port().await?;
    let grpc = free_port().await?;
    let http = free_port().await?;

    let mut child = match args.peer {
        Peer::Gateway => {
            let mut yaml = String::new();
            for (i, s) in sinks.iter().enumerate() {
                let target = if dead && i == 0 { dead_addr } else { s.grpc };
                let processing = if args.scenario == Scenario::Ottl { OTTL_PROCESSING } else { "" };
                yaml +=
                    &pipeline_yaml(&format!("p{i}"), &format!("http://{target}"), compression, processing);
            }
            let file = dir.join("pipelines.yaml");
            std::fs::write(&file, yaml)?;
            let mut enrichment: Vec<String> = Vec::new();
            if args.scenario == Scenario::Pods10k {
                let pods = dir.join("pods.yaml");
                std::fs::write(&pods, pods_yaml(POD_INDEX_SIZE, shape.sources.max(1)))?;
                enrichment = vec![
                    "--pods".into(),
                    pods.display().to_string(),
                    "--node-name".into(),
                    "loadtest-node".into(),
                ];
            }
            let bin = match &args.gateway_bin {
                Some(b) => b.clone(),
                None => default_gateway_bin()?,
            };
            let batch_timeout = args.batch_timeout.to_string();
            forwarder_command(&bin, args.forwarder_cpus.as_deref())
                .arg("--pipelines")
                .arg(&file)
                .args(["--otlp-grpc-addr", &grpc.to_string(), "--otlp-http-addr", &http.to_string()])
                .args(["--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
                .args(["--batch-timeout", &batch_timeout, "--log-level", "warn"])
                .args(&enrichment)
                .args(&args.gateway_args)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}{}", bin.display(), under_taskset(&args)))?
        }
        Peer::Rotel => {
            if pipelines != 1 || dead {
                bail!("--peer rotel runs the single-backend scenarios (single, gzip, kyma, backpressure)");
            }
            forwarder_command(&args.rotel_bin, args.forwarder_cpus.as_deref())
                .arg("start")
                .args(["--otlp-grpc-endpoint", &grpc.to_string(), "--otlp-http-endpoint", &http.to_string()])
                .args([
                    "--exporter",
                    "otlp",
                    "--otlp-exporter-endpoint",
                    &format!("http://{}", sinks[0].grpc),
                ])
                .args(["--batch-timeout", &args.batch_timeout.to_string(), "--traces-batch-max-size", "512"])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}{}", args.rotel_bin.display(), under_taskset(&args)))?
        }
    };
    let pid = child.id().context("forwarder exited at once")?;
    let target = if shape.protocol == "http" { http } else { grpc };
    wait_for_port(target, Duration::from_secs(20)).await?;
    // Let the forwarder finish starting (config load, connection set-up) before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let generate_args = GenerateArgs {
        shape: shape.clone(),
        endpoint: target.to_string(),
        rate: args.rate,
        total_spans: 0,
        resources: 1,
        compression: "none".into(),
        first_seq: 1,
    };
    let mut usage = Usage { cpu_start: cpu_time(pid)?, ..Usage::default() };
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let sampler = {
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        let (progress, cpu_start) = (Arc::clone(&progress), usage.cpu_start);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            loop {
                tokio::select! {
                    _ = s.cancelled() => return samples,
                    _ = tick.tick() => if let (Ok(rss_kib), Ok(cpu)) = (rss_kib(pid), cpu_time(pid)) {
                        samples.push(Sample {
                            t_s: started.elapsed().as_secs_f64(),
                            rss_kib,
                            cpu_s: (cpu - cpu_start).total(),
                            sent_spans: progress.sent_spans.load(Ordering::Relaxed),
                            refused_spans: progress.refused_spans.load(Ordering::Relaxed),
                        });
                    },
                }
            }
        });
        (stop, task)
    };
    let report = generate::run_with_progress(generate_args, progress).await?;
    let sent = report["sent_spans"].as_u64().unwrap_or(0);
    let healthy: Vec<&SinkHandle> =
        sinks.iter().enumerate().filter(|(i, _)| !(dead && *i == 0)).map(|(_, s)| s).collect();
    // Wait for delivery to settle: every healthy sink has all spans, or nothing moves for 3 s.
    let settle_deadline = Instant::now() + Duration::from_secs(60);
    let mut last = 0;
    let mut still_since = Instant::now();
    loop {
        let unique: u64 = healthy.iter().map(|s| s.stats()["unique_spans"].as_u64().unwrap_or(0)).sum();
        if fail_fraction == 0.0 && unique >= sent * healthy.len() as u64 {
            break;
        }
        if unique != last {
            last = unique;
            still_since = Instant::now();
        }
        if still_since.elapsed() > Duration::from_secs(3) || Instant::now() > settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    usage.cpu_end = cpu_time(pid)?;
    sampler.0.cancel();
    usage.samples = sampler.1.await.unwrap_or_default();
    let _ = child.start_kill();
    let _ = child.wait().await;

    let stats: Vec<Value> = healthy.iter().map(|s| s.stats()).collect();
    let received_unique: u64 = stats.iter().map(|s| s["unique_spans"].as_u64().unwrap_or(0)).sum();
    let duplicates: u64 = stats.iter().map(|s| s["duplicates"].as_u64().unwrap_or(0)).sum();
    let lost = (sent * healthy.len() as u64).saturating_sub(received_unique);
    let used = usage.cpu_end - usage.cpu_start;
    let cpu = used.total();
    let per_span_us = |seconds: f64| if sent > 0 { seconds * 1e6 / sent as f64 } else { 0.0 };
    let latency = &stats.first().map(|s| s["latency_us"].clone()).unwrap_or(Value::Null);
    let result = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "peer": format!("{:?}", args.peer).to_lowercase(),
        "pipelines": pipelines,
        "offered_spans_per_s": args.rate,
        "achieved_spans_per_s": report["spans_per_s"],
        "refused_spans": report["refused_spans"],
        "sent_spans": sent,
        "delivered_unique_spans": received_unique,
        "lost_spans": lost,
        "duplicated_spans": duplicates,
        "forwarder_cpu_s": cpu,
        "forwarder_cpu_us_per_span": per_span_us(cpu),
        "forwarder_user_us_per_span": per_span_us(used.user),
        "forwarder_system_us_per_span": per_span_us(used.system),
        "forwarder_cores_used": cpu / wall,
        "spans_per_cpu_second": if cpu > 0.0 { sent as f64 / cpu } else { 0.0 },
        "rss_peak_mib": usage.rss_peak_mib(),
        "rss_mean_mib": usage.rss_mean_mib(),
        "spans_per_request": shape.spans_per_request,
        "attributes": shape.attributes,
        "attribute_bytes": shape.attribute_bytes,
        "random_values": shape.random_values,
        "timeline": usage.timeline(),
        "latency_p50_us": latency["p50"],
        "latency_p99_us": latency["p99"],
        "latency_p999_us": latency["p999"],
    });
    for s in sinks {
        s.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result)
}

pub(crate) fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("loadtest-run-{}-{}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A human-readable table of a result; the timeline only by its length (it is in the JSON line).
pub fn table(result: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(map) = result {
        for (k, v) in map {
            match (k.as_str(), v) {
                ("timeline", Value::Array(samples)) => {
                    out.push_str(&format!("{k:<28} {} samples, every {SAMPLE_INTERVAL:?}\n", samples.len()));
                }
                _ => out.push_str(&format!("{k:<28} {v}\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct ShapeFlags {
        #[command(flatten)]
        shape: LoadShape,
    }

    /// Scenario: the `kyma` scenario and another, given flags that set the shape.
    /// Guarantees: `kyma` runs Kyma's shape (512 spans per request, 40 attributes of 64 bytes) with
    /// gzip export whatever the shape flags say, and keeps the other flags; other scenarios run the
    /// flags as given.
    #[test]
    fn kyma_scenario_has_kymas_shape() {
        let flags =
            ShapeFlags::parse_from(["t", "--attributes", "3", "--random-values", "--protocol", "http"]);
        let kyma = Scenario::Kyma.shape(&flags.shape);
        assert_eq!((kyma.spans_per_request, kyma.attributes, kyma.attribute_bytes), KYMA_SHAPE);
        assert!(kyma.random_values);
        assert_eq!(kyma.protocol, "http");
        assert_eq!(Scenario::Kyma.compression(), "gzip");
        let gzip = Scenario::Gzip.shape(&flags.shape);
        assert_eq!((gzip.spans_per_request, gzip.attributes, gzip.attribute_bytes), (100, 3, 16));
        assert_eq!(Scenario::Single.compression(), "none");
    }

    /// Scenario: two samples of a run's timeline.
    /// Guarantees: the JSON timeline has one object per sample with RSS in MiB and the generator's
    /// counters; the table names its length instead of printing it.
    #[test]
    fn timeline_is_in_the_json_and_summarised_in_the_table() {
        let usage = Usage {
            samples: vec![
                Sample { t_s: 0.1004, rss_kib: 20 * 1024, cpu_s: 0.01, sent_spans: 100, refused_spans: 0 },
                Sample {
                    t_s: 0.2,
                    rss_kib: 30 * 1024 + 512,
                    cpu_s: 0.02,
                    sent_spans: 200,
                    refused_spans: 50,
                },
            ],
            ..Usage::default()
        };
        let timeline = usage.timeline();
        assert_eq!(timeline[0]["t_s"], 0.1);
        assert_eq!(timeline[1]["rss_mib"], 30.5);
        assert_eq!(timeline[1]["refused_spans"], 50);
        assert_eq!(usage.rss_peak_mib(), 30.5);
        let table = table(&json!({"timeline": timeline, "sent_spans": 200}));
        assert!(table.contains("2 samples, every 100ms"), "{table}");
        assert!(!table.contains("refused_spans"), "{table}");
    }

    /// Scenario: a program started as a forwarder with `--forwarder-cpus 0`, and one without.
    /// Guarantees: the pinned one runs on CPU 0 only and is the process whose id the load test
    /// samples (taskset executes it in its own place); the other is started as it is.
    #[tokio::test]
    async fn pinned_forwarders_run_on_their_cpus() {
        let mut pinned =
            forwarder_command(Path::new("sleep"), Some("0")).arg("10").kill_on_drop(true).spawn().unwrap();
        let pid = pinned.id().unwrap();
        // taskset replaces itself with the program; wait until it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        let comm = loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            if comm.trim() == "sleep" || Instant::now() > deadline {
                break comm;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(comm.trim(), "sleep");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.lines().any(|l| l.split_whitespace().eq(["Cpus_allowed_list:", "0"])), "{status}");
        pinned.kill().await.unwrap();

        let plain = forwarder_command(Path::new("sleep"), None);
        assert_eq!(plain.as_std().get_program(), "sleep");
    }
}
