//! OTLP receivers: gRPC ([`grpc`]) and HTTP ([`http`]) share [`Ingest`], which scans a request once, runs
//! the global stages ([`crate::process`]) and hands it to every pipeline.
//!
//! Back-pressure: a pipeline whose queue is full drops its copy and counts it; the client is refused
//! (503 / UNAVAILABLE with a retry delay) only when no pipeline took the data, so it backs off instead
//! of the gateway growing without bound. A request is either refused and counted as refused, or taken
//! by at least one pipeline and counted as accepted: nothing is accepted and then lost uncounted.

pub mod grpc;
pub mod http;
mod inline;
pub mod limits;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracegw_runtime::AcceptBackoff;

use self::limits::{ConnectionLimits, ListenerLimits};
use crate::budget::{self, MemoryBudget, Reservation};
use crate::buffer::{BufferPool, DEFAULT_POOLED_BUFFERS};
use crate::metrics::{Metrics, ReceiverMetrics};
use crate::pipeline::Router;
use crate::process::GlobalStages;
use crate::process::enrich::Enricher;
use crate::wire::{self, WireError};

/// OTLP's recommended request limit, after decompression.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// The delay clients are asked to wait when the gateway cannot take data.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Open connections get this long to finish their requests once shutdown starts.
const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests whose heavy work (JSON decoding, decompression past [`INLINE_DECOMPRESS_BYTES`]) runs at
/// once, on threads of their own rather than the data path's worker; the others wait their turn.
pub const HEAVY_WORK_THREADS: usize = 1;
/// OTLP/JSON bodies larger than this are decoded off the data path's worker.
pub const INLINE_JSON_BYTES: usize = 256 * 1024;
/// Decompression runs on the data path's worker until its output passes this size; a larger body
/// (or a decompression bomb) is decompressed again off the worker, so no single request holds it
/// for more than a few milliseconds.
pub const INLINE_DECOMPRESS_BYTES: usize = 2 * 1024 * 1024;
/// Memory a JSON body takes while being decoded, per byte of JSON (the decoded request's strings,
/// vectors and maps, then its protobuf encoding); counted against the budget for the decoding.
pub const JSON_DECODE_BYTES_PER_BYTE: usize = 5;

/// What the receivers enforce: request size, the memory budget, connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverSettings {
    /// Largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// The memory budget for request bytes in flight; `None` derives it from the memory limit
    /// ([`budget::default_budget`]).
    pub memory_budget_bytes: Option<usize>,
    /// Deadlines and the connection cap.
    pub limits: ConnectionLimits,
}

/// State both receivers of a gateway share: the memory budget, the heavy-work threads, the buffer
/// pool and each listener's limits.
#[derive(Debug)]
pub struct Receiving {
    max_request_bytes: usize,
    budget: Arc<MemoryBudget>,
    heavy: Semaphore,
    pool: Arc<BufferPool>,
    grpc: Arc<ListenerLimits>,
    http: Arc<ListenerLimits>,
    grpc_memory_refused: Counter,
    http_memory_refused: Counter,
    grpc_accept_errors: Counter,
    http_accept_errors: Counter,
}

/// A request refused before it reached the sink.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Over the size limit: retrying cannot help.
    #[error("request larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The memory budget is used up: the client should retry later.
    #[error("the gateway is short of memory for requests: retry later")]
    OverBudget,
    /// The body stopped arriving.
    #[error("the request body stalled: nothing received for {0:?}")]
    Stalled(Duration),
    /// Malformed framing or compression.
    #[error("{0}")]
    Malformed(String),
}
/// Receiving transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

// === impl Transport ===

impl Transport {
    /// `grpc` or `http`, as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

/// Why a request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request is not a valid `ExportTraceServiceRequest`; retrying cannot help.
    #[error(transparent)]
    Invalid(#[from] WireError),
    /// The gateway cannot take data now; the client should retry later.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The sink asks the client to retry after this long (load-test fault injection).
    #[error("{0}")]
    Throttled(&'static str, Duration),
}

/// What a receiver hands a decoded, decompressed protobuf request to. The gateway's [`Ingest`] is
/// one; the load test's verifying sink is another, so both speak OTLP through the same code.
pub trait ExportSink: Send + Sync + 'static {
    /// Takes one request; `peer` is the sender's address.
    fn export(&self, transport: Transport, body: Bytes, peer: Option<IpAddr>) -> ExportFuture;

    /// Called for a request refused before it reached [`ExportSink::export`] (unreadable, too large).
    fn count_failure(&self, _transport: Transport) {}

    /// Called for a request refused before it reached [`ExportSink::export`] because the gateway had
    /// no room for it (the client is told to retry).
    fn count_refused(&self, _transport: Transport) {}
}

/// The answer to one request.
pub type ExportFuture = Pin<Box<dyn Future<Output = Result<(), IngestError>> + Send>>;

/// The shared receiving path.
#[derive(Debug)]
pub struct Ingest {
    router: Arc<Router>,
    stages: GlobalStages,
    grpc: ReceiverMetrics,
    http: ReceiverMetrics,
}

// === impl ReceiverSettings ===

impl Default for ReceiverSettings {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            memory_budget_bytes: None,
            limits: ConnectionLimits::default(),
        }
    }
}

