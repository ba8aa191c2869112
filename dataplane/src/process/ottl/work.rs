//! A request as OTTL statements change it: each resource, scope, span and span event keeps its encoded
//! bytes and records only the fields a statement wrote. Turning it back into a [`TraceData`]
//! re-encodes exactly the messages that changed; everything else stays a slice of the received buffer.

use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;
use std::sync::Arc;

use ottl::bind::LiteralWrite;
use ottl::value::Value;
use smallvec::SmallVec;

use super::codec::{key_value_len, put_key_value, put_map};
use crate::buffer::BufferPool;
use crate::wire::view::{field, len_fields};
use crate::wire::{
    Fields, ResourceSpansView, ScopeSpansView, TraceData, WIRE_FIXED64, WIRE_VARINT, len_field_size,
    put_len_header, put_varint,
};

/// A request being processed; `'k` is the received request's and the pipeline's [`SpanKeys`].
pub struct Work<'k> {
    pub resources: Vec<WorkResource<'k>>,
    /// From the original request, kept for the rebuilt one.
    encoded_len: usize,
    no_component_key: bool,
}

/// One `ResourceSpans`.
pub struct WorkResource<'k> {
    pub state: ResourceState,
    pub scopes: Vec<WorkScope<'k>>,
}

/// A resource's own fields.
pub struct ResourceState {
    pub view: ResourceSpansView,
    /// The attributes as written by a statement; `None` while untouched.
    pub attributes: Option<Vec<(String, Value)>>,
    pub dropped_attributes_count: Option<u32>,
    pub schema_url: Option<String>,
    /// The last key looked up among the received attributes and where its `KeyValue` is (part 0:
    /// the resource, 1: what enrichment added; byte range in it). Every span of a resource asks for
    /// the same keys, so the search runs once per resource rather than once per span.
    pub last_lookup: Option<(String, Option<Place>)>,
}

/// Where a received `KeyValue` is: the part (0: the resource, 1: what enrichment added), its start
/// and its length in bytes.
pub type Place = (usize, usize, usize);

/// One `ScopeSpans`.
pub struct WorkScope<'k> {
    pub state: ScopeState,
    pub spans: Vec<WorkSpan<'k>>,
}

/// A scope's own fields.
pub struct ScopeState {
    pub view: ScopeSpansView,
    pub name: Option<String>,
    pub version: Option<String>,
    pub attributes: Option<Vec<(String, Value)>>,
    pub dropped_attributes_count: Option<u32>,
    pub schema_url: Option<String>,
}

/// One span: its encoding (a slice of the received request) and what statements wrote.
pub struct WorkSpan<'k> {
    pub bytes: &'k [u8],
    /// Single attributes written while the map as a whole was not (`set(span.attributes["k"], v)`,
    /// the usual statement), each with the byte range of the received attribute it replaces (the
    /// first with its key) or `None` for a new key, which goes last: neither the map nor the other
    /// attributes are decoded, and the span is encoded by splicing. Held here rather than in the
    /// boxed `edits`, so the usual statement allocates no edits; empty whenever the edits hold the
    /// attributes whole (`attributes` or `attribute_slots`).
    pub puts: SmallVec<[AttrPut<'k>; 1]>,
    pub edits: Option<Box<SpanEdits>>,
    /// Dropped by a filter.
    pub dropped: bool,
    /// Whether `index` has been built: on first read, in place (no copy of it is made).
    indexed: bool,
    /// Where its received fields are.
    index: SpanIndex,
    /// The attribute keys the index looks for.
    keys: &'k SpanKeys,
}

/// The span attribute keys a pipeline's statements and conditions name literally
/// (`span.attributes["k"]`): a span's index finds all of them in its one pass over the attributes,
/// so that each later read, write or comparison of one goes straight to it. Other keys are searched
/// for when read.
#[derive(Debug)]
pub struct SpanKeys {
    keys: Vec<Arc<str>>,
    /// The strings the keys were made from (each path's own), with the key's position: statements
    /// pass these, and an address compares faster than text.
    aliases: Vec<(Arc<str>, usize)>,
    /// Entry `n` set when some key is `n` bytes long: most attributes are passed over on their key's
    /// length alone. Keys of 128 bytes or more are not indexed.
    lengths: [bool; 128],
    /// The pipeline's literal writes (`set(span.attributes["k"], "v")`), each with its key's
    /// position among the keys: a span that takes one borrows it from here, for as long as the
    /// request is processed, rather than sharing it by reference count (two atomic operations per
    /// span), and finds the attribute it replaces without looking the key up.
    literals: Vec<(Arc<LiteralWrite>, Option<usize>)>,
}

/// Keys a span's index looks for at most: beyond, each is searched for when read.
pub const MAX_INDEXED_KEYS: usize = 8;

/// `Span.attributes` (field 9, length-delimited) as a one-byte key.
const ATTRIBUTES_KEY: u8 = (field::span::ATTRIBUTES as u8) << 3 | crate::wire::WIRE_LEN;
/// `KeyValue.key` (field 1, length-delimited).
const KEY_KEY: u8 = 1 << 3 | crate::wire::WIRE_LEN;
/// The first four bytes of an attribute in the usual form, `len` and `key_len` masked out: its key,
/// a one-byte length, the key's key and a one-byte length.
const USUAL_ATTRIBUTE: u32 = u32::from_le_bytes([ATTRIBUTES_KEY, 0, KEY_KEY, 0]);
/// What of an attribute's first four bytes must equal [`USUAL_ATTRIBUTE`]: the keys and the lengths'
/// continuation bits.
const USUAL_ATTRIBUTE_MASK: u32 = u32::from_le_bytes([0xff, 0x80, 0xff, 0x80]);

/// `Span.flags` (field 16, fixed32) as its two-byte key.
const FLAGS_KEY_LOW: u8 = ((field::span::FLAGS as u8) << 3 | crate::wire::WIRE_FIXED32) | 0x80;
const FLAGS_KEY_HIGH: u8 = (field::span::FLAGS >> 4) as u8;

