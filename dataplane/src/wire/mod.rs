//! OTLP trace requests as encoded bytes.
//!
//! [`scan`] walks an `ExportTraceServiceRequest` once. It checks the whole message the way prost's decoder
//! would (wire types, lengths, varints, UTF-8 of strings, nesting depth), and trace and span ids as the
//! OTLP schema requires them (present, 16 and 8 bytes; a parent id 8 bytes or empty), so a request that
//! prost, the Collector or a strict backend would reject is rejected here, with a message naming what is
//! wrong and where, and never poisons a batch shared with other clients. It keeps the levels a
//! stage needs to touch (resource spans, resource, scope spans, the run of spans) as slices of the
//! received buffer; span contents are never copied or decoded into owned structs.
//!
//! Protobuf semantics that make this sound: a repeated field may be split and re-concatenated; two
//! encodings of one message concatenated decode as their merge; unknown fields are skipped by decoders.

mod validate;
pub mod view;

use bytes::{BufMut, Bytes, BytesMut};

pub use validate::MAX_DEPTH;
use view::field;

/// Wire types of the protobuf encoding.
pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_START_GROUP: u8 = 3;
pub(crate) const WIRE_END_GROUP: u8 = 4;
pub(crate) const WIRE_FIXED32: u8 = 5;

/// `ExportTraceServiceRequest.resource_spans`.
const REQUEST_RESOURCE_SPANS: u32 = 1;
/// `ResourceSpans.resource`.
const RESOURCE_SPANS_RESOURCE: u32 = field::resource_spans::RESOURCE;
/// `ResourceSpans.scope_spans`.
const RESOURCE_SPANS_SCOPE_SPANS: u32 = field::resource_spans::SCOPE_SPANS;
/// `ScopeSpans.spans`.
const SCOPE_SPANS_SPANS: u32 = field::scope_spans::SPANS;
/// Its key byte, which the span run and the validator look for.
const SCOPE_SPANS_SPANS_KEY: u8 = (SCOPE_SPANS_SPANS as u8) << 3 | WIRE_LEN;

/// A scanned request: its resource spans as views into the received buffer.
#[derive(Clone, Debug, Default)]
pub struct TraceData {
    /// In request order.
    pub resources: Vec<ResourceSpansView>,
    /// Total number of spans.
    pub spans: usize,
    /// Encoded size of the request as received (decompressed).
    pub encoded_len: usize,
    /// Set by [`scan`] when no `KeyValue` in the request has the key `component`, so no span in it is
    /// an Istio proxy span; `false` means it may hold some.
    pub no_component_key: bool,
}

/// One `ResourceSpans`.
#[derive(Clone, Debug, Default)]
pub struct ResourceSpansView {
    /// Content of the `Resource` message; empty when the field is absent.
    pub resource: Bytes,
    /// Whether the `resource` field was present (an empty one still encodes).
    pub has_resource: bool,
    /// Encoded `Resource` fields appended by a stage (e.g. enrichment attributes, field 1). Appending is
    /// how a stage changes a resource without copying it: a decoder sees the union.
    pub added: Bytes,
    /// Other fields of the `ResourceSpans` (schema_url, unknown fields), encoded with their keys.
    pub rest: Vec<Bytes>,
    /// Scope spans in order.
    pub scopes: Vec<ScopeSpansView>,
    /// Spans under this resource.
    pub spans: usize,
}

/// One `ScopeSpans`: its content, with the span fields forming one contiguous run.
#[derive(Clone, Debug, Default)]
pub struct ScopeSpansView {
    /// Content of the `ScopeSpans` message. When the sender interleaved spans with other fields, this is
    /// a normalised copy with the spans moved together (field order between different fields does not
    /// change what a decoder sees).
    pub body: Bytes,
    /// Byte range in `body` of the span fields, keys included.
    pub spans_start: usize,
    /// End of the span run.
    pub spans_end: usize,
    /// Number of spans in the run.
    pub count: usize,
}

/// `google.rpc.Status`: the body of every OTLP/HTTP error, in both directions.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RpcStatus {
    /// gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A request the scanner refuses, with a message for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid OTLP ExportTraceServiceRequest: {0}")]
