//! `loadtest fanout`: what a thousand gateways cost the control plane. Starts `telemetry-manager` in
//! local mode as a process, opens one snapshot stream per simulated gateway (each its own TCP
//! connection, as pods have), changes the pipelines file a few times and records when each stream
//! receives each version; then has every simulated gateway post counter reports at a fixed rate.
//! Samples the manager's CPU time and RSS from /proc, and prints a table and one JSON line.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;
use tracegw_contract::stream::{GatewayReport, PipelineCounters};

use crate::run::{cpu_time, rss_kib, tempfile_dir};

/// Flags of `loadtest fanout`.
#[derive(Clone, Debug, clap::Args)]
pub struct FanoutArgs {
    /// Simulated gateways, each with its own stream.
    #[arg(long, default_value_t = 1000)]
    pub gateways: usize,
    /// Configuration changes to push.
    #[arg(long, default_value_t = 5)]
    pub changes: usize,
    /// How often each simulated gateway posts its counters in the report phase (production: 15s).
    #[arg(long, default_value = "1s")]
    pub report_interval: humantime::Duration,
    /// Length of the report phase.
    #[arg(long, default_value = "10s")]
    pub report_duration: humantime::Duration,
    /// The manager binary; defaults to `telemetry-manager` next to this binary.
    #[arg(long)]
    pub manager_bin: Option<PathBuf>,
}

/// When one stream received one version.
type Arrivals = Arc<Mutex<Vec<Vec<(u64, Instant)>>>>;

// === free functions ===

fn pipeline_yaml(endpoint_port: usize) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {{name: backend}}\nspec:\n  output:\n    otlp:\n      endpoint: {{value: 'http://backend.example:{endpoint_port}'}}\n"
    )
}

async fn subscribe(addr: String, token: String, index: usize, arrivals: Arrivals) -> anyhow::Result<()> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("http://{addr}/v1/snapshots?after=0"))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())?;
    let resp = client.request(req).await?;
    if resp.status() != 200 {
        bail!("subscription refused: {}", resp.status());
    }
    let mut body = resp.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let now = Instant::now();
            let v: Value = serde_json::from_slice(&line[..end])?;
            let version = v["version"].as_u64().unwrap_or(0);
            arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[index].push((version, now));
        }
    }
    Ok(())
}

fn count_at_least(arrivals: &Arrivals, versions: usize) -> usize {
    arrivals.lock().map(|a| a.iter().filter(|v| v.len() >= versions).count()).unwrap_or(0)
}

