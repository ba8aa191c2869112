//! OTTL's view of encoded spans: [`ottl::eval::Accessor`]s for the span, span event, resource and scope
//! contexts over a [`Work`](super::work::Work) request.
//!
//! Reads go to the received bytes unless a statement wrote the field before; writes are recorded as
//! edits of that one field (attributes as the whole edited map) and encoded when the request is
//! rebuilt. Values and errors follow the Collector's span context (`ctxspan`): ids as `TraceID` and
//! `SpanID`, `.string` views in hex, kinds by number or by name, times as `time.Time`.

use std::borrow::Cow;
use std::sync::Arc;

use ottl::ast::CompareOp;
use ottl::bind::LiteralWrite;
use ottl::context::{ResourceField, ScopeField, SpanEventField, SpanField, Target};
use ottl::eval::{Accessor, EvalError};
use ottl::value::{Value, compare_int, compare_nil, compare_str, compare_utf8};

use super::codec::{map_of, value_of};
use super::work::{AttrPut, AttrSlot, PutValue, ResourceState, ScopeState, SpanEdits, WorkEvent, WorkSpan};
use crate::wire::view::{AnyValueView, KeyValueView, field, len_fields};
use crate::wire::{Fields, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, read_varint};

/// Span kinds by number, as `ptrace.SpanKind.String()` and the deprecated names spell them.
const KIND_NAMES: [(&str, &str); 6] = [
    ("Unspecified", "SPAN_KIND_UNSPECIFIED"),
    ("Internal", "SPAN_KIND_INTERNAL"),
    ("Server", "SPAN_KIND_SERVER"),
    ("Client", "SPAN_KIND_CLIENT"),
    ("Producer", "SPAN_KIND_PRODUCER"),
    ("Consumer", "SPAN_KIND_CONSUMER"),
];

/// A resource as the item of the `resource` context.
pub struct ResourceItem<'a> {
    pub resource: &'a mut ResourceState,
}

/// A scope as the item of the `scope` context.
pub struct ScopeItem<'a> {
    pub resource: &'a mut ResourceState,
    pub scope: &'a mut ScopeState,
}

/// A span as the item of the `span` context.
pub struct SpanItem<'a, 'k> {
    pub resource: &'a mut ResourceState,
    pub scope: &'a mut ScopeState,
    pub span: &'a mut WorkSpan<'k>,
}

/// A span event as the item of the `spanevent` context.
pub struct EventItem<'a, 'k> {
    pub resource: &'a mut ResourceState,
    pub scope: &'a mut ScopeState,
    pub span: &'a mut WorkSpan<'k>,
    /// The event's position in its span's events.
    pub index: usize,
}

// === impl Accessor for the items ===

impl Accessor for ResourceItem<'_> {
    fn get(&mut self, target: Target) -> Result<Value, EvalError> {
        match target {
            Target::Resource(f) => resource_get(self.resource, f),
            other => Err(unreachable_target(other)),
        }
    }
    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Resource(f) => resource_set(self.resource, f, value),
            other => Err(unreachable_target(other)),
        }
    }
    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        match target {
            Target::Resource(ResourceField::Attributes) => Ok(resource_attribute(self.resource, key)),
            other => default_get_key(self, other, key),
        }
    }
}

impl Accessor for ScopeItem<'_> {
    fn get(&mut self, target: Target) -> Result<Value, EvalError> {
        match target {
            Target::Resource(f) => resource_get(self.resource, f),
            Target::Scope(f) => scope_get(self.scope, f),
            other => Err(unreachable_target(other)),
        }
    }
    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Resource(f) => resource_set(self.resource, f, value),
            Target::Scope(f) => scope_set(self.scope, f, value),
            other => Err(unreachable_target(other)),
        }
    }
    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        match target {
            Target::Resource(ResourceField::Attributes) => Ok(resource_attribute(self.resource, key)),
            other => default_get_key(self, other, key),
        }
    }
}

/// `span.trace_state["k"]`: the member's value, nil when the trace state does not parse.
fn trace_state_key(s: &WorkSpan, key: &str) -> Value {
    ottl::context::trace_state::get(&trace_state(s), key).map_or(Value::Nil, Value::String)
}

/// Writes one trace state member; an invalid trace state or member leaves it as it was.
fn set_trace_state_key(s: &mut WorkSpan, key: &str, value: Value) -> Result<(), EvalError> {
    let value = expect_string(value)?;
    if let Some(updated) = ottl::context::trace_state::insert(&trace_state(s), key, &value) {
        s.edits_mut().trace_state = Some(updated);
    }
    Ok(())
}