// The shape of a field with a one-byte key by its wire type, as the span index reads it inline:
// varint (one byte), fixed64, length-delimited (one-byte length), groups (not inline), fixed32.
/// Bytes from the field's start to its value: 0 for a wire type not read inline.
const HEADER_BYTES: [u8; 8] = [1, 1, 2, 0, 0, 1, 0, 0];
/// The value's size, apart from a length-delimited field's length.
const VALUE_BYTES: [u8; 8] = [1, 8, 0, 0, 0, 4, 0, 0];
/// What of the byte after the key adds to the value's size: all of it for a length.
const LENGTH_MASK: [u8; 8] = [0, 0, 0xff, 0, 0, 0, 0, 0];
/// Whether the byte after the key must be below 0x80 (a one-byte varint or length).
const NEEDS_SHORT_NEXT: [bool; 8] = [true, false, true, false, false, false, false, false];

/// Where a span's received fields are, found in one pass, so that a later read of a field goes
/// straight to it instead of walking the span again. Attributes are not listed one by one: a span
/// has many and a statement group reads few, so a lookup searches the stretch of the span that holds
/// them, comparing key lengths before bytes. Positions are `u32` (a span is at most a request, far
/// below 4 GiB); building the index allocates nothing, and it is built where it stays.
#[derive(Debug, Default)]
pub struct SpanIndex {
    /// Value range of the last occurrence of each field number up to 16 (the last one wins in a
    /// decoder), `(0, 0)` for none (a value never ends at 0: its key comes first); repeated fields
    /// (attributes, events, links) are not kept here. Plain pairs rather than options keep the
    /// index small: it is built and moved once per span read.
    last: [(u32, u32); 17],
    /// From the first attribute field's start to the last one's end (other fields may lie between).
    attributes: Option<(u32, u32)>,
    /// The byte range of the first attribute field with each of the pipeline's [`SpanKeys`], by the
    /// key's position there; `(0, 0)` for none.
    found: [(u32, u32); MAX_INDEXED_KEYS],
}

/// One received attribute field.
#[derive(Clone, Copy, Debug)]
pub struct IndexedAttribute {
    pub start: usize,
    pub end: usize,
    pub key_start: usize,
    pub key_end: usize,
}

/// The fields of a span that statements wrote.
#[derive(Default)]
pub struct SpanEdits {
    pub trace_id: Option<Vec<u8>>,
    pub span_id: Option<Vec<u8>>,
    pub parent_span_id: Option<Vec<u8>>,
    pub trace_state: Option<String>,
    pub name: Option<String>,
    pub kind: Option<i32>,
    pub start_time_unix_nano: Option<u64>,
    pub end_time_unix_nano: Option<u64>,
    pub attributes: Option<Vec<(String, Value)>>,
    /// The attributes as slots, once a statement removed a single key (`delete_key`): a removal moves
    /// the last attribute into the hole, so positions must be tracked (the span's single writes join
    /// them then). `None` whenever `attributes` is set.
    pub attribute_slots: Option<Vec<AttrSlot>>,
    pub dropped_attributes_count: Option<u32>,
    pub dropped_events_count: Option<u32>,
    pub dropped_links_count: Option<u32>,
    pub status_message: Option<String>,
    pub status_code: Option<i32>,
    /// The events, once a span event statement has run on this span.
    pub events: Option<Vec<WorkEvent>>,
}

/// A single attribute written over the received ones.
#[derive(Clone, Debug)]
pub struct AttrPut<'k> {
    /// Borrowed from the pipeline's [`SpanKeys`] or the statement's [`LiteralWrite`] when it is one
    /// of theirs: no copy per span.
    pub key: Cow<'k, str>,
    pub value: PutValue<'k>,
    /// The received attribute field it replaces.
    pub replaces: Option<(usize, usize)>,
}

/// The value of an [`AttrPut`].
#[derive(Clone, Debug)]
pub enum PutValue<'k> {
    /// Computed by a statement for this span.
    Owned(Value),
    /// A statement's literal (`set(span.attributes["k"], "v")`), shared by every span it is written
    /// to and encoded once for all of them.
    Literal(&'k LiteralWrite),
}

/// One attribute of a span whose attributes are edited key by key.
#[derive(Clone, Debug)]
pub enum AttrSlot {
    /// A received attribute: the byte range of its whole field in the span, and its key.
    Received { start: usize, end: usize, key_start: usize, key_end: usize },
    /// One a statement wrote.
    Written(String, Value),
}

/// One span event: its encoding and what statements wrote.
pub struct WorkEvent {
    pub bytes: Bytes,
    pub time_unix_nano: Option<u64>,
    pub name: Option<String>,
    pub attributes: Option<Vec<(String, Value)>>,
    pub dropped_attributes_count: Option<u32>,
    pub dropped: bool,
}

// === impl Work ===

impl<'k> Work<'k> {
    /// A request ready for statements; nothing is copied but the views.
    pub fn new(data: &'k TraceData, keys: &'k SpanKeys) -> Self {
        let resources = data
            .resources
            .iter()
            .map(|rs| WorkResource {
                state: ResourceState::new(rs.clone()),
                scopes: rs
                    .scopes
                    .iter()
                    .map(|scope| WorkScope {
                        spans: work_spans(scope, keys),
                        state: ScopeState::new(scope.clone()),
                    })
                    .collect(),
            })
            .collect();
        Self { resources, encoded_len: data.encoded_len, no_component_key: data.no_component_key }
    }

    /// Whether any statement or filter changed anything.
    pub fn changed(&self) -> bool {
        self.resources.iter().any(|r| {
            r.state.changed()
                || r.scopes
                    .iter()
                    .any(|s| s.state.changed() || s.spans.iter().any(|sp| sp.dropped || sp.changed()))
        })
    }

    /// Removes scopes without spans and resources without scopes, as the Collector's filter does;
    /// returns whether anything was removed.
    pub fn remove_empty(&mut self) -> bool {
        let before: usize = self.resources.iter().map(|r| 1 + r.scopes.len()).sum();
        for r in &mut self.resources {
            r.scopes.retain(|s| s.spans.iter().any(|sp| !sp.dropped));
        }
        self.resources.retain(|r| !r.scopes.is_empty());
        let after: usize = self.resources.iter().map(|r| 1 + r.scopes.len()).sum();
        after != before
    }

    /// The request as changed; the scopes whose spans changed are written into buffers of `pool`.
    pub fn into_trace_data(self, pool: &Arc<BufferPool>) -> TraceData {
        let mut data = TraceData {
            resources: Vec::with_capacity(self.resources.len()),
            spans: 0,
            encoded_len: self.encoded_len,
            no_component_key: self.no_component_key,
        };
        for r in self.resources {
            let mut view = r.state.rebuild();
            view.scopes = r.scopes.into_iter().map(|scope| scope.rebuild(pool)).collect();
            view.spans = view.scopes.iter().map(|s| s.count).sum();
            data.spans += view.spans;
            data.resources.push(view);
        }
        data
    }
}

