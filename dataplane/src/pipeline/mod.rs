//! One TracePipeline at run time: a bounded queue, a batcher and an exporter, with a task of its own,
//! so a slow or dead backend holds up only its own pipeline.
//!
//! Receivers batch in place: a request is appended to the pipeline's open batch under a short lock,
//! and the pipeline's task is woken only when a batch is complete or a new one opens (its flush timer
//! must start), about twice per batch instead of once per request. Waking a task is a cross-thread
//! hand-off that costs more than the append itself, and with several pipelines every request paid
//! it once per pipeline.
//!
//! The queue is bounded in spans, as Kyma's is, and in encoded bytes, so that the memory a pipeline can
//! pin is bounded whatever the size of its spans (131,072 spans of 4 KiB would be half a gigabyte).
//! Everything between the receiver's hand-off and the backend's answer (queued requests, the open
//! batch, batches waiting or in flight) counts against both, so the bound holds however the backend
//! behaves. When either is reached, new spans for this pipeline are dropped and counted
//! (`otelcol_exporter_enqueue_failed_spans`) while other pipelines carry on; a bound per pipeline rather
//! than one shared queue keeps a dead backend from using up what the healthy ones need.
//!
//! Both bounds are shares of one budget for the node ([`queue_share`]), divided among the running
//! pipelines as Kyma divides its 256 batches (`queue_size: 256 / N`), so the gateway's memory bound
//! does not grow with the number of pipelines. A reload that adds or removes pipelines re-divides
//! the budget for the ones that keep running; a pipeline holding more than its new share takes no new
//! spans until it is back under it. The shares are the `otelcol_exporter_queue_capacity` gauges.

mod router;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracegw_contract::PipelineConfig;

use crate::batch::{Batch, BatchLimits, Batcher};
use crate::export::{BuildError, ExportError, ExportSettings, Exporter};
use crate::metrics::{ExporterMetrics, Metrics, gauge_value};
use crate::process::ottl::{PipelineStages, Processed};
use crate::wire::TraceData;

pub use router::{ApplyReport, Router};

/// Kyma's queue budget of 256 batches of 512 spans, for all pipelines of the node together.
pub const DEFAULT_QUEUE_CAPACITY_SPANS: usize = 256 * 512;
/// About what Kyma's budget holds of typical spans (131,072 of 500 bytes), so that the span bound is
/// the one that applies to them; a sixteenth of the gateway's 1 GiB limit, however many pipelines run.
pub const DEFAULT_QUEUE_CAPACITY_BYTES: usize = 64 * 1024 * 1024;
/// Concurrent exports per pipeline (the Collector's `num_consumers`).
pub const DEFAULT_MAX_IN_FLIGHT_EXPORTS: usize = 10;

/// Settings every pipeline shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelineSettings {
    /// The node's queue budget in spans, divided among the pipelines ([`queue_share`]).
    pub queue_capacity_spans: usize,
    /// The node's queue budget in encoded bytes of the queued spans, divided among the pipelines.
    pub queue_capacity_bytes: usize,
    /// Concurrent exports per pipeline.
    pub max_in_flight_exports: usize,
    /// Batch limits.
    pub batch: BatchLimits,
    /// Export settings.
    pub export: ExportSettings,
}

/// The receiving side of a running pipeline. Dropping the last handle closes it: the open batch is
/// handed to the task, which drains and ends.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    /// The pipeline's own transform and filter, run on its copy of each request before it is queued.
    stages: PipelineStages,
    exporter_id: String,
    shared: Arc<Shared>,
    /// Its queue's bounds are `metrics.capacity` and `metrics.capacity_bytes`, set by the router.
    metrics: ExporterMetrics,
}

/// One pipeline's share of the node's queue budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueShare {
    /// In spans.
    pub spans: usize,
    /// In encoded bytes.
    pub bytes: usize,
}

/// What receivers and the pipeline's task share.
#[derive(Debug)]
struct Shared {
    collect: Mutex<Collect>,
    /// Wakes the task; a wake with no waiter is kept for the next wait.
    wake: Notify,
}

/// The open batch and the complete ones not yet taken by the task.
#[derive(Debug)]
struct Collect {
    batcher: Batcher,
    ready: VecDeque<Batch>,
    /// When the open batch is due even if not full.
    deadline: Option<Instant>,
    /// No more requests will come.
    closed: bool,
}

