//! Per-pipeline batching on encoded bytes.
//!
//! [`Batcher`] is a state machine without I/O: it takes scanned requests and emits [`Batch`]es, each an
//! encoded `ExportTraceServiceRequest` made of slices of the received buffers plus the few bytes of
//! new keys and lengths. A resource or scope that does not fit is split across batches; no batch
//! exceeds the span or byte limit unless a single span alone is larger than the byte limit.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{ResourceSpansView, ScopeSpansView, TraceData, len_field_size, put_len_header, varint_len};

/// Kyma's `send_batch_size` / `send_batch_max_size`.
pub const DEFAULT_MAX_BATCH_SPANS: usize = 512;
/// Keeps every export under the 4 MiB that many backends still enforce on gRPC messages.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Kyma's batch `timeout`.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Field numbers used when re-framing.
const REQUEST_RESOURCE_SPANS: u32 = 1;
const RESOURCE_SPANS_RESOURCE: u32 = 1;
const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;

/// Batch limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most spans in one batch.
    pub max_spans: usize,
    /// Most encoded bytes in one batch.
    pub max_bytes: usize,
    /// A batch with at least one span is sent after this long even if not full.
    pub flush_interval: Duration,
}

/// An encoded `ExportTraceServiceRequest`, ready to frame and send.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The encoding, in order; concatenated they form the request.
    pub chunks: Vec<Bytes>,
    /// Encoded length (sum of chunk lengths).
    pub len: usize,
    /// Spans in the batch.
    pub spans: usize,
}

/// Accumulates spans into batches.
#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    current: Batch,
    /// Scratch space for keys and lengths; chunks are split off it so they share one allocation.
    headers: BytesMut,
}

/// A part of one scope's span run chosen for the current batch.
#[derive(Clone, Copy, Debug)]
struct ScopePiece {
    scope: usize,
    start: usize,
    end: usize,
}

// === impl BatchLimits ===

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_spans: DEFAULT_MAX_BATCH_SPANS,
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

// === impl Batch ===

impl Batch {
    /// Whether the batch holds no span.
    pub fn is_empty(&self) -> bool {
        self.spans == 0
    }

    /// The request as one contiguous buffer.
    pub fn to_bytes(&self) -> Bytes {
        if let [only] = self.chunks.as_slice() {
            return only.clone();
        }
        let mut out = BytesMut::with_capacity(self.len);
        self.write_to(&mut out);
        out.freeze()
    }

    /// Appends the encoding to `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        for chunk in &self.chunks {
            out.put_slice(chunk);
        }
    }
}

// === impl Batcher ===

impl Batcher {
    /// A batcher with these limits.
    pub fn new(limits: BatchLimits) -> Self {
        Self { limits, current: Batch::default(), headers: BytesMut::new() }
    }

    /// The limits in force.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Spans waiting in the unfinished batch.
    pub fn pending_spans(&self) -> usize {
        self.current.spans
    }

    /// Encoded bytes of the unfinished batch.
    pub fn pending_bytes(&self) -> usize {
        self.current.len
    }

    /// Adds a request; every batch it fills is pushed to `out`.
    pub fn push(&mut self, data: &TraceData, out: &mut Vec<Batch>) {
        for resource in &data.resources {
            if resource.spans > 0 {
                self.push_resource(resource, out);
            }
        }
    }

