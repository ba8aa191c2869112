//! One TracePipeline at run time: a bounded queue, a batcher and an exporter, in one task of its own,
//! so a slow or dead backend holds up only its own pipeline.
//!
//! The queue is bounded in spans. Everything between the receiver's hand-off and the backend's answer
//! (queued requests, the open batch, batches waiting or in flight) counts against it, so the memory a
//! pipeline can pin is bounded however its backend behaves. When it is full, new spans for this
//! pipeline are dropped and counted (`otelcol_exporter_enqueue_failed_spans`) while other pipelines
//! carry on.

mod router;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracegw_contract::PipelineConfig;

use crate::batch::{Batch, BatchLimits, Batcher};
use crate::export::{BuildError, ExportError, ExportSettings, Exporter};
use crate::metrics::{ExporterMetrics, Metrics};
use crate::wire::TraceData;

pub use router::{ApplyReport, Router};

/// Kyma's queue of 256 batches of 512 spans, for one pipeline.
pub const DEFAULT_QUEUE_CAPACITY_SPANS: usize = 256 * 512;
/// Concurrent exports per pipeline (the Collector's `num_consumers`).
pub const DEFAULT_MAX_IN_FLIGHT_EXPORTS: usize = 10;
/// Requests waiting in a pipeline's channel; the span bound is what limits memory, this only caps
/// the number of tiny requests.
const CHANNEL_CAPACITY_REQUESTS: usize = 4096;

/// Settings every pipeline shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelineSettings {
    /// Queue capacity per pipeline, in spans.
    pub queue_capacity_spans: usize,
    /// Concurrent exports per pipeline.
    pub max_in_flight_exports: usize,
    /// Batch limits.
    pub batch: BatchLimits,
    /// Export settings.
    pub export: ExportSettings,
}

/// The receiving side of a running pipeline.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    exporter_id: String,
    tx: mpsc::Sender<Arc<TraceData>>,
    capacity: i64,
    metrics: ExporterMetrics,
}

/// What a pipeline task reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Exporter id.
    pub exporter_id: String,
    /// Spans that were still unsent when the hard stop came.
    pub dropped_spans: u64,
}

/// The task side: owns the batcher and the exports.
struct Worker {
    rx: mpsc::Receiver<Arc<TraceData>>,
    batcher: Batcher,
    exporter: Arc<Exporter>,
    metrics: ExporterMetrics,
    max_in_flight: usize,
    exporter_id: String,
    hard_stop: CancellationToken,
    /// Spans taken from the channel and not yet finished (batching, waiting or in flight).
    outstanding: u64,
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
            max_in_flight_exports: DEFAULT_MAX_IN_FLIGHT_EXPORTS,
            batch: BatchLimits::default(),
            export: ExportSettings::default(),
        }
    }
}

// === impl Pipeline ===

impl Pipeline {
    /// Starts a pipeline's task. It runs until every handle to the pipeline is dropped and its queue is
    /// drained, or until `hard_stop` fires, then returns what it could not send.
    pub fn spawn(
        config: PipelineConfig,
        settings: &PipelineSettings,
        metrics: &Metrics,
        hard_stop: CancellationToken,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<DrainReport>), BuildError> {
        let exporter = Arc::new(Exporter::new(&config.output, settings.export)?);
        let exporter_id = config.exporter_id();
        let exporter_metrics = metrics.exporter(&exporter_id, settings.queue_capacity_spans);
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY_REQUESTS);
        let worker = Worker {
            rx,
            batcher: Batcher::new(settings.batch),
            exporter,
            metrics: exporter_metrics.clone(),
            max_in_flight: settings.max_in_flight_exports.max(1),
            exporter_id: exporter_id.clone(),
            hard_stop,
            outstanding: 0,
        };
        let task = tokio::spawn(worker.run());
        let pipeline = Self {
            config,
            exporter_id,
            tx,
            capacity: i64::try_from(settings.queue_capacity_spans).unwrap_or(i64::MAX),
            metrics: exporter_metrics,
        };
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

