//! The load generator. Requests are encoded once as a template; each send copies it and patches every
//! span's id (a unique sequence number) and start time (the send time) in place, since both are
//! fixed-width fields. That keeps the generator far cheaper per span than the gateway it measures.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_gateway::batch::Batch;
use otlp_gateway::export::{ExportError, ExportSettings, Exporter, RetryPolicy};
use prost::Message;
use serde_json::json;
use tokio::time::Instant;
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

/// The shape of the load, shared by `loadtest generate` and `loadtest run`.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadShape {
    /// `grpc` or `http`.
    #[arg(long, default_value = "grpc")]
    pub protocol: String,
    /// How long to send.
    #[arg(long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// Spans per request.
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Attributes per span.
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,
    /// Bytes per attribute value.
    #[arg(long, default_value_t = 16)]
    pub attribute_bytes: usize,
    /// Random attribute values (as compressible as real text) instead of one repeated character.
    #[arg(long)]
    pub random_values: bool,
    /// Source addresses 127.0.0.2 .. 127.0.0.(1+N), one per simulated pod.
    #[arg(long, default_value_t = 1)]
    pub sources: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// What to send.
#[derive(Clone, Debug, clap::Args)]
pub struct GenerateArgs {
    /// Shape of the load.
    #[command(flatten)]
    pub shape: LoadShape,
    /// Gateway address, `host:port`.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub endpoint: String,
    /// Target spans per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Stop after this many spans (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub total_spans: u64,
    /// Distinct resources per request.
    #[arg(long, default_value_t = 1)]
    pub resources: usize,
    /// Request compression: none, gzip or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// First sequence number (span ids are unique across runs that use distinct ranges).
    #[arg(long, default_value_t = 1)]
    pub first_seq: u64,
}

/// A pre-encoded request and where to patch it.
#[derive(Debug)]
struct Template {
    bytes: Bytes,
    /// Offsets of each span's 8-byte span id.
    span_ids: Vec<usize>,
    /// Offsets of each span's fixed64 start and end times.
    times: Vec<(usize, usize)>,
}

/// What the generator has done so far; `loadtest run` samples it while the load runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Spans in requests the forwarder accepted.
    pub sent_spans: AtomicU64,
    /// Requests the forwarder accepted.
    pub sent_requests: AtomicU64,
    /// Spans in requests refused with a retryable status (UNAVAILABLE, RESOURCE_EXHAUSTED, 429, 503).
    pub refused_spans: AtomicU64,
    /// Spans in requests that failed for good.
    pub failed_spans: AtomicU64,
}

// === impl Template ===