/// What a pipeline task reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Exporter id.
    pub exporter_id: String,
    /// Spans that were still unsent when the hard stop came.
    pub dropped_spans: u64,
}

/// The task side: owns the exports.
struct Worker {
    shared: Arc<Shared>,
    exporter: Arc<Exporter>,
    metrics: ExporterMetrics,
    max_in_flight: usize,
    exporter_id: Arc<str>,
    hard_stop: CancellationToken,
    /// Spans of exports in flight.
    in_flight_spans: u64,
    /// Encoded bytes of exports in flight.
    in_flight_bytes: u64,
}

/// The result of one batch's export with all its retries.
enum Outcome {
    Sent { spans: u64, rejected: u64 },
    Failed { spans: u64, error: ExportError, attempts: u32 },
    Stopped { spans: u64 },
}

// === impl PipelineSettings ===

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            queue_capacity_spans: DEFAULT_QUEUE_CAPACITY_SPANS,
            queue_capacity_bytes: DEFAULT_QUEUE_CAPACITY_BYTES,
            max_in_flight_exports: DEFAULT_MAX_IN_FLIGHT_EXPORTS,
            batch: BatchLimits::default(),
            export: ExportSettings::default(),
        }
    }
}

// === impl Pipeline ===

impl Pipeline {
    /// Starts a pipeline's task with a queue of `share`. It runs until every handle to the pipeline is
    /// dropped and its queue is drained, or until `hard_stop` fires, then returns what it could not
    /// send.
    pub fn spawn(
        config: PipelineConfig,
        settings: &PipelineSettings,
        share: QueueShare,
        metrics: &Metrics,
        hard_stop: CancellationToken,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<DrainReport>), BuildError> {
        let mut exporter = Exporter::new(&config.output, settings.export)?;
        if config.output.oauth2.is_some() {
            exporter.observe_tokens(metrics.oauth2(&config.exporter_id()));
        }
        let exporter = Arc::new(exporter);
        let stages = PipelineStages::new(
            &config.name,
            &config.transform,
            &config.filter,
            metrics.processing(&config.name),
        )?;
        let exporter_id = config.exporter_id();
        let exporter_metrics = metrics.exporter(&exporter_id, share.spans, share.bytes);
        let shared = Arc::new(Shared {
            collect: Mutex::new(Collect {
                batcher: Batcher::new(settings.batch),
                ready: VecDeque::new(),
                deadline: None,
                closed: false,
            }),
            wake: Notify::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            exporter,
            metrics: exporter_metrics.clone(),
            max_in_flight: settings.max_in_flight_exports.max(1),
            exporter_id: Arc::from(exporter_id.as_str()),
            hard_stop,
            in_flight_spans: 0,
            in_flight_bytes: 0,
        };
        let task = tokio::spawn(worker.run());
        let pipeline = Self { config, stages, exporter_id, shared, metrics: exporter_metrics };
        Ok((Arc::new(pipeline), task))
    }

    /// The configuration this pipeline runs.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// `otlp_grpc/tracepipeline-<name>`.
    pub fn exporter_id(&self) -> &str {
        &self.exporter_id
    }

    /// Its queue's share of the node's budget.
    pub fn queue_share(&self) -> QueueShare {
        let get = |g: &prometheus_client::metrics::gauge::Gauge| usize::try_from(g.get()).unwrap_or(0);
        QueueShare { spans: get(&self.metrics.capacity), bytes: get(&self.metrics.capacity_bytes) }
    }

    /// Gives its queue a new share: applies from the next request on.
    pub fn set_queue_share(&self, share: QueueShare) {
        self.metrics.capacity.set(gauge_value(share.spans));
        self.metrics.capacity_bytes.set(gauge_value(share.bytes));
    }

    /// Hands a request to the pipeline without waiting, after the pipeline's own stages. `false` means
    /// it was dropped for this pipeline (queue full) and counted; a request the pipeline's filter
    /// emptied counts as taken.
    pub fn try_enqueue(&self, data: &Arc<TraceData>) -> bool {
        let processed;
        let data: &TraceData = match self.stages.run(data) {
            Processed::Unchanged => data,
            Processed::Changed(own) => {
                processed = own;
                &processed
            }
        };
        if data.is_empty() {
            return true;
        }
        let spans = data.spans as i64;
        // The request's size stands in for what its batches will add (their framing differs by a few
        // bytes) until the batcher has taken it; the reservation is then corrected under the lock.
        let reserved = gauge_value(data.encoded_len);
        let spans_before = self.metrics.queue_size.inc_by(spans);
        let bytes_before = self.metrics.queue_bytes.inc_by(reserved);
        // A request larger than the whole queue is still let into an empty one, otherwise it could
        // never be delivered.
        let (capacity_spans, capacity_bytes) =
            (self.metrics.capacity.get(), self.metrics.capacity_bytes.get());
        let full = (spans_before + spans > capacity_spans && spans_before > 0)
            || (bytes_before + reserved > capacity_bytes && bytes_before > 0);
        if full {
            self.refuse(spans, reserved, data.spans);
            return false;
        }
        let wake = {
            let mut collect = self.shared.lock();
            if collect.closed {
                drop(collect);
                self.refuse(spans, reserved, data.spans);
                return false;
            }
            let (wake, added_bytes) = collect.push(data);
            let correction = gauge_value(added_bytes) - reserved;
            // Usually none: a request that is not split re-frames to its own size.
            if correction != 0 {
                self.metrics.queue_bytes.inc_by(correction);
            }
            wake
        };
        if wake {
            self.shared.wake.notify_one();
        }
        true
    }

    /// Takes back a request's reservation and counts its spans as dropped for this pipeline.
    fn refuse(&self, spans: i64, bytes: i64, count: usize) {
        self.metrics.queue_size.dec_by(spans);
        self.metrics.queue_bytes.dec_by(bytes);
        self.metrics.enqueue_failed.inc_by(count as u64);
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.lock().close();
        self.shared.wake.notify_one();
    }
}

// === impl Shared ===

impl Shared {
    /// The collection state; a panic while it was held cannot leave it inconsistent (every update is
    /// one push or take), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Collect> {
        self.collect.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// === impl Collect ===

impl Collect {
    /// Appends a request. Returns whether the task must wake (a batch is complete, or one opened and
    /// its flush timer must start) and the encoded bytes the request added to the batches.
    fn push(&mut self, data: &TraceData) -> (bool, usize) {
        let was_open = self.batcher.pending_spans() > 0;
        let pending_bytes_before = self.batcher.pending_bytes();
        let ready_before = self.ready.len();
        let mut out = Vec::new();
        self.batcher.push(data, &mut out);
        let completed_bytes: usize = out.iter().map(|b| b.len).sum();
        let added_bytes = self.batcher.pending_bytes() + completed_bytes - pending_bytes_before;
        self.ready.extend(out);
        let open = self.batcher.pending_spans() > 0;
        let opened = open && !was_open;
        if !open {
            self.deadline = None;
        } else if opened {
            // The timer starts with the batch's first span.
            self.deadline = Some(Instant::now() + self.batcher.limits().flush_interval);
        }
        (opened || self.ready.len() > ready_before, added_bytes)
    }