impl Accessor for SpanItem<'_, '_> {
    fn get(&mut self, target: Target) -> Result<Value, EvalError> {
        match target {
            Target::Resource(f) => resource_get(self.resource, f),
            Target::Scope(f) => scope_get(self.scope, f),
            Target::Span(f) => span_get(self.span, f),
            other => Err(unreachable_target(other)),
        }
    }
    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Resource(f) => resource_set(self.resource, f, value),
            Target::Scope(f) => scope_set(self.scope, f, value),
            Target::Span(f) => span_set(self.span, f, value),
            other => Err(unreachable_target(other)),
        }
    }
    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        match target {
            Target::Span(SpanField::Attributes) => Ok(span_attribute(self.span, key)),
            Target::Span(SpanField::TraceStateKey) => Ok(trace_state_key(self.span, key)),
            Target::Resource(ResourceField::Attributes) => Ok(resource_attribute(self.resource, key)),
            other => default_get_key(self, other, key),
        }
    }
    fn set_key(&mut self, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Span(SpanField::TraceStateKey) => set_trace_state_key(self.span, key, value),
            Target::Span(SpanField::Attributes) => {
                set_span_attribute(self.span, key, PutValue::Owned(value));
                Ok(())
            }
            other => default_set_key(self, other, key, value),
        }
    }
    fn set_key_literal(&mut self, write: &Arc<LiteralWrite>) -> Result<(), EvalError> {
        if set_span_literal(self.span, write) {
            return Ok(());
        }
        self.set_key_slowly(write.target, &write.key, write.value.clone())
    }
    fn remove_key(&mut self, target: Target, key: &str) -> Result<bool, EvalError> {
        match target {
            Target::Span(SpanField::Attributes) => Ok(remove_span_attribute(self.span, key)),
            other => default_remove_key(self, other, key),
        }
    }
    fn compare_field(&mut self, target: Target, other: &Value, op: CompareOp) -> Result<bool, EvalError> {
        match compare_span_field(self.span, target, other, op) {
            Some(verdict) => Ok(verdict),
            None => self.compare_slowly(target, None, other, op),
        }
    }
    fn compare_key(
        &mut self,
        target: Target,
        key: &str,
        other: &Value,
        op: CompareOp,
    ) -> Result<bool, EvalError> {
        match compare_received_key(self.resource, self.span, target, key, other, op) {
            Some(verdict) => Ok(verdict),
            None => self.compare_slowly(target, Some(key), other, op),
        }
    }
    fn test_key_str(
        &mut self,
        target: Target,
        key: &str,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        Ok(test_received_str(self.resource, self.span, target, key, test))
    }
}

impl Accessor for EventItem<'_, '_> {
    fn get(&mut self, target: Target) -> Result<Value, EvalError> {
        match target {
            Target::Resource(f) => resource_get(self.resource, f),
            Target::Scope(f) => scope_get(self.scope, f),
            Target::Span(f) => span_get(self.span, f),
            Target::SpanEvent(f) => event_get(self.event()?, f, self.index),
            Target::Cache => Err(unreachable_target(target)),
        }
    }
    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Resource(f) => resource_set(self.resource, f, value),
            Target::Scope(f) => scope_set(self.scope, f, value),
            Target::Span(f) => span_set(self.span, f, value),
            Target::SpanEvent(f) => event_set(self.event_mut()?, f, value),
            Target::Cache => Err(unreachable_target(target)),
        }
    }
    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        match target {
            Target::Span(SpanField::Attributes) => Ok(span_attribute(self.span, key)),
            Target::Span(SpanField::TraceStateKey) => Ok(trace_state_key(self.span, key)),
            Target::Resource(ResourceField::Attributes) => Ok(resource_attribute(self.resource, key)),
            other => default_get_key(self, other, key),
        }
    }
    fn set_key(&mut self, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Span(SpanField::TraceStateKey) => set_trace_state_key(self.span, key, value),
            Target::Span(SpanField::Attributes) => {
                set_span_attribute(self.span, key, PutValue::Owned(value));
                Ok(())
            }
            other => default_set_key(self, other, key, value),
        }
    }
    fn set_key_literal(&mut self, write: &Arc<LiteralWrite>) -> Result<(), EvalError> {
        if set_span_literal(self.span, write) {
            return Ok(());
        }
        self.set_key(write.target, &write.key, write.value.clone())
    }
    fn remove_key(&mut self, target: Target, key: &str) -> Result<bool, EvalError> {
        match target {
            Target::Span(SpanField::Attributes) => Ok(remove_span_attribute(self.span, key)),
            other => default_remove_key(self, other, key),
        }
    }
    fn compare_field(&mut self, target: Target, other: &Value, op: CompareOp) -> Result<bool, EvalError> {
        match compare_span_field(self.span, target, other, op) {
            Some(verdict) => Ok(verdict),
            None => Ok(self.get(target)?.compare(other, op)),
        }
    }
    fn compare_key(
        &mut self,
        target: Target,
        key: &str,
        other: &Value,
        op: CompareOp,
    ) -> Result<bool, EvalError> {
        match compare_received_key(self.resource, self.span, target, key, other, op) {
            Some(verdict) => Ok(verdict),
            None => Ok(self.get_key(target, key)?.compare(other, op)),
        }
    }
    fn test_key_str(
        &mut self,
        target: Target,
        key: &str,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        Ok(test_received_str(self.resource, self.span, target, key, test))
    }
}

// === impl SpanItem ===

impl SpanItem<'_, '_> {
    /// A comparison the span cannot make in place: the value read, then compared. Out of line, so
    /// that the in-place comparisons do not carry the readers' frame.
    #[inline(never)]
    fn compare_slowly(
        &mut self,
        target: Target,
        key: Option<&str>,
        other: &Value,
        op: CompareOp,
    ) -> Result<bool, EvalError> {
        let value = match key {
            Some(key) => self.get_key(target, key)?,
            None => self.get(target)?,
        };
        Ok(value.compare(other, op))
    }

    /// [`Accessor::set_key`] for a literal write the span does not keep shared; out of line as
    /// [`Self::compare_slowly`] is.
    #[inline(never)]
    fn set_key_slowly(&mut self, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
        self.set_key(target, key, value)
    }
}

// === impl EventItem ===

impl EventItem<'_, '_> {
    fn event(&self) -> Result<&WorkEvent, EvalError> {
        self.span
            .edits
            .as_ref()
            .and_then(|e| e.events.as_ref())
            .and_then(|events| events.get(self.index))
            .ok_or_else(|| EvalError::Function("the span event is gone".into()))
    }

    fn event_mut(&mut self) -> Result<&mut WorkEvent, EvalError> {
        self.span
            .edits
            .as_mut()
            .and_then(|e| e.events.as_mut())
            .and_then(|events| events.get_mut(self.index))
            .ok_or_else(|| EvalError::Function("the span event is gone".into()))
    }
}

