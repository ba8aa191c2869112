//! A pipeline's own processing: Kyma's `transform` statement groups, then its `filter` condition
//! groups, on the pipeline's copy of a request (Kyma's `transform/tracepipeline-user-defined-<name>` and
//! `filter/…` processors, `error_mode: ignore`).
//!
//! Statements read the received bytes through [`access`] and record what they write; only the spans,
//! events, scopes and resources that changed are encoded again ([`work`]), and only for this pipeline:
//! the other pipelines keep sharing the original request. A request nothing changed is passed on as it
//! came, without a copy.

pub mod access;
pub mod codec;
#[cfg(any(test, feature = "test-util"))]
pub mod reference;
pub mod stream;
pub mod work;

use std::sync::Arc;

use ottl::context::Context;
use ottl::eval::{Accessor, ErrorMode, EvalError, Outcome, Selection};
use tracegw_contract::PipelineError;
use tracegw_contract::processing::{Processing, compile};

use crate::buffer::{BufferPool, DEFAULT_POOLED_BUFFERS};
use crate::metrics::ProcessingMetrics;
use crate::wire::TraceData;
use access::{EventItem, ResourceItem, ScopeItem, SpanItem};
use work::{SpanKeys, Work};

/// Kyma configures both processors with `error_mode: ignore`.
const ERROR_MODE: ErrorMode = ErrorMode::Ignore;

/// What [`apply`] did to one request.
#[derive(Debug)]
pub struct Applied {
    pub processed: Processed,
    /// Spans the filters dropped.
    pub filtered: usize,
    /// Statements that failed on an item and were skipped, with their text.
    pub transform_errors: Vec<(String, EvalError)>,
    /// Conditions that failed on an item (and counted as not matching).
    pub filter_errors: Vec<(String, EvalError)>,
}

/// One pipeline's compiled processing.
#[derive(Debug)]
pub struct PipelineStages {
    pipeline: String,
    processing: Processing,
    /// The span attribute keys `processing` names, found in one pass per span.
    keys: SpanKeys,
    /// The buffers the pipeline's own versions of requests are written into.
    pool: Arc<BufferPool>,
    metrics: ProcessingMetrics,
}

/// What the stages did to one request.
#[derive(Debug)]
pub enum Processed {
    /// Nothing changed: use the shared request.
    Unchanged,
    /// This pipeline's own version of the request (possibly empty: everything filtered).
    Changed(TraceData),
}

// === impl PipelineStages ===

impl PipelineStages {
    /// Compiles a pipeline's `transform` and `filter` with the function the manager validated them with.
    pub fn new(
        pipeline: &str,
        transform: &[tracegw_contract::pipeline::TransformSpec],
        filter: &[tracegw_contract::pipeline::FilterSpec],
        metrics: ProcessingMetrics,
    ) -> Result<Self, PipelineError> {
        let processing = compile(transform, filter)?;
        let keys = SpanKeys::of(&processing);
        let pool = BufferPool::new(DEFAULT_POOLED_BUFFERS);
        Ok(Self { pipeline: pipeline.to_string(), processing, keys, pool, metrics })
    }

    /// Whether the pipeline has no processing of its own (then nothing here runs).
    pub fn is_empty(&self) -> bool {
        self.processing.is_empty()
    }

    /// Runs the transforms, then the filters, on one request, with Kyma's `error_mode: ignore`.
    pub fn run(&self, data: &TraceData) -> Processed {
        if self.is_empty() || data.is_empty() {
            return Processed::Unchanged;
        }
        // `Ignore` never returns an error; the failures come back in the report.
        let Ok(applied) = apply_with_keys(&self.processing, &self.keys, data, ERROR_MODE, &self.pool) else {
            return Processed::Unchanged;
        };
        self.count_errors(applied.transform_errors, "transform");
        self.count_errors(applied.filter_errors, "filter");
        if applied.filtered > 0 {
            self.metrics.filtered.inc_by(applied.filtered as u64);
        }
        applied.processed
    }

    fn count_errors(&self, errors: Vec<(String, EvalError)>, stage: &'static str) {
        if errors.is_empty() {
            return;
        }
        let counter =
            if stage == "transform" { &self.metrics.transform_errors } else { &self.metrics.filter_errors };
        counter.inc_by(errors.len() as u64);
        for (text, error) in errors {
            tracing::debug!(pipeline = %self.pipeline, stage, statement = %text, %error, "OTTL statement failed on one item and was skipped");
        }
    }
}