// === impl WorkSpan ===

impl<'k> WorkSpan<'k> {
    /// A received span, nothing written yet.
    pub fn new(bytes: &'k [u8], keys: &'k SpanKeys) -> Self {
        Self {
            bytes,
            puts: SmallVec::new(),
            edits: None,
            dropped: false,
            indexed: false,
            index: SpanIndex::default(),
            keys,
        }
    }

    /// Where the received fields are.
    #[inline]
    pub fn index(&mut self) -> &SpanIndex {
        if !self.indexed {
            self.build_index();
        }
        &self.index
    }

    /// Builds the index; apart, so that its readers (small, called per span) carry no call.
    #[cold]
    #[inline(never)]
    fn build_index(&mut self) {
        self.index.fill(self.bytes, self.keys);
        self.indexed = true;
    }

    /// [`Self::index`] beside the span's edits.
    pub fn index_and_edits(&mut self) -> (&SpanIndex, Option<&SpanEdits>) {
        self.index();
        (&self.index, self.edits.as_deref())
    }

    /// Whether a statement wrote anything to the span.
    pub fn changed(&self) -> bool {
        self.edits.is_some() || !self.puts.is_empty()
    }

    /// The pipeline's attribute keys.
    pub fn keys(&self) -> &'k SpanKeys {
        self.keys
    }

    /// The byte range of the first received attribute field with `key`.
    #[inline]
    pub fn attribute(&mut self, key: &str) -> Option<(usize, usize)> {
        let position = self.keys.position(key);
        self.attribute_at(position, key)
    }

    /// [`Self::attribute`] for a key whose position among the pipeline's keys is known (`None`:
    /// not one of them).
    #[inline]
    pub fn attribute_at(&mut self, position: Option<usize>, key: &str) -> Option<(usize, usize)> {
        let bytes = self.bytes;
        let index = self.index();
        match position {
            Some(i) => {
                index.found.get(i).filter(|a| a.1 != 0).map(|&(start, end)| (start as usize, end as usize))
            }
            None => index.search(bytes, key).map(|a| (a.start, a.end)),
        }
    }
}

// === impl PutValue ===

impl PutValue<'_> {
    pub fn get(&self) -> &Value {
        match self {
            Self::Owned(value) => value,
            Self::Literal(write) => &write.value,
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Self::Owned(value) => value,
            Self::Literal(write) => write.value.clone(),
        }
    }
}

// === impl AttrPut ===

impl AttrPut<'_> {
    /// Encoded size as a span's attribute field.
    pub fn field_len(&self) -> usize {
        match &self.value {
            PutValue::Owned(value) => {
                len_field_size(field::span::ATTRIBUTES, key_value_len(&self.key, value))
            }
            PutValue::Literal(write) => literal_field(write).len(),
        }
    }

    /// Writes it as a span's attribute field.
    pub fn put(&self, out: &mut impl BufMut) {
        match &self.value {
            PutValue::Owned(value) => put_key_value(out, field::span::ATTRIBUTES, &self.key, value),
            PutValue::Literal(write) => out.put_slice(literal_field(write)),
        }
    }
}

// === impl SpanKeys ===

impl Default for SpanKeys {
    /// No keys: every attribute is searched for when read.
    fn default() -> Self {
        Self { keys: Vec::new(), aliases: Vec::new(), lengths: [false; 128], literals: Vec::new() }
    }
}

impl SpanKeys {
    /// The literal span attribute keys of a pipeline's processing (the first
    /// [`MAX_INDEXED_KEYS`] of fewer than 128 bytes), each path's string known by its address.
    pub fn of(processing: &tracegw_contract::processing::Processing) -> Self {
        let target = ottl::context::Target::Span(ottl::context::SpanField::Attributes);
        let mut keys = Self::shared_keys(
            processing
                .transforms
                .iter()
                .flat_map(|g| g.literal_keys(target))
                .chain(processing.filters.iter().flat_map(|g| g.literal_keys(target)))
                .cloned(),
        );
        keys.literals = processing
            .transforms
            .iter()
            .flat_map(|g| &g.statements)
            .filter_map(|s| s.literal_write.clone())
            .map(|write| {
                let position = keys.position(&write.key);
                (write, position)
            })
            .collect();
        keys
    }

    /// `write` as the pipeline's own, borrowed for as long as the keys are, with its key's position
    /// among the keys; `None` when it is not one of the pipeline's statements.
    pub fn literal(&self, write: &Arc<LiteralWrite>) -> Option<(&LiteralWrite, Option<usize>)> {
        self.literals
            .iter()
            .find(|(own, _)| Arc::ptr_eq(own, write))
            .map(|(own, position)| (&**own, *position))
    }

    /// These keys (the first [`MAX_INDEXED_KEYS`] of fewer than 128 bytes, each once).
    pub fn new<'a>(named: impl IntoIterator<Item = &'a str>) -> Self {
        Self::shared_keys(named.into_iter().map(Arc::from))
    }

    /// These keys, each string kept (and known again by its address) and each text indexed once.
    fn shared_keys(named: impl IntoIterator<Item = Arc<str>>) -> Self {
        let mut keys: Vec<Arc<str>> = Vec::new();
        let mut aliases = Vec::new();
        for key in named {
            let at = match keys.iter().position(|k| *k == key) {
                Some(at) => at,
                None if key.len() < 128 && keys.len() < MAX_INDEXED_KEYS => {
                    keys.push(Arc::clone(&key));
                    keys.len() - 1
                }
                None => continue,
            };
            if !aliases.iter().any(|(alias, _): &(Arc<str>, usize)| Arc::ptr_eq(alias, &key)) {
                aliases.push((key, at));
            }
        }
        let mut lengths = [false; 128];
        for key in &keys {
            if let Some(wanted) = lengths.get_mut(key.len()) {
                *wanted = true;
            }
        }
        Self { keys, aliases, lengths, literals: Vec::new() }
    }

    /// Where `key` is among the keys: found by address when it is one of the strings the keys were
    /// made from (what statements pass), else by its text.
    pub fn position(&self, key: &str) -> Option<usize> {
        // The aliases are alive as long as `self`, so an equal address is the same string.
        if let Some(&(_, at)) = self
            .aliases
            .iter()
            .find(|(alias, _)| std::ptr::eq(alias.as_ptr(), key.as_ptr()) && alias.len() == key.len())
        {
            return Some(at);
        }
        self.position_by_text(key)
    }

    /// [`Self::position`] of a string that is none of the aliases.
    #[inline(never)]
    fn position_by_text(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.len() == key.len() && **k == *key)
    }

    /// `key`, found at `position` among the keys ([`Self::position`]), borrowed from the pipeline's
    /// own when it is one of them, else a copy.
    pub fn shared(&self, position: Option<usize>, key: &str) -> Cow<'_, str> {
        match position.and_then(|i| self.keys.get(i)) {
            Some(own) => Cow::Borrowed(&**own),
            None => Cow::Owned(key.to_string()),
        }
    }
}

