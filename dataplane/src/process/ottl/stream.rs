//! The usual processing, one span at a time: when every transform group runs on spans and writes
//! only the span it runs on, and every filter group tests spans, no span's processing can see
//! another's. Each span then goes through all the groups in turn and, when changed, is written out
//! at once: no request-wide list of spans is built, walked once per group and walked again to write
//! the request. The output decodes to what [`super::apply_with_keys`] gives on its general path
//! ([`super::work::Work`]; there a changed scope's own fields come before its spans, here they stay
//! where they were), with the same counts (the failures in item order rather than group order):
//! `span_by_span_agrees_with_the_whole_request` checks it, and `byte_level_processing_agrees_with_prost`
//! runs through both paths.
//!
//! Spans nothing changed are copied as they came, in runs: a scope's output is started only at its
//! first changed span, and a scope without one is passed on as it was received.

use std::sync::Arc;

use ottl::context::Context;
use ottl::eval::{ErrorMode, EvalError, Selection};
use tracegw_contract::processing::Processing;

use super::access::SpanItem;
use super::work::{
    ResourceState, ScopeState, SpanKeys, WorkSpan, encode_span, splice_attribute_puts, spliced_len,
};
use super::{Applied, Processed, Test};
use crate::buffer::{BufferPool, PooledBuf};
use crate::wire::view::field;
use crate::wire::{Fields, ResourceSpansView, ScopeSpansView, TraceData, WIRE_LEN, put_len_header};

/// Room a rebuilt scope gets beyond its received size, as a share of it (a span grows by the
/// attributes written to it: one short attribute is a tenth of a usual span), so that its buffer is
/// seldom reallocated.
const GROWTH_SHARE: usize = 4;
/// A length-delimited field's key and length at most, in bytes (a one-byte key, a ten-byte varint).
const MAX_HEADER_BYTES: usize = 11;
/// Room a rebuilt scope gets beyond its received size in any case, in bytes.
const GROWTH_BYTES: usize = 256;

/// Whether `processing` can run one span at a time ([`apply`]): every transform group runs on spans
/// and writes only the span, every filter group tests spans.
pub fn streamable(processing: &Processing) -> bool {
    processing.transforms.iter().all(|g| g.context == Context::Span && g.writes_only_items())
        && processing.filters.iter().all(|g| g.context == Context::Span)
}

/// Runs `processing` (which must be [`streamable`]) on one request, span by span; changed scopes
/// are written into buffers of `pool`. With `ErrorMode::Propagate` the first failure in span order
/// ends it.
pub fn apply(
    processing: &Processing,
    keys: &SpanKeys,
    data: &TraceData,
    mode: ErrorMode,
    pool: &Arc<BufferPool>,
) -> Result<Applied, EvalError> {
    let mut run = Run {
        processing,
        keys,
        mode,
        pool,
        selections: processing.transforms.iter().map(|_| Selection::default()).collect(),
        transform_errors: Vec::new(),
        filter_errors: Vec::new(),
        filtered: 0,
    };
    let removes_empty = !processing.filters.is_empty();
    // `None` until something changes: then every resource before it is taken as it was.
    let mut changed: Option<Vec<ResourceSpansView>> = None;
    for (ri, received) in data.resources.iter().enumerate() {
        let mut resource = ResourceState::new(received.clone());
        let mut scopes: Option<Vec<ScopeSpansView>> = None;
        for (si, scope_view) in received.scopes.iter().enumerate() {
            let rebuilt = run.scope(&mut resource, scope_view, (ri, si))?;
            // The Collector's filter leaves out scopes without spans (also ones received so).
            let keep = !(removes_empty && rebuilt.as_ref().map_or(scope_view.count, |s| s.count) == 0);
            if (rebuilt.is_some() || !keep) && scopes.is_none() {
                scopes = Some(received.scopes[..si].to_vec());
            }
            if let Some(scopes) = &mut scopes
                && keep
            {
                scopes.push(rebuilt.unwrap_or_else(|| scope_view.clone()));
            }
        }
        let keep = !(removes_empty && scopes.as_ref().map_or(received.scopes.len(), Vec::len) == 0);
        if (scopes.is_some() || !keep) && changed.is_none() {
            changed = Some(data.resources[..ri].to_vec());
        }
        if let Some(changed) = &mut changed
            && keep
        {
            let mut view = received.clone();
            if let Some(scopes) = scopes {
                view.spans = scopes.iter().map(|s| s.count).sum();
                view.scopes = scopes;
            }
            changed.push(view);
        }
    }
    let processed = match changed {
        None => Processed::Unchanged,
        Some(resources) => Processed::Changed(TraceData {
            spans: resources.iter().map(|r| r.spans).sum(),
            resources,
            encoded_len: data.encoded_len,
            no_component_key: data.no_component_key,
        }),
    };
    Ok(Applied {
        processed,
        filtered: run.filtered,
        transform_errors: run.transform_errors,
        filter_errors: run.filter_errors,
    })
}

/// The state of one request's run.
struct Run<'p> {
    processing: &'p Processing,
    keys: &'p SpanKeys,
    mode: ErrorMode,
    pool: &'p Arc<BufferPool>,
    /// Each transform group's verdict on its conditions for the current resource or scope.
    selections: Vec<Selection>,
    transform_errors: Vec<(String, EvalError)>,
    filter_errors: Vec<(String, EvalError)>,
    filtered: usize,
}

/// A scope's output, begun at its first changed span.
struct Output {
    buf: PooledBuf,
    /// How far the received body is in `buf` (or was left out: dropped spans).
    copied: usize,
}

