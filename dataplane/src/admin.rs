//! Operations endpoints: health on one address (`/healthz`, `/readyz`, and `/` as Kyma's probes use),
//! Prometheus metrics on another (`/metrics`), and `/status` with every pipeline's verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::receiver::limits::{Activity, ConnectionLimits, ListenerLimits, Watched};

/// Readiness and the latest verdict on each pipeline.
#[derive(Debug, Default)]
pub struct Health {
    listening: AtomicBool,
    configured: AtomicBool,
    /// False while a cluster pod watch has not delivered its first list (and not timed out).
    index_waiting: AtomicBool,
    draining: AtomicBool,
    /// The configuration in force runs no pipeline: every export would be answered 503.
    no_pipeline: AtomicBool,
    statuses: ArcSwap<Vec<PipelineState>>,
    /// What the config source is waiting for, or why loading failed, until a configuration is in force.
    waiting_for: ArcSwap<String>,
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

    /// How many pipelines the configuration in force runs. With none, every export is refused with
    /// 503 / UNAVAILABLE, so the gateway is not ready (traffic goes to gateways that can take it,
    /// and the kubelet and the manager's `GatewayHealthy` see why) while it keeps serving: it takes
    /// spans again as soon as a configuration with a pipeline comes.
    pub fn set_pipelines_running(&self, running: usize) {
        self.no_pipeline.store(running == 0, Ordering::Release);
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
            && !self.no_pipeline.load(Ordering::Acquire)
    }

    /// Publishes pipeline states.
    pub fn set_statuses(&self, statuses: Vec<PipelineState>) {
        self.statuses.store(Arc::new(statuses));
    }

    /// What the config source waits for (or why it failed) while no configuration is in force; shown
    /// by `/status` and `/readyz` until one is.
    pub fn set_waiting_for(&self, why: impl Into<String>) {
        self.waiting_for.store(Arc::new(why.into()));
    }

    /// Why the gateway is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.draining.load(Ordering::Acquire) {
            return Some("shutting down: draining the queues".into());
        }
        if !self.listening.load(Ordering::Acquire) {
            return Some("the OTLP receivers are not listening yet".into());
        }
        if !self.configured.load(Ordering::Acquire) {
            let why = self.waiting_for.load();
            return Some(if why.is_empty() {
                "no configuration loaded yet".into()
            } else {
                format!("no configuration loaded yet: {why}")
            });
        }
        if self.no_pipeline.load(Ordering::Acquire) {
            let configured = self.statuses.load().len();
            return Some(if configured == 0 {
                "no TracePipeline is configured: every export is refused with 503 / UNAVAILABLE".into()
            } else {
                format!(
                    "none of the {configured} configured TracePipelines runs (see their reasons under \
                     pipelines): every export is refused with 503 / UNAVAILABLE"
                )
            });
        }
        if self.index_waiting.load(Ordering::Acquire) {
            return Some(
                "waiting for the first complete pod list from the Kubernetes API (at most --pod-sync-timeout)"
                    .into(),
            );
        }
        None
    }

    fn status_json(&self) -> String {
        let pipelines = self.statuses.load_full();
        match self.not_ready_reason() {
            None => json!({ "ready": true, "pipelines": *pipelines }),
            Some(reason) => json!({ "ready": false, "reason": reason, "pipelines": *pipelines }),
        }
        .to_string()
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
        (Role::Health, "/readyz" | "/") => match health.not_ready_reason() {
            None => respond(StatusCode::OK, TEXT, "ready\n".into()),
            Some(why) => respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("not ready: {why}\n")),
        },
        (Role::Health, "/status") => respond(StatusCode::OK, "application/json", health.status_json()),
        (Role::Metrics, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::metrics::render(registry),
        ),
        _ => respond(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Serves one admin listener until `shutdown` fires. It is meant to run on the admin thread
/// ([`spawn_thread`]), so probes and scrapes are answered however busy the data path is; its
/// connections are held to `limits` (header deadline, idle limit, connection cap), and a failing
/// accept backs off.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    health: Arc<Health>,
    registry: Arc<Registry>,
    limits: Arc<ListenerLimits>,
    accept_errors: Counter,
    shutdown: CancellationToken,
) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.limits().header_read_timeout);
    let mut backoff = tracegw_runtime::AcceptBackoff::new(match role {
        Role::Health => "health",
        Role::Metrics => "metrics",
    });
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = tracegw_runtime::accept_with(&mut backoff, || async {
                let accepted = listener.accept().await;
                if accepted.is_err() {
                    accept_errors.inc();
                }
                accepted
            }) => accepted,
        };
        let Some(slot) = limits.admit() else {
            continue;
        };
        let health = Arc::clone(&health);
        let registry = Arc::clone(&registry);
        let activity = Arc::new(Activity::default());
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req| {
            let running = requests.start();
            let r = handle(role, &req, &health, &registry);
            drop(running);
            async move { Ok::<_, std::convert::Infallible>(r) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let watched = Watched::new(connection, activity, shutdown.clone(), Arc::clone(&limits));
        let limits = Arc::clone(&limits);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                limits.count_connection_error(&*e);
            }
            drop(slot);
        });
    }
}

