//! The manager's own metrics and its operations endpoints (`/metrics`, `/healthz`, `/readyz`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Object kind, e.g. `DaemonSet`.
    pub kind: String,
}

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error` (reconciles), `accepted` or `rejected` (reports), `allowed`, `denied` or
    /// `invalid` (admission reviews).
    pub result: String,
}

/// `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `running` or `rejected`.
    pub state: String,
}

/// Every metric family of the manager; cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct ManagerMetrics {
    /// Reconcile passes by result.
    pub reconciles: Family<ResultLabels, Counter>,
    /// Objects written with server-side apply, by kind (a steady cluster adds none).
    pub applies: Family<KindLabels, Counter>,
    /// Objects deleted, by kind.
    pub deletes: Family<KindLabels, Counter>,
    /// TracePipeline status writes.
    pub status_writes: Counter,
    /// Version of the snapshot being served.
    pub snapshot_version: Gauge,
    /// Gateways following the snapshot stream now.
    pub subscribers: Gauge,
    /// Gateway counter reports by result.
    pub reports: Family<ResultLabels, Counter>,
    /// Pipelines by state.
    pub pipelines: Family<StateLabels, Gauge>,
    /// Admission reviews answered, by result (`allowed`, `denied`, `invalid`).
    pub admission_reviews: Family<ResultLabels, Counter>,
}

/// Whether the manager has done its first complete reconcile.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

// === impl ManagerMetrics ===

impl ManagerMetrics {
    /// Registers every family in a new registry.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register("telemetry_manager_reconciles", "Reconcile passes by result.", self.reconciles.clone());
        r.register(
            "telemetry_manager_applies",
            "Objects written with server-side apply, by kind.",
            self.applies.clone(),
        );
        r.register("telemetry_manager_deletes", "Objects deleted, by kind.", self.deletes.clone());
        r.register(
            "telemetry_manager_status_writes",
            "TracePipeline status writes.",
            self.status_writes.clone(),
        );
        r.register(
            "telemetry_manager_snapshot_version",
            "Version of the snapshot being served.",
            self.snapshot_version.clone(),
        );
        r.register(
            "telemetry_manager_snapshot_subscribers",
            "Gateways following the snapshot stream.",
            self.subscribers.clone(),
        );
        r.register(
            "telemetry_manager_gateway_reports",
            "Gateway counter reports by result.",
            self.reports.clone(),
        );
        r.register("telemetry_manager_pipelines", "TracePipelines by state.", self.pipelines.clone());
        r.register(
            "telemetry_manager_admission_reviews",
            "Admission reviews answered by the TracePipeline webhook, by result.",
            self.admission_reviews.clone(),
        );
        r
    }

    /// Counts an apply of `kind`.
    pub fn applied(&self, kind: &str) {
        self.applies.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Counts a delete of `kind`.
    pub fn deleted(&self, kind: &str) {
        self.deletes.get_or_create(&KindLabels { kind: kind.into() }).inc();
    }

    /// Counts a reconcile pass.
    pub fn reconciled(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.reconciles.get_or_create(&ResultLabels { result: result.into() }).inc();
    }

    /// Counts a report.
    pub fn report(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "rejected" };
        self.reports.get_or_create(&ResultLabels { result: result.into() }).inc();
    }

    /// Counts an admission review answered with `result`.
    pub fn admission_reviewed(&self, result: &str) {
        self.admission_reviews.get_or_create(&ResultLabels { result: result.into() }).inc();
    }

    /// Sets the pipeline gauges.
    pub fn set_pipelines(&self, running: usize, rejected: usize) {
        let set = |state: &str, n: usize| {
            self.pipelines.get_or_create(&StateLabels { state: state.into() }).set(n as i64);
        };
        set("running", running);
        set("rejected", rejected);
    }
}

// === impl Readiness ===

impl Readiness {
    /// The first reconcile is done.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the first reconcile is done.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

// === free functions ===

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Arc<Readiness>,
    stop: CancellationToken,
) {
    while let Some(stream) = crate::net::next_connection(&listener, &stop).await {
        let (registry, ready) = (Arc::clone(&registry), Arc::clone(&ready));
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let response = match req.uri().path() {
                "/metrics" => {
                    let mut out = String::new();
                    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
                        out.clear();
                    }
                    text(StatusCode::OK, out)
                }
                "/healthz" => text(StatusCode::OK, "ok\n".into()),
                "/readyz" if ready.get() => text(StatusCode::OK, "ready\n".into()),
                "/readyz" => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready: first reconcile pending\n".into())
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
            };
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