// === impl WorkSpan ===

impl WorkSpan<'_> {
    fn edits_mut(&mut self) -> &mut SpanEdits {
        self.edits.get_or_insert_with(Box::default)
    }

    /// Prepares the span's events for the span event context: each event becomes its own item.
    pub fn open_events(&mut self) -> usize {
        if let Some(events) = self.edits.as_ref().and_then(|e| e.events.as_ref()) {
            return events.len();
        }
        let bytes = self.bytes;
        // Copied: the events outlive the borrowed request in the span's edits.
        let events: Vec<WorkEvent> = len_field_ranges(bytes, field::span::EVENTS)
            .map(|(start, end)| WorkEvent {
                bytes: bytes::Bytes::copy_from_slice(&bytes[start..end]),
                time_unix_nano: None,
                name: None,
                attributes: None,
                dropped_attributes_count: None,
                dropped: false,
            })
            .collect();
        let n = events.len();
        self.edits_mut().events = Some(events);
        n
    }

    /// Marks event `index` as dropped by a filter.
    pub fn drop_event(&mut self, index: usize) {
        if let Some(event) =
            self.edits.as_mut().and_then(|e| e.events.as_mut()).and_then(|events| events.get_mut(index))
        {
            event.dropped = true;
        }
    }

    /// Gives up the events opened by [`WorkSpan::open_events`] when no statement changed any of them,
    /// so the span is not re-encoded for nothing.
    pub fn close_events(&mut self) {
        let Some(edits) = self.edits.as_mut() else { return };
        let untouched = edits.events.as_ref().is_some_and(|events| {
            events.iter().all(|e| {
                !e.dropped
                    && e.time_unix_nano.is_none()
                    && e.name.is_none()
                    && e.attributes.is_none()
                    && e.dropped_attributes_count.is_none()
            })
        });
        if untouched {
            edits.events = None;
        }
        let SpanEdits {
            trace_id: None,
            span_id: None,
            parent_span_id: None,
            trace_state: None,
            name: None,
            kind: None,
            start_time_unix_nano: None,
            end_time_unix_nano: None,
            attributes: None,
            attribute_slots: None,
            dropped_attributes_count: None,
            dropped_events_count: None,
            dropped_links_count: None,
            status_message: None,
            status_code: None,
            events: None,
        } = **edits
        else {
            return;
        };
        self.edits = None;
    }
}

// === resource ===

fn resource_get(r: &ResourceState, f: ResourceField) -> Result<Value, EvalError> {
    Ok(match f {
        ResourceField::Attributes => match &r.attributes {
            Some(attrs) => Value::Map(attrs.clone()),
            None => Value::Map(resource_attributes(r)),
        },
        ResourceField::DroppedAttributesCount => {
            Value::Int(i64::from(r.dropped_attributes_count.unwrap_or_else(|| {
                [&r.view.resource, &r.view.added]
                    .into_iter()
                    .filter_map(|part| last_varint(part, field::resource::DROPPED_ATTRIBUTES_COUNT))
                    .last()
                    .unwrap_or(0) as u32
            })))
        }
        ResourceField::SchemaUrl => Value::String(match &r.schema_url {
            Some(url) => url.clone(),
            None => r
                .view
                .rest
                .iter()
                .filter_map(|f| last_string(f, field::resource_spans::SCHEMA_URL))
                .last()
                .unwrap_or_default()
                .to_string(),
        }),
    })
}

/// The resource's attributes as received: its own, then what enrichment appended.
fn resource_attributes(r: &ResourceState) -> Vec<(String, Value)> {
    let mut attrs = map_of(&r.view.resource, field::resource::ATTRIBUTES);
    attrs.extend(map_of(&r.view.added, field::resource::ATTRIBUTES));
    attrs
}

fn resource_attribute(r: &mut ResourceState, key: &str) -> Value {
    match &r.attributes {
        Some(attrs) => Value::map_get(attrs, key).cloned().unwrap_or_default(),
        None => r.received_attribute(key).map_or(Value::Nil, |kv| value_of(kv.value)),
    }
}

/// A comparison of a span field done in place (the received name), or `None` for the general
/// path. Shared by the span and span event items, which see the same span.
#[inline]
fn compare_span_field(span: &mut WorkSpan, target: Target, other: &Value, op: CompareOp) -> Option<bool> {
    match target {
        Target::Span(SpanField::Name) if span.edits.as_ref().is_none_or(|e| e.name.is_none()) => {
            let bytes = span.bytes;
            // The scan checked the name is UTF-8.
            let name = span.index().value(bytes, field::span::NAME).unwrap_or_default();
            Some(compare_utf8(name, other, op))
        }
        // The kind, read where it lies (the usual `where span.kind == SPAN_KIND_SERVER`).
        Target::Span(SpanField::Kind) if span.edits.as_ref().is_none_or(|e| e.kind.is_none()) => {
            let bytes = span.bytes;
            let kind = span.index().value(bytes, field::span::KIND).and_then(|v| read_varint(v, &mut 0).ok());
            // An enum is an int32: what a decoder makes of a longer varint.
            Some(compare_int(i64::from(kind.unwrap_or(0) as i32), other, op))
        }
        _ => None,
    }
}