/// Runs the scenario and returns its result as JSON.
pub async fn run(args: FanoutArgs) -> anyhow::Result<Value> {
    let dir = tempfile_dir()?;
    let pipelines = dir.join("pipelines.yaml");
    let token_file = dir.join("token");
    std::fs::write(&pipelines, pipeline_yaml(4317))?;
    let bin = match &args.manager_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("telemetry-manager"),
    };
    let mut manager = tokio::process::Command::new(&bin)
        .args([
            "--pipelines",
            pipelines.to_str().context("path")?,
            "--token-file",
            token_file.to_str().context("path")?,
        ])
        .args(["--snapshot-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = manager.id().context("manager pid")?;
    let mut lines = tokio::io::BufReader::new(manager.stderr.take().context("stderr")?).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await??
            .context("manager exited")?;
        if let Some(a) = line.strip_prefix("serving snapshots on ") {
            break a.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let token = std::fs::read_to_string(&token_file)?.trim().to_string();
    let rss_idle = rss_kib(pid)?;

    let arrivals: Arrivals = Arc::new(Mutex::new(vec![Vec::new(); args.gateways]));
    let connect_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.gateways {
        tasks.push(tokio::spawn(subscribe(addr.clone(), token.clone(), i, Arc::clone(&arrivals))));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_at_least(&arrivals, 1) < args.gateways {
        if Instant::now() > deadline {
            bail!("only {} of {} subscribed", count_at_least(&arrivals, 1), args.gateways);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = connect_start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_subscribed = rss_kib(pid)?;

    let cpu_before_changes = cpu_time(pid)?.total();
    let mut edits = Vec::new();
    for change in 1..=args.changes {
        std::fs::write(&pipelines, pipeline_yaml(4317 + change))?;
        edits.push(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(30);
        while count_at_least(&arrivals, change + 1) < args.gateways {
            if Instant::now() > deadline {
                bail!("change {change} reached only {} gateways", count_at_least(&arrivals, change + 1));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let cpu_changes = cpu_time(pid)?.total() - cpu_before_changes;
    let mut latency = Histogram::<u64>::new(3)?;
    let mut spread = Histogram::<u64>::new(3)?;
    {
        let all = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (c, edit) in edits.iter().enumerate() {
            let times: Vec<Instant> = all.iter().filter_map(|v| v.get(c + 1).map(|(_, t)| *t)).collect();
            let first = times.iter().min().copied().unwrap_or(*edit);
            let last = times.iter().max().copied().unwrap_or(*edit);
            spread.record(last.duration_since(first).as_micros() as u64)?;
            for t in times {
                latency.record(t.duration_since(*edit).as_micros() as u64)?;
            }
        }
    }

    // Report phase: every gateway posts its counters once per interval, spread over the interval.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let interval: Duration = args.report_interval.into();
    let duration: Duration = args.report_duration.into();
    let cpu_before_reports = cpu_time(pid)?.total();
    let started = Instant::now();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut reporters = Vec::new();
    let gateways = args.gateways.max(1);
    for i in 0..args.gateways {
        let (client, addr, token, sent, failed) =
            (client.clone(), addr.clone(), token.clone(), Arc::clone(&sent), Arc::clone(&failed));
        reporters.push(tokio::spawn(async move {
            let offset = interval.mul_f64(i as f64 / gateways as f64);
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(interval);
            let mut counter = 0u64;
            while started.elapsed() < duration {
                tick.tick().await;
                counter += 100;
                let report = GatewayReport {
                    gateway: format!("gw-{i}"),
                    boot_id: "b".into(),
                    uptime_seconds: 60,
                    snapshot_version: 1,
                    refused_spans: 0,
                    pipelines: vec![PipelineCounters {
                        name: "backend".into(),
                        sent_spans: counter,
                        send_failed_spans: 0,
                        enqueue_failed_spans: 0,
                    }],
                };
                let body = Bytes::from(serde_json::to_vec(&report).unwrap_or_default());
                let req = http::Request::post(format!("http://{addr}/v1/reports"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(body));
                let ok = match req {
                    Ok(req) => client.request(req).await.map(|r| r.status().as_u16() == 204).unwrap_or(false),
                    Err(_) => false,
                };
                let c = if ok { &sent } else { &failed };
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for r in reporters {
        let _ = r.await;
    }
    let report_secs = started.elapsed().as_secs_f64();
    let cpu_reports = cpu_time(pid)?.total() - cpu_before_reports;
    let rss_end = rss_kib(pid)?;
    let reports = sent.load(std::sync::atomic::Ordering::Relaxed);
    let _ = manager.kill().await;
    for t in tasks {
        t.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "gateways": args.gateways,
        "connect_all_ms": connect_time.as_secs_f64() * 1000.0,
        "changes": args.changes,
        "edit_to_gateway_ms": {"p50": ms(&latency, 0.5), "p99": ms(&latency, 0.99), "max": latency.max() as f64 / 1000.0},
        "first_to_last_gateway_ms": {"p50": ms(&spread, 0.5), "max": spread.max() as f64 / 1000.0},
        "manager_cpu_ms_per_change": cpu_changes * 1000.0 / args.changes.max(1) as f64,
        "reports": reports,
        "reports_failed": failed.load(std::sync::atomic::Ordering::Relaxed),
        "reports_per_s": reports as f64 / report_secs,
        "manager_cpu_us_per_report": if reports > 0 { cpu_reports * 1e6 / reports as f64 } else { 0.0 },
        "manager_rss_mib": {"idle": rss_idle as f64 / 1024.0, "subscribed": rss_subscribed as f64 / 1024.0, "end": rss_end as f64 / 1024.0},
    }))
}

/// A human-readable summary.
pub fn table(v: &Value) -> String {
    format!(
        "gateways {}  connect all {:.0} ms\nchange → gateway: p50 {} ms  p99 {} ms  max {} ms (the manager polls its files every 200 ms and waits one more poll for them to settle)\nfirst → last gateway per change: p50 {} ms  max {} ms\nmanager CPU per change: {:.2} ms\nreports: {} ({:.0}/s, {} failed), manager CPU {:.1} µs per report\nmanager RSS MiB: idle {:.1}, {} streams {:.1}, end {:.1}\n",
        v["gateways"],
        v["connect_all_ms"].as_f64().unwrap_or(0.0),
        v["edit_to_gateway_ms"]["p50"],
        v["edit_to_gateway_ms"]["p99"],
        v["edit_to_gateway_ms"]["max"],
        v["first_to_last_gateway_ms"]["p50"],
        v["first_to_last_gateway_ms"]["max"],
        v["manager_cpu_ms_per_change"].as_f64().unwrap_or(0.0),
        v["reports"],
        v["reports_per_s"].as_f64().unwrap_or(0.0),
        v["reports_failed"],
        v["manager_cpu_us_per_report"].as_f64().unwrap_or(0.0),
        v["manager_rss_mib"]["idle"].as_f64().unwrap_or(0.0),
        v["gateways"],
        v["manager_rss_mib"]["subscribed"].as_f64().unwrap_or(0.0),
        v["manager_rss_mib"]["end"].as_f64().unwrap_or(0.0),
    )
}
