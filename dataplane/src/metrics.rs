//! The gateway's own metrics, under the OpenTelemetry Collector's names and labels so that Kyma's
//! dashboards, self-monitor relabelling and alert rules keep working unchanged.
//!
//! Queue size and capacity are counted in spans (the Collector's `items` sizer).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    /// Spans waiting in the pipeline: queued, batching or being exported.
    pub exporter_queue_size: Family<ExporterLabels, Gauge>,
    /// Queue capacity in spans.
    pub exporter_queue_capacity: Family<ExporterLabels, Gauge>,
    /// Encoded bytes of the spans counted in [`Metrics::exporter_queue_size`].
    pub exporter_queue_size_bytes: Family<ExporterLabels, Gauge>,
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

/// A pipeline's handles, resolved once so the hot path never looks up a label set.
#[derive(Clone, Debug)]
pub struct ExporterMetrics {
    /// See [`Metrics::exporter_sent_spans`].
    pub sent: Counter,
    /// See [`Metrics::exporter_send_failed_spans`].
    pub send_failed: Counter,
    /// See [`Metrics::exporter_enqueue_failed_spans`].
    pub enqueue_failed: Counter,
    /// See [`Metrics::exporter_queue_size`]; also the queue's accounting.
    pub queue_size: Gauge,
    /// See [`Metrics::exporter_queue_size_bytes`]; also the queue's accounting.
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
        self.exporter_queue_capacity.get_or_create(&labels).set(gauge_value(capacity_spans));
        self.exporter_queue_capacity_bytes.get_or_create(&labels).set(gauge_value(capacity_bytes));
        ExporterMetrics {
            sent: self.exporter_sent_spans.get_or_create_owned(&labels),
            send_failed: self.exporter_send_failed_spans.get_or_create_owned(&labels),
            enqueue_failed: self.exporter_enqueue_failed_spans.get_or_create_owned(&labels),
            queue_size: self.exporter_queue_size.get_or_create_owned(&labels),
            queue_bytes: self.exporter_queue_size_bytes.get_or_create_owned(&labels),
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