/// A comparison of one received attribute, not yet written to, done where it lies; `None` for
/// the general path.
#[inline]
fn compare_received_key(
    resource: &mut ResourceState,
    span: &mut WorkSpan,
    target: Target,
    key: &str,
    other: &Value,
    op: CompareOp,
) -> Option<bool> {
    match target {
        // Received attributes, or received ones with single writes over them (a transform's `set`
        // before a filter): a written key compares its value, any other is compared where it lies.
        Target::Span(SpanField::Attributes)
            if span
                .edits
                .as_deref()
                .is_none_or(|e| e.attributes.is_none() && e.attribute_slots.is_none()) =>
        {
            if let Some(put) = span.puts.iter().find(|p| *p.key == *key) {
                return Some(put.value.get().compare(other, op));
            }
            let bytes = span.bytes;
            Some(match span.attribute(key) {
                Some((start, end)) => compare_encoded(&bytes[start..end], field::span::ATTRIBUTES, other, op),
                None => compare_nil(other, op),
            })
        }
        Target::Resource(ResourceField::Attributes) if resource.attributes.is_none() => {
            Some(compare_resource_attribute(resource, key, other, op))
        }
        _ => None,
    }
}

/// [`Accessor::test_key_str`] for a span's or its resource's attributes, read where they lie when
/// no statement rewrote the map as a whole.
#[inline]
fn test_received_str(
    resource: &mut ResourceState,
    span: &mut WorkSpan<'_>,
    target: Target,
    key: &str,
    test: &mut dyn FnMut(&str) -> bool,
) -> Option<Option<bool>> {
    let string = |value: &Value, test: &mut dyn FnMut(&str) -> bool| match value {
        Value::String(s) => Some(Some(test(s))),
        _ => None,
    };
    match target {
        Target::Span(SpanField::Attributes)
            if span
                .edits
                .as_deref()
                .is_none_or(|e| e.attributes.is_none() && e.attribute_slots.is_none()) =>
        {
            if let Some(put) = span.puts.iter().find(|p| *p.key == *key) {
                return string(put.value.get(), test);
            }
            let Some((start, end)) = span.attribute(key) else { return Some(None) };
            let field = &span.bytes[start..end];
            match len_fields(field, field::span::ATTRIBUTES).next().map(KeyValueView::parse) {
                Some(KeyValueView { value: AnyValueView::String(s), .. }) => Some(Some(test(s))),
                _ => None,
            }
        }
        Target::Resource(ResourceField::Attributes) if resource.attributes.is_none() => {
            match resource.received_attribute(key) {
                Some(KeyValueView { value: AnyValueView::String(s), .. }) => Some(Some(test(s))),
                Some(_) => None,
                None => Some(None),
            }
        }
        _ => None,
    }
}

/// `resource_attribute(r, key).compare(other, op)` on the received bytes, a string compared in place.
fn compare_resource_attribute(r: &mut ResourceState, key: &str, other: &Value, op: CompareOp) -> bool {
    match r.received_attribute(key) {
        Some(KeyValueView { value: AnyValueView::String(s), .. }) => compare_str(s, other, op),
        Some(kv) => value_of(kv.value).compare(other, op),
        None => compare_nil(other, op),
    }
}

/// Compares the `KeyValue` encoded as field `number` in `field` (one attribute field, tag and
/// length included) with `other`; a string is compared in place.
fn compare_encoded(field: &[u8], number: u32, other: &Value, op: CompareOp) -> bool {
    match len_fields(field, number).next().map(KeyValueView::parse) {
        Some(KeyValueView { value: AnyValueView::String(s), .. }) => compare_str(s, other, op),
        Some(kv) => value_of(kv.value).compare(other, op),
        None => compare_nil(other, op),
    }
}

fn resource_set(r: &mut ResourceState, f: ResourceField, value: Value) -> Result<(), EvalError> {
    match f {
        ResourceField::Attributes => r.attributes = Some(expect_map(value)?),
        ResourceField::DroppedAttributesCount => r.dropped_attributes_count = Some(expect_int(value)? as u32),
        ResourceField::SchemaUrl => r.schema_url = Some(expect_string(value)?),
    }
    Ok(())
}

// === scope ===

fn scope_get(s: &ScopeState, f: ScopeField) -> Result<Value, EvalError> {
    let scope = s.scope_bytes();
    Ok(match f {
        ScopeField::Name => Value::String(match &s.name {
            Some(v) => v.clone(),
            None => last_string(&scope, field::scope::NAME).unwrap_or_default().to_string(),
        }),
        ScopeField::Version => Value::String(match &s.version {
            Some(v) => v.clone(),
            None => last_string(&scope, field::scope::VERSION).unwrap_or_default().to_string(),
        }),
        ScopeField::Attributes => Value::Map(match &s.attributes {
            Some(attrs) => attrs.clone(),
            None => map_of(&scope, field::scope::ATTRIBUTES),
        }),
        ScopeField::DroppedAttributesCount => Value::Int(match s.dropped_attributes_count {
            Some(n) => i64::from(n),
            None => last_varint(&scope, field::scope::DROPPED_ATTRIBUTES_COUNT).unwrap_or(0) as u32 as i64,
        }),
        ScopeField::SchemaUrl => Value::String(match &s.schema_url {
            Some(url) => url.clone(),
            None => s.original_schema_url(),
        }),
    })
}

fn scope_set(s: &mut ScopeState, f: ScopeField, value: Value) -> Result<(), EvalError> {
    match f {
        ScopeField::Name => s.name = Some(expect_string(value)?),
        ScopeField::Version => s.version = Some(expect_string(value)?),
        ScopeField::Attributes => s.attributes = Some(expect_map(value)?),
        ScopeField::DroppedAttributesCount => s.dropped_attributes_count = Some(expect_int(value)? as u32),
        ScopeField::SchemaUrl => s.schema_url = Some(expect_string(value)?),
    }
    Ok(())
}

// === span ===