pub struct WireError(pub String);

/// Reads fields of one message.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field: its number, wire type and the byte range of its value (for LEN: the payload).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub number: u32,
    pub wire: u8,
    /// Offset of the key.
    pub start: usize,
    /// Offset of the value (after the length prefix for LEN).
    pub value_start: usize,
    /// End of the field.
    pub end: usize,
}

// === impl Fields ===

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Reads the fields from `pos` (the start of a field) on.
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// The next field, `None` at the end. Groups are skipped whole, as prost skips them.
    pub(crate) fn next_field(&mut self) -> Result<Option<Field>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let key = read_varint(self.buf, &mut self.pos)?;
        if key > u64::from(u32::MAX) {
            return Err(WireError(format!("invalid key value: {key}")));
        }
        let wire = (key & 7) as u8;
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(WireError("invalid tag value: 0".into()));
        }
        let value_start;
        match wire {
            WIRE_VARINT => {
                value_start = self.pos;
                read_varint(self.buf, &mut self.pos)?;
            }
            WIRE_FIXED64 => {
                value_start = self.pos;
                self.advance(8)?;
            }
            WIRE_FIXED32 => {
                value_start = self.pos;
                self.advance(4)?;
            }
            WIRE_LEN => {
                let (len, end) = read_length(self.buf, self.pos)?;
                self.pos = end;
                value_start = self.pos;
                let len = usize::try_from(len).map_err(|_| WireError("length overflows".into()))?;
                self.advance(len)?;
            }
            WIRE_START_GROUP => {
                value_start = self.pos;
                self.skip_group(number, 0)?;
            }
            WIRE_END_GROUP => return Err(WireError("unexpected end group tag".into())),
            other => return Err(WireError(format!("invalid wire type value: {other}"))),
        }
        Ok(Some(Field { number, wire, start, value_start, end: self.pos }))
    }

    fn advance(&mut self, n: usize) -> Result<(), WireError> {
        if self.buf.len() - self.pos < n {
            return Err(WireError("buffer underflow: a field is truncated".into()));
        }
        self.pos += n;
        Ok(())
    }

    fn skip_group(&mut self, number: u32, depth: usize) -> Result<(), WireError> {
        if depth >= MAX_DEPTH {
            return Err(WireError("recursion limit reached".into()));
        }
        loop {
            if self.pos >= self.buf.len() {
                return Err(WireError("unterminated group".into()));
            }
            let key = read_varint(self.buf, &mut self.pos)?;
            if key > u64::from(u32::MAX) {
                return Err(WireError(format!("invalid key value: {key}")));
            }
            let wire = (key & 7) as u8;
            let inner = (key >> 3) as u32;
            if inner == 0 {
                return Err(WireError("invalid tag value: 0".into()));
            }
            match wire {
                WIRE_END_GROUP => {
                    if inner != number {
                        return Err(WireError("unexpected end group tag".into()));
                    }
                    return Ok(());
                }
                WIRE_VARINT => {
                    read_varint(self.buf, &mut self.pos)?;
                }
                WIRE_FIXED64 => self.advance(8)?,
                WIRE_FIXED32 => self.advance(4)?,
                WIRE_LEN => {
                    let len = read_varint(self.buf, &mut self.pos)?;
                    let len = usize::try_from(len).map_err(|_| WireError("length overflows".into()))?;
                    self.advance(len)?;
                }
                WIRE_START_GROUP => self.skip_group(inner, depth + 1)?,
                other => return Err(WireError(format!("invalid wire type value: {other}"))),
            }
        }
    }
}

// === impl TraceData ===

impl TraceData {
    /// Whether the request carries no span at all.
    pub fn is_empty(&self) -> bool {
        self.spans == 0
    }

    /// Calls `f` with the encoded content of every span, in order.
    pub fn for_each_span(&self, mut f: impl FnMut(&[u8])) {
        for rs in &self.resources {
            for scope in &rs.scopes {
                let run = &scope.body[scope.spans_start..scope.spans_end];
                let mut fields = Fields::new(run);
                while let Ok(Some(field)) = fields.next_field() {
                    f(&run[field.value_start..field.end]);
                }
            }
        }
    }
}

