//! The verifying sink: an OTLP gRPC + HTTP receiver (the gateway's own receiver code) that counts
//! spans, finds duplicates by span id, measures end-to-end latency from the span's start time, can
//! dump every request as OTLP JSON, and misbehaves on request.

use std::collections::HashSet;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::receiver::{ExportFuture, ExportSink, IngestError, Transport, grpc::TraceService};
use otlp_gateway::wire::WireError;
use prost::Message;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest request the sink takes.
const MAX_REQUEST_BYTES: usize = 256 * 1024 * 1024;

/// How the sink behaves.
#[derive(Clone, Debug, clap::Args)]
pub struct SinkArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http_addr: SocketAddr,
    /// `GET /stats` listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub stats_addr: SocketAddr,
    /// Append every received request to this file as one OTLP JSON line.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Fraction of requests answered 503 / UNAVAILABLE (retryable).
    #[arg(long, default_value_t = 0.0)]
    pub fail_fraction: f64,
    /// Fraction of requests answered 400 / INVALID_ARGUMENT (not retryable).
    #[arg(long, default_value_t = 0.0)]
    pub reject_fraction: f64,
    /// Delay before answering each request.
    #[arg(long, default_value = "0s")]
    pub delay: humantime::Duration,
    /// Answer every request 503 / UNAVAILABLE for this long after start.
    #[arg(long, default_value = "0s")]
    pub down_for: humantime::Duration,
    /// Stop by itself after this long (load loops are bounded).
    #[arg(long, default_value = "1h")]
    pub max_runtime: humantime::Duration,
}

/// Counters and state.
#[derive(Debug)]
struct Sink {
    args: SinkArgs,
    started: Instant,
    requests: AtomicU64,
    spans: AtomicU64,
    duplicates: AtomicU64,
    refused_requests: AtomicU64,
    seen: Mutex<HashSet<[u8; 8]>>,
    latency_us: Mutex<Histogram<u64>>,
    dump: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

// === impl Sink ===

impl Sink {
    /// Counts and checks a request. Spans are read with the gateway's scanner (ids and start times
    /// straight from the encoding), so the sink costs far less per span than the gateway it measures;
    /// only a dump decodes the request fully.
    fn record(&self, body: &Bytes) -> Result<(), IngestError> {
        let data = otlp_gateway::wire::scan(body.clone()).map_err(IngestError::Invalid)?;
        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut spans = 0;
        let mut dups = 0;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let mut hist = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
            data.for_each_span(|span| {
                spans += 1;
                let (span_id, start) = otlp_gateway::wire::span_identity(span);
                let mut id = [0u8; 8];
                if let Some(span_id) = span_id {
                    let n = span_id.len().min(8);
                    id[..n].copy_from_slice(&span_id[..n]);
                }
                if !seen.insert(id) {
                    dups += 1;
                }
                if let Some(start) = start.filter(|s| *s > 0 && *s <= now_ns) {
                    let _ = hist.record((now_ns - start) / 1000);
                }
            });
        }
        // Dumped before it is counted: whoever sees the count finds the request in the dump.
        if let Some(dump) = &self.dump {
            let request = ExportTraceServiceRequest::decode(body.as_ref())
                .map_err(|e| IngestError::Invalid(WireError(e.to_string())))?;
            let line = serde_json::to_string(&request).unwrap_or_default();
            let mut w = dump.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.spans.fetch_add(spans, Ordering::Relaxed);
        self.duplicates.fetch_add(dups, Ordering::Relaxed);
        Ok(())
    }

    fn stats(&self) -> serde_json::Value {
        let hist = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        let unique = self.seen.lock().map(|s| s.len()).unwrap_or_default();
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "spans": self.spans.load(Ordering::Relaxed),
            "unique_spans": unique,
            "duplicates": self.duplicates.load(Ordering::Relaxed),
            "refused_requests": self.refused_requests.load(Ordering::Relaxed),
            "latency_us": {
                "p50": hist.value_at_quantile(0.5),
                "p99": hist.value_at_quantile(0.99),
                "p999": hist.value_at_quantile(0.999),
                "max": hist.max(),
                "count": hist.len(),
            },
        })
    }
}