fn span_get(s: &mut WorkSpan, f: SpanField) -> Result<Value, EvalError> {
    use field::span as n;
    let bytes = s.bytes;
    let (index, edits) = s.index_and_edits();
    let raw = |number: u32| index.value(bytes, number);
    let varint = |number: u32| raw(number).and_then(|v| read_varint(v, &mut 0).ok());
    let fixed64 = |number: u32| raw(number).and_then(|v| v.try_into().ok()).map(u64::from_le_bytes);
    let id = |edited: Option<&Vec<u8>>, number: u32| -> Vec<u8> {
        edited.cloned().unwrap_or_else(|| raw(number).unwrap_or_default().to_vec())
    };
    let kind = || edits.and_then(|e| e.kind).unwrap_or_else(|| varint(n::KIND).unwrap_or(0) as i32);
    let start = || {
        edits
            .and_then(|e| e.start_time_unix_nano)
            .unwrap_or_else(|| fixed64(n::START_TIME_UNIX_NANO).unwrap_or(0))
    };
    let end = || {
        edits
            .and_then(|e| e.end_time_unix_nano)
            .unwrap_or_else(|| fixed64(n::END_TIME_UNIX_NANO).unwrap_or(0))
    };
    let count = |edited: Option<u32>, number: u32| {
        Value::Int(i64::from(edited.unwrap_or_else(|| varint(number).unwrap_or(0) as u32)))
    };
    Ok(match f {
        SpanField::TraceId => {
            Value::TraceId(fixed_id(&id(edits.and_then(|e| e.trace_id.as_ref()), n::TRACE_ID)))
        }
        SpanField::TraceIdString => Value::String(ottl::funcs::hex(&fixed_id::<16>(&id(
            edits.and_then(|e| e.trace_id.as_ref()),
            n::TRACE_ID,
        )))),
        SpanField::SpanId => Value::SpanId(fixed_id(&id(edits.and_then(|e| e.span_id.as_ref()), n::SPAN_ID))),
        SpanField::SpanIdString => Value::String(ottl::funcs::hex(&fixed_id::<8>(&id(
            edits.and_then(|e| e.span_id.as_ref()),
            n::SPAN_ID,
        )))),
        SpanField::ParentSpanId => {
            Value::SpanId(fixed_id(&id(edits.and_then(|e| e.parent_span_id.as_ref()), n::PARENT_SPAN_ID)))
        }
        SpanField::ParentSpanIdString => Value::String(ottl::funcs::hex(&fixed_id::<8>(&id(
            edits.and_then(|e| e.parent_span_id.as_ref()),
            n::PARENT_SPAN_ID,
        )))),
        SpanField::TraceState => Value::String(trace_state(s)),
        SpanField::TraceStateKey => {
            return Err(EvalError::Key("trace_state takes exactly one key".into()));
        }
        SpanField::Name => Value::String(match edits.and_then(|e| e.name.as_ref()) {
            Some(name) => name.clone(),
            None => raw(n::NAME).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default().to_string(),
        }),
        SpanField::Kind => Value::Int(i64::from(kind())),
        SpanField::KindString => Value::String(
            usize::try_from(kind()).ok().and_then(|k| KIND_NAMES.get(k)).map_or("", |k| k.0).into(),
        ),
        SpanField::KindDeprecatedString => Value::String(
            usize::try_from(kind()).ok().and_then(|k| KIND_NAMES.get(k)).map_or("", |k| k.1).into(),
        ),
        SpanField::StartTimeUnixNano => Value::Int(start() as i64),
        SpanField::EndTimeUnixNano => Value::Int(end() as i64),
        SpanField::StartTime => Value::Time(start() as i64),
        SpanField::EndTime => Value::Time(end() as i64),
        SpanField::Attributes => Value::Map(span_attributes(s)),
        SpanField::DroppedAttributesCount => {
            count(edits.and_then(|e| e.dropped_attributes_count), n::DROPPED_ATTRIBUTES_COUNT)
        }
        SpanField::DroppedEventsCount => {
            count(edits.and_then(|e| e.dropped_events_count), n::DROPPED_EVENTS_COUNT)
        }
        SpanField::DroppedLinksCount => {
            count(edits.and_then(|e| e.dropped_links_count), n::DROPPED_LINKS_COUNT)
        }
        SpanField::StatusCode => Value::Int(i64::from(match edits.and_then(|e| e.status_code) {
            Some(code) => code,
            None => status_of(bytes).1,
        })),
        SpanField::StatusMessage => Value::String(match edits.and_then(|e| e.status_message.as_ref()) {
            Some(m) => m.clone(),
            None => status_of(bytes).0,
        }),
        SpanField::Events | SpanField::Links | SpanField::Status => {
            return Err(EvalError::Function(format!(
                "{f:?} is a structured value this gateway does not expose to statements; use its fields"
            )));
        }
    })
}

fn span_attribute(s: &mut WorkSpan, key: &str) -> Value {
    if let Some(edits) = s.edits.as_deref() {
        if let Some(attrs) = &edits.attributes {
            return Value::map_get(attrs, key).cloned().unwrap_or_default();
        }
        if let Some(slots) = &edits.attribute_slots {
            return match find_slot(s.bytes, slots, key).map(|i| &slots[i]) {
                Some(AttrSlot::Written(_, v)) => v.clone(),
                Some(AttrSlot::Received { start, end, .. }) => slot_value(s.bytes, *start, *end),
                None => Value::Nil,
            };
        }
    }
    if let Some(put) = s.puts.iter().find(|p| *p.key == *key) {
        return put.value.get().clone();
    }
    let bytes = s.bytes;
    s.attribute(key).map_or(Value::Nil, |(start, end)| slot_value(bytes, start, end))
}

/// The first slot with `key`.
fn find_slot(span: &[u8], slots: &[AttrSlot], key: &str) -> Option<usize> {
    slots.iter().position(|slot| match slot {
        AttrSlot::Written(k, _) => k == key,
        AttrSlot::Received { key_start, key_end, .. } => &span[*key_start..*key_end] == key.as_bytes(),
    })
}