// === impl Receiving ===

impl Receiving {
    /// Shared receiving state for `settings`, counted in `metrics`.
    pub fn new(settings: &ReceiverSettings, metrics: &Metrics) -> Arc<Self> {
        let limit = match settings.memory_budget_bytes {
            Some(bytes) => bytes,
            None => {
                let (bytes, source) = budget::default_budget();
                tracing::info!(budget_bytes = bytes, ?source, "memory budget for request bytes in flight");
                bytes
            }
        };
        Arc::new(Self {
            max_request_bytes: settings.max_request_bytes,
            budget: MemoryBudget::new(
                limit,
                metrics.memory_in_use_bytes.clone(),
                &metrics.memory_budget_bytes,
            ),
            heavy: Semaphore::new(HEAVY_WORK_THREADS),
            pool: BufferPool::new(DEFAULT_POOLED_BUFFERS),
            grpc: ListenerLimits::new(settings.limits, metrics, "grpc"),
            http: ListenerLimits::new(settings.limits, metrics, "http"),
            grpc_memory_refused: metrics.memory_refused("grpc"),
            http_memory_refused: metrics.memory_refused("http"),
            grpc_accept_errors: metrics.accept_errors("grpc"),
            http_accept_errors: metrics.accept_errors("http"),
        })
    }

    /// Receiving state with default settings, counted nowhere (tools and tests).
    pub fn unmetered(max_request_bytes: usize) -> Arc<Self> {
        Self::new(
            &ReceiverSettings {
                max_request_bytes,
                memory_budget_bytes: Some(budget::FALLBACK_BUDGET_BYTES),
                ..ReceiverSettings::default()
            },
            &Metrics::default(),
        )
    }

    /// Largest request accepted, after decompression.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// The memory budget.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// The receive buffer pool.
    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }

    /// One listener's limits.
    pub fn listener(&self, transport: Transport) -> &Arc<ListenerLimits> {
        match transport {
            Transport::Grpc => &self.grpc,
            Transport::Http => &self.http,
        }
    }

    /// Counts a request refused for want of memory.
    pub fn count_over_budget(&self, transport: Transport) {
        match transport {
            Transport::Grpc => self.grpc_memory_refused.inc(),
            Transport::Http => self.http_memory_refused.inc(),
        };
    }

    fn accept_errors(&self, transport: Transport) -> &Counter {
        match transport {
            Transport::Grpc => &self.grpc_accept_errors,
            Transport::Http => &self.http_accept_errors,
        }
    }

    /// An empty reservation to grow as a body arrives.
    pub fn reserve(&self) -> Reservation {
        self.budget.empty()
    }

    /// Runs `work` on a heavy-work thread once one is free; `None` if it panicked.
    pub async fn heavy<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        // The semaphore is never closed, so acquiring cannot fail; if it did, the work runs anyway.
        let _permit = self.heavy.acquire().await.ok();
        tokio::task::spawn_blocking(work).await.ok()
    }

    /// Decompresses `raw` within the request limit: on the calling task while the output stays small,
    /// else again on a heavy-work thread. The output is charged to the memory budget.
    pub async fn decompress(
        &self,
        encoding: crate::compression::Encoding,
        raw: crate::buffer::PooledBuf,
    ) -> Result<Bytes, ReadError> {
        use crate::compression::{DecompressError, decompress_charged};
        let limit = self.max_request_bytes;
        let inline_limit = limit.min(INLINE_DECOMPRESS_BYTES);
        let map = |e: DecompressError| match e {
            DecompressError::TooLarge { .. } => ReadError::TooLarge { limit },
            e => ReadError::Malformed(e.to_string()),
        };
        match decompress_charged(encoding, raw.as_ref(), inline_limit, &self.pool, self.reserve()) {
            Err(DecompressError::TooLarge { .. }) if limit > inline_limit => {}
            Err(DecompressError::OverBudget) => return Err(ReadError::OverBudget),
            other => return other.map_err(map),
        }
        let (pool, reservation) = (Arc::clone(&self.pool), self.reserve());
        let heavy = self.heavy(move || decompress_charged(encoding, raw.as_ref(), limit, &pool, reservation));
        match heavy.await {
            Some(Err(DecompressError::OverBudget)) => Err(ReadError::OverBudget),
            Some(result) => result.map_err(map),
            None => Err(ReadError::Malformed("decompression failed".into())),
        }
    }
}

