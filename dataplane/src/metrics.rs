//! The gateway's own metrics, under the OpenTelemetry Collector's names and labels so that Kyma's
//! dashboards, self-monitor relabelling and alert rules keep working unchanged.
//!
//! Queue size and capacity are counted in spans (the Collector's `items` sizer).

use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// `receiver` and `transport` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    /// Always `otlp`.
    pub receiver: String,
    /// `grpc` or `http`.
    pub transport: String,
}

/// `exporter` label: `otlp_grpc/tracepipeline-<name>`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLabels {
    /// Exporter id.
    pub exporter: String,
}

/// Request outcome labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Always `otlp`.
    pub receiver: String,
    /// `grpc` or `http`.
    pub transport: String,
    /// `success`, `refused` (back-pressure) or `failure` (bad request).
    pub outcome: String,
}

/// `filter` label: the Collector's processor id, `filter/tracepipeline-user-defined-<name>`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilterLabels {
    /// Processor id.
    pub filter: String,
}

/// A pipeline's OTTL statements and conditions that failed on an item.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OttlErrorLabels {
    /// The TracePipeline.
    pub pipeline: String,
    /// `transform` or `filter`.
    pub stage: String,
}

/// OAuth2 token request labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Exporter id.
    pub exporter: String,
    /// `success` or `failure`.
    pub result: String,
}

/// A receiver limit that fired: `timeout` is `read` (headers not sent in time, keepalive ping not
/// answered), `body` (a request body stalled) or `idle` (an idle connection closed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    /// `grpc` or `http`.
    pub transport: String,
    /// Which deadline.
    pub timeout: String,
}

/// `transport` label alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `grpc` or `http` for the OTLP receivers, `health` or `metrics` for the admin listeners.
    pub transport: String,
}

/// Reload outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `failure`.
    pub result: String,
}

/// Every metric family of the gateway; cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Spans taken in by at least one pipeline.
    pub receiver_accepted_spans: Family<ReceiverLabels, Counter>,
    /// Spans refused because no pipeline could take them (the client is told to retry).
    pub receiver_refused_spans: Family<ReceiverLabels, Counter>,
    /// Spans in requests that could not be parsed.
    pub receiver_failed_spans: Family<ReceiverLabels, Counter>,
    /// Istio proxy spans dropped by the noise filter.
    pub noise_dropped_spans: Family<ReceiverLabels, Counter>,
    /// Requests by outcome.
    pub receiver_requests: Family<RequestLabels, Counter>,
    /// Spans the backend accepted.
    pub exporter_sent_spans: Family<ExporterLabels, Counter>,
    /// Spans given up on: permanent errors, retries exhausted, rejected in a partial success, or still
    /// unsent when shutdown's grace period ended.
    pub exporter_send_failed_spans: Family<ExporterLabels, Counter>,
    /// Spans dropped because the pipeline's queue was full (in spans or in bytes).
    pub exporter_enqueue_failed_spans: Family<ExporterLabels, Counter>,
    /// Spans waiting in the pipeline: queued, batching or being exported. Of the pipeline that now
    /// runs under the exporter id only ([`OwnedGauge`]).
    pub exporter_queue_size: Family<ExporterLabels, OwnedGauge>,
    /// Queue capacity in spans.
    pub exporter_queue_capacity: Family<ExporterLabels, Gauge>,
    /// Encoded bytes of the spans counted in [`Metrics::exporter_queue_size`].
    pub exporter_queue_size_bytes: Family<ExporterLabels, OwnedGauge>,
    /// Queue capacity in encoded bytes.
    pub exporter_queue_capacity_bytes: Family<ExporterLabels, Gauge>,
    /// Export attempts that failed and were retried.
    pub exporter_retries: Family<ExporterLabels, Counter>,
    /// OAuth2 token requests by outcome (a Basic attempt and its fallback count as one).
    pub oauth2_token_requests: Family<TokenLabels, Counter>,
    /// Spans dropped by a pipeline's `filter` (the Collector's filter processor metric).
    pub filter_filtered_spans: Family<FilterLabels, Counter>,
    /// Statements and conditions that failed on one item and were skipped (`error_mode: ignore`).
    pub ottl_errors: Family<OttlErrorLabels, Counter>,
    /// Request bytes in flight counted against the memory budget ([`crate::budget`]).
    pub memory_in_use_bytes: Gauge,
    /// The memory budget for request bytes in flight.
    pub memory_budget_bytes: Gauge,
    /// Requests refused because the memory budget was used up.
    pub memory_refused_requests: Family<TransportLabels, Counter>,
    /// Receiver deadlines that fired.
    pub receiver_timeouts: Family<TimeoutLabels, Counter>,
    /// Open receiver connections.
    pub receiver_connections_open: Family<TransportLabels, Gauge>,
    /// Connections closed at once because the listener was at its connection cap.
    pub receiver_connections_rejected: Family<TransportLabels, Counter>,
    /// Failed `accept` calls (out of file descriptors and the like), per listener.
    pub accept_errors: Family<TransportLabels, Counter>,
    /// Config reloads by result.
    pub config_reloads: Family<ResultLabels, Counter>,
    /// Version of the snapshot in force.
    pub config_version: Gauge,
    /// Pipelines running.
    pub pipelines_running: Gauge,
    /// Pipelines rejected by validation.
    pub pipelines_invalid: Gauge,
    /// 1 once the cluster pod watch delivered its first complete list.
    pub pod_index_synced: Gauge,
}

