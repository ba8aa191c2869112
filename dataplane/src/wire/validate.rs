//! Checks an encoded `ExportTraceServiceRequest` against the OTLP trace schema with prost's rules, without
//! allocating: a request passes here exactly when `prost::Message::decode` would accept it and every
//! trace and span id in it has a length the Collector accepts ([`Kind::TraceId`]). The schema
//! tables list, for each message, the fields prost knows and their kinds; unknown fields are skipped
//! as prost skips them. Spans, most of a request, first take a walk through the fields the SDKs
//! write, in the order they write them ([`plain_span`]); the general loop over the tables checks
//! whatever a walk leaves, and everything else.
//!
//! On the way it notes whether any `KeyValue` has the key `component`, the attribute every Istio proxy
//! span carries: without one, the noise filter and enrichment's proxy check have nothing to look for,
//! and a request is spared their search through its span bytes.

use super::view::field;
use super::{
    Fields, REQUEST_RESOURCE_SPANS, SCOPE_SPANS_SPANS_KEY, WIRE_END_GROUP, WIRE_FIXED32, WIRE_FIXED64,
    WIRE_LEN, WIRE_START_GROUP, WIRE_VARINT, WireError, read_length, read_varint,
};

/// prost's recursion limit: how deep messages (and groups) may nest below the request.
pub const MAX_DEPTH: usize = 100;

/// What a known field holds.
#[derive(Clone, Copy)]
enum Kind {
    Message(&'static Schema),
    /// `Message(&KEY_VALUE)`, named so that [`schema`] can tell (a `const fn` cannot compare
    /// pointers); the built table holds it as that message.
    Attributes,
    String,
    Bytes,
    /// A trace id (`Span.trace_id`, `Link.trace_id`): `bytes` of exactly [`TRACE_ID_BYTES`], in every
    /// occurrence, and present ([`ids_present`]).
    ///
    /// The OTLP schema calls a trace id of any other length, empty included, invalid and the field
    /// required. The Collector is laxer with empty ones: pdata reads every occurrence of an id field
    /// (`TraceID.UnmarshalProto`, `pdata/internal/traceid.go`) and refuses any length but 16 with
    /// "invalid TraceID length", failing the whole request, but takes an empty value as the all-zero
    /// "no id" and forwards it. This gateway refuses those too: a span without an id is one a strict
    /// backend refuses, and with it the batch it shares with other clients' spans. So an id of a
    /// wrong length is refused in every occurrence (even one a later occurrence would replace in
    /// prost), and a span or link without one is refused as well.
    TraceId,
    /// A span id (`Span.span_id`, `Link.span_id`): `bytes` of exactly [`SPAN_ID_BYTES`], present; as
    /// [`Kind::TraceId`].
    SpanId,
    /// `Span.parent_span_id`: [`SPAN_ID_BYTES`], or empty for a root span (the schema's own rule).
    ParentSpanId,
    Varint,
    Fixed64,
    Fixed32,
}

/// Length of a trace id.
const TRACE_ID_BYTES: usize = 16;
/// Length of a span id.
const SPAN_ID_BYTES: usize = 8;

/// `KeyValue.key` of Istio's proxy spans.
const COMPONENT_KEY: &[u8] = b"component";

/// Highest field number in the trace schema (`Span.flags`).
const MAX_FIELD_NUMBER: usize = 16;

/// Known fields of one message, indexed by field number: one load per field instead of a search.
struct Schema {
    kinds: [Option<Kind>; MAX_FIELD_NUMBER + 1],
    /// What a one-byte key means, indexed by the key byte: the kind's [`Fast`] code when the field is
    /// known and its wire type is the expected one, [`Fast::Slow`] for everything else (unknown
    /// fields, wrong wire types, invalid keys), which takes the general path and gets its verdict.
    /// One load settles the usual field without decoding the key.
    fast: [Fast; ONE_BYTE_KEYS],
    /// The key byte of the message's `KeyValue` field (its attributes), if it has one: checked before
    /// the table, so a run of attributes takes one predictable branch each instead of the table's
    /// indirect jump, which mispredicts on a span's ever-changing field sequence.
    attributes: Option<u8>,
}

/// Keys below 0x80 are one byte long: field numbers 1 to 15.
const ONE_BYTE_KEYS: usize = 0x80;

/// The one-byte-key dispatch codes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fast {
    Slow,
    Message,
    String,
    Bytes,
    TraceId,
    SpanId,
    ParentSpanId,
    Varint,
    Fixed64,
    Fixed32,
}