impl Template {
    fn new(args: &GenerateArgs) -> anyhow::Result<Self> {
        let n = args.shape.spans_per_request.max(1);
        let resources = args.resources.clamp(1, n);
        let fixed = "v".repeat(args.shape.attribute_bytes);
        let value = |_: usize| -> String {
            if args.shape.random_values {
                (0..args.shape.attribute_bytes).map(|_| fastrand::alphanumeric()).collect()
            } else {
                fixed.clone()
            }
        };
        // Random markers, found once in the encoding, mark the bytes to patch.
        let markers: Vec<(u64, u64, u64)> =
            (0..n).map(|_| (fastrand::u64(..), fastrand::u64(..), fastrand::u64(..))).collect();
        let kv = |k: String, v: &str| KeyValue {
            key: k,
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_string())) }),
            key_strindex: 0,
        };
        let mut resource_spans = Vec::new();
        let mut i = 0;
        for r in 0..resources {
            let count = n / resources + usize::from(r < n % resources);
            let spans = (0..count)
                .map(|_| {
                    let (id, start, end) = markers[i];
                    i += 1;
                    Span {
                        // Distinct from the span id, so the marker search below finds the span id.
                        trace_id: [fastrand::u64(..).to_be_bytes(), id.rotate_left(17).to_be_bytes()]
                            .concat(),
                        span_id: id.to_be_bytes().to_vec(),
                        name: "loadtest-span".into(),
                        kind: 2,
                        start_time_unix_nano: start,
                        end_time_unix_nano: end,
                        attributes: (0..args.shape.attributes)
                            .map(|a| kv(format!("loadtest.attr.{a}"), &value(a)))
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect();
            resource_spans.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name".into(), &format!("loadtest-{r}"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "loadtest".into(), ..Default::default() }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        let bytes = ExportTraceServiceRequest { resource_spans }.encode_to_vec();
        let find = |needle: [u8; 8]| -> anyhow::Result<usize> {
            bytes.windows(8).position(|w| w == needle).context("marker not found in template")
        };
        let mut span_ids = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        for (id, start, end) in &markers {
            span_ids.push(find(id.to_be_bytes())?);
            times.push((find(start.to_le_bytes())?, find(end.to_le_bytes())?));
        }
        Ok(Self { bytes: Bytes::from(bytes), span_ids, times })
    }

    /// A copy with span ids `first_seq..` and the current time.
    fn stamp(&self, first_seq: u64) -> Bytes {
        let mut out = BytesMut::from(&self.bytes[..]);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        for (k, (&id, &(start, end))) in self.span_ids.iter().zip(&self.times).enumerate() {
            out[id..id + 8].copy_from_slice(&(first_seq + k as u64).to_be_bytes());
            out[start..start + 8].copy_from_slice(&now.to_le_bytes());
            out[end..end + 8].copy_from_slice(&(now + 1000).to_le_bytes());
        }
        out.freeze()
    }
}

// === free functions ===

/// Sends load and prints one JSON line with what happened.
pub async fn run(args: GenerateArgs) -> anyhow::Result<serde_json::Value> {
    run_with_progress(args, Arc::default()).await
}

/// [`run`], counting into `counters` as it goes.
pub async fn run_with_progress(
    args: GenerateArgs,
    counters: Arc<Progress>,
) -> anyhow::Result<serde_json::Value> {
    let template = Arc::new(Template::new(&args)?);
    let protocol = match args.shape.protocol.as_str() {
        "grpc" => Protocol::Grpc,
        "http" => Protocol::Http,
        other => anyhow::bail!("unknown protocol {other}"),
    };
    let compression = match args.compression.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        other => anyhow::bail!("unknown compression {other}"),
    };
    let url = match protocol {
        Protocol::Grpc => format!("http://{}", args.endpoint),
        Protocol::Http => format!("http://{}/v1/traces", args.endpoint),
    };
    let output = OtlpOutputConfig {
        protocol,
        url,
        compression,
        headers: Vec::new(),
        tls: TlsConfig { insecure: true, ..Default::default() },
        oauth2: None,
    };
    let settings = ExportSettings {
        retry: RetryPolicy::default(),
        timeout: Duration::from_secs(30),
        ..ExportSettings::default()
    };
    let exporters: Vec<Arc<Exporter>> = (0..args.shape.sources.max(1))
        .map(|i| {
            let source =
                (args.shape.sources > 1).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8)));
            Exporter::with_source(&output, settings, source).map(Arc::new)
        })
        .collect::<Result<_, _>>()?;

    let per_request = template.span_ids.len() as u64;
    let duration: Duration = args.shape.duration.into();
    let started = Instant::now();
    let deadline = started + duration;
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(per_request as f64 / args.rate as f64));
    let next_request = Arc::new(AtomicU64::new(0));
    let max_requests = if args.total_spans > 0 { args.total_spans.div_ceil(per_request) } else { u64::MAX };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.shape.concurrency.max(1) {
        let (template, next_request, counters, exporters) =
            (Arc::clone(&template), Arc::clone(&next_request), Arc::clone(&counters), exporters.clone());
        let first_seq = args.first_seq;
        tasks.spawn(async move {
            loop {
                let k = next_request.fetch_add(1, Ordering::Relaxed);
                if k >= max_requests {
                    return;
                }
                if let Some(interval) = interval {
                    let at = started + interval.mul_f64(k as f64);
                    if at >= deadline {
                        return;
                    }
                    tokio::time::sleep_until(at).await;
                } else if Instant::now() >= deadline {
                    return;
                }
                let body = template.stamp(first_seq + k * per_request);
                let exporter = &exporters[(k as usize) % exporters.len()];
                let batch = Batch { len: body.len(), chunks: vec![body], spans: per_request as usize };
                let result = match exporter.encode(&batch) {
                    Ok(body) => exporter.send(body).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(_) => {
                        counters.sent_spans.fetch_add(per_request, Ordering::Relaxed);
                        counters.sent_requests.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(ExportError::Retryable { .. }) => {
                        counters.refused_spans.fetch_add(per_request, Ordering::Relaxed);
                    }
                    Err(ExportError::Permanent { .. }) => {
                        counters.failed_spans.fetch_add(per_request, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let sent = counters.sent_spans.load(Ordering::Relaxed);
    Ok(json!({
        "sent_spans": sent,
        "sent_requests": counters.sent_requests.load(Ordering::Relaxed),
        "refused_spans": counters.refused_spans.load(Ordering::Relaxed),
        "failed_spans": counters.failed_spans.load(Ordering::Relaxed),
        "elapsed_s": elapsed,
        "spans_per_s": sent as f64 / elapsed.max(1e-9),
        "first_seq": args.first_seq,
        "last_seq": args.first_seq + next_request.load(Ordering::Relaxed).min(max_requests) * per_request,
    }))
}