/// A gauge whose series shows the value of one pipeline: the one that last took the exporter id.
///
/// A changed pipeline keeps its name, and so its exporter id, while its predecessor drains in the
/// background. Each keeps its own queue count (a [`Gauge`] of its own, which is also what its queue
/// bound is checked against), and the series shows the successor's alone: summed into one gauge,
/// a predecessor draining a dead backend's queue would show the healthy successor's queue full (and
/// fill it, for its bound). This mirrors the Collector, where a reload shuts the old exporter down
/// and the new one's `otelcol_exporter_queue_size` starts from its own empty queue. A pipeline that
/// is removed, not replaced, keeps its series while it drains, down to 0.
#[derive(Clone, Debug, Default)]
pub struct OwnedGauge {
    current: Arc<ArcSwap<Gauge>>,
}

/// A pipeline's handles, resolved once so the hot path never looks up a label set.
#[derive(Clone, Debug)]
pub struct ExporterMetrics {
    /// See [`Metrics::exporter_sent_spans`].
    pub sent: Counter,
    /// See [`Metrics::exporter_send_failed_spans`].
    pub send_failed: Counter,
    /// See [`Metrics::exporter_enqueue_failed_spans`].
    pub enqueue_failed: Counter,
    /// See [`Metrics::exporter_queue_size`]: this pipeline's own, also its queue's accounting.
    pub queue_size: Gauge,
    /// See [`Metrics::exporter_queue_size_bytes`]: this pipeline's own, also its queue's accounting.
    pub queue_bytes: Gauge,
    /// See [`Metrics::exporter_retries`].
    pub retries: Counter,
    /// See [`Metrics::exporter_queue_capacity`]: the pipeline's share of the node's budget in
    /// spans, and the queue's bound.
    pub capacity: Gauge,
    /// See [`Metrics::exporter_queue_capacity_bytes`]: the share in bytes, and the queue's bound.
    pub capacity_bytes: Gauge,
}

/// A pipeline's processing handles.
#[derive(Clone, Debug)]
pub struct ProcessingMetrics {
    /// See [`Metrics::filter_filtered_spans`].
    pub filtered: Counter,
    /// See [`Metrics::ottl_errors`], for `transform`.
    pub transform_errors: Counter,
    /// See [`Metrics::ottl_errors`], for `filter`.
    pub filter_errors: Counter,
}

/// A transport's handles.
#[derive(Clone, Debug)]
pub struct ReceiverMetrics {
    /// Accepted spans.
    pub accepted: Counter,
    /// Refused spans.
    pub refused: Counter,
    /// Spans in unparseable requests (counted when the count is known, i.e. for JSON).
    pub failed: Counter,
    /// Istio proxy spans dropped by the noise filter.
    pub noise_dropped: Counter,
    /// Successful requests.
    pub requests_success: Counter,
    /// Refused requests.
    pub requests_refused: Counter,
    /// Malformed or oversized requests.
    pub requests_failure: Counter,
}

// === impl OwnedGauge ===

impl OwnedGauge {
    /// Shows `gauge` (a pipeline's own count) from now on, instead of the one shown so far.
    pub fn show(&self, gauge: &Gauge) {
        self.current.store(Arc::new(gauge.clone()));
    }

    /// The value shown.
    pub fn get(&self) -> i64 {
        self.current.load().get()
    }
}

impl EncodeMetric for OwnedGauge {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.current.load().encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        <Gauge as TypedMetric>::TYPE
    }
}

impl TypedMetric for OwnedGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

// === impl Metrics ===