// === impl SpanIndex ===

impl SpanIndex {
    /// Indexes a span in one pass, in place: `self` is empty (as `Default` makes it). A field with
    /// a one-byte key and length, and a run of attributes in the usual form, are read inline;
    /// anything else through the general reader.
    ///
    /// Out of line: its callers are small and called per span, and should not carry its frame.
    #[inline(never)]
    pub fn fill(&mut self, span: &[u8], keys: &SpanKeys) {
        let len = span.len();
        let mut pos = self.plain_head(span);
        // The stretch of the attributes: the first one's start (`usize::MAX` for none yet), the
        // last one's end.
        let (mut first_attribute, mut attributes_end) = (usize::MAX, 0);
        while let Some(&key) = span.get(pos) {
            if key == ATTRIBUTES_KEY {
                // A run of attributes in the usual form, each told by its first four bytes read as
                // one word and passed over on its key's length unless that is the length of a key
                // looked for.
                let run_start = pos;
                while let Some(word) = span.get(pos..pos + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
                    let word = u32::from_le_bytes(word);
                    // Both lengths are below 0x80 when the mask matches.
                    let field_len = (word >> 8 & 0xff) as usize;
                    let end = pos + 2 + field_len;
                    if word & USUAL_ATTRIBUTE_MASK != USUAL_ATTRIBUTE || end > len {
                        break;
                    }
                    // `& 0x7f` changes nothing (the mask checked it) but spares a bounds check.
                    let key_len = (word >> 24 & 0x7f) as usize;
                    if keys.lengths[key_len] {
                        // A key longer than its attribute is read as the general reader reads it.
                        if key_len + 2 > field_len {
                            break;
                        }
                        self.found_key(span, keys, pos, pos + 4, pos + 4 + key_len, end);
                    }
                    pos = end;
                }
                if pos != run_start {
                    first_attribute = first_attribute.min(run_start);
                    attributes_end = pos;
                    continue;
                }
            } else if (0x08..0x80).contains(&key) {
                // Any other field with a one-byte key: its value's range from tables by wire type,
                // without a jump per type (a span's fields change type from one to the next, which
                // a jump would mispredict).
                let wire = usize::from(key & 7);
                let next = span.get(pos + 1).copied().unwrap_or(0x80);
                let short = next < 0x80 || !NEEDS_SHORT_NEXT[wire];
                let value_start = pos + usize::from(HEADER_BYTES[wire]);
                let end =
                    value_start + usize::from(VALUE_BYTES[wire]) + usize::from(next & LENGTH_MASK[wire]);
                if short && HEADER_BYTES[wire] != 0 && end <= len {
                    if let Some(slot) = self.last.get_mut(usize::from(key >> 3)) {
                        *slot = (value_start as u32, end as u32);
                    }
                    pos = end;
                    continue;
                }
            } else if let [FLAGS_KEY_LOW, FLAGS_KEY_HIGH, ..] = span[pos..] {
                // `Span.flags`, which the SDKs write: the one field with a two-byte key.
                let end = pos + 6;
                if end <= len {
                    self.last[field::span::FLAGS as usize] = (pos as u32 + 2, end as u32);
                    pos = end;
                    continue;
                }
            }
            // Anything else (an attribute in another form; a longer key, length or varint; a group)
            // through the general reader.
            let Some((end, attribute)) = self.general_field(span, keys, pos) else { break };
            if attribute {
                first_attribute = first_attribute.min(pos);
                attributes_end = end;
            }
            pos = end;
        }
        if first_attribute != usize::MAX {
            self.attributes = Some((first_attribute as u32, attributes_end as u32));
        }
    }

    /// Indexes the fields ahead of the attributes when they come as the SDKs write them (ids, trace
    /// state, parent id, name, kind, start and end time, in field order, each with a one-byte key
    /// and length): each is checked for where it is expected, a test the branch predictor gets right
    /// for every span of a request, instead of being told apart by its key. Returns where it
    /// stopped: the first field out of that order, which [`Self::fill`] goes on from.
    #[inline(always)]
    fn plain_head(&mut self, span: &[u8]) -> usize {
        use crate::wire::{WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};
        use field::span::*;
        let mut pos = 0;
        // Each step takes one field when it is there in its usual form, and leaves `pos` otherwise.
        let mut take = |number: u32, wire: u8| -> bool {
            let key = (number as u8) << 3 | wire;
            let (Some(&at), Some(&next)) = (span.get(pos), span.get(pos + 1)) else { return false };
            let (value_start, end) = match wire {
                WIRE_FIXED64 => (pos + 1, pos + 9),
                WIRE_VARINT => (pos + 1, pos + 2),
                _ => (pos + 2, pos + 2 + usize::from(next)),
            };
            if at != key || (wire != WIRE_FIXED64 && next >= 0x80) || end > span.len() {
                return false;
            }
            self.last[number as usize] = (value_start as u32, end as u32);
            pos = end;
            true
        };
        let _ = take(TRACE_ID, WIRE_LEN)
            && take(SPAN_ID, WIRE_LEN)
            && {
                // Both optional: a root span has no parent id, and most spans no trace state.
                take(TRACE_STATE, WIRE_LEN);
                take(PARENT_SPAN_ID, WIRE_LEN);
                take(NAME, WIRE_LEN)
            }
            && take(KIND, WIRE_VARINT)
            && take(START_TIME_UNIX_NANO, WIRE_FIXED64)
            && take(END_TIME_UNIX_NANO, WIRE_FIXED64);
        pos
    }

