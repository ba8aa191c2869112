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

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

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
/// Pause after a failed `accept` (out of file descriptors and the like) before the next attempt.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Receiving transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
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

/// The next connection, with Nagle's algorithm off; `None` once `shutdown` fires. A failed accept is
/// logged and retried after a pause, and the connections already open keep being served meanwhile.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    receiver: &'static str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Responses are small and must not wait for an acknowledgement.
                let _ = stream.set_nodelay(true);
                return Some((stream, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, receiver, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
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
}