    /// Hands a request to the pipeline without waiting. `false` means it was dropped for this
    /// pipeline (queue full) and counted.
    pub fn try_enqueue(&self, data: &Arc<TraceData>) -> bool {
        let spans = data.spans as i64;
        let before = self.metrics.queue_size.inc_by(spans);
        if before + spans > self.capacity && before > 0 {
            // Over capacity. A request larger than the whole queue is still let into an empty one,
            // otherwise it could never be delivered.
            self.metrics.queue_size.dec_by(spans);
            self.metrics.enqueue_failed.inc_by(data.spans as u64);
            return false;
        }
        if self.tx.try_send(Arc::clone(data)).is_err() {
            self.metrics.queue_size.dec_by(spans);
            self.metrics.enqueue_failed.inc_by(data.spans as u64);
            return false;
        }
        true
    }
}

// === impl Worker ===

impl Worker {
    async fn run(mut self) -> DrainReport {
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut in_flight: JoinSet<Outcome> = JoinSet::new();
        let mut out = Vec::new();
        let mut batch_deadline: Option<Instant> = None;
        let flush_interval = self.batcher.limits().flush_interval;
        let mut open = true;
        loop {
            while in_flight.len() < self.max_in_flight
                && let Some(batch) = ready.pop_front()
            {
                self.start_export(&mut in_flight, batch);
            }
            if !open && ready.is_empty() && in_flight.is_empty() {
                break;
            }
            let can_take = open && ready.is_empty() && in_flight.len() < self.max_in_flight;
            tokio::select! {
                biased;
                _ = self.hard_stop.cancelled() => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => self.finish(done),
                received = self.rx.recv(), if can_take => match received {
                    Some(data) => {
                        self.outstanding += data.spans as u64;
                        if self.batcher.pending_spans() == 0 {
                            batch_deadline = Some(Instant::now() + flush_interval);
                        }
                        self.batcher.push(&data, &mut out);
                        ready.extend(out.drain(..));
                        if self.batcher.pending_spans() == 0 {
                            batch_deadline = None;
                        }
                    }
                    None => {
                        // Every sender is gone: the pipeline was removed or the gateway is stopping.
                        open = false;
                        ready.extend(self.batcher.take());
                        batch_deadline = None;
                    }
                },
                _ = sleep_until(batch_deadline), if can_take && batch_deadline.is_some() => {
                    ready.extend(self.batcher.take());
                    batch_deadline = None;
                }
            }
        }
        // Only a hard stop gets here with work left: aborted exports stay in `outstanding`.
        in_flight.abort_all();
        while let Some(done) = in_flight.join_next().await {
            self.finish(done);
        }
        self.rx.close();
        let mut dropped = self.outstanding;
        while let Ok(data) = self.rx.try_recv() {
            dropped += data.spans as u64;
        }
        if dropped > 0 {
            self.metrics.send_failed.inc_by(dropped);
            self.metrics.queue_size.dec_by(dropped as i64);
        }
        DrainReport { exporter_id: self.exporter_id, dropped_spans: dropped }
    }

    fn start_export(&self, in_flight: &mut JoinSet<Outcome>, batch: Batch) {
        let exporter = Arc::clone(&self.exporter);
        let retries = self.metrics.retries.clone();
        let stop = self.hard_stop.clone();
        in_flight.spawn(async move { export_with_retry(&exporter, &batch, &retries, &stop).await });
    }

    fn finish(&mut self, done: Result<Outcome, tokio::task::JoinError>) {
        let (spans, outcome) = match done {
            Ok(outcome) => (outcome.spans(), outcome),
            // Aborted at hard stop; accounted for by the caller through the queue size.
            Err(_) => return,
        };
        self.outstanding -= spans;
        self.metrics.queue_size.dec_by(spans as i64);
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends a batch, retrying retryable failures with backoff until the policy's time budget is spent.
async fn export_with_retry(
    exporter: &Exporter,
    batch: &Batch,
    retries: &prometheus_client::metrics::counter::Counter,
    stop: &CancellationToken,
) -> Outcome {
    let spans = batch.spans as u64;
    let body = match exporter.encode(batch) {
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
        tracing::warn!(error = %error, delay = ?delay, attempts, "export failed, will retry");
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Outcome::Stopped { spans },
            _ = tokio::time::sleep(delay.max(Duration::from_millis(1))) => {}
        }
    }
}