// === free functions ===

/// Runs compiled processing on one request: each transform group over the items of its context, then
/// each filter group; with `ErrorMode::Propagate` the first failure ends it.
pub fn apply(processing: &Processing, data: &TraceData, mode: ErrorMode) -> Result<Applied, EvalError> {
    apply_with_keys(processing, &SpanKeys::of(processing), data, mode, &BufferPool::new(1))
}

/// [`apply`] with the processing's [`SpanKeys`] worked out beforehand and a pool for the buffers
/// of what it changes. Processing that only reads and writes spans runs span by span ([`stream`]).
pub fn apply_with_keys(
    processing: &Processing,
    keys: &SpanKeys,
    data: &TraceData,
    mode: ErrorMode,
    pool: &Arc<BufferPool>,
) -> Result<Applied, EvalError> {
    // `Propagate` stops at the first failure in group order, which only the whole-request run
    // keeps (it serves tests and tools; the gateway ignores failures).
    if mode != ErrorMode::Propagate && stream::streamable(processing) {
        return stream::apply(processing, keys, data, mode, pool);
    }
    apply_to_work(processing, keys, data, mode, pool)
}

/// [`apply_with_keys`] for any processing: each group over the whole request in turn, on a [`Work`]
/// copy of it that is then written out.
fn apply_to_work(
    processing: &Processing,
    keys: &SpanKeys,
    data: &TraceData,
    mode: ErrorMode,
    pool: &Arc<BufferPool>,
) -> Result<Applied, EvalError> {
    let mut work = Work::new(data, keys);
    let mut transform_errors = Vec::new();
    for group in &processing.transforms {
        let mut run = RunTransform { group, mode, selection: Selection::default() };
        transform_errors.extend(for_each_item(&mut work, group.context, &mut run)?);
    }
    let mut filter_errors = Vec::new();
    let mut filtered = 0;
    let mut removed = false;
    if !processing.filters.is_empty() {
        let before = count_live(&work);
        for group in &processing.filters {
            filter_errors.extend(filter(&mut work, group, mode)?);
        }
        filtered = before - count_live(&work);
        removed = work.remove_empty();
    }
    let processed = if !removed && !work.changed() {
        Processed::Unchanged
    } else {
        Processed::Changed(work.into_trace_data(pool))
    };
    Ok(Applied { processed, filtered, transform_errors, filter_errors })
}

/// Where an item is: the positions of its resource and of its scope in the request.
type Place = (usize, usize);

/// What runs on each item of a context. Generic over the item, so that the evaluator is compiled
/// for each kind of item and calls its accessor directly rather than through a virtual call per read.
trait Visit {
    fn visit<A: Accessor>(&mut self, acc: &mut A, at: Place) -> Result<Outcome, EvalError>;
}

/// A transform group on each item of its context.
struct RunTransform<'g> {
    group: &'g ottl::bind::TransformGroup,
    mode: ErrorMode,
    /// The group's verdict on its conditions, shared by the items under one resource or scope.
    selection: Selection,
}

/// A condition group's verdict on each item, in order.
struct Verdicts<'g> {
    group: &'g ottl::bind::FilterGroup,
    mode: ErrorMode,
    verdicts: Vec<bool>,
}

impl Visit for RunTransform<'_> {
    fn visit<A: Accessor>(&mut self, acc: &mut A, at: Place) -> Result<Outcome, EvalError> {
        self.group.run_at(acc, self.mode, at, &mut self.selection)
    }
}

impl Visit for Verdicts<'_> {
    fn visit<A: Accessor>(&mut self, acc: &mut A, _: Place) -> Result<Outcome, EvalError> {
        let (matched, outcome) = self.group.matches(acc, self.mode)?;
        self.verdicts.push(matched);
        Ok(outcome)
    }
}

