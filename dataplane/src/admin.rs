//! Operations endpoints: health on one address (`/healthz`, `/readyz`, and `/` as Kyma's probes use),
//! Prometheus metrics on another (`/metrics`), and `/status` with every pipeline's verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Readiness and the latest verdict on each pipeline.
#[derive(Debug, Default)]
pub struct Health {
    listening: AtomicBool,
    configured: AtomicBool,
    /// False while a cluster pod watch has not delivered its first list (and not timed out).
    index_waiting: AtomicBool,
    draining: AtomicBool,
    statuses: ArcSwap<Vec<PipelineState>>,
}

/// One pipeline's state as shown on `/status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PipelineState {
    /// Pipeline name.
    pub name: String,
    /// Whether it runs.
    pub running: bool,
    /// Condition reason when it does not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Explanation when it does not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What an admin listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `/healthz`, `/readyz`, `/`, `/status`.
    Health,
    /// `/metrics`.
    Metrics,
}

// === impl Health ===

impl Health {
    /// Receivers are bound.
    pub fn set_listening(&self) {
        self.listening.store(true, Ordering::Release);
    }

    /// A configuration is in force.
    pub fn set_configured(&self) {
        self.configured.store(true, Ordering::Release);
    }

    /// Whether the pod index may gate readiness: `false` holds readiness until the first list.
    pub fn set_index_synced(&self, synced: bool) {
        self.index_waiting.store(!synced, Ordering::Release);
    }

    /// Shutdown started: readiness turns false so traffic moves away first.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Ready to receive.
    pub fn is_ready(&self) -> bool {
        self.listening.load(Ordering::Acquire)
            && self.configured.load(Ordering::Acquire)
            && !self.index_waiting.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
    }

    /// Publishes pipeline states.
    pub fn set_statuses(&self, statuses: Vec<PipelineState>) {
        self.statuses.store(Arc::new(statuses));
    }

    fn status_json(&self) -> String {
        json!({ "ready": self.is_ready(), "pipelines": *self.statuses.load_full() }).to_string()
    }
}

// === free functions ===

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn handle(
    role: Role,
    request: &Request<Incoming>,
    health: &Health,
    registry: &Registry,
) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (role, request.uri().path()) {
        (Role::Health, "/healthz" | "/livez") => respond(StatusCode::OK, TEXT, "ok\n".into()),
        (Role::Health, "/readyz" | "/") => {
            if health.is_ready() {
                respond(StatusCode::OK, TEXT, "ready\n".into())
            } else {
                respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, "not ready\n".into())
            }
        }
        (Role::Health, "/status") => respond(StatusCode::OK, "application/json", health.status_json()),
        (Role::Metrics, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::metrics::render(registry),
        ),
        _ => respond(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Serves one admin listener until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    health: Arc<Health>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let health = Arc::clone(&health);
        let registry = Arc::clone(&registry);
        let service = hyper::service::service_fn(move |req| {
            let r = handle(role, &req, &health, &registry);
            async move { Ok::<_, std::convert::Infallible>(r) }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