    /// No more requests will come: the open batch is ready as it is.
    fn close(&mut self) {
        self.closed = true;
        let last = self.batcher.take();
        self.ready.extend(last);
        self.deadline = None;
    }

    /// The open batch, when its time has come.
    fn take_due(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let batch = self.batcher.take();
            self.ready.extend(batch);
            self.deadline = None;
        }
    }
}

// === impl Worker ===

impl Worker {
    async fn run(mut self) -> DrainReport {
        let mut in_flight: JoinSet<(u64, Outcome)> = JoinSet::new();
        loop {
            // Take what is ready (and the open batch when due), as far as exports may start.
            let (deadline, finished) = {
                let mut collect = self.shared.lock();
                collect.take_due(Instant::now());
                while in_flight.len() < self.max_in_flight
                    && let Some(batch) = collect.ready.pop_front()
                {
                    self.in_flight_spans += batch.spans as u64;
                    self.in_flight_bytes += batch.len as u64;
                    self.start_export(&mut in_flight, batch);
                }
                let idle = collect.ready.is_empty() && collect.batcher.pending_spans() == 0;
                (collect.deadline, collect.closed && idle)
            };
            if finished && in_flight.is_empty() {
                break;
            }
            let can_take = in_flight.len() < self.max_in_flight;
            tokio::select! {
                biased;
                _ = self.hard_stop.cancelled() => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => self.finish(done),
                _ = self.shared.wake.notified(), if can_take => {}
                _ = sleep_until(deadline), if can_take && deadline.is_some() => {}
            }
        }
        // Only a hard stop gets here with work left: what is still queued, batching or in flight.
        in_flight.abort_all();
        while let Some(done) = in_flight.join_next().await {
            self.finish(done);
        }
        let mut dropped = self.in_flight_spans;
        let mut dropped_bytes = self.in_flight_bytes;
        {
            let mut collect = self.shared.lock();
            collect.close();
            for batch in collect.ready.drain(..) {
                dropped += batch.spans as u64;
                dropped_bytes += batch.len as u64;
            }
        }
        if dropped > 0 {
            self.metrics.send_failed.inc_by(dropped);
            self.metrics.queue_size.dec_by(dropped as i64);
        }
        self.metrics.queue_bytes.dec_by(dropped_bytes as i64);
        DrainReport { exporter_id: self.exporter_id.to_string(), dropped_spans: dropped }
    }