    /// Takes the unfinished batch, if it holds any span.
    pub fn take(&mut self) -> Option<Batch> {
        if self.current.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.current))
    }

    fn fits(&self, spans: usize, bytes: usize) -> bool {
        self.current.spans + spans <= self.limits.max_spans
            && self.current.len + bytes <= self.limits.max_bytes
    }

    fn push_resource(&mut self, rs: &ResourceSpansView, out: &mut Vec<Batch>) {
        // Bytes of the resource spans without any scope: the resource and the other fields.
        let base = resource_base_len(rs);
        let mut pieces: Vec<ScopePiece> = Vec::with_capacity(rs.scopes.len());
        let mut piece_spans = 0;
        // Encoded size of the pending ResourceSpans content.
        let mut piece_bytes = base;
        for (index, scope) in rs.scopes.iter().enumerate() {
            let fixed = scope.body.len() - (scope.spans_end - scope.spans_start);
            let mut start = scope.spans_start;
            let mut remaining = scope.count;
            while remaining > 0 {
                let whole = scope_content_len(fixed, scope.spans_end - start);
                if self.fits(piece_spans + remaining, framed(piece_bytes + field_len(whole))) {
                    pieces.push(ScopePiece { scope: index, start, end: scope.spans_end });
                    piece_spans += remaining;
                    piece_bytes += field_len(whole);
                    break;
                }
                // Take spans one by one while they fit.
                let mut end = start;
                let mut taken = 0;
                while taken < remaining {
                    let next = scope.span_end(end);
                    let bytes = piece_bytes + field_len(scope_content_len(fixed, next - start));
                    if !self.fits(piece_spans + taken + 1, framed(bytes)) {
                        break;
                    }
                    end = next;
                    taken += 1;
                }
                if taken == 0 && piece_spans == 0 && self.current.is_empty() {
                    // One span larger than a whole batch: send it alone rather than never.
                    end = scope.span_end(start);
                    taken = 1;
                }
                if taken > 0 {
                    pieces.push(ScopePiece { scope: index, start, end });
                    piece_bytes += field_len(scope_content_len(fixed, end - start));
                    piece_spans += taken;
                    remaining -= taken;
                    start = end;
                }
                if remaining > 0 {
                    self.emit(rs, &pieces, piece_spans);
                    pieces.clear();
                    piece_spans = 0;
                    piece_bytes = base;
                    if let Some(full) = self.take() {
                        out.push(full);
                    }
                }
            }
        }
        if piece_spans > 0 {
            self.emit(rs, &pieces, piece_spans);
        }
        if self.current.spans >= self.limits.max_spans
            && let Some(full) = self.take()
        {
            out.push(full);
        }
    }

    /// Appends one `ResourceSpans` holding `pieces` to the current batch.
    fn emit(&mut self, rs: &ResourceSpansView, pieces: &[ScopePiece], spans: usize) {
        if pieces.is_empty() {
            return;
        }
        let mut content = resource_base_len(rs);
        for p in pieces {
            let scope = &rs.scopes[p.scope];
            let fixed = scope.body.len() - (scope.spans_end - scope.spans_start);
            content += field_len(scope_content_len(fixed, p.end - p.start));
        }
        let chunks = &mut self.current.chunks;
        let headers = &mut self.headers;
        headers.reserve(32 + pieces.len() * 12);
        put_len_header(headers, REQUEST_RESOURCE_SPANS, content);
        if rs.has_resource || !rs.added.is_empty() {
            put_len_header(headers, RESOURCE_SPANS_RESOURCE, rs.resource.len() + rs.added.len());
            chunks.push(headers.split().freeze());
            push_nonempty(chunks, &rs.resource);
            push_nonempty(chunks, &rs.added);
        }
        for p in pieces {
            let scope: &ScopeSpansView = &rs.scopes[p.scope];
            let fixed = scope.body.len() - (scope.spans_end - scope.spans_start);
            put_len_header(headers, RESOURCE_SPANS_SCOPE_SPANS, scope_content_len(fixed, p.end - p.start));
            chunks.push(headers.split().freeze());
            if p.start == scope.spans_start && p.end == scope.spans_end {
                push_nonempty(chunks, &scope.body);
            } else {
                push_nonempty(chunks, &scope.body.slice(..scope.spans_start));
                push_nonempty(chunks, &scope.body.slice(p.start..p.end));
                push_nonempty(chunks, &scope.body.slice(scope.spans_end..));
            }
        }
        if !headers.is_empty() {
            chunks.push(headers.split().freeze());
        }
        for rest in &rs.rest {
            push_nonempty(chunks, rest);
        }
        self.current.len += field_len(content);
        self.current.spans += spans;
    }
}

// === free functions ===

fn push_nonempty(chunks: &mut Vec<Bytes>, b: &Bytes) {
    if !b.is_empty() {
        chunks.push(b.clone());
    }
}

/// Size of a `resource_spans` / `scope_spans` field holding `content` bytes (all use field 1 or 2, one
/// byte keys).
fn field_len(content: usize) -> usize {
    len_field_size(REQUEST_RESOURCE_SPANS, content)
}

/// Identity: the pending ResourceSpans content is framed by `field_len` when checked against limits.
fn framed(content: usize) -> usize {
    field_len(content)
}

fn scope_content_len(fixed: usize, spans: usize) -> usize {
    fixed + spans
}

/// Bytes of a ResourceSpans' content without its scope spans.
fn resource_base_len(rs: &ResourceSpansView) -> usize {
    let resource = if rs.has_resource || !rs.added.is_empty() {
        let len = rs.resource.len() + rs.added.len();
        1 + varint_len(len as u64) + len
    } else {
        0
    };
    resource + rs.rest.iter().map(Bytes::len).sum::<usize>()
}

#[cfg(test)]
mod tests;