/// Runs `f` on every item of `context` in the request, with its [`Place`], collecting the failures
/// it skipped.
fn for_each_item(
    work: &mut Work,
    context: Context,
    f: &mut impl Visit,
) -> Result<Vec<(String, EvalError)>, EvalError> {
    let mut errors = Vec::new();
    let mut record = |result: Result<Outcome, EvalError>| -> Result<(), EvalError> {
        // Most items fail nothing: their empty list is not appended (a call per item otherwise).
        let failed = result?.errors;
        if !failed.is_empty() {
            errors.extend(failed);
        }
        Ok(())
    };
    for (ri, r) in work.resources.iter_mut().enumerate() {
        let resource = &mut r.state;
        if context == Context::Resource {
            record(f.visit(&mut ResourceItem { resource }, (ri, 0)))?;
            continue;
        }
        for (si, s) in r.scopes.iter_mut().enumerate() {
            let scope = &mut s.state;
            let at = (ri, si);
            if context == Context::Scope {
                record(f.visit(&mut ScopeItem { resource: &mut *resource, scope }, at))?;
                continue;
            }
            for span in s.spans.iter_mut().filter(|sp| !sp.dropped) {
                if context == Context::Span {
                    record(
                        f.visit(&mut SpanItem { resource: &mut *resource, scope: &mut *scope, span }, at),
                    )?;
                    continue;
                }
                let events = span.open_events();
                for index in 0..events {
                    let item = &mut EventItem {
                        resource: &mut *resource,
                        scope: &mut *scope,
                        span: &mut *span,
                        index,
                    };
                    record(f.visit(item, at))?;
                }
                span.close_events();
            }
        }
    }
    Ok(errors)
}

/// Marks the spans a filter group drops: the span itself, or every span of a matching scope or
/// resource.
fn filter(
    work: &mut Work,
    group: &ottl::bind::FilterGroup,
    mode: ErrorMode,
) -> Result<Vec<(String, EvalError)>, EvalError> {
    let mut errors = Vec::new();
    let mut test = Test { group, mode, errors: &mut errors };
    for r in &mut work.resources {
        let resource = &mut r.state;
        if group.context == Context::Resource {
            if test.matches(&mut ResourceItem { resource })? {
                r.scopes.iter_mut().flat_map(|s| s.spans.iter_mut()).for_each(|sp| sp.dropped = true);
            }
            continue;
        }
        for s in &mut r.scopes {
            let scope = &mut s.state;
            if group.context == Context::Scope {
                if test.matches(&mut ScopeItem { resource: &mut *resource, scope })? {
                    s.spans.iter_mut().for_each(|sp| sp.dropped = true);
                }
                continue;
            }
            for span in s.spans.iter_mut().filter(|sp| !sp.dropped) {
                if group.context == Context::SpanEvent {
                    // Events are dropped one by one; the span stays.
                    let events = span.open_events();
                    for index in 0..events {
                        let item = &mut EventItem {
                            resource: &mut *resource,
                            scope: &mut *scope,
                            span: &mut *span,
                            index,
                        };
                        if test.matches(item)? {
                            span.drop_event(index);
                        }
                    }
                    span.close_events();
                    continue;
                }
                if test.matches(&mut SpanItem {
                    resource: &mut *resource,
                    scope: &mut *scope,
                    span: &mut *span,
                })? {
                    span.dropped = true;
                }
            }
        }
    }
    Ok(errors)
}

/// A filter group's test of one item, keeping the failures it skipped.
struct Test<'g, 'e> {
    group: &'g ottl::bind::FilterGroup,
    mode: ErrorMode,
    errors: &'e mut Vec<(String, EvalError)>,
}

impl Test<'_, '_> {
    /// Whether the item matches (generic over the item, as [`Visit`] is).
    fn matches<A: Accessor>(&mut self, acc: &mut A) -> Result<bool, EvalError> {
        let (matched, outcome) = self.group.matches(acc, self.mode)?;
        if !outcome.errors.is_empty() {
            self.errors.extend(outcome.errors);
        }
        Ok(matched)
    }
}

/// Evaluates a condition group on every item of its context, in order: what a filter would decide
/// for each (for tests and tools; the gateway runs [`apply`]).
pub fn evaluate_conditions(
    group: &ottl::bind::FilterGroup,
    data: &TraceData,
    mode: ErrorMode,
) -> Result<Vec<bool>, EvalError> {
    let keys = SpanKeys::default();
    let mut work = Work::new(data, &keys);
    let mut verdicts = Verdicts { group, mode, verdicts: Vec::new() };
    for_each_item(&mut work, group.context, &mut verdicts)?;
    Ok(verdicts.verdicts)
}

fn count_live(work: &Work) -> usize {
    work.resources.iter().flat_map(|r| &r.scopes).flat_map(|s| &s.spans).filter(|sp| !sp.dropped).count()
}

#[cfg(test)]
mod tests;