const fn schema(fields: &[(u32, Kind)]) -> Schema {
    let mut kinds = [None; MAX_FIELD_NUMBER + 1];
    let mut fast = [Fast::Slow; ONE_BYTE_KEYS];
    let mut attributes = None;
    let mut i = 0;
    while i < fields.len() {
        let (number, kind) = fields[i];
        let (wire, code) = match kind {
            Kind::Message(_) | Kind::Attributes => (WIRE_LEN, Fast::Message),
            Kind::String => (WIRE_LEN, Fast::String),
            Kind::Bytes => (WIRE_LEN, Fast::Bytes),
            Kind::TraceId => (WIRE_LEN, Fast::TraceId),
            Kind::SpanId => (WIRE_LEN, Fast::SpanId),
            Kind::ParentSpanId => (WIRE_LEN, Fast::ParentSpanId),
            Kind::Varint => (WIRE_VARINT, Fast::Varint),
            Kind::Fixed64 => (WIRE_FIXED64, Fast::Fixed64),
            Kind::Fixed32 => (WIRE_FIXED32, Fast::Fixed32),
        };
        let key = (number << 3) as usize | wire as usize;
        if key < ONE_BYTE_KEYS {
            fast[key] = code;
        }
        kinds[number as usize] = Some(match kind {
            Kind::Attributes => {
                if key < ONE_BYTE_KEYS {
                    attributes = Some(key as u8);
                }
                Kind::Message(&KEY_VALUE)
            }
            other => other,
        });
        i += 1;
    }
    Schema { kinds, fast, attributes }
}

static REQUEST: Schema = schema(&[(1, Kind::Message(&RESOURCE_SPANS))]);
static RESOURCE_SPANS: Schema =
    schema(&[(1, Kind::Message(&RESOURCE)), (2, Kind::Message(&SCOPE_SPANS)), (3, Kind::String)]);
static RESOURCE: Schema =
    schema(&[(1, Kind::Attributes), (2, Kind::Varint), (3, Kind::Message(&ENTITY_REF))]);
static ENTITY_REF: Schema =
    schema(&[(1, Kind::String), (2, Kind::String), (3, Kind::String), (4, Kind::String)]);
static SCOPE_SPANS: Schema =
    schema(&[(1, Kind::Message(&SCOPE)), (2, Kind::Message(&SPAN)), (3, Kind::String)]);
static SCOPE: Schema =
    schema(&[(1, Kind::String), (2, Kind::String), (3, Kind::Attributes), (4, Kind::Varint)]);
