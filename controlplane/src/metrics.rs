//! The manager's own metrics and its operations endpoints (`/metrics`, `/healthz`, `/readyz`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
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

/// `strategy` label: `otel` or `kyma-legacy`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    /// The annotation value of the strategy.
    pub strategy: String,
}

/// `listener` label: `snapshots`, `webhook` or `admin`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// Which of the manager's listeners.
    pub listener: String,
}

/// `listener` and `deadline` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadlineLabels {
    /// Which of the manager's listeners.
    pub listener: String,
    /// `handshake`, `header`, `body` or `idle` (see [`crate::net::Deadline`]).
    pub deadline: String,
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
    /// Connections closed because a deadline fired, by listener and deadline.
    pub connection_deadlines: Family<DeadlineLabels, Counter>,
    /// Connections closed at once because the listener had its maximum open.
    pub connections_refused: Family<ListenerLabels, Counter>,
    /// Connections open now, by listener.
    pub connections_open: Family<ListenerLabels, Gauge>,
    /// Failed accepts (e.g. out of file descriptors), by listener.
    pub accept_errors: Family<ListenerLabels, Counter>,
    /// Kyma's `telemetry_service_attributes_enrichment_strategy`: 1 for the `service.*` strategy in
    /// force, 0 for the other.
    pub service_enrichment: Family<StrategyLabels, Gauge>,
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
        r.register(
            "telemetry_manager_connection_deadlines",
            "Connections closed because a deadline fired, by listener and deadline.",
            self.connection_deadlines.clone(),
        );
        r.register(
            "telemetry_manager_connections_refused",
            "Connections closed at once because the listener had its maximum open.",
            self.connections_refused.clone(),
        );
        r.register(
            "telemetry_manager_connections_open",
            "Connections open now, by listener.",
            self.connections_open.clone(),
        );
        r.register(
            "telemetry_manager_accept_errors",
            "Failed accepts (e.g. out of file descriptors), by listener.",
            self.accept_errors.clone(),
        );
        // Kyma's name and help, so its dashboards read it; hence no `telemetry_manager_` prefix.
        r.register(
            "telemetry_service_attributes_enrichment_strategy",
            "Service attributes enrichment strategy used for telemetry data (either 'otel' for OpenTelemetry enrichment or 'kyma-legacy' for legacy Kyma enrichment)",
            self.service_enrichment.clone(),
        );
        r
    }

    /// Marks `mode` as the strategy in force (1) and the other as not (0), as Kyma does.
    pub fn set_service_enrichment(&self, mode: tracegw_contract::ServiceMode) {
        use tracegw_contract::ServiceMode;
        for candidate in [ServiceMode::Otel, ServiceMode::KymaLegacy] {
            let labels = StrategyLabels { strategy: strategy_name(candidate) };
            self.service_enrichment.get_or_create(&labels).set(i64::from(candidate == mode));
        }
    }

    /// Counts a connection closed by `deadline` on `listener`.
    pub fn deadline_fired(&self, listener: &str, deadline: &str) {
        let labels = DeadlineLabels { listener: listener.into(), deadline: deadline.into() };
        self.connection_deadlines.get_or_create(&labels).inc();
    }

    /// Counts a connection refused by `listener`'s connection cap.
    pub fn connection_refused(&self, listener: &str) {
        self.connections_refused.get_or_create(&ListenerLabels { listener: listener.into() }).inc();
    }

    /// The open-connections gauge of `listener`.
    pub fn open_connections_of(&self, listener: &str) -> Gauge {
        self.connections_open.get_or_create(&ListenerLabels { listener: listener.into() }).clone()
    }

    /// The failed-accepts counter of `listener`.
    pub fn accept_errors_of(&self, listener: &str) -> Counter {
        self.accept_errors.get_or_create(&ListenerLabels { listener: listener.into() }).clone()
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

/// Kyma's annotation value for `mode`: its serialised name (`otel`, `kyma-legacy`).
fn strategy_name(mode: tracegw_contract::ServiceMode) -> String {
    serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `stop` fires, under `limits`.
pub async fn serve(
    listener: TcpListener,
    metrics: ManagerMetrics,
    ready: Arc<Readiness>,
    limits: crate::net::ServerLimits,
    stop: CancellationToken,
) {
    let registry = Arc::new(metrics.registry());
    let server = crate::net::Server::new("admin", limits, metrics);
    server
        .serve(listener, None, stop, move |req: Request<Incoming>| {
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
            async move { response }
        })
        .await;
}