    /// [`Self::fill`] for a field it does not read inline: where the field ends and whether it is an
    /// attribute, `None` when the rest does not parse. Out of the loop, which rarely calls it, so
    /// that the loop keeps its state in registers.
    #[cold]
    #[inline(never)]
    fn general_field(&mut self, span: &[u8], keys: &SpanKeys, pos: usize) -> Option<(usize, bool)> {
        let f = Fields::at(span, pos).next_field().ok()??;
        if f.number == field::span::ATTRIBUTES && f.wire == crate::wire::WIRE_LEN {
            let (key_start, key_end) = key_range(span, f.value_start, f.end);
            self.found_key(span, keys, pos, key_start, key_end, f.end);
            return Some((f.end, true));
        }
        if let Some(slot) = self.last.get_mut(f.number as usize) {
            *slot = (f.value_start as u32, f.end as u32);
        }
        Some((f.end, false))
    }

    /// The value bytes of the last occurrence of field `number`.
    pub fn value<'a>(&self, span: &'a [u8], number: u32) -> Option<&'a [u8]> {
        let (start, end) = *self.last.get(number as usize).filter(|(_, end)| *end != 0)?;
        span.get(start as usize..end as usize)
    }

    /// The received attribute fields, in order.
    pub fn attributes<'a>(&self, span: &'a [u8]) -> impl Iterator<Item = IndexedAttribute> + 'a {
        let (start, end) = self.attributes.map_or((0, 0), |(s, e)| (s as usize, e as usize));
        let stretch = span.get(start..end).unwrap_or_default();
        let mut fields = Fields::new(stretch);
        std::iter::from_fn(move || fields.next_field().ok().flatten())
            .filter(|f| f.number == field::span::ATTRIBUTES && f.wire == crate::wire::WIRE_LEN)
            .map(move |f| {
                let (key_start, key_end) = key_range(span, start + f.value_start, start + f.end);
                IndexedAttribute { start: start + f.start, end: start + f.end, key_start, key_end }
            })
    }

    /// Keeps the attribute field at `start..end`, whose key lies at `key_start..key_end`, when the
    /// key is one of `keys` not seen before. Out of the index's loop, which rarely calls it.
    #[inline(never)]
    fn found_key(
        &mut self,
        span: &[u8],
        keys: &SpanKeys,
        start: usize,
        key_start: usize,
        key_end: usize,
        end: usize,
    ) {
        let key = &span[key_start..key_end];
        for (slot, wanted) in self.found.iter_mut().zip(&keys.keys) {
            if slot.1 == 0 && wanted.as_bytes() == key {
                *slot = (start as u32, end as u32);
            }
        }
    }

    /// The first attribute with `key`, searched for. Attributes with a one-byte length whose key
    /// comes first are compared where they lie, the length of the key first; anything else as
    /// [`Self::attributes`] reads it.
    fn search(&self, span: &[u8], key: &str) -> Option<IndexedAttribute> {
        let (start, end) = self.attributes?;
        let (mut pos, end) = (start as usize, end as usize);
        let stretch = span.get(..end)?;
        let key = key.as_bytes();
        while pos < end {
            // The usual attribute: one-byte length, then its key with a one-byte length.
            if let Some(&[ATTRIBUTES_KEY, len, KEY_KEY, key_len]) = stretch.get(pos..pos + 4)
                && len < 0x80
                && key_len < 0x80
            {
                let next = pos + 2 + usize::from(len);
                if key_len + 2 <= len && next <= end {
                    if usize::from(key_len) == key.len()
                        && stretch.get(pos + 4..pos + 4 + key.len()) == Some(key)
                    {
                        let key_start = pos + 4;
                        return Some(IndexedAttribute {
                            start: pos,
                            end: next,
                            key_start,
                            key_end: key_start + key.len(),
                        });
                    }
                    pos = next;
                    continue;
                }
            }
            // Another field between attributes, or an attribute in another form.
            let f = Fields::at(stretch, pos).next_field().ok()??;
            if f.number == field::span::ATTRIBUTES && f.wire == crate::wire::WIRE_LEN {
                let (key_start, key_end) = key_range(stretch, f.value_start, f.end);
                if &stretch[key_start..key_end] == key {
                    return Some(IndexedAttribute { start: f.start, end: f.end, key_start, key_end });
                }
            }
            pos = f.end;
        }
        None
    }
}

// === impl ResourceState ===

impl ResourceState {
    /// A received resource, nothing written yet.
    pub fn new(view: ResourceSpansView) -> Self {
        Self { view, attributes: None, dropped_attributes_count: None, schema_url: None, last_lookup: None }
    }

    /// The received attribute `key` (the resource's own first, then what enrichment added).
    pub fn received_attribute(&mut self, key: &str) -> Option<crate::wire::view::KeyValueView<'_>> {
        let parts = [&self.view.resource, &self.view.added];
        let place = match &self.last_lookup {
            Some((last, place)) if last == key => *place,
            _ => {
                let place = parts.iter().enumerate().find_map(|(i, part)| {
                    crate::wire::view::len_fields(part, field::resource::ATTRIBUTES)
                        .find(|kv| key_of(kv) == key)
                        .map(|kv| (i, kv.as_ptr() as usize - part.as_ptr() as usize, kv.len()))
                });
                self.last_lookup = Some((key.to_string(), place));
                place
            }
        };
        let (part, start, len) = place?;
        let part = if part == 0 { &self.view.resource } else { &self.view.added };
        Some(crate::wire::view::KeyValueView::parse(&part[start..start + len]))
    }

    fn changed(&self) -> bool {
        self.attributes.is_some() || self.dropped_attributes_count.is_some() || self.schema_url.is_some()
    }

    /// The `ResourceSpans` view with the written fields encoded; scopes are set by the caller.
    fn rebuild(self) -> ResourceSpansView {
        let mut view = self.view;
        if self.attributes.is_some() || self.dropped_attributes_count.is_some() {
            // Attributes replace both the original ones and what enrichment appended.
            let attrs = self.attributes.as_deref();
            let mut out = BytesMut::with_capacity(view.resource.len() + view.added.len());
            for part in [&view.resource, &view.added] {
                copy_fields_except(part, &mut out, |number| {
                    (number == field::resource::ATTRIBUTES && attrs.is_some())
                        || (number == field::resource::DROPPED_ATTRIBUTES_COUNT
                            && self.dropped_attributes_count.is_some())
                });
            }
            if let Some(attrs) = attrs {
                put_map(&mut out, attrs, field::resource::ATTRIBUTES);
            }
            if let Some(n) = self.dropped_attributes_count {
                put_varint_field(&mut out, field::resource::DROPPED_ATTRIBUTES_COUNT, u64::from(n));
            }
            view.resource = out.freeze();
            view.added = Bytes::new();
            view.has_resource = true;
        }
        if let Some(url) = self.schema_url {
            view.rest.retain(|f| field_number(f) != Some(field::resource_spans::SCHEMA_URL));
            let mut out = BytesMut::new();
            put_string_field(&mut out, field::resource_spans::SCHEMA_URL, &url);
            view.rest.push(out.freeze());
        }
        view
    }
}