/// The value of a received attribute field.
fn slot_value(span: &[u8], start: usize, end: usize) -> Value {
    let field = &span[start..end];
    crate::wire::view::len_fields(field, field::span::ATTRIBUTES)
        .next()
        .map_or(Value::Nil, |kv| value_of(crate::wire::view::KeyValueView::parse(kv).value))
}

/// The span's attributes as slots, made from the received ones (and the single writes so far) on
/// first use.
fn slots_mut<'a>(s: &'a mut WorkSpan<'_>) -> &'a mut Vec<AttrSlot> {
    let mut slots = match s.edits.as_ref().and_then(|e| e.attribute_slots.as_ref()) {
        Some(_) => None,
        None => {
            let bytes = s.bytes;
            Some(super::work::attribute_slots(s.index(), bytes))
        }
    };
    let puts = std::mem::take(&mut s.puts);
    let edits = s.edits_mut();
    if let Some(mut slots) = slots.take() {
        for put in puts {
            let at = put.replaces.and_then(|(start, _)| {
                slots
                    .iter()
                    .position(|slot| matches!(slot, AttrSlot::Received { start: s, .. } if *s == start))
            });
            match at {
                Some(i) => slots[i] = AttrSlot::Written(put.key.to_string(), put.value.into_value()),
                None => slots.push(AttrSlot::Written(put.key.to_string(), put.value.into_value())),
            }
        }
        edits.attribute_slots = Some(slots);
    }
    edits.attribute_slots.get_or_insert_with(Vec::new)
}

/// Writes one span attribute without reading the others (`pcommon.Map.Put`: the first entry with the
/// key takes the value in place, a new key goes last).
fn set_span_attribute<'k>(s: &mut WorkSpan<'k>, key: &str, value: PutValue<'k>) {
    let position = s.keys().position(key);
    set_span_attribute_at(s, key, value, position);
}

/// [`set_span_attribute`] for a key whose position among the pipeline's keys is known (`None`: not
/// one of them).
fn set_span_attribute_at<'k>(s: &mut WorkSpan<'k>, key: &str, value: PutValue<'k>, position: Option<usize>) {
    if let Some(attrs) = s.edits.as_mut().and_then(|e| e.attributes.as_mut()) {
        ottl::eval::map_put(attrs, key, value.into_value());
        return;
    }
    if s.edits.as_ref().is_some_and(|e| e.attribute_slots.is_some()) {
        let bytes = s.bytes;
        let slots = slots_mut(s);
        match find_slot(bytes, slots, key) {
            Some(i) => slots[i] = AttrSlot::Written(key.to_string(), value.into_value()),
            None => slots.push(AttrSlot::Written(key.to_string(), value.into_value())),
        }
        return;
    }
    // The usual case: remember the write and where it lands; nothing is decoded.
    if let Some(put) = s.puts.iter_mut().find(|p| *p.key == *key) {
        put.value = value;
        return;
    }
    let replaces = s.attribute_at(position, key);
    let key = match &value {
        PutValue::Literal(write) => Cow::Borrowed(&*write.key),
        PutValue::Owned(_) => s.keys().shared(position, key),
    };
    s.puts.push(AttrPut { key, value, replaces });
}

/// [`Accessor::set_key_literal`] for the span and span event items when it writes a span attribute,
/// which keeps the statement's value (and its encoding) shared; `false` for any other target.
fn set_span_literal(span: &mut WorkSpan, write: &Arc<LiteralWrite>) -> bool {
    if write.target != Target::Span(SpanField::Attributes) {
        return false;
    }
    let keys = span.keys();
    match keys.literal(write) {
        Some((own, position)) => set_span_attribute_at(span, &write.key, PutValue::Literal(own), position),
        None => set_span_attribute(span, &write.key, PutValue::Owned(write.value.clone())),
    }
    true
}

/// Removes one span attribute without reading the others (`pcommon.Map.Remove`: the last entry moves
/// into its place).
fn remove_span_attribute(s: &mut WorkSpan, key: &str) -> bool {
    if let Some(attrs) = s.edits.as_mut().and_then(|e| e.attributes.as_mut()) {
        return match attrs.iter().position(|(k, _)| k == key) {
            Some(i) => {
                attrs.swap_remove(i);
                true
            }
            None => false,
        };
    }
    // Nothing to remove: no edit is recorded, so the span is not encoded again.
    let edits = s.edits.as_deref();
    if edits.and_then(|e| e.attribute_slots.as_ref()).is_none()
        && !s.puts.iter().any(|p| *p.key == *key)
        && s.attribute(key).is_none()
    {
        return false;
    }
    let bytes = s.bytes;
    let slots = slots_mut(s);
    match find_slot(bytes, slots, key) {
        Some(i) => {
            slots.swap_remove(i);
            true
        }
        None => false,
    }
}

/// The span's attributes as received, with the single edits applied.
fn span_attributes(s: &WorkSpan) -> Vec<(String, Value)> {
    let edits = s.edits.as_deref();
    if let Some(attrs) = edits.and_then(|e| e.attributes.as_ref()) {
        return attrs.clone();
    }
    match edits.and_then(|e| e.attribute_slots.as_ref()) {
        Some(slots) => slots
            .iter()
            .map(|slot| match slot {
                AttrSlot::Written(k, v) => (k.clone(), v.clone()),
                AttrSlot::Received { start, end, key_start, key_end } => (
                    String::from_utf8_lossy(&s.bytes[*key_start..*key_end]).into_owned(),
                    slot_value(s.bytes, *start, *end),
                ),
            })
            .collect(),
        None => {
            let mut attrs = map_of(s.bytes, field::span::ATTRIBUTES);
            for put in &s.puts {
                ottl::eval::map_put(&mut attrs, &put.key, put.value.get().clone());
            }
            attrs
        }
    }
}