/// A span's id (`Span.span_id`) and start time (`Span.start_time_unix_nano`), read from its encoding
/// (the last occurrence wins, as in a decoder).
pub fn span_identity(span: &[u8]) -> (Option<&[u8]>, Option<u64>) {
    let (mut id, mut start) = (None, None);
    let mut fields = Fields::new(span);
    while let Ok(Some(f)) = fields.next_field() {
        match (f.number, f.wire) {
            (field::span::SPAN_ID, WIRE_LEN) => id = Some(&span[f.value_start..f.end]),
            (field::span::START_TIME_UNIX_NANO, WIRE_FIXED64) => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&span[f.value_start..f.end]);
                start = Some(u64::from_le_bytes(raw));
            }
            _ => {}
        }
    }
    (id, start)
}

// === impl ScopeSpansView ===

impl ScopeSpansView {
    /// Byte offset in `body` after the span that starts at `offset`.
    pub(crate) fn span_end(&self, offset: usize) -> usize {
        let mut fields = Fields { buf: &self.body[..self.spans_end], pos: offset };
        // The run was checked by `scan`, so a field is always there; fall back to the run's end.
        match fields.next_field() {
            Ok(Some(f)) => f.end,
            _ => self.spans_end,
        }
    }
}

// === free functions ===

/// Reads a varint the way prost does: at most ten bytes, the tenth at most 1.
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    // Keys and short lengths fit in one byte: the common case stays inline.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(u64::from(b));
    }
    read_varint_slow(buf, pos)
}

/// A varint of one or two bytes at `pos` (any value below 16,384: keys, and the lengths of
/// attributes, strings and usual spans): its value and where it ends; `None` for anything else.
#[inline(always)]
fn short_varint(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    match *buf.get(pos..)? {
        [b @ 0..0x80, ..] => Some((u64::from(b), pos + 1)),
        [low, high @ 0..0x80, ..] => Some((u64::from(low & 0x7f) | u64::from(high) << 7, pos + 2)),
        _ => None,
    }
}

/// A length (or any varint) at `pos`: its value and where it ends. One- and two-byte values (every
/// attribute and string, a usual span) are read inline, longer ones by [`read_varint`].
#[inline(always)]
pub(crate) fn read_length(buf: &[u8], pos: usize) -> Result<(u64, usize), WireError> {
    if let Some(short) = short_varint(buf, pos) {
        return Ok(short);
    }
    let mut end = pos;
    read_varint(buf, &mut end).map(|value| (value, end))
}

fn read_varint_slow(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    if let Some((value, end)) = short_varint(buf, *pos) {
        *pos = end;
        return Ok(value);
    }
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(WireError("buffer underflow: a varint is truncated".into()));
        };
        *pos += 1;
        if i == 9 && b > 1 {
            return Err(WireError("invalid varint".into()));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(WireError("invalid varint".into()))
}