// === impl ScopeState ===

impl ScopeState {
    /// A received scope, nothing written yet.
    pub fn new(view: ScopeSpansView) -> Self {
        Self {
            view,
            name: None,
            version: None,
            attributes: None,
            dropped_attributes_count: None,
            schema_url: None,
        }
    }

    fn changed(&self) -> bool {
        self.name.is_some()
            || self.version.is_some()
            || self.attributes.is_some()
            || self.dropped_attributes_count.is_some()
            || self.schema_url.is_some()
    }

    /// The encoded `InstrumentationScope` content (merged from every occurrence of the field, which
    /// may stand before or after the span run).
    pub fn scope_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [self.non_span_bytes(), self.tail_bytes()] {
            for scope in len_fields(part, field::scope_spans::SCOPE) {
                out.extend_from_slice(scope);
            }
        }
        out
    }

    /// The `ScopeSpans.schema_url` as received.
    pub fn original_schema_url(&self) -> String {
        let mut url = String::new();
        for part in [self.non_span_bytes(), self.tail_bytes()] {
            for raw in len_fields(part, field::scope_spans::SCHEMA_URL) {
                url = String::from_utf8_lossy(raw).into_owned();
            }
        }
        url
    }

    /// The scope's body without its span run.
    fn non_span_bytes(&self) -> &[u8] {
        // The run sits in the middle; the fields around it never include spans.
        &self.view.body[..self.view.spans_start]
    }

    /// The fields after the span run.
    fn tail_bytes(&self) -> &[u8] {
        &self.view.body[self.view.spans_end..]
    }
}

// === impl WorkScope ===

impl WorkScope<'_> {
    /// The scope as changed, written into a buffer of `pool`: a rebuilt scope is as large as the
    /// request's share of it, and a buffer used before is in cache and faulted in already, where a
    /// fresh allocation of that size would come as new pages.
    fn rebuild(self, pool: &Arc<BufferPool>) -> ScopeSpansView {
        let spans_changed = self.spans.iter().any(|s| s.dropped || s.changed());
        if !spans_changed && !self.state.changed() {
            return self.state.view;
        }
        let state = &self.state;
        // The length of each span spliced with its single writes (the usual change), worked out once
        // for the room the body needs and for the span's header; spans encoded anew get an allowance
        // instead, so the body is not reallocated (and copied) as it grows.
        let spliced: Vec<usize> = self
            .spans
            .iter()
            .map(|span| match span.edits {
                None if !span.dropped => spliced_len(span.bytes, &span.puts),
                _ => 0,
            })
            .collect();
        let growth: usize = self
            .spans
            .iter()
            .zip(&spliced)
            .filter(|(span, _)| span.changed())
            .map(|(span, spliced)| match span.edits {
                None => spliced.saturating_sub(span.bytes.len()) + 5,
                Some(_) => span.bytes.len() / 2 + 64,
            })
            .sum();
        let mut buf = pool.take(state.view.body.len() + growth + 64);
        let out = buf.as_mut_vec();
        let scope_changed = state.name.is_some()
            || state.version.is_some()
            || state.attributes.is_some()
            || state.dropped_attributes_count.is_some();
        for part in [state.non_span_bytes(), state.tail_bytes()] {
            copy_fields_except(part, out, |number| {
                (number == field::scope_spans::SCOPE && scope_changed)
                    || (number == field::scope_spans::SCHEMA_URL && state.schema_url.is_some())
            });
        }
        if scope_changed {
            let scope = encode_scope(state);
            put_len_header(out, field::scope_spans::SCOPE, scope.len());
            out.extend_from_slice(&scope);
        }
        if let Some(url) = &state.schema_url {
            put_string_field(out, field::scope_spans::SCHEMA_URL, url);
        }
        let spans_start = out.len();
        let mut count = 0;
        for (span, &spliced) in self.spans.iter().zip(&spliced) {
            if span.dropped {
                continue;
            }
            count += 1;
            match &span.edits {
                None if span.puts.is_empty() => {
                    put_len_header(out, field::scope_spans::SPANS, span.bytes.len());
                    out.extend_from_slice(span.bytes);
                }
                None => {
                    put_len_header(out, field::scope_spans::SPANS, spliced);
                    splice_attribute_puts(span.bytes, &span.puts, out);
                }
                Some(edits) => {
                    let encoded = encode_span(span.bytes, edits, &span.puts);
                    put_len_header(out, field::scope_spans::SPANS, encoded.len());
                    out.extend_from_slice(&encoded);
                }
            }
        }
        let spans_end = out.len();
        ScopeSpansView { body: buf.freeze(), spans_start, spans_end, count }
    }
}

// === free functions ===

/// The spans of a scope, each a slice of its body.
fn work_spans<'k>(scope: &'k ScopeSpansView, keys: &'k SpanKeys) -> Vec<WorkSpan<'k>> {
    /// `ScopeSpans.spans` (field 2, length-delimited) as a one-byte key.
    const SPANS_KEY: u8 = (field::scope_spans::SPANS as u8) << 3 | crate::wire::WIRE_LEN;
    let run = &scope.body[scope.spans_start..scope.spans_end];
    let mut spans = Vec::with_capacity(scope.count);
    let mut pos = 0;
    // The scan made the run of nothing but span fields: each is read as its key and length; the
    // general reader is there for anything else.
    while pos < run.len() {
        let (start, end) = match run[pos] {
            SPANS_KEY => match crate::wire::read_length(run, pos + 1) {
                Ok((len, start)) => (start, start.saturating_add(len as usize)),
                Err(_) => break,
            },
            _ => match Fields::at(run, pos).next_field() {
                Ok(Some(f)) => (f.value_start, f.end),
                _ => break,
            },
        };
        let Some(span) = run.get(start..end) else { break };
        spans.push(WorkSpan::new(span, keys));
        pos = end;
    }
    spans
}