    fn start_export(&self, in_flight: &mut JoinSet<(u64, Outcome)>, batch: Batch) {
        let exporter = Arc::clone(&self.exporter);
        let retries = self.metrics.retries.clone();
        let stop = self.hard_stop.clone();
        let bytes = batch.len as u64;
        let id = Arc::clone(&self.exporter_id);
        in_flight
            .spawn(async move { (bytes, export_with_retry(&exporter, &id, batch, &retries, &stop).await) });
    }

    fn finish(&mut self, done: Result<(u64, Outcome), tokio::task::JoinError>) {
        let (spans, bytes, outcome) = match done {
            Ok((bytes, outcome)) => (outcome.spans(), bytes, outcome),
            // Aborted at hard stop; accounted for by the caller through the queue size.
            Err(_) => return,
        };
        self.in_flight_spans -= spans;
        self.in_flight_bytes -= bytes;
        self.metrics.queue_size.dec_by(spans as i64);
        self.metrics.queue_bytes.dec_by(bytes as i64);
        match outcome {
            Outcome::Sent { spans, rejected } => {
                let rejected = rejected.min(spans);
                self.metrics.sent.inc_by(spans - rejected);
                if rejected > 0 {
                    self.metrics.send_failed.inc_by(rejected);
                    tracing::warn!(exporter = %self.exporter_id, rejected, "backend rejected part of a batch (partial success)");
                }
            }
            Outcome::Failed { spans, error, attempts } => {
                self.metrics.send_failed.inc_by(spans);
                tracing::error!(
                    exporter = %self.exporter_id, spans, attempts, retryable = error.is_retryable(), error = %error,
                    "dropping batch: export failed"
                );
            }
            Outcome::Stopped { spans } => {
                self.metrics.send_failed.inc_by(spans);
            }
        }
    }
}

// === impl Outcome ===

impl Outcome {
    fn spans(&self) -> u64 {
        match self {
            Self::Sent { spans, .. } | Self::Failed { spans, .. } | Self::Stopped { spans } => *spans,
        }
    }
}

// === free functions ===

/// One pipeline's share of the node's queue budget when `pipelines` run. Kyma gives each pipeline
/// `256 / N` batches (integer division); so does this, in batches of `settings.batch.max_spans`
/// spans, which with the defaults is exactly Kyma's queue (51 batches, 26,112 spans, for five
/// pipelines). A budget smaller than one batch per pipeline is divided in spans instead, never
/// below one. Bytes are divided evenly.
pub fn queue_share(settings: &PipelineSettings, pipelines: usize) -> QueueShare {
    let pipelines = pipelines.max(1);
    let batch = settings.batch.max_spans.max(1);
    let batches = settings.queue_capacity_spans / batch / pipelines;
    let spans =
        if batches > 0 { batches * batch } else { (settings.queue_capacity_spans / pipelines).max(1) };
    QueueShare { spans, bytes: (settings.queue_capacity_bytes / pipelines).max(1) }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends a batch, retrying retryable failures with backoff until the policy's time budget is spent.
/// Every warning names the exporter (`exporter_id`), as the final drop does.
async fn export_with_retry(
    exporter: &Exporter,
    exporter_id: &str,
    batch: Batch,
    retries: &prometheus_client::metrics::counter::Counter,
    stop: &CancellationToken,
) -> Outcome {
    let spans = batch.spans as u64;
    let encoded = exporter.encode(&batch);
    // A compressed body holds its own bytes: the request buffers can go back to their pool now.
    drop(batch);
    let mut body = match encoded {
        Ok(body) => body,
        Err(error) => {
            return Outcome::Failed { spans, error, attempts: 0 };
        }
    };
    let started = Instant::now();
    let mut backoff = exporter.retry_policy().backoff();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => return Outcome::Stopped { spans },
            r = exporter.send(body.clone()) => r,
        };
        let error = match result {
            Ok(delivered) => {
                return Outcome::Sent { spans, rejected: delivered.rejected };
            }
            Err(e) => e,
        };
        let server_delay = match &error {
            ExportError::Retryable { retry_after, .. } => *retry_after,
            ExportError::Permanent { .. } => {
                return Outcome::Failed { spans, error, attempts };
            }
        };
        let Some(delay) = backoff.next_delay(started.elapsed(), server_delay) else {
            return Outcome::Failed { spans, error, attempts };
        };
        retries.inc();
        // An uncompressed body is made of the request buffers its spans point into. A retry may be
        // far off: copy the body out once so that it holds only its own bytes and the request
        // buffers go back to their pool now rather than after the last attempt.
        body = exporter.compact(body);
        tracing::warn!(exporter = %exporter_id, error = %error, delay = ?delay, attempts, "export failed, will retry");
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Outcome::Stopped { spans },
            _ = tokio::time::sleep(delay.max(Duration::from_millis(1))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;
    use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

    use super::*;
    use crate::export::RetryPolicy;

    /// A request buffer that says when it is freed.
    struct Tracked(Vec<u8>, Arc<AtomicBool>);

    impl AsRef<[u8]> for Tracked {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }

    /// A pipeline towards a port nothing listens on, with these settings.
    fn dead_pipeline(
        settings: &PipelineSettings,
        stop: &CancellationToken,
    ) -> (Arc<Pipeline>, tokio::task::JoinHandle<DrainReport>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let output = OtlpOutputConfig {
            protocol: Protocol::Http,
            url: format!("http://127.0.0.1:{port}/v1/traces"),
            compression: Compression::None,
            headers: vec![],
            tls: TlsConfig::default(),
            oauth2: None,
        };
        let config = PipelineConfig { name: "dead".into(), output, transform: vec![], filter: vec![] };
        Pipeline::spawn(config, settings, queue_share(settings, 1), &Metrics::default(), stop.clone())
            .unwrap()
    }

    /// Scenario: Kyma's default budget divided among one to five pipelines and among 300; a budget
    /// smaller than one batch per pipeline.
    /// Guarantees: Kyma's `256 / N` batches of 512 spans each (256, 128, 85, 64, 51); the bytes
    /// divided evenly; shares below one batch divided in spans, never zero; the shares never add
    /// up to more than the budget.
    #[test]
    fn the_budget_is_divided_as_kyma_divides_its_batches() {
        let settings = PipelineSettings::default();
        for (n, batches) in [(1, 256), (2, 128), (3, 85), (4, 64), (5, 51)] {
            let share = queue_share(&settings, n);
            assert_eq!(share, QueueShare { spans: batches * 512, bytes: DEFAULT_QUEUE_CAPACITY_BYTES / n });
        }
        assert_eq!(queue_share(&settings, 300).spans, DEFAULT_QUEUE_CAPACITY_SPANS / 300);
        let tiny = PipelineSettings { queue_capacity_spans: 2, queue_capacity_bytes: 2, ..settings };
        assert_eq!(queue_share(&tiny, 5), QueueShare { spans: 1, bytes: 1 });
        for n in 1..=40 {
            let share = queue_share(&settings, n);
            assert!(
                share.spans * n <= DEFAULT_QUEUE_CAPACITY_SPANS
                    && share.bytes * n <= DEFAULT_QUEUE_CAPACITY_BYTES
            );
        }
    }

    /// Scenario: a router runs one pipeline, then three (the first kept running), then two.
    /// Guarantees: every running pipeline's queue capacity, and its `otelcol_exporter_queue_capacity`
    /// gauge, is the share for the number running; the kept pipeline's share follows each reload.
    #[tokio::test]
    async fn reloads_redivide_the_budget() {
        let settings = PipelineSettings::default();
        let metrics = Metrics::default();
        let router = Router::new(settings, metrics.clone());
        let config = |name: &str| PipelineConfig {
            name: name.into(),
            output: OtlpOutputConfig {
                protocol: Protocol::Http,
                url: "http://127.0.0.1:9/v1/traces".into(),
                compression: Compression::None,
                headers: vec![],
                tls: TlsConfig::default(),
                oauth2: None,
            },
            transform: vec![],
            filter: vec![],
        };
        let snapshot = |names: &[&str]| tracegw_contract::Snapshot {
            version: names.len() as u64,
            pipelines: names.iter().map(|n| config(n)).collect(),
            enrichment: None,
        };
        for names in [&["a"][..], &["a", "b", "c"], &["a", "c"]] {
            let report = router.apply(&snapshot(names));
            assert!(report.failed.is_empty());
            let table = router.load();
            let want = queue_share(&settings, names.len());
            for pipeline in table.pipelines.iter() {
                assert_eq!(pipeline.queue_share(), want, "{names:?}");
                let gauge = metrics
                    .exporter_queue_capacity
                    .get_or_create(&crate::metrics::ExporterLabels {
                        exporter: pipeline.exporter_id().into(),
                    })
                    .get();
                assert_eq!(gauge, want.spans as i64);
            }
        }
        router.shutdown(Duration::ZERO).await;
    }

    /// Scenario: pipeline `p` holds 20 spans for a backend that refuses every connection when a
    /// reload changes its endpoint (to another dead one), so it drains in the background under the
    /// same exporter id while its successor runs; the queue holds 30 spans.
    /// Guarantees: `/metrics` shows the successor's queue alone (0, then the 20 spans it takes), and
    /// the successor takes 20 spans, which a queue counted together with its predecessor's (40 of
    /// 30) would have refused.
    #[tokio::test]
    async fn a_draining_predecessor_does_not_fill_its_successors_queue() {
        let mut settings = PipelineSettings { queue_capacity_spans: 30, ..PipelineSettings::default() };
        settings.batch.max_spans = 30;
        let metrics = Metrics::default();
        let registry = metrics.registry();
        let router = Router::new(settings, metrics.clone());
        let snapshot = |version: u64, port: u16| tracegw_contract::Snapshot {
            version,
            pipelines: vec![PipelineConfig {
                name: "p".into(),
                output: OtlpOutputConfig {
                    protocol: Protocol::Http,
                    url: format!("http://127.0.0.1:{port}/v1/traces"),
                    compression: Compression::None,
                    headers: vec![],
                    tls: TlsConfig::default(),
                    oauth2: None,
                },
                transform: vec![],
                filter: vec![],
            }],
            enrichment: None,
        };
        let queue_size = || {
            crate::metrics::render(&registry)
                .lines()
                .find(|l| {
                    l.starts_with("otelcol_exporter_queue_size{exporter=\"otlp_http/tracepipeline-p\"}")
                })
                .map(str::to_string)
        };
        let dead_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

        assert!(router.apply(&snapshot(1, dead_port())).failed.is_empty());
        assert!(router.load().pipelines[0].try_enqueue(&request(20)));
        let predecessor = Arc::clone(&router.load().pipelines[0]);
        assert_eq!(
            queue_size().as_deref(),
            Some("otelcol_exporter_queue_size{exporter=\"otlp_http/tracepipeline-p\"} 20")
        );

        let report = router.apply(&snapshot(2, dead_port()));
        assert_eq!((report.started, report.stopped), (vec!["p".to_string()], vec!["p".to_string()]));
        assert_eq!(predecessor.metrics.queue_size.get(), 20, "the predecessor still drains its spans");
        drop(predecessor);
        assert_eq!(
            queue_size().as_deref(),
            Some("otelcol_exporter_queue_size{exporter=\"otlp_http/tracepipeline-p\"} 0")
        );
        assert!(router.load().pipelines[0].try_enqueue(&request(20)), "the successor's queue is empty");
        assert_eq!(
            queue_size().as_deref(),
            Some("otelcol_exporter_queue_size{exporter=\"otlp_http/tracepipeline-p\"} 20")
        );
        router.shutdown(Duration::ZERO).await;
    }

    /// A scanned request of `spans` spans with large attributes.
    fn request(spans: usize) -> Arc<TraceData> {
        let body = prost::Message::encode_to_vec(&crate::testing::sample_request(1, spans, 4, 200));
        Arc::new(crate::wire::scan(Bytes::from(body)).unwrap())
    }

    /// Scenario: a pipeline whose byte capacity is two and a half requests (and whose span capacity is
    /// far away), requests that stay queued, then a hard stop.
    /// Guarantees: two requests are taken and the third is dropped for this pipeline and counted; the
    /// queue's byte gauge holds exactly the encoded size of the queued spans, and the spans and bytes
    /// dropped at the hard stop bring both gauges back to zero.
    #[tokio::test]
    async fn the_byte_capacity_bounds_the_queue() {
        let one = request(10);
        let size = one.encoded_len;
        let settings = PipelineSettings { queue_capacity_bytes: size * 5 / 2, ..PipelineSettings::default() };
        let stop = CancellationToken::new();
        let (pipeline, task) = dead_pipeline(&settings, &stop);

        assert!(pipeline.try_enqueue(&one));
        assert!(pipeline.try_enqueue(&request(10)));
        assert!(!pipeline.try_enqueue(&request(10)), "a third request passes the byte capacity");
        assert_eq!(pipeline.metrics.enqueue_failed.get(), 10);
        assert_eq!(pipeline.metrics.queue_size.get(), 20);
        assert_eq!(pipeline.metrics.queue_bytes.get(), 2 * size as i64);

        stop.cancel();
        let metrics = pipeline.metrics.clone();
        drop(pipeline);
        assert_eq!(task.await.unwrap().dropped_spans, 20);
        assert_eq!(metrics.queue_size.get(), 0);
        assert_eq!(metrics.queue_bytes.get(), 0);
    }

    /// Scenario: a byte capacity smaller than one request.
    /// Guarantees: the request is still taken into the empty queue (it could never be delivered
    /// otherwise), and the next one is dropped while it is queued.
    #[tokio::test]
    async fn a_request_larger_than_the_byte_capacity_enters_an_empty_queue() {
        let one = request(10);
        let settings =
            PipelineSettings { queue_capacity_bytes: one.encoded_len / 2, ..PipelineSettings::default() };
        let stop = CancellationToken::new();
        let (pipeline, task) = dead_pipeline(&settings, &stop);

        assert!(pipeline.try_enqueue(&one));
        assert!(!pipeline.try_enqueue(&request(1)));
        assert_eq!(pipeline.metrics.queue_bytes.get(), one.encoded_len as i64);
        stop.cancel();
        drop(pipeline);
        assert_eq!(task.await.unwrap().dropped_spans, 10);
    }

    /// Scenario: a backend that refuses every connection, so a batch is retried for as long as the
    /// policy allows.
    /// Guarantees: the request buffer its spans came from is freed once the first attempt has failed
    /// (the uncompressed body is copied out before the retries), while the retries go on; the spans
    /// stay counted in the queue until the export ends.
    #[tokio::test]
    async fn a_retried_batch_holds_only_its_encoding() {
        let mut settings = PipelineSettings::default();
        settings.batch.flush_interval = Duration::from_millis(10);
        settings.export.retry = RetryPolicy {
            initial_interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let stop = CancellationToken::new();
        let (pipeline, task) = dead_pipeline(&settings, &stop);

        let freed = Arc::new(AtomicBool::new(false));
        let body = prost::Message::encode_to_vec(&crate::testing::sample_request(1, 10, 2, 8));
        let data = Arc::new(crate::wire::scan(Bytes::from_owner(Tracked(body, Arc::clone(&freed)))).unwrap());
        assert!(pipeline.try_enqueue(&data));
        drop(data);

        let deadline = Instant::now() + Duration::from_secs(10);
        while pipeline.metrics.retries.get() < 2 {
            assert!(Instant::now() < deadline, "no retries");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed.load(Ordering::SeqCst), "the request buffer is still held by the retrying export");
        assert_eq!(pipeline.metrics.queue_size.get(), 10, "the spans are still in flight");
        stop.cancel();
        drop(pipeline);
        task.await.unwrap();
    }
}