impl Metrics {
    /// Registers every family in a new registry.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "otelcol_receiver_accepted_spans",
            "Spans accepted by the receiver.",
            self.receiver_accepted_spans.clone(),
        );
        r.register(
            "otelcol_receiver_refused_spans",
            "Spans refused by the receiver (back-pressure).",
            self.receiver_refused_spans.clone(),
        );
        r.register(
            "otelcol_receiver_failed_spans",
            "Spans in requests that failed to parse.",
            self.receiver_failed_spans.clone(),
        );
        r.register(
            "otelcol_receiver_requests",
            "Receiver requests by outcome.",
            self.receiver_requests.clone(),
        );
        r.register(
            "otlp_gateway_istio_noise_dropped_spans",
            "Istio proxy spans dropped by the noise filter (Kyma's istio_noise_filter).",
            self.noise_dropped_spans.clone(),
        );
        r.register(
            "otelcol_exporter_sent_spans",
            "Spans successfully sent to the backend.",
            self.exporter_sent_spans.clone(),
        );
        r.register(
            "otelcol_exporter_send_failed_spans",
            "Spans that failed to be sent to the backend.",
            self.exporter_send_failed_spans.clone(),
        );
        r.register(
            "otelcol_exporter_enqueue_failed_spans",
            "Spans dropped because the sending queue was full (in spans or in bytes).",
            self.exporter_enqueue_failed_spans.clone(),
        );
        r.register(
            "otelcol_exporter_queue_size",
            "Spans in the sending queue.",
            self.exporter_queue_size.clone(),
        );
        r.register(
            "otelcol_exporter_queue_capacity",
            "Capacity of the sending queue, in spans.",
            self.exporter_queue_capacity.clone(),
        );
        r.register(
            "otlp_gateway_exporter_queue_size_bytes",
            "Encoded bytes of the spans in the sending queue.",
            self.exporter_queue_size_bytes.clone(),
        );
        r.register(
            "otlp_gateway_exporter_queue_capacity_bytes",
            "Capacity of the sending queue, in encoded bytes.",
            self.exporter_queue_capacity_bytes.clone(),
        );
        r.register(
            "otlp_gateway_exporter_retries",
            "Export attempts that failed and were retried.",
            self.exporter_retries.clone(),
        );
        r.register(
            "otlp_gateway_oauth2_token_requests",
            "OAuth2 token requests of a pipeline, by result (success or failure).",
            self.oauth2_token_requests.clone(),
        );
        r.register(
            "otelcol_processor_filter_spans_filtered",
            "Number of spans dropped by the filter processor (a TracePipeline's spec.filter).",
            self.filter_filtered_spans.clone(),
        );
        r.register(
            "otlp_gateway_ottl_errors",
            "OTTL statements or conditions that failed on one span, event, scope or resource and were skipped (error_mode: ignore).",
            self.ottl_errors.clone(),
        );
        r.register(
            "otlp_gateway_memory_in_use_bytes",
            "Request bytes in flight (being read, decompressed, decoded or queued) counted against the memory budget.",
            self.memory_in_use_bytes.clone(),
        );
        r.register(
            "otlp_gateway_memory_budget_bytes",
            "The memory budget for request bytes in flight; requests beyond it are refused with 503 / UNAVAILABLE.",
            self.memory_budget_bytes.clone(),
        );
        r.register(
            "otlp_gateway_memory_refused_requests",
            "Requests refused because the memory budget was used up.",
            self.memory_refused_requests.clone(),
        );
        r.register(
            "otlp_gateway_receiver_timeouts",
            "Receiver deadlines that fired: read (headers or keepalive ping), body (stalled request body), idle (idle connection closed).",
            self.receiver_timeouts.clone(),
        );
        r.register(
            "otlp_gateway_receiver_connections_open",
            "Open connections of a receiver.",
            self.receiver_connections_open.clone(),
        );
        r.register(
            "otlp_gateway_receiver_connections_rejected",
            "Connections closed on arrival because the receiver was at its connection cap.",
            self.receiver_connections_rejected.clone(),
        );
        r.register(
            "otlp_gateway_accept_errors",
            "Failed accept calls of a listener (e.g. out of file descriptors); the listener backs off.",
            self.accept_errors.clone(),
        );
        r.register(
            "otlp_gateway_config_reloads",
            "Configuration reloads by result.",
            self.config_reloads.clone(),
        );
        r.register(
            "otlp_gateway_config_version",
            "Version of the configuration snapshot in force.",
            self.config_version.clone(),
        );
        r.register("otlp_gateway_pipelines_running", "Pipelines running.", self.pipelines_running.clone());
        r.register(
            "otlp_gateway_pipelines_invalid",
            "Pipelines rejected by validation.",
            self.pipelines_invalid.clone(),
        );
        r.register(
            "otlp_gateway_pod_index_synced",
            "1 once the cluster pod watch delivered its first complete list; 0 while serving without enrichment.",
            self.pod_index_synced.clone(),
        );
        r
    }

    /// Handles for one exporter, with its queue's share of the budget recorded.
    pub fn exporter(
        &self,
        exporter_id: &str,
        capacity_spans: usize,
        capacity_bytes: usize,
    ) -> ExporterMetrics {
        let labels = ExporterLabels { exporter: exporter_id.to_string() };
        // Counts of this pipeline alone, shown from now on under its exporter id ([`OwnedGauge`]).
        let (queue_size, queue_bytes) = (Gauge::default(), Gauge::default());
        self.exporter_queue_size.get_or_create(&labels).show(&queue_size);
        self.exporter_queue_size_bytes.get_or_create(&labels).show(&queue_bytes);
        self.exporter_queue_capacity.get_or_create(&labels).set(gauge_value(capacity_spans));
        self.exporter_queue_capacity_bytes.get_or_create(&labels).set(gauge_value(capacity_bytes));
        ExporterMetrics {
            sent: self.exporter_sent_spans.get_or_create_owned(&labels),
            send_failed: self.exporter_send_failed_spans.get_or_create_owned(&labels),
            enqueue_failed: self.exporter_enqueue_failed_spans.get_or_create_owned(&labels),
            queue_size,
            queue_bytes,
            retries: self.exporter_retries.get_or_create_owned(&labels),
            capacity: self.exporter_queue_capacity.get_or_create_owned(&labels),
            capacity_bytes: self.exporter_queue_capacity_bytes.get_or_create_owned(&labels),
        }
    }

    /// The token counters of one exporter.
    pub fn oauth2(&self, exporter_id: &str) -> crate::export::oauth2::TokenObserver {
        let counter = |result: &str| {
            self.oauth2_token_requests
                .get_or_create_owned(&TokenLabels { exporter: exporter_id.into(), result: result.into() })
        };
        crate::export::oauth2::TokenObserver {
            exporter_id: exporter_id.into(),
            fetched: counter("success"),
            failed: counter("failure"),
        }
    }

    /// Handles for one pipeline's own processing.
    pub fn processing(&self, pipeline: &str) -> ProcessingMetrics {
        let errors = |stage: &str| {
            self.ottl_errors
                .get_or_create_owned(&OttlErrorLabels { pipeline: pipeline.into(), stage: stage.into() })
        };
        ProcessingMetrics {
            filtered: self.filter_filtered_spans.get_or_create_owned(&FilterLabels {
                filter: format!("filter/tracepipeline-user-defined-{pipeline}"),
            }),
            transform_errors: errors("transform"),
            filter_errors: errors("filter"),
        }
    }

    /// Handles for one transport.
    pub fn receiver(&self, transport: &str) -> ReceiverMetrics {
        let labels = ReceiverLabels { receiver: "otlp".into(), transport: transport.into() };
        let request = |outcome: &str| {
            self.receiver_requests.get_or_create_owned(&RequestLabels {
                receiver: "otlp".into(),
                transport: transport.into(),
                outcome: outcome.into(),
            })
        };
        ReceiverMetrics {
            accepted: self.receiver_accepted_spans.get_or_create_owned(&labels),
            refused: self.receiver_refused_spans.get_or_create_owned(&labels),
            failed: self.receiver_failed_spans.get_or_create_owned(&labels),
            noise_dropped: self.noise_dropped_spans.get_or_create_owned(&labels),
            requests_success: request("success"),
            requests_refused: request("refused"),
            requests_failure: request("failure"),
        }
    }

    /// The counter of one receiver deadline.
    pub fn receiver_timeout(&self, transport: &str, timeout: &str) -> Counter {
        self.receiver_timeouts
            .get_or_create_owned(&TimeoutLabels { transport: transport.into(), timeout: timeout.into() })
    }

    /// The open-connections gauge of one receiver.
    pub fn receiver_connections(&self, transport: &str) -> Gauge {
        self.receiver_connections_open.get_or_create_owned(&TransportLabels { transport: transport.into() })
    }

    /// The at-capacity counter of one receiver.
    pub fn receiver_connections_rejected(&self, transport: &str) -> Counter {
        self.receiver_connections_rejected
            .get_or_create_owned(&TransportLabels { transport: transport.into() })
    }

    /// The memory refusals of one receiver.
    pub fn memory_refused(&self, transport: &str) -> Counter {
        self.memory_refused_requests.get_or_create_owned(&TransportLabels { transport: transport.into() })
    }

    /// The accept failures of one listener.
    pub fn accept_errors(&self, listener: &str) -> Counter {
        self.accept_errors.get_or_create_owned(&TransportLabels { transport: listener.into() })
    }

    /// Counts a reload.
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads.get_or_create(&ResultLabels { result: result.into() }).inc();
    }
}

/// A count as a gauge's value; a count beyond `i64::MAX` (never in practice) reads as the maximum.
pub fn gauge_value<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Renders a registry in the Prometheus/OpenMetrics text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an error would only mean an unencodable metric name.
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}