// === impl Ingest ===

impl Ingest {
    /// A path into `router`.
    pub fn new(router: Arc<Router>, enricher: Option<Arc<Enricher>>, metrics: &Metrics) -> Self {
        Self {
            router,
            stages: GlobalStages::new(enricher),
            grpc: metrics.receiver("grpc"),
            http: metrics.receiver("http"),
        }
    }

    /// Metrics of one transport.
    pub fn metrics(&self, transport: Transport) -> &ReceiverMetrics {
        match transport {
            Transport::Grpc => &self.grpc,
            Transport::Http => &self.http,
        }
    }

    /// Scans an encoded request and hands it to every pipeline. `peer` is the sender's address, which
    /// enrichment uses to find the sending pod.
    pub fn accept(&self, transport: Transport, body: Bytes, peer: Option<IpAddr>) -> Result<(), IngestError> {
        let metrics = self.metrics(transport);
        let mut data = match wire::scan(body) {
            Ok(data) => data,
            Err(e) => {
                metrics.requests_failure.inc();
                return Err(e.into());
            }
        };
        let spans = data.spans as u64;
        let outcome = self.stages.run(&mut data, peer.map(canonical_ip));
        if outcome.noise_dropped > 0 {
            metrics.noise_dropped.inc_by(outcome.noise_dropped as u64);
        }
        if data.is_empty() {
            metrics.accepted.inc_by(spans);
            metrics.requests_success.inc();
            return Ok(());
        }
        let data = Arc::new(data);
        let table = self.router.load();
        let mut taken = false;
        for pipeline in table.pipelines.iter() {
            taken |= pipeline.try_enqueue(&data);
        }
        if taken {
            metrics.accepted.inc_by(spans);
            metrics.requests_success.inc();
            return Ok(());
        }
        metrics.refused.inc_by(spans);
        metrics.requests_refused.inc();
        if table.pipelines.is_empty() {
            Err(IngestError::Unavailable("no trace pipeline is running on this gateway"))
        } else {
            Err(IngestError::Unavailable("every pipeline's queue is full"))
        }
    }
}

/// The next connection, with Nagle's algorithm off; `None` once `shutdown` fires. A failed accept
/// (out of file descriptors and the like) is counted, logged at a bounded rate, and retried after a
/// pause that grows while the failures continue (`backoff`, kept by the listener's loop); the
/// connections already open keep being served. A connection beyond the listener's cap is closed at
/// once (and counted by [`ListenerLimits::admit`]).
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    receiving: &Receiving,
    transport: Transport,
    backoff: &mut AcceptBackoff,
) -> Option<(TcpStream, SocketAddr, limits::ConnectionSlot)> {
    let errors = receiving.accept_errors(transport);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            accepted = tracegw_runtime::accept_with(backoff, || async {
                let accepted = listener.accept().await;
                if accepted.is_err() {
                    errors.inc();
                }
                accepted
            }) => accepted,
        };
        let Some(slot) = receiving.listener(transport).admit() else {
            drop(stream);
            continue;
        };
        // Responses are small and must not wait for an acknowledgement.
        let _ = stream.set_nodelay(true);
        return Some((stream, peer, slot));
    }
}

/// An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`; pods are indexed by the IPv4 form.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl ExportSink for Ingest {
    fn export(&self, transport: Transport, body: Bytes, peer: Option<IpAddr>) -> ExportFuture {
        Box::pin(std::future::ready(self.accept(transport, body, peer)))
    }

    fn count_failure(&self, transport: Transport) {
        self.metrics(transport).requests_failure.inc();
    }

    fn count_refused(&self, transport: Transport) {
        self.metrics(transport).requests_refused.inc();
    }
}