/// Open connections per admin listener: the kubelet's probes and a few scrapers need a handful.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;
/// An admin client must send its request's headers within this long; idle ones are closed after
/// [`ADMIN_IDLE_TIMEOUT`].
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin connections without a request for this long are closed.
pub const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves the health and metrics listeners on a thread and runtime of their own, so that the
/// kubelet's probes and the scrapes are answered within milliseconds even while the data path's
/// worker is saturated or busy with a heavy request. Stops when `shutdown` fires; join the handle.
pub fn spawn_thread(
    listeners: [(std::net::TcpListener, Role); 2],
    health: Arc<Health>,
    registry: Arc<Registry>,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let limits = ConnectionLimits {
        header_read_timeout: ADMIN_HEADER_READ_TIMEOUT,
        idle_timeout: ADMIN_IDLE_TIMEOUT,
        max_connections: ADMIN_MAX_CONNECTIONS,
        ..ConnectionLimits::default()
    };
    let listeners = listeners.map(|(listener, role)| {
        let name = match role {
            Role::Health => "health",
            Role::Metrics => "metrics",
        };
        (listener, role, ListenerLimits::new(limits, metrics, name), metrics.accept_errors(name))
    });
    std::thread::Builder::new().name("otlp-gateway-admin".into()).spawn(move || {
        runtime.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (listener, role, limits, accept_errors) in listeners {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        tasks.spawn(serve(
                            listener,
                            role,
                            Arc::clone(&health),
                            Arc::clone(&registry),
                            limits,
                            accept_errors,
                            shutdown.clone(),
                        ));
                    }
                    Err(e) => tracing::error!(error = %e, ?role, "cannot serve an admin listener"),
                }
            }
            while tasks.join_next().await.is_some() {}
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a gateway's health from start to shutdown: receivers bound, the config source
    /// waiting, a configuration applied, a pod list awaited, draining.
    /// Guarantees: each not-ready state has a reason saying what is missing (the config source's own
    /// words included) and `/status` carries it; a ready gateway has none.
    #[test]
    fn not_ready_says_why() {
        let health = Health::default();
        assert_eq!(health.not_ready_reason().unwrap(), "the OTLP receivers are not listening yet");
        health.set_listening();
        assert_eq!(health.not_ready_reason().unwrap(), "no configuration loaded yet");
        health.set_waiting_for("cannot reach the manager: connection refused");
        let status: serde_json::Value = serde_json::from_str(&health.status_json()).unwrap_or_default();
        assert_eq!(status["ready"], false);
        assert_eq!(
            status["reason"],
            "no configuration loaded yet: cannot reach the manager: connection refused"
        );
        health.set_configured();
        assert_eq!(health.not_ready_reason(), None);
        let status: serde_json::Value = serde_json::from_str(&health.status_json()).unwrap_or_default();
        assert_eq!((status["ready"].clone(), status.get("reason")), (json!(true), None));
        health.set_index_synced(false);
        assert!(health.not_ready_reason().unwrap().contains("pod list"));
        health.set_index_synced(true);
        health.set_draining();
        assert!(health.not_ready_reason().unwrap().starts_with("shutting down"));
        assert!(!health.is_ready());
    }
}