fn span_set(s: &mut WorkSpan, f: SpanField, value: Value) -> Result<(), EvalError> {
    match f {
        SpanField::TraceId => match value {
            Value::TraceId(id) => s.edits_mut().trace_id = Some(id.to_vec()),
            other => return Err(EvalError::expected("pcommon.TraceID", &other)),
        },
        SpanField::TraceIdString => {
            s.edits_mut().trace_id = Some(parse_hex_id(&expect_string(value)?, 16, "trace")?)
        }
        SpanField::SpanId => match value {
            Value::SpanId(id) => s.edits_mut().span_id = Some(id.to_vec()),
            other => return Err(EvalError::expected("pcommon.SpanID", &other)),
        },
        SpanField::SpanIdString => {
            s.edits_mut().span_id = Some(parse_hex_id(&expect_string(value)?, 8, "span")?)
        }
        SpanField::ParentSpanId => match value {
            Value::SpanId(id) => s.edits_mut().parent_span_id = Some(id.to_vec()),
            other => return Err(EvalError::expected("pcommon.SpanID", &other)),
        },
        SpanField::ParentSpanIdString => {
            s.edits_mut().parent_span_id = Some(parse_hex_id(&expect_string(value)?, 8, "span")?)
        }
        SpanField::TraceState => s.edits_mut().trace_state = Some(expect_string(value)?),
        SpanField::TraceStateKey => return Err(EvalError::Key("trace_state takes exactly one key".into())),
        SpanField::Name => s.edits_mut().name = Some(expect_string(value)?),
        SpanField::Kind => s.edits_mut().kind = Some(expect_int(value)? as i32),
        SpanField::KindString | SpanField::KindDeprecatedString => {
            let name = expect_string(value)?;
            let deprecated = f == SpanField::KindDeprecatedString;
            let kind = KIND_NAMES
                .iter()
                .position(|(plain, old)| if deprecated { *old == name } else { *plain == name })
                .ok_or_else(|| {
                    EvalError::Function(if deprecated {
                        format!("unknown span kind deprecated string, {name}")
                    } else {
                        format!("unknown span kind string, {name}")
                    })
                })?;
            s.edits_mut().kind = Some(kind as i32);
        }
        SpanField::StartTimeUnixNano => s.edits_mut().start_time_unix_nano = Some(expect_int(value)? as u64),
        SpanField::EndTimeUnixNano => s.edits_mut().end_time_unix_nano = Some(expect_int(value)? as u64),
        SpanField::StartTime => s.edits_mut().start_time_unix_nano = Some(expect_time(value)? as u64),
        SpanField::EndTime => s.edits_mut().end_time_unix_nano = Some(expect_time(value)? as u64),
        SpanField::Attributes => {
            let attributes = expect_map(value)?;
            s.puts.clear();
            let edits = s.edits_mut();
            edits.attributes = Some(attributes);
            edits.attribute_slots = None;
        }
        SpanField::DroppedAttributesCount => {
            s.edits_mut().dropped_attributes_count = Some(expect_int(value)? as u32)
        }
        SpanField::DroppedEventsCount => s.edits_mut().dropped_events_count = Some(expect_int(value)? as u32),
        SpanField::DroppedLinksCount => s.edits_mut().dropped_links_count = Some(expect_int(value)? as u32),
        SpanField::StatusCode => s.edits_mut().status_code = Some(expect_int(value)? as i32),
        SpanField::StatusMessage => s.edits_mut().status_message = Some(expect_string(value)?),
        SpanField::Events | SpanField::Links | SpanField::Status => {
            return Err(EvalError::Function(format!(
                "{f:?} is a structured value this gateway does not let statements replace; set its fields"
            )));
        }
    }
    Ok(())
}

/// The span's trace state as received or written.
fn trace_state(s: &WorkSpan) -> String {
    match s.edits.as_deref().and_then(|e| e.trace_state.as_ref()) {
        Some(ts) => ts.clone(),
        None => last_string(s.bytes, field::span::TRACE_STATE).unwrap_or_default().to_string(),
    }
}

/// The message and code of the span's status as received.
pub(super) fn status_of(span: &[u8]) -> (String, i32) {
    let (mut message, mut code) = (String::new(), 0);
    for status in len_fields(span, field::span::STATUS) {
        // Occurrences merge field by field.
        if let Some(m) = last_string(status, field::status::MESSAGE) {
            message = m.to_string();
        }
        if let Some(c) = last_varint(status, field::status::CODE) {
            code = c as i32;
        }
    }
    (message, code)
}

// === span event ===

fn event_get(e: &WorkEvent, f: SpanEventField, index: usize) -> Result<Value, EvalError> {
    use field::event as n;
    let time = || e.time_unix_nano.unwrap_or_else(|| last_fixed64(&e.bytes, n::TIME_UNIX_NANO).unwrap_or(0));
    Ok(match f {
        SpanEventField::TimeUnixNano => Value::Int(time() as i64),
        SpanEventField::Time => Value::Time(time() as i64),
        SpanEventField::Name => Value::String(match &e.name {
            Some(name) => name.clone(),
            None => last_string(&e.bytes, n::NAME).unwrap_or_default().to_string(),
        }),
        SpanEventField::Attributes => Value::Map(match &e.attributes {
            Some(attrs) => attrs.clone(),
            None => map_of(&e.bytes, n::ATTRIBUTES),
        }),
        SpanEventField::DroppedAttributesCount => Value::Int(match e.dropped_attributes_count {
            Some(c) => i64::from(c),
            None => i64::from(last_varint(&e.bytes, n::DROPPED_ATTRIBUTES_COUNT).unwrap_or(0) as u32),
        }),
        SpanEventField::EventIndex => Value::Int(index as i64),
    })
}