static KEY_VALUE: Schema = schema(&[(1, Kind::String), (2, Kind::Message(&ANY_VALUE)), (3, Kind::Varint)]);
static ANY_VALUE: Schema = schema(&[
    (1, Kind::String),
    (2, Kind::Varint),
    (3, Kind::Varint),
    (4, Kind::Fixed64),
    (5, Kind::Message(&ARRAY_VALUE)),
    (6, Kind::Message(&KEY_VALUE_LIST)),
    (7, Kind::Bytes),
    (8, Kind::Varint),
]);
static ARRAY_VALUE: Schema = schema(&[(1, Kind::Message(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = schema(&[(1, Kind::Attributes)]);
static SPAN: Schema = schema(&[
    (1, Kind::TraceId),
    (2, Kind::SpanId),
    (3, Kind::String),
    (4, Kind::ParentSpanId),
    (5, Kind::String),
    (6, Kind::Varint),
    (7, Kind::Fixed64),
    (8, Kind::Fixed64),
    (9, Kind::Attributes),
    (10, Kind::Varint),
    (11, Kind::Message(&EVENT)),
    (12, Kind::Varint),
    (13, Kind::Message(&LINK)),
    (14, Kind::Varint),
    (15, Kind::Message(&STATUS)),
    (16, Kind::Fixed32),
]);
static EVENT: Schema =
    schema(&[(1, Kind::Fixed64), (2, Kind::String), (3, Kind::Attributes), (4, Kind::Varint)]);
static LINK: Schema = schema(&[
    (1, Kind::TraceId),
    (2, Kind::SpanId),
    (3, Kind::String),
    (4, Kind::Attributes),
    (5, Kind::Varint),
    (6, Kind::Fixed32),
]);
static STATUS: Schema = schema(&[(2, Kind::String), (3, Kind::Varint)]);

// === impl Schema ===

impl Schema {
    #[inline]
    fn kind(&self, number: u32) -> Option<Kind> {
        self.kinds.get(number as usize).copied().flatten()
    }
}

// === impl Kind ===

impl Kind {
    fn wire(self) -> u8 {
        match self {
            Self::Message(_)
            | Self::Attributes
            | Self::String
            | Self::Bytes
            | Self::TraceId
            | Self::SpanId
            | Self::ParentSpanId => WIRE_LEN,
            Self::Varint => WIRE_VARINT,
            Self::Fixed64 => WIRE_FIXED64,
            Self::Fixed32 => WIRE_FIXED32,
        }
    }
}

// === free functions ===

/// Validates a whole request; returns whether any `KeyValue` in it, at any depth, has the key
/// `component`.
pub(crate) fn validate_request(buf: &[u8]) -> Result<bool, WireError> {
    let mut component = false;
    validate_message(buf, &REQUEST, MAX_DEPTH, &mut component).map_err(|e| with_position(buf, e))?;
    Ok(component)
}

/// `budget` is prost's remaining recursion count for the fields of this message; `component` is set
/// when a `KeyValue` with the key `component` is seen.
fn validate_message(
    buf: &[u8],
    schema: &Schema,
    budget: usize,
    component: &mut bool,
) -> Result<(), WireError> {
    let mut pos = if std::ptr::eq(schema, &SPAN) { plain_span(buf, budget, component)? } else { 0 };
    while let Some(&key) = buf.get(pos) {
        if key == SCOPE_SPANS_SPANS_KEY && std::ptr::eq(schema, &SCOPE_SPANS) {
            pos = spans(buf, pos, budget, component)?;
            continue;
        }
        if Some(key) == schema.attributes {
            let end = plain_attributes(buf, pos, key, budget, component);
            if end != pos {
                pos = end;
                continue;
            }
        }
        // The two matches below mirror each other on purpose: the first works from the key byte's
        // code and never builds a `Kind`, which is what makes it the fast one.
        let fast = schema.fast.get(usize::from(key)).copied().unwrap_or(Fast::Slow);
        if fast != Fast::Slow {
            pos += 1;
            match fast {
                Fast::Message => {
                    let Some(Kind::Message(inner)) = schema.kind(u32::from(key >> 3)) else {
                        return Err(table_out_of_step());
                    };
                    validate_field_message(buf, &mut pos, inner, budget, component)?;
                }
                Fast::String => {
                    let text = validate_string(buf, &mut pos, u32::from(key >> 3))?;
                    note_component_key(schema, u32::from(key >> 3), text, component);
                }
                Fast::Bytes => {
                    read_len(buf, &mut pos)?;
                }
                Fast::TraceId => validate_id(buf, &mut pos, schema, u32::from(key >> 3), TRACE_ID_BYTES)?,
                Fast::SpanId => validate_id(buf, &mut pos, schema, u32::from(key >> 3), SPAN_ID_BYTES)?,
                Fast::ParentSpanId => validate_parent_id(buf, &mut pos)?,
                Fast::Varint => {
                    read_varint(buf, &mut pos)?;
                }
                Fast::Fixed64 => advance(buf, &mut pos, 8)?,
                Fast::Fixed32 => advance(buf, &mut pos, 4)?,
                Fast::Slow => {}
            }
            continue;
        }
        let (number, wire) = read_key(buf, &mut pos)?;
        let Some(kind) = schema.kind(number) else {
            skip_unknown(buf, &mut pos, number, wire, budget)?;
            continue;
        };
        if wire != kind.wire() {
            return Err(WireError(format!(
                "invalid wire type: {wire} (expected {}) for field {number}",
                kind.wire()
            )));
        }
        match kind {
            Kind::Message(inner) => {
                let at = pos;
                validate_field_message(buf, &mut pos, inner, budget, component)?;
                // A span behind an over-long key: [`spans`] takes all the others.
                if std::ptr::eq(inner, &SPAN) {
                    let mut body = at;
                    ids_present(read_len(buf, &mut body)?, false)?;
                }
            }
            // The built table holds attributes as `Message(&KEY_VALUE)`; this arm only completes the match.
            Kind::Attributes => validate_field_message(buf, &mut pos, &KEY_VALUE, budget, component)?,
            Kind::String => {
                let text = validate_string(buf, &mut pos, number)?;
                note_component_key(schema, number, text, component);
            }
            Kind::Bytes => {
                read_len(buf, &mut pos)?;
            }
            Kind::TraceId => validate_id(buf, &mut pos, schema, number, TRACE_ID_BYTES)?,
            Kind::SpanId => validate_id(buf, &mut pos, schema, number, SPAN_ID_BYTES)?,
            Kind::ParentSpanId => validate_parent_id(buf, &mut pos)?,
            Kind::Varint => {
                read_varint(buf, &mut pos)?;
            }
            Kind::Fixed64 => advance(buf, &mut pos, 8)?,
            Kind::Fixed32 => advance(buf, &mut pos, 4)?,
        }
    }
    // Links are rare: their ids are looked for again here rather than tracked on the way.
    if std::ptr::eq(schema, &LINK) {
        ids_present(buf, true)?;
    }
    Ok(())
}

/// An id field's value at `*pos` (after its key): `size` bytes ([`Kind::TraceId`]).
#[inline(always)]
fn validate_id(
    buf: &[u8],
    pos: &mut usize,
    schema: &Schema,
    number: u32,
    size: usize,
) -> Result<(), WireError> {
    let id = read_len(buf, pos)?;
    if id.len() == size {
        return Ok(());
    }
    Err(WireError(id_message(std::ptr::eq(schema, &LINK), number, size, id.len())))
}

/// `Span.parent_span_id`'s value at `*pos` (after its key): empty or [`SPAN_ID_BYTES`].
#[inline(always)]
fn validate_parent_id(buf: &[u8], pos: &mut usize) -> Result<(), WireError> {
    let id = read_len(buf, pos)?;
    if id.is_empty() || id.len() == SPAN_ID_BYTES {
        return Ok(());
    }
    Err(WireError(id_message(false, field::span::PARENT_SPAN_ID, SPAN_ID_BYTES, id.len())))
}

/// Refuses a span (a link when `link`) of valid fields that lacks its trace or span id. Every
/// occurrence of an id was checked for its length on the way, so any occurrence will do.
#[cold]
fn ids_present(body: &[u8], link: bool) -> Result<(), WireError> {
    let (trace_id, span_id) = if link {
        (field::link::TRACE_ID, field::link::SPAN_ID)
    } else {
        (field::span::TRACE_ID, field::span::SPAN_ID)
    };
    match missing_id(body, trace_id, span_id) {
        Some((number, size)) => Err(WireError(id_message(link, number, size, 0))),
        None => Ok(()),
    }
}

/// The id field (`trace_id` or `span_id`, with its size) that a message of valid fields lacks.
fn missing_id(body: &[u8], trace_id: u32, span_id: u32) -> Option<(u32, usize)> {
    let (mut trace, mut span) = (false, false);
    let mut fields = Fields::new(body);
    while let Ok(Some(f)) = fields.next_field() {
        trace |= f.number == trace_id;
        span |= f.number == span_id;
    }
    if !trace {
        Some((trace_id, TRACE_ID_BYTES))
    } else if !span {
        Some((span_id, SPAN_ID_BYTES))
    } else {
        None
    }
}

/// What is wrong with an id: field `number` of a span, or of a link when `link`, is `got` bytes
/// long instead of `size` (0 for an id that is missing: proto3 writes an empty one so). Shared by the
/// check and [`locate_bad_id`], which compares the two.
#[cold]
fn id_message(link: bool, number: u32, size: usize, got: usize) -> String {
    let owner = if link { "link" } else { "span" };
    let (name, rule) = match (link, number) {
        (false, field::span::TRACE_ID) | (true, field::link::TRACE_ID) => ("trace_id", ""),
        (false, field::span::SPAN_ID) | (true, field::link::SPAN_ID) => ("span_id", ""),
        (false, field::span::PARENT_SPAN_ID) => ("parent_span_id", " or empty"),
        _ => ("id", ""),
    };
    format!("{owner}.{name} must be {size} bytes{rule}, got {got}")
}

/// `error` with the place of the id it is about (`resource_spans[0].scope_spans[1].spans[3]`, with
/// `.links[0]` for a link's), when it is about one. Only refused requests get here: the validator
/// keeps no positions, so this walks the request again to the first id of a wrong length. Both walk
/// in encoding order and the validator stops at its first error, so when that error is an id's, it
/// is the first wrong id this walk finds: the messages then agree, which is what is checked.
#[cold]
fn with_position(buf: &[u8], error: WireError) -> WireError {
    match locate_bad_id(buf) {
        Some((message, path)) if message == error.0 => WireError(format!("{message} at {path}")),
        _ => error,
    }
}

/// The first id of a wrong length (or missing) in encoding order, as [`id_message`] words it, and
/// its place. The validator's order: a span's fields in turn (a link's missing id when the link
/// ends), then the span's missing id. Reads only the levels down to the ids; `None` when there is
/// none (or the walk meets a malformed field first).
fn locate_bad_id(buf: &[u8]) -> Option<(String, String)> {
    for (r, resource_spans) in len_fields(buf, REQUEST_RESOURCE_SPANS).enumerate() {
        for (s, scope_spans) in len_fields(resource_spans, field::resource_spans::SCOPE_SPANS).enumerate() {
            for (i, span) in len_fields(scope_spans, field::scope_spans::SPANS).enumerate() {
                let at = || format!("resource_spans[{r}].scope_spans[{s}].spans[{i}]");
                let mut links = 0;
                let mut fields = Fields::new(span);
                while let Ok(Some(f)) = fields.next_field() {
                    let value = &span[f.value_start..f.end];
                    if f.wire != WIRE_LEN {
                        continue;
                    }
                    if f.number == field::span::LINKS {
                        let link = links;
                        links += 1;
                        let mut link_fields = Fields::new(value);
                        while let Ok(Some(lf)) = link_fields.next_field() {
                            if let Some(message) = wrong_id(true, lf.number, lf.wire, lf.end - lf.value_start)
                            {
                                return Some((message, format!("{}.links[{link}]", at())));
                            }
                        }
                        if let Err(WireError(message)) = ids_present(value, true) {
                            return Some((message, format!("{}.links[{link}]", at())));
                        }
                    } else if let Some(message) = wrong_id(false, f.number, f.wire, value.len()) {
                        return Some((message, at()));
                    }
                }
                if let Err(WireError(message)) = ids_present(span, false) {
                    return Some((message, at()));
                }
            }
        }
    }
    None
}

/// The values of the length-delimited fields `number` of a message, in order.
fn len_fields(body: &[u8], number: u32) -> impl Iterator<Item = &[u8]> {
    let mut fields = Fields::new(body);
    std::iter::from_fn(move || fields.next_field().ok().flatten())
        .filter(move |f| f.number == number && f.wire == WIRE_LEN)
        .map(move |f| &body[f.value_start..f.end])
}

/// [`id_message`] for field `number` (of a link when `link`, else of a span) holding `len` bytes
/// when it is an id of a wrong length.
fn wrong_id(link: bool, number: u32, wire: u8, len: usize) -> Option<String> {
    let (size, may_be_empty) = match (link, number) {
        (false, field::span::TRACE_ID) | (true, field::link::TRACE_ID) => (TRACE_ID_BYTES, false),
        (false, field::span::SPAN_ID) | (true, field::link::SPAN_ID) => (SPAN_ID_BYTES, false),
        (false, field::span::PARENT_SPAN_ID) => (SPAN_ID_BYTES, true),
        _ => return None,
    };
    (wire == WIRE_LEN && len != size && !(may_be_empty && len == 0))
        .then(|| id_message(link, number, size, len))
}

/// A message field's body at `*pos` (after its key), against `inner`. Always inlined: every span (and
/// every attribute off the plain path) comes through here, and as a call (it is in a recursion with
/// [`validate_message`], so the compiler would not inline it on its own) its prologue, epilogue and
/// returned `Result` cost more than the check.
#[inline(always)]
fn validate_field_message(
    buf: &[u8],
    pos: &mut usize,
    inner: &Schema,
    budget: usize,
    component: &mut bool,
) -> Result<(), WireError> {
    if budget == 0 {
        return Err(WireError("recursion limit reached".into()));
    }
    let body = read_len(buf, pos)?;
    validate_message(body, inner, budget - 1, component)
}

/// A string field's value at `*pos` (after its key); returns the text.
#[inline(always)]
fn validate_string<'a>(buf: &'a [u8], pos: &mut usize, number: u32) -> Result<&'a [u8], WireError> {
    let value = read_len(buf, pos)?;
    // Almost every string on the wire is ASCII; the inlined check settles those.
    if !is_ascii(value) && std::str::from_utf8(value).is_err() {
        return Err(WireError(format!("invalid string value in field {number}: data is not UTF-8 encoded")));
    }
    Ok(value)
}

/// Sets `component` when string field `number` of a `schema` message is a `KeyValue`'s key `component`.
#[inline]
fn note_component_key(schema: &Schema, number: u32, text: &[u8], component: &mut bool) {
    if number == 1 && text == COMPONENT_KEY && std::ptr::eq(schema, &KEY_VALUE) {
        *component = true;
    }
}

/// The fast table says "message" only for fields whose kind is a message; reaching this is a bug in
/// the table, reported as an error rather than a panic.
#[cold]
fn table_out_of_step() -> WireError {
    WireError("internal error: schema table out of step".into())
}

/// The spans of a `ScopeSpans` that follow one another from `pos` (at a [`SCOPE_SPANS_SPANS_KEY`]),
/// each through the span walk, and through the general loop only for what the walk leaves; returns
/// where they end. Spans are most of a request: this spares each the table's dispatch and a call of
/// the general loop (`budget` and `component` as in [`validate_message`]).
fn spans(buf: &[u8], mut pos: usize, budget: usize, component: &mut bool) -> Result<usize, WireError> {
    while buf.get(pos) == Some(&SCOPE_SPANS_SPANS_KEY) {
        pos += 1;
        if budget == 0 {
            return Err(WireError("recursion limit reached".into()));
        }
        let span = read_len(buf, &mut pos)?;
        let walked = plain_span(span, budget - 1, component)?;
        if let Some(rest) = span.get(walked..)
            && !rest.is_empty()
        {
            validate_message(rest, &SPAN, budget - 1, component)?;
        }
        // The SDKs write both ids first, which the walk's first 20 bytes show; any other span has
        // its fields searched for them.
        if span.get(..2) != Some(&[0x0a, 16]) || span.get(18..20) != Some(&[0x12, 8]) {
            ids_present(span, false)?;
        }
    }
    Ok(pos)
}

/// Walks the fields of a span as OpenTelemetry's SDKs write them, in field order: trace and span ids
/// of 16 and 8 bytes, trace state, parent id, name, kind, start and end times, the attributes, then
/// a status without a message and the flags. Each is optional; a field in another form ends the walk,
/// and the general loop takes the rest from where it ended (each field of a message stands or falls
/// on its own, so a valid prefix can be left behind). Returns that position. Straight-line checks of
/// known tags instead of the table's dispatch per field, and numbers among the attributes without
/// descending into them: a sixth fewer instructions per span for the load test's spans, half for
/// the SDKs' (PERF.md; `budget` and `component` as in [`validate_message`]).
#[inline(always)]
fn plain_span(buf: &[u8], budget: usize, component: &mut bool) -> Result<usize, WireError> {
    let mut pos = fixed(buf, 0, &[0x0a, 16], 16); // trace_id
    pos = fixed(buf, pos, &[0x12, 8], 8); // span_id
    pos = ascii_text(buf, pos, 0x1a); // trace_state
    pos = fixed(buf, pos, &[0x22, 8], 8); // parent_span_id
    pos = ascii_text(buf, pos, 0x2a); // name
    if let Some(&[0x30, kind]) = buf.get(pos..pos + 2)
        && kind < 0x80
    {
        pos += 2;
    }
    pos = fixed(buf, pos, &[0x39], 8); // start_time_unix_nano
    pos = fixed(buf, pos, &[0x41], 8); // end_time_unix_nano
    const ATTRIBUTES_KEY: u8 = 0x4a;
    loop {
        pos = plain_attributes(buf, pos, ATTRIBUTES_KEY, budget, component);
        if buf.get(pos) != Some(&ATTRIBUTES_KEY) {
            break;
        }
        let end = plain_number(buf, pos, ATTRIBUTES_KEY, budget, component);
        if end != pos {
            pos = end;
            continue;
        }
        // An attribute in another form (a long text, a list): the general check, then on.
        pos += 1;
        validate_field_message(buf, &mut pos, &KEY_VALUE, budget, component)?;
    }
    // The status, a message (so it needs budget): empty, or a code alone.
    if budget > 0 {
        match buf.get(pos..) {
            Some([0x7a, 0x00, ..]) => pos += 2,
            Some([0x7a, 0x02, 0x18, code, ..]) if *code < 0x80 => pos += 4,
            _ => {}
        }
    }
    Ok(fixed(buf, pos, &[0x85, 0x01], 4)) // flags, the schema's one two-byte key
}

/// A `KeyValue` field with key byte `key` at `pos` whose key is ASCII and whose value is a bool, an
/// integer of up to nine varint bytes or a double, every length in one byte: where it ends, or `pos`
/// (`budget` and `component` as in [`validate_message`]). The attributes between such numbers
/// stay in [`plain_attributes`]'s runs, whose one ASCII check the numbers' bytes would fail.
#[inline(always)]
fn plain_number(buf: &[u8], pos: usize, key: u8, budget: usize, component: &mut bool) -> usize {
    if budget < 2 {
        return pos;
    }
    let Some(&[k, len]) = buf.get(pos..pos + 2) else { return pos };
    let Some(body) = buf.get(pos + 2..pos + 2 + usize::from(len)) else { return pos };
    let [0x0a, key_len, rest @ ..] = body else { return pos };
    let Some((name, [0x12, value_len, value @ ..])) = rest.split_at_checked(usize::from(*key_len)) else {
        return pos;
    };
    let number = match value {
        // A varint of up to nine bytes is valid as it stands; a tenth has a limit prost checks.
        [0x10 | 0x18, varint @ ..] => {
            varint.len() <= 9
                && varint
                    .split_last()
                    .is_some_and(|(last, init)| *last < 0x80 && init.iter().all(|b| b & 0x80 != 0))
        }
        [0x21, bits @ ..] => bits.len() == 8,
        _ => false,
    };
    if k != key || len >= 0x80 || usize::from(*value_len) != value.len() || !number || !is_ascii(name) {
        return pos;
    }
    if name == COMPONENT_KEY {
        *component = true;
    }
    pos + 2 + body.len()
}

/// A field whose key (and length, for a length-delimited one) is `head`, then `size` bytes, at `pos`:
/// where it ends, or `pos` when something else is there.
#[inline(always)]
fn fixed(buf: &[u8], pos: usize, head: &[u8], size: usize) -> usize {
    let end = pos + head.len() + size;
    match buf.get(pos..end) {
        Some(field) if field.starts_with(head) => end,
        _ => pos,
    }
}

/// An ASCII string field with the key byte `key` and a one-byte length at `pos`: where it ends, or
/// `pos`.
#[inline(always)]
fn ascii_text(buf: &[u8], pos: usize, key: u8) -> usize {
    if let Some(&[k, len]) = buf.get(pos..pos + 2)
        && k == key
        && len < 0x80
        && let Some(text) = buf.get(pos + 2..pos + 2 + usize::from(len))
        && is_ascii(text)
    {
        return pos + 2 + text.len();
    }
    pos
}

/// Attributes are most of a span. This checks a run of `KeyValue` fields with key byte `key` from
/// `start` (`budget` as in [`validate_message`]) that have the usual shape, valid as they stand: an
/// ASCII key, then a value holding one ASCII string, every length in one byte. Returns
/// where the run ends: `start` when the first field is not of that shape. Whatever it stops at takes
/// the general path, which gives the verdict, so this can only say yes where the general path would.
/// Sets `component` when one of the run's keys is `component`.
///
/// The shapes are walked first and the texts checked afterwards, in one ASCII check over the whole
/// run (its tags and lengths are below 0x80 too); only when that fails is the run walked again,
/// checking each attribute, to find where it ends.
#[inline(always)]
fn plain_attributes(buf: &[u8], start: usize, key: u8, budget: usize, component: &mut bool) -> usize {
    // Entering the field, then its value (a message): prost needs budget left for both.
    if budget < 2 {
        return start;
    }
    let end = plain_run(buf, start, key, component, |_| true);
    match buf.get(start..end) {
        Some(run) if is_ascii(run) => end,
        _ => plain_run(buf, start, key, component, is_ascii),
    }
}

/// The run of [`plain_attributes`] from `start`, taking only attributes whose body passes `texts`.
#[inline(always)]
fn plain_run(
    buf: &[u8],
    start: usize,
    key: u8,
    component: &mut bool,
    texts: impl Fn(&[u8]) -> bool,
) -> usize {
    let mut pos = start;
    while let Some([k, len @ 0..0x80, rest @ ..]) = buf.get(pos..)
        && *k == key
        && let Some(body) = rest.get(..usize::from(*len))
        && plain_key_value(body)
        && texts(body)
    {
        // The body starts with the key's tag and length: the usual attribute, whose key is not 9
        // bytes long, costs one comparison here.
        if body.get(1) == Some(&(COMPONENT_KEY.len() as u8)) && body.get(2..11) == Some(COMPONENT_KEY) {
            *component = true;
        }
        pos += 2 + body.len();
    }
    pos
}

/// Whether a `KeyValue` body (under 128 bytes) has the shape [`plain_attributes`] describes, its
/// texts aside. In so short a body a length byte that matches what follows it is below 0x80, a
/// length of one byte, so the shape needs no range checks; whether the texts are ASCII (and so
/// UTF-8) is for the caller to check. An empty value (no field set) takes the general path: rare,
/// and one case fewer here is two instructions fewer per attribute.
#[inline(always)]
fn plain_key_value(body: &[u8]) -> bool {
    let [0x0a, key_len, rest @ ..] = body else { return false };
    let Some([0x12, value_len, value @ ..]) = rest.get(usize::from(*key_len)..) else {
        return false;
    };
    let [0x0a, text_len, text @ ..] = value else { return false };
    usize::from(*text_len) == text.len() && usize::from(*value_len) == value.len()
}

/// `<[u8]>::is_ascii` without a loop over single bytes: eight bytes at a time, and the last eight
/// (or four) read again so that no tail is left over. On the short texts the scan checks (strings,
/// runs of attributes) it takes fewer instructions than the standard one, which aligns its reads and
/// handles the ends separately (PERF.md).
#[inline(always)]
pub(super) fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH_BITS_64: u64 = 0x8080_8080_8080_8080;
    const HIGH_BITS_32: u32 = 0x8080_8080;
    let n = bytes.len();
    if n >= 8 {
        let (words, _) = bytes.as_chunks::<8>();
        let last = <[u8; 8]>::try_from(&bytes[n - 8..]).map_or(HIGH_BITS_64, u64::from_ne_bytes);
        let seen = words.iter().fold(last, |seen, w| seen | u64::from_ne_bytes(*w));
        return seen & HIGH_BITS_64 == 0;
    }
    if n >= 4 {
        let half = |w: &[u8]| <[u8; 4]>::try_from(w).map_or(HIGH_BITS_32, u32::from_ne_bytes);
        return (half(&bytes[..4]) | half(&bytes[n - 4..])) & HIGH_BITS_32 == 0;
    }
    bytes.iter().all(u8::is_ascii)
}

/// Skips an unknown field exactly as prost's `skip_field` does, recursion budget included.
fn skip_unknown(buf: &[u8], pos: &mut usize, number: u32, wire: u8, budget: usize) -> Result<(), WireError> {
    if budget == 0 {
        return Err(WireError("recursion limit reached".into()));
    }
    match wire {
        WIRE_VARINT => {
            read_varint(buf, pos)?;
        }
        WIRE_FIXED64 => advance(buf, pos, 8)?,
        WIRE_FIXED32 => advance(buf, pos, 4)?,
        WIRE_LEN => {
            read_len(buf, pos)?;
        }
        WIRE_START_GROUP => loop {
            let (inner, inner_wire) = read_key(buf, pos)?;
            if inner_wire == WIRE_END_GROUP {
                if inner != number {
                    return Err(WireError("unexpected end group tag".into()));
                }
                break;
            }
            skip_unknown(buf, pos, inner, inner_wire, budget - 1)?;
        },
        _ => return Err(WireError("unexpected end group tag".into())),
    }
    Ok(())
}

/// Reads a key with prost's checks, in prost's order.
#[inline]
fn read_key(buf: &[u8], pos: &mut usize) -> Result<(u32, u8), WireError> {
    let key = read_varint(buf, pos)?;
    if key > u64::from(u32::MAX) {
        return Err(WireError(format!("invalid key value: {key}")));
    }
    let wire = (key & 7) as u8;
    if wire > WIRE_FIXED32 {
        return Err(WireError(format!("invalid wire type value: {wire}")));
    }
    let number = (key >> 3) as u32;
    if number == 0 {
        return Err(WireError("invalid tag value: 0".into()));
    }
    Ok((number, wire))
}

/// A length-delimited field's body at `*pos`.
#[inline]
fn read_len<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], WireError> {
    let (len, start) = read_length(buf, *pos)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let Some(body) = buf.get(start..).and_then(|rest| rest.get(..len)) else {
        return Err(WireError("buffer underflow: a field is truncated".into()));
    };
    *pos = start + len;
    Ok(body)
}

fn advance(buf: &[u8], pos: &mut usize, n: usize) -> Result<(), WireError> {
    if buf.len() - *pos < n {
        return Err(WireError("buffer underflow: a field is truncated".into()));
    }
    *pos += n;
    Ok(())
}