/// The field number of one encoded field.
fn field_number(encoded: &[u8]) -> Option<u32> {
    Fields::new(encoded).next_field().ok().flatten().map(|f| f.number)
}

/// Copies every field of `buf` whose number `skip` does not reject.
fn copy_fields_except(buf: &[u8], out: &mut impl BufMut, skip: impl Fn(u32) -> bool) {
    let mut fields = Fields::new(buf);
    while let Ok(Some(f)) = fields.next_field() {
        if !skip(f.number) {
            out.put_slice(&buf[f.start..f.end]);
        }
    }
}

fn put_string_field(out: &mut impl BufMut, number: u32, value: &str) {
    put_len_header(out, number, value.len());
    out.put_slice(value.as_bytes());
}

fn put_bytes_field(out: &mut impl BufMut, number: u32, value: &[u8]) {
    put_len_header(out, number, value.len());
    out.put_slice(value);
}

/// An id field: an all-zero id is the empty id, which pdata leaves out of the encoding.
fn put_id_field(out: &mut impl BufMut, number: u32, id: &[u8]) {
    if id.iter().any(|b| *b != 0) {
        put_bytes_field(out, number, id);
    }
}

fn put_varint_field(out: &mut impl BufMut, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3 | u64::from(WIRE_VARINT));
    put_varint(out, value);
}

fn put_fixed64_field(out: &mut impl BufMut, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3 | u64::from(WIRE_FIXED64));
    out.put_u64_le(value);
}

/// The `InstrumentationScope` with the written fields replaced.
fn encode_scope(state: &ScopeState) -> Vec<u8> {
    use field::scope::*;
    let original = state.scope_bytes();
    let mut out = BytesMut::with_capacity(original.len());
    copy_fields_except(&original, &mut out, |number| match number {
        NAME => state.name.is_some(),
        VERSION => state.version.is_some(),
        ATTRIBUTES => state.attributes.is_some(),
        DROPPED_ATTRIBUTES_COUNT => state.dropped_attributes_count.is_some(),
        _ => false,
    });
    if let Some(name) = &state.name {
        put_string_field(&mut out, NAME, name);
    }
    if let Some(version) = &state.version {
        put_string_field(&mut out, VERSION, version);
    }
    if let Some(attrs) = &state.attributes {
        put_map(&mut out, attrs, ATTRIBUTES);
    }
    if let Some(n) = state.dropped_attributes_count {
        put_varint_field(&mut out, DROPPED_ATTRIBUTES_COUNT, u64::from(n));
    }
    out.to_vec()
}