impl ExportSink for Sink {
    fn export(&self, _transport: Transport, body: Bytes, _peer: Option<IpAddr>) -> ExportFuture {
        let delay: Duration = self.args.delay.into();
        let down: Duration = self.args.down_for.into();
        let refuse = if self.started.elapsed() < down {
            Some(IngestError::Unavailable("sink is down"))
        } else if self.args.fail_fraction > 0.0 && fastrand::f64() < self.args.fail_fraction {
            Some(IngestError::Unavailable("injected failure"))
        } else if self.args.reject_fraction > 0.0 && fastrand::f64() < self.args.reject_fraction {
            Some(IngestError::Invalid(WireError("injected rejection".into())))
        } else {
            None
        };
        let result = match refuse {
            Some(e) => {
                self.refused_requests.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            None => self.record(&body),
        };
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            result
        })
    }
}

// === free functions ===

/// A sink serving in this process.
#[derive(Debug)]
pub struct SinkHandle {
    /// Bound OTLP/gRPC address.
    pub grpc: SocketAddr,
    /// Bound OTLP/HTTP address.
    pub http: SocketAddr,
    /// Bound `/stats` address.
    pub stats_addr: SocketAddr,
    sink: Arc<Sink>,
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

impl SinkHandle {
    /// Counters as JSON: requests, spans, unique_spans, duplicates, refused_requests, latency_us.
    pub fn stats(&self) -> serde_json::Value {
        self.sink.stats()
    }

    /// Stops serving and waits for the servers to finish.
    pub async fn stop(mut self) -> serde_json::Value {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.sink.stats()
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Binds and starts serving on the current tokio runtime.
pub async fn start(args: SinkArgs) -> anyhow::Result<SinkHandle> {
    let grpc = TcpListener::bind(args.grpc_addr).await.context("bind gRPC")?;
    let http = TcpListener::bind(args.http_addr).await.context("bind HTTP")?;
    let stats = TcpListener::bind(args.stats_addr).await.context("bind stats")?;
    let dump = match &args.dump {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new().create(true).append(true).open(path).context("open dump")?,
        ))),
        None => None,
    };
    let sink = Arc::new(Sink {
        args: args.clone(),
        started: Instant::now(),
        requests: AtomicU64::new(0),
        spans: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        refused_requests: AtomicU64::new(0),
        seen: Mutex::new(HashSet::new()),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
        dump,
    });
    let (grpc_addr, http_addr, stats_addr) = (grpc.local_addr()?, http.local_addr()?, stats.local_addr()?);
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let receiving = otlp_gateway::receiver::Receiving::unmetered(MAX_REQUEST_BYTES);
    let service = TraceService::new(Arc::clone(&sink), Arc::clone(&receiving));
    tasks.spawn(otlp_gateway::receiver::grpc::serve(grpc, service, stop.clone()));
    tasks.spawn(otlp_gateway::receiver::http::serve(http, Arc::clone(&sink), receiving, stop.clone()));
    let stats_sink = Arc::clone(&sink);
    let stats_stop = stop.clone();
    tasks.spawn(async move {
        let mut backoff = tracegw_runtime::AcceptBackoff::new("sink-stats");
        loop {
            let (stream, _) = tokio::select! {
                _ = stats_stop.cancelled() => return,
                a = tracegw_runtime::accept(&stats, &mut backoff) => a,
            };
            let sink = Arc::clone(&stats_sink);
            let service = hyper::service::service_fn(move |_req| {
                let body = sink.stats().to_string();
                async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(SinkHandle { grpc: grpc_addr, http: http_addr, stats_addr, sink, stop, tasks })
}

/// Runs the sink until SIGINT/SIGTERM or `max_runtime`. Prints its addresses as one JSON line first
/// and its final counters on stderr.
pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let max: Duration = args.max_runtime.into();
    let handle = start(args).await?;
    println!(
        "{}",
        json!({"grpc": handle.grpc.to_string(), "http": handle.http.to_string(), "stats": handle.stats_addr.to_string()})
    );
    tokio::select! {
        _ = crate::terminated() => {}
        _ = tokio::time::sleep(max) => {}
    }
    eprintln!("{}", handle.stop().await);
    Ok(())
}