/// Bytes a varint of this value takes.
pub fn varint_len(value: u64) -> usize {
    // ((bits needed) * 9 + 73) / 64 is the usual branch-free form; bits needed for 0 is taken as 1.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

/// Writes a varint.
pub fn put_varint(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Writes the key and length of a LEN field.
pub fn put_len_header(out: &mut impl BufMut, number: u32, len: usize) {
    put_varint(out, u64::from(number) << 3 | u64::from(WIRE_LEN));
    put_varint(out, len as u64);
}

/// Size of a LEN field with this payload length.
pub fn len_field_size(number: u32, len: usize) -> usize {
    varint_len(u64::from(number) << 3) + varint_len(len as u64) + len
}

/// Scans and fully validates a request. The views share `buf`.
pub fn scan(buf: Bytes) -> Result<TraceData, WireError> {
    let component = validate::validate_request(&buf)?;
    let mut data = TraceData { encoded_len: buf.len(), no_component_key: !component, ..Default::default() };
    let mut fields = Fields::new(&buf);
    while let Some(f) = fields.next_field()? {
        if f.number == REQUEST_RESOURCE_SPANS && f.wire == WIRE_LEN {
            let view = scan_resource_spans(buf.slice(f.value_start..f.end))?;
            data.spans += view.spans;
            data.resources.push(view);
        }
    }
    Ok(data)
}

fn scan_resource_spans(buf: Bytes) -> Result<ResourceSpansView, WireError> {
    let mut view = ResourceSpansView::default();
    let mut fields = Fields::new(&buf);
    while let Some(f) = fields.next_field()? {
        match (f.number, f.wire) {
            (RESOURCE_SPANS_RESOURCE, WIRE_LEN) => {
                let content = buf.slice(f.value_start..f.end);
                view.resource = if view.has_resource {
                    // A repeated singular message merges; concatenation is that merge.
                    let mut merged = BytesMut::with_capacity(view.resource.len() + content.len());
                    merged.extend_from_slice(&view.resource);
                    merged.extend_from_slice(&content);
                    merged.freeze()
                } else {
                    content
                };
                view.has_resource = true;
            }
            (RESOURCE_SPANS_SCOPE_SPANS, WIRE_LEN) => {
                let scope = scan_scope_spans(buf.slice(f.value_start..f.end))?;
                view.spans += scope.count;
                view.scopes.push(scope);
            }
            _ => view.rest.push(buf.slice(f.start..f.end)),
        }
    }
    Ok(view)
}

fn scan_scope_spans(body: Bytes) -> Result<ScopeSpansView, WireError> {
    let mut fields = Fields::new(&body);
    let mut run: Option<(usize, usize)> = None;
    let mut count = 0;
    let mut contiguous = true;
    while let Some(f) = fields.next_field()? {
        if f.number == SCOPE_SPANS_SPANS && f.wire == WIRE_LEN {
            // The spans that follow this one directly: a run of fields with the one-byte key.
            let (end, more) = span_run(&body, f.end);
            fields.pos = end;
            count += 1 + more;
            run = match run {
                None => Some((f.start, end)),
                Some((s, e)) if e == f.start => Some((s, end)),
                Some((s, _)) => {
                    contiguous = false;
                    Some((s, end))
                }
            };
        }
    }
    let Some((spans_start, spans_end)) = run else {
        return Ok(ScopeSpansView { spans_start: body.len(), spans_end: body.len(), body, count: 0 });
    };
    if contiguous {
        return Ok(ScopeSpansView { body, spans_start, spans_end, count });
    }
    // Rare: spans interleaved with other fields. Move the spans together in a copy.
    let mut other = BytesMut::with_capacity(body.len());
    let mut spans = BytesMut::with_capacity(body.len());
    let mut fields = Fields::new(&body);
    while let Some(f) = fields.next_field()? {
        let target =
            if f.number == SCOPE_SPANS_SPANS && f.wire == WIRE_LEN { &mut spans } else { &mut other };
        target.extend_from_slice(&body[f.start..f.end]);
    }
    let spans_start = other.len();
    other.extend_from_slice(&spans);
    let spans_end = other.len();
    Ok(ScopeSpansView { body: other.freeze(), spans_start, spans_end, count })
}

/// The span fields (`ScopeSpans.spans`, key byte 0x12) that start at `pos` one after another, in a
/// body the validator has passed: where the run ends and how many spans it holds. Reading only the
/// key byte and the length, it is several times cheaper per span than the general field reader,
/// which takes whatever follows the run.
fn span_run(body: &[u8], mut pos: usize) -> (usize, usize) {
    let mut count = 0;
    while body.get(pos) == Some(&SCOPE_SPANS_SPANS_KEY) {
        let Ok((len, at)) = read_length(body, pos + 1) else { break };
        let Some(end) = usize::try_from(len).ok().and_then(|len| at.checked_add(len)) else { break };
        if end > body.len() {
            break;
        }
        pos = end;
        count += 1;
    }
    (pos, count)
}

#[cfg(test)]
mod tests;