fn event_set(e: &mut WorkEvent, f: SpanEventField, value: Value) -> Result<(), EvalError> {
    match f {
        SpanEventField::TimeUnixNano => e.time_unix_nano = Some(expect_int(value)? as u64),
        SpanEventField::Time => e.time_unix_nano = Some(expect_time(value)? as u64),
        SpanEventField::Name => e.name = Some(expect_string(value)?),
        SpanEventField::Attributes => e.attributes = Some(expect_map(value)?),
        SpanEventField::DroppedAttributesCount => {
            e.dropped_attributes_count = Some(expect_int(value)? as u32)
        }
        SpanEventField::EventIndex => {
            return Err(EvalError::Function("the 'event_index' path cannot be modified".into()));
        }
    }
    Ok(())
}

// === shared ===

/// `set_key` through `get` and `set`.
fn default_set_key(acc: &mut dyn Accessor, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
    let mut entries = match acc.get(target)? {
        Value::Map(entries) => entries,
        Value::Nil => Vec::new(),
        other => {
            return Err(EvalError::Key(format!(
                "type {} does not support string indexing",
                other.type_name()
            )));
        }
    };
    ottl::eval::map_put(&mut entries, key, value);
    acc.set(target, Value::Map(entries))
}

/// `remove_key` through `get` and `set`.
fn default_remove_key(acc: &mut dyn Accessor, target: Target, key: &str) -> Result<bool, EvalError> {
    let mut entries = match acc.get(target)? {
        Value::Map(entries) => entries,
        other => return Err(EvalError::expected("pcommon.Map", &other)),
    };
    let Some(i) = entries.iter().position(|(k, _)| k == key) else {
        return Ok(false);
    };
    entries.swap_remove(i);
    acc.set(target, Value::Map(entries))?;
    Ok(true)
}

/// `get_key` through `get`, for the maps without a faster path.
fn default_get_key(acc: &mut dyn Accessor, target: Target, key: &str) -> Result<Value, EvalError> {
    match acc.get(target)? {
        Value::Map(entries) => Ok(Value::map_get(&entries, key).cloned().unwrap_or_default()),
        Value::Nil => Ok(Value::Nil),
        other => Err(EvalError::Key(format!("type {} does not support string indexing", other.type_name()))),
    }
}

fn unreachable_target(target: Target) -> EvalError {
    EvalError::Function(format!("{target:?} is not reachable from this context"))
}

/// A map to store as attributes (`ctxutil.SetMap`); values that cannot be attributes are left out.
fn expect_map(value: Value) -> Result<Vec<(String, Value)>, EvalError> {
    match value {
        Value::Map(entries) => Ok(entries.into_iter().filter(|(_, v)| v.is_attribute_value()).collect()),
        other => Err(EvalError::expected("pcommon.Map", &other)),
    }
}

fn expect_string(value: Value) -> Result<String, EvalError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(EvalError::expected("string", &other)),
    }
}

fn expect_int(value: Value) -> Result<i64, EvalError> {
    match value {
        Value::Int(i) => Ok(i),
        other => Err(EvalError::expected("int64", &other)),
    }
}

fn expect_time(value: Value) -> Result<i64, EvalError> {
    match value {
        Value::Time(t) => Ok(t),
        other => Err(EvalError::expected("time.Time", &other)),
    }
}

/// An id of `N` bytes from what was received: shorter ids are zero-padded, as a Go array would hold
/// them (the receiver refuses wrong lengths once hardened).
fn fixed_id<const N: usize>(raw: &[u8]) -> [u8; N] {
    let mut id = [0u8; N];
    let n = raw.len().min(N);
    id[..n].copy_from_slice(&raw[..n]);
    id
}

/// A hex id of `len` bytes (`span.trace_id.string` written).
fn parse_hex_id(text: &str, len: usize, what: &str) -> Result<Vec<u8>, EvalError> {
    let invalid =
        || EvalError::Function(format!("{what} ids must be {} hex characters, got {text:?}", len * 2));
    if text.len() != len * 2 {
        return Err(invalid());
    }
    (0..len).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| invalid())).collect()
}

/// Byte ranges of every occurrence of LEN field `number`.
fn len_field_ranges(buf: &[u8], number: u32) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut fields = Fields::new(buf);
    std::iter::from_fn(move || {
        loop {
            let f = fields.next_field().ok()??;
            if f.number == number && f.wire == WIRE_LEN {
                return Some((f.value_start, f.end));
            }
        }
    })
}

fn last_bytes(buf: &[u8], number: u32) -> Option<&[u8]> {
    len_fields(buf, number).last()
}

fn last_string(buf: &[u8], number: u32) -> Option<&str> {
    last_bytes(buf, number).and_then(|b| std::str::from_utf8(b).ok())
}

fn last_varint(buf: &[u8], number: u32) -> Option<u64> {
    let mut fields = Fields::new(buf);
    let mut found = None;
    while let Ok(Some(f)) = fields.next_field() {
        if f.number == number && f.wire == WIRE_VARINT {
            let mut pos = f.value_start;
            found = read_varint(buf, &mut pos).ok();
        }
    }
    found
}

fn last_fixed64(buf: &[u8], number: u32) -> Option<u64> {
    let mut fields = Fields::new(buf);
    let mut found = None;
    while let Ok(Some(f)) = fields.next_field() {
        if f.number == number && f.wire == WIRE_FIXED64 {
            found = buf[f.value_start..f.end].try_into().ok().map(u64::from_le_bytes);
        }
    }
    found
}
