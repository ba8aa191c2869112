//! Counter reports to the control plane: every interval, the gateway posts its cumulative
//! per-pipeline counters (the Collector's exporter metrics) and its refused spans to
//! `POST /v1/reports`, authenticated with the snapshot channel's token. The manager judges each
//! pipeline's flow health from them, so a cluster needs no Prometheus for `TelemetryFlowHealthy`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;
use tracegw_contract::stream::{GatewayReport, PipelineCounters, REPORTS_PATH};

use crate::link::{ManagerClient, ManagerLink};
use crate::metrics::{ExporterLabels, Metrics, ReceiverLabels};
use crate::pipeline::Router;

/// Posts this gateway's counters to the manager.
#[derive(Debug)]
pub struct Reporter {
    /// The manager.
    pub link: ManagerLink,
    /// This gateway's name (its pod name in a cluster).
    pub name: String,
    /// How often to report.
    pub interval: Duration,
    /// The running pipelines.
    pub router: Arc<Router>,
    /// Where the counters are.
    pub metrics: Metrics,
}

// === impl Reporter ===

impl Reporter {
    /// Reports until `stop` fires. Failures are logged once per outage and retried at the next tick.
    pub async fn run(self, stop: CancellationToken) {
        let mut client: Option<ManagerClient<Full<Bytes>>> = None;
        let started = Instant::now();
        let boot_id = boot_id();
        let mut failing = false;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let report = self.report(&boot_id, started.elapsed());
            // One client, so one connection, while it works; a new one (certificate read again)
            // after a failure.
            let outcome = match client.take().map_or_else(|| self.link.client(), Ok) {
                Ok(c) => {
                    let result = self.post(&c, &report).await;
                    if result.is_ok() {
                        client = Some(c);
                    }
                    result
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) if failing => {
                    tracing::info!(url = %self.link.url, "counter reports reach the manager again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(url = %self.link.url, error = %e, "cannot report counters to the manager; retrying");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// The counters now.
    pub fn report(&self, boot_id: &str, uptime: Duration) -> GatewayReport {
        let table = self.router.load();
        let pipelines = table
            .pipelines
            .iter()
            .map(|p| {
                let labels = ExporterLabels { exporter: p.exporter_id().to_string() };
                PipelineCounters {
                    name: p.config().name.clone(),
                    sent_spans: self.metrics.exporter_sent_spans.get_or_create(&labels).get(),
                    send_failed_spans: self.metrics.exporter_send_failed_spans.get_or_create(&labels).get(),
                    enqueue_failed_spans: self
                        .metrics
                        .exporter_enqueue_failed_spans
                        .get_or_create(&labels)
                        .get(),
                }
            })
            .collect();
        let refused_spans = ["grpc", "http"]
            .iter()
            .map(|t| {
                let labels = ReceiverLabels { receiver: "otlp".into(), transport: (*t).into() };
                self.metrics.receiver_refused_spans.get_or_create(&labels).get()
            })
            .sum();
        GatewayReport {
            gateway: self.name.clone(),
            boot_id: boot_id.to_string(),
            uptime_seconds: uptime.as_secs(),
            snapshot_version: table.version,
            refused_spans,
            pipelines,
        }
    }

    async fn post(&self, client: &ManagerClient<Full<Bytes>>, report: &GatewayReport) -> Result<(), String> {
        let auth = self.link.authorization()?;
        let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
        let request = Request::post(format!("{}{REPORTS_PATH}", self.link.url.trim_end_matches('/')))
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.interval, client.request(request))
            .await
            .map_err(|_| "the manager did not answer in time".to_string())?
            .map_err(|e| crate::link::unreachable(&e))?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::UNAUTHORIZED => Err("the manager refused our token".into()),
            other => Err(format!("the manager answered {other}")),
        }
    }
}

/// A random id for this process.
fn boot_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