/// A span with the written fields and single attribute writes (`puts`) replaced: the others are
/// copied as they were received.
pub fn encode_span(original: &[u8], edits: &SpanEdits, puts: &[AttrPut<'_>]) -> Vec<u8> {
    use field::span::*;
    let mut out = BytesMut::with_capacity(original.len() + 64);
    let mut replaced: Vec<&AttrPut<'_>> = puts.iter().filter(|p| p.replaces.is_some()).collect();
    replaced.sort_by_key(|p| p.replaces.map(|(start, _)| start));
    let mut fields = Fields::new(original);
    while let Ok(Some(f)) = fields.next_field() {
        if f.number == ATTRIBUTES
            && let Some(put) = replaced.iter().find(|p| p.replaces.map(|(start, _)| start) == Some(f.start))
        {
            put.put(&mut out);
            continue;
        }
        if !skip_field(f.number, edits) {
            out.extend_from_slice(&original[f.start..f.end]);
        }
    }
    for put in puts.iter().filter(|p| p.replaces.is_none()) {
        put.put(&mut out);
    }
    encode_span_fields(&mut out, original, edits);
    out.to_vec()
}

/// The encoded size of a span spliced with `puts`.
pub fn spliced_len(original: &[u8], puts: &[AttrPut<'_>]) -> usize {
    puts.iter().fold(original.len(), |len, put| {
        let replaced = put.replaces.map_or(0, |(start, end)| end - start);
        len + put.field_len() - replaced
    })
}

/// Writes the span with each put replacing its received attribute in place and the new keys last.
pub fn splice_attribute_puts(original: &[u8], puts: &[AttrPut<'_>], out: &mut impl BufMut) {
    if puts.iter().all(|p| p.replaces.is_none()) {
        // Only new keys (the usual write): the span as it came, then the keys.
        out.put_slice(original);
        puts.iter().for_each(|put| put.put(out));
        return;
    }
    let mut replaced: Vec<(usize, usize, &AttrPut<'_>)> =
        puts.iter().filter_map(|p| p.replaces.map(|(start, end)| (start, end, p))).collect();
    replaced.sort_by_key(|r| r.0);
    let mut pos = 0;
    for (start, end, put) in replaced {
        out.put_slice(&original[pos..start]);
        put.put(out);
        pos = end;
    }
    out.put_slice(&original[pos..]);
    for put in puts.iter().filter(|p| p.replaces.is_none()) {
        put.put(out);
    }
}

/// The span attribute field (key, length and `KeyValue`) a literal write encodes to, made on its
/// first use and copied whole into every span it is written to.
fn literal_field(write: &LiteralWrite) -> &[u8] {
    write.encoded.get_or_init(|| {
        let kv_len = key_value_len(&write.key, &write.value);
        let mut out = Vec::with_capacity(len_field_size(field::span::ATTRIBUTES, kv_len));
        put_len_header(&mut out, field::span::ATTRIBUTES, kv_len);
        super::codec::put_key_value_body(&mut out, &write.key, &write.value);
        out.into_boxed_slice()
    })
}

/// Whether the span's received field `number` is left out because a statement wrote it.
fn skip_field(number: u32, edits: &SpanEdits) -> bool {
    use field::span::*;
    let status_edited = edits.status_message.is_some() || edits.status_code.is_some();
    match number {
        TRACE_ID => edits.trace_id.is_some(),
        SPAN_ID => edits.span_id.is_some(),
        TRACE_STATE => edits.trace_state.is_some(),
        PARENT_SPAN_ID => edits.parent_span_id.is_some(),
        NAME => edits.name.is_some(),
        KIND => edits.kind.is_some(),
        START_TIME_UNIX_NANO => edits.start_time_unix_nano.is_some(),
        END_TIME_UNIX_NANO => edits.end_time_unix_nano.is_some(),
        ATTRIBUTES => edits.attributes.is_some() || edits.attribute_slots.is_some(),
        DROPPED_ATTRIBUTES_COUNT => edits.dropped_attributes_count.is_some(),
        EVENTS => edits.events.is_some(),
        DROPPED_EVENTS_COUNT => edits.dropped_events_count.is_some(),
        DROPPED_LINKS_COUNT => edits.dropped_links_count.is_some(),
        STATUS => status_edited,
        _ => false,
    }
}

/// Writes the span's written fields other than single attributes.
fn encode_span_fields(out: &mut BytesMut, original: &[u8], edits: &SpanEdits) {
    use field::span::*;
    let status_edited = edits.status_message.is_some() || edits.status_code.is_some();
    if let Some(v) = &edits.trace_id {
        put_id_field(out, TRACE_ID, v);
    }
    if let Some(v) = &edits.span_id {
        put_id_field(out, SPAN_ID, v);
    }
    if let Some(v) = &edits.trace_state {
        put_string_field(out, TRACE_STATE, v);
    }
    if let Some(v) = &edits.parent_span_id {
        put_id_field(out, PARENT_SPAN_ID, v);
    }
    if let Some(v) = &edits.name {
        put_string_field(out, NAME, v);
    }
    if let Some(v) = edits.kind {
        // An enum is an int32 varint: negative values take ten bytes, as prost writes them.
        put_varint_field(out, KIND, i64::from(v) as u64);
    }
    if let Some(v) = edits.start_time_unix_nano {
        put_fixed64_field(out, START_TIME_UNIX_NANO, v);
    }
    if let Some(v) = edits.end_time_unix_nano {
        put_fixed64_field(out, END_TIME_UNIX_NANO, v);
    }
    if let Some(attrs) = &edits.attributes {
        put_map(out, attrs, ATTRIBUTES);
    } else if let Some(slots) = &edits.attribute_slots {
        for slot in slots {
            match slot {
                AttrSlot::Received { start, end, .. } => out.extend_from_slice(&original[*start..*end]),
                AttrSlot::Written(k, v) => put_key_value(out, ATTRIBUTES, k, v),
            }
        }
    }
    if let Some(v) = edits.dropped_attributes_count {
        put_varint_field(out, DROPPED_ATTRIBUTES_COUNT, u64::from(v));
    }
    if let Some(events) = &edits.events {
        for event in events.iter().filter(|e| !e.dropped) {
            let encoded = encode_event(event);
            put_bytes_field(out, EVENTS, &encoded);
        }
    }
    if let Some(v) = edits.dropped_events_count {
        put_varint_field(out, DROPPED_EVENTS_COUNT, u64::from(v));
    }
    if let Some(v) = edits.dropped_links_count {
        put_varint_field(out, DROPPED_LINKS_COUNT, u64::from(v));
    }
    if status_edited {
        let (message, code) = super::access::status_of(original);
        let message = edits.status_message.as_deref().unwrap_or(&message);
        let code = edits.status_code.unwrap_or(code);
        let mut status = BytesMut::new();
        if !message.is_empty() {
            put_string_field(&mut status, field::status::MESSAGE, message);
        }
        if code != 0 {
            put_varint_field(&mut status, field::status::CODE, i64::from(code) as u64);
        }
        put_bytes_field(out, STATUS, &status);
    }
}

/// The span's received attributes as slots, in order.
pub fn attribute_slots(index: &SpanIndex, span: &[u8]) -> Vec<AttrSlot> {
    index
        .attributes(span)
        .map(|a| AttrSlot::Received {
            start: a.start,
            end: a.end,
            key_start: a.key_start,
            key_end: a.key_end,
        })
        .collect()
}

/// Where the key of the `KeyValue` at `start..end` of `buf` lies (an empty range without a key).
fn key_range(buf: &[u8], start: usize, end: usize) -> (usize, usize) {
    let kv = &buf[start..end];
    let key = key_bytes(kv);
    // `key_bytes` returns a slice of `kv`, or an empty one when there is no key.
    let offset = (key.as_ptr() as usize).wrapping_sub(kv.as_ptr() as usize);
    if key.is_empty() || offset > kv.len() {
        (start, start)
    } else {
        (start + offset, start + offset + key.len())
    }
}

/// The key of an encoded `KeyValue`, read without its value.
pub fn key_of(kv: &[u8]) -> &str {
    std::str::from_utf8(key_bytes(kv)).unwrap_or("")
}

/// The key of an encoded `KeyValue` as bytes (the scan checked it is UTF-8), read without its value.
pub fn key_bytes(kv: &[u8]) -> &[u8] {
    // The key is field 1 and encoders write it first: take the fast path when it is there.
    if let [0x0a, len, rest @ ..] = kv
        && *len < 0x80
        && (*len as usize) <= rest.len()
    {
        return &rest[..*len as usize];
    }
    crate::wire::view::KeyValueView::parse(kv).key.as_bytes()
}

/// An event with the written fields replaced.
fn encode_event(event: &WorkEvent) -> Vec<u8> {
    use field::event::*;
    let edited = event.time_unix_nano.is_some()
        || event.name.is_some()
        || event.attributes.is_some()
        || event.dropped_attributes_count.is_some();
    if !edited {
        return event.bytes.to_vec();
    }
    let mut out = BytesMut::with_capacity(event.bytes.len() + 32);
    copy_fields_except(&event.bytes, &mut out, |number| match number {
        TIME_UNIX_NANO => event.time_unix_nano.is_some(),
        NAME => event.name.is_some(),
        ATTRIBUTES => event.attributes.is_some(),
        DROPPED_ATTRIBUTES_COUNT => event.dropped_attributes_count.is_some(),
        _ => false,
    });
    if let Some(v) = event.time_unix_nano {
        put_fixed64_field(&mut out, TIME_UNIX_NANO, v);
    }
    if let Some(v) = &event.name {
        put_string_field(&mut out, NAME, v);
    }
    if let Some(attrs) = &event.attributes {
        put_map(&mut out, attrs, ATTRIBUTES);
    }
    if let Some(v) = event.dropped_attributes_count {
        put_varint_field(&mut out, DROPPED_ATTRIBUTES_COUNT, u64::from(v));
    }
    out.to_vec()
}