impl Run<'_> {
    /// Runs the groups on each span of a scope; the scope as changed, `None` when no span changed.
    fn scope(
        &mut self,
        resource: &mut ResourceState,
        view: &ScopeSpansView,
        at: (usize, usize),
    ) -> Result<Option<ScopeSpansView>, EvalError> {
        let mut scope = ScopeState::new(view.clone());
        let body = &view.body[..];
        let mut out: Option<Output> = None;
        let mut count = 0;
        for (field_start, value_start, end) in SpanFields::new(body, view.spans_start, view.spans_end) {
            let mut span = WorkSpan::new(&body[value_start..end], self.keys);
            self.span(resource, &mut scope, &mut span, at)?;
            if !span.dropped {
                count += 1;
            }
            if !span.dropped && !span.changed() {
                continue;
            }
            let out = out.get_or_insert_with(|| Output {
                buf: self.pool.take(body.len() + body.len() / GROWTH_SHARE + GROWTH_BYTES),
                copied: 0,
            });
            // The spans since the last changed one, and before the first the fields ahead of them.
            if out.copied != field_start {
                out.buf.extend_from_slice(&body[out.copied..field_start]);
            }
            out.copied = end;
            if !span.dropped {
                write_span(&span, out.buf.as_mut_vec());
            }
        }
        let Some(Output { mut buf, copied }) = out else { return Ok(None) };
        buf.extend_from_slice(&body[copied..view.spans_end]);
        let spans_end = buf.len();
        buf.extend_from_slice(&body[view.spans_end..]);
        Ok(Some(ScopeSpansView { body: buf.freeze(), spans_start: view.spans_start, spans_end, count }))
    }

    /// Each transform group, then each filter group, on one span.
    fn span<'k>(
        &mut self,
        resource: &mut ResourceState,
        scope: &mut ScopeState,
        span: &mut WorkSpan<'k>,
        at: (usize, usize),
    ) -> Result<(), EvalError> {
        for (group, selection) in self.processing.transforms.iter().zip(&mut self.selections) {
            let item = &mut SpanItem { resource: &mut *resource, scope: &mut *scope, span: &mut *span };
            let failed = group.run_at(item, self.mode, at, selection)?.errors;
            if !failed.is_empty() {
                self.transform_errors.extend(failed);
            }
        }
        for group in &self.processing.filters {
            let mut test = Test { group, mode: self.mode, errors: &mut self.filter_errors };
            if test.matches(&mut SpanItem {
                resource: &mut *resource,
                scope: &mut *scope,
                span: &mut *span,
            })? {
                span.dropped = true;
                self.filtered += 1;
                break;
            }
        }
        Ok(())
    }
}

/// Writes a changed span as a `ScopeSpans.spans` field.
fn write_span(span: &WorkSpan<'_>, out: &mut Vec<u8>) {
    match &span.edits {
        // The usual change: attributes with new keys, after the span as it came.
        None if span.puts.iter().all(|put| put.replaces.is_none()) => {
            let len = span.puts.iter().fold(span.bytes.len(), |len, put| len + put.field_len());
            out.reserve(len + MAX_HEADER_BYTES);
            put_span_header(out, len);
            out.extend_from_slice(span.bytes);
            span.puts.iter().for_each(|put| put.put(out));
        }
        None => {
            put_len_header(out, field::scope_spans::SPANS, spliced_len(span.bytes, &span.puts));
            splice_attribute_puts(span.bytes, &span.puts, out);
        }
        Some(edits) => {
            let encoded = encode_span(span.bytes, edits, &span.puts);
            put_len_header(out, field::scope_spans::SPANS, encoded.len());
            out.extend_from_slice(&encoded);
        }
    }
}

/// Writes the key and length of a `ScopeSpans.spans` field; a span below 16 KiB, as most are, in
/// one write of three bytes.
fn put_span_header(out: &mut Vec<u8>, len: usize) {
    /// `ScopeSpans.spans` (field 2, length-delimited) as a one-byte key.
    const SPANS_KEY: u8 = (field::scope_spans::SPANS as u8) << 3 | WIRE_LEN;
    match len {
        0x80..0x4000 => out.extend_from_slice(&[SPANS_KEY, (len as u8) | 0x80, (len >> 7) as u8]),
        _ => put_len_header(out, field::scope_spans::SPANS, len),
    }
}

/// The span fields of a scope's run: each field's start, its value's start and its end in the body.
struct SpanFields<'b> {
    body: &'b [u8],
    pos: usize,
    end: usize,
}

impl<'b> SpanFields<'b> {
    fn new(body: &'b [u8], start: usize, end: usize) -> Self {
        Self { body, pos: start, end: end.min(body.len()) }
    }
}

impl Iterator for SpanFields<'_> {
    type Item = (usize, usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        /// `ScopeSpans.spans` (field 2, length-delimited) as a one-byte key.
        const SPANS_KEY: u8 = (field::scope_spans::SPANS as u8) << 3 | WIRE_LEN;
        let start = self.pos;
        if start >= self.end {
            return None;
        }
        // The scan made the run of nothing but span fields: each is read as its key and length (in
        // one or two bytes, as a span's is), the general reader is there for anything else.
        let (value_start, end) = match self.body[start..self.end] {
            [SPANS_KEY, len, ..] if len < 0x80 => (start + 2, start + 2 + usize::from(len)),
            [SPANS_KEY, low, high, ..] if high < 0x80 => {
                (start + 3, start + 3 + (usize::from(low & 0x7f) | usize::from(high) << 7))
            }
            _ => {
                let f = Fields::at(&self.body[..self.end], start).next_field().ok()??;
                (f.value_start, f.end)
            }
        };
        if end > self.end {
            return None;
        }
        self.pos = end;
        Some((start, value_start, end))
    }
}
