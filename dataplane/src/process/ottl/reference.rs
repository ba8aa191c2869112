#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a failure here is a broken test
//! The plain way to run OTTL: decode the request with prost, let statements change the owned structs,
//! encode again. Written independently of [`super::access`] from the Collector's path semantics, it is
//! the reference the byte-level stage is proven against (property tests) and the baseline the
//! benchmarks compare it with.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};
use ottl::context::{Context, ResourceField, ScopeField, SpanEventField, SpanField, Target};
use ottl::eval::{Accessor, ErrorMode, EvalError};
use ottl::value::Value;
use tracegw_contract::processing::Processing;

/// Kinds by number: `ptrace.SpanKind.String()` and the deprecated names.
const KINDS: [(&str, &str); 6] = [
    ("Unspecified", "SPAN_KIND_UNSPECIFIED"),
    ("Internal", "SPAN_KIND_INTERNAL"),
    ("Server", "SPAN_KIND_SERVER"),
    ("Client", "SPAN_KIND_CLIENT"),
    ("Producer", "SPAN_KIND_PRODUCER"),
    ("Consumer", "SPAN_KIND_CONSUMER"),
];

/// The items of one span event, span, scope or resource, borrowed from the decoded request.
struct Item<'a> {
    resource: &'a mut Resource,
    resource_schema_url: &'a mut String,
    scope: Option<(&'a mut InstrumentationScope, &'a mut String)>,
    span: Option<&'a mut Span>,
    event: Option<(usize, &'a mut span::Event)>,
}

/// Runs compiled processing on a decoded request, as the Collector runs its processors on pdata.
pub fn apply(
    processing: &Processing,
    req: &mut ExportTraceServiceRequest,
    mode: ErrorMode,
) -> Result<(), EvalError> {
    for group in &processing.transforms {
        for_each(req, group.context, &mut |item| group.run(item, mode).map(|_| false))?;
    }
    for group in &processing.filters {
        for_each(req, group.context, &mut |item| group.matches(item, mode).map(|(m, _)| m))?;
    }
    if !processing.filters.is_empty() {
        for rs in &mut req.resource_spans {
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
        }
        req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    }
    Ok(())
}

/// Calls `f` on every item of `context`; an item for which it returns `true` is removed.
fn for_each(
    req: &mut ExportTraceServiceRequest,
    context: Context,
    f: &mut dyn FnMut(&mut Item<'_>) -> Result<bool, EvalError>,
) -> Result<(), EvalError> {
    let mut keep_rs = Vec::new();
    for rs in &mut req.resource_spans {
        let resource = rs.resource.get_or_insert_with(Resource::default);
        if context == Context::Resource {
            let drop = f(&mut Item {
                resource,
                resource_schema_url: &mut rs.schema_url,
                scope: None,
                span: None,
                event: None,
            })?;
            keep_rs.push(!drop);
            continue;
        }
        keep_rs.push(true);
        let mut keep_ss = Vec::new();
        for ss in &mut rs.scope_spans {
            let scope = ss.scope.get_or_insert_with(InstrumentationScope::default);
            if context == Context::Scope {
                let drop = f(&mut Item {
                    resource: &mut *resource,
                    resource_schema_url: &mut rs.schema_url,
                    scope: Some((scope, &mut ss.schema_url)),
                    span: None,
                    event: None,
                })?;
                keep_ss.push(!drop);
                continue;
            }
            keep_ss.push(true);
            let mut keep_spans = Vec::new();
            for s in &mut ss.spans {
                if context == Context::Span {
                    let drop = f(&mut Item {
                        resource: &mut *resource,
                        resource_schema_url: &mut rs.schema_url,
                        scope: Some((&mut *scope, &mut ss.schema_url)),
                        span: Some(s),
                        event: None,
                    })?;
                    keep_spans.push(!drop);
                    continue;
                }
                keep_spans.push(true);
                let mut events = std::mem::take(&mut s.events);
                let mut keep_events = Vec::new();
                for (index, event) in events.iter_mut().enumerate() {
                    let drop = f(&mut Item {
                        resource: &mut *resource,
                        resource_schema_url: &mut rs.schema_url,
                        scope: Some((&mut *scope, &mut ss.schema_url)),
                        span: Some(&mut *s),
                        event: Some((index, event)),
                    })?;
                    keep_events.push(!drop);
                }
                let mut keep = keep_events.into_iter();
                events.retain(|_| keep.next().unwrap_or(true));
                s.events = events;
            }
            let mut keep = keep_spans.into_iter();
            ss.spans.retain(|_| keep.next().unwrap_or(true));
        }
        let mut keep = keep_ss.into_iter();
        rs.scope_spans.retain(|_| keep.next().unwrap_or(true));
    }
    let mut keep = keep_rs.into_iter();
    req.resource_spans.retain(|_| keep.next().unwrap_or(true));
    Ok(())
}

// === values ===

fn from_any(v: Option<&AnyValue>) -> Value {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Nil,
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => Value::Int(*i),
        Some(V::DoubleValue(d)) => Value::Float(*d),
        Some(V::BytesValue(b)) => Value::Bytes(b.clone()),
        Some(V::ArrayValue(a)) => Value::List(a.values.iter().map(|v| from_any(Some(v))).collect()),
        Some(V::KvlistValue(l)) => Value::Map(from_kvs(&l.values)),
        Some(_) => Value::Nil,
    }
}

fn from_kvs(kvs: &[KeyValue]) -> Vec<(String, Value)> {
    kvs.iter().map(|kv| (kv.key.clone(), from_any(kv.value.as_ref()))).collect()
}

fn to_any(v: &Value) -> AnyValue {
    use any_value::Value as V;
    AnyValue {
        value: match v {
            Value::String(s) => Some(V::StringValue(s.clone())),
            Value::Bool(b) => Some(V::BoolValue(*b)),
            Value::Int(i) => Some(V::IntValue(*i)),
            Value::Float(f) => Some(V::DoubleValue(*f)),
            Value::Bytes(b) => Some(V::BytesValue(b.clone())),
            Value::List(items) => {
                Some(V::ArrayValue(ArrayValue { values: items.iter().map(to_any).collect() }))
            }
            Value::Map(entries) => Some(V::KvlistValue(KeyValueList { values: to_kvs(entries) })),
            _ => None,
        },
    }
}

fn to_kvs(entries: &[(String, Value)]) -> Vec<KeyValue> {
    entries
        .iter()
        .filter(|(_, v)| v.is_attribute_value())
        .map(|(k, v)| KeyValue { key: k.clone(), value: Some(to_any(v)), key_strindex: 0 })
        .collect()
}

fn map(v: Value) -> Result<Vec<KeyValue>, EvalError> {
    match v {
        Value::Map(entries) => Ok(to_kvs(&entries)),
        other => Err(EvalError::expected("pcommon.Map", &other)),
    }
}

fn string(v: Value) -> Result<String, EvalError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(EvalError::expected("string", &other)),
    }
}

fn int(v: Value) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(i),
        other => Err(EvalError::expected("int64", &other)),
    }
}

fn id<const N: usize>(raw: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = raw.len().min(N);
    out[..n].copy_from_slice(&raw[..n]);
    out
}

/// pdata leaves an all-zero id out: it decodes as empty.
fn stored_id(raw: &[u8]) -> Vec<u8> {
    if raw.iter().all(|b| *b == 0) { Vec::new() } else { raw.to_vec() }
}

fn hex_id(text: &str, len: usize) -> Result<Vec<u8>, EvalError> {
    if text.len() != 2 * len {
        return Err(EvalError::Function(format!("ids must be {} hex characters", 2 * len)));
    }
    (0..len)
        .map(|i| {
            u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| EvalError::Function("bad hex".into()))
        })
        .collect()
}

// === impl Accessor ===

impl Accessor for Item<'_> {
    fn get(&mut self, target: Target) -> Result<Value, EvalError> {
        Ok(match target {
            Target::Resource(f) => match f {
                ResourceField::Attributes => Value::Map(from_kvs(&self.resource.attributes)),
                ResourceField::DroppedAttributesCount => {
                    Value::Int(i64::from(self.resource.dropped_attributes_count))
                }
                ResourceField::SchemaUrl => Value::String(self.resource_schema_url.clone()),
            },
            Target::Scope(f) => {
                let (scope, url) =
                    self.scope.as_ref().ok_or_else(|| EvalError::Function("no scope".into()))?;
                match f {
                    ScopeField::Name => Value::String(scope.name.clone()),
                    ScopeField::Version => Value::String(scope.version.clone()),
                    ScopeField::Attributes => Value::Map(from_kvs(&scope.attributes)),
                    ScopeField::DroppedAttributesCount => {
                        Value::Int(i64::from(scope.dropped_attributes_count))
                    }
                    ScopeField::SchemaUrl => Value::String((*url).clone()),
                }
            }
            Target::Span(f) => {
                let s = self.span.as_ref().ok_or_else(|| EvalError::Function("no span".into()))?;
                let status = s.status.clone().unwrap_or_default();
                let kind_name = |deprecated: bool| {
                    usize::try_from(s.kind)
                        .ok()
                        .and_then(|k| KINDS.get(k))
                        .map_or("", |k| if deprecated { k.1 } else { k.0 })
                };
                match f {
                    SpanField::TraceId => Value::TraceId(id(&s.trace_id)),
                    SpanField::TraceIdString => Value::String(ottl::funcs::hex(&id::<16>(&s.trace_id))),
                    SpanField::SpanId => Value::SpanId(id(&s.span_id)),
                    SpanField::SpanIdString => Value::String(ottl::funcs::hex(&id::<8>(&s.span_id))),
                    SpanField::ParentSpanId => Value::SpanId(id(&s.parent_span_id)),
                    SpanField::ParentSpanIdString => {
                        Value::String(ottl::funcs::hex(&id::<8>(&s.parent_span_id)))
                    }
                    SpanField::TraceState => Value::String(s.trace_state.clone()),
                    SpanField::TraceStateKey => {
                        return Err(EvalError::Key("trace_state takes exactly one key".into()));
                    }
                    SpanField::Name => Value::String(s.name.clone()),
                    SpanField::Kind => Value::Int(i64::from(s.kind)),
                    SpanField::KindString => Value::String(kind_name(false).into()),
                    SpanField::KindDeprecatedString => Value::String(kind_name(true).into()),
                    SpanField::StartTimeUnixNano => Value::Int(s.start_time_unix_nano as i64),
                    SpanField::EndTimeUnixNano => Value::Int(s.end_time_unix_nano as i64),
                    SpanField::StartTime => Value::Time(s.start_time_unix_nano as i64),
                    SpanField::EndTime => Value::Time(s.end_time_unix_nano as i64),
                    SpanField::Attributes => Value::Map(from_kvs(&s.attributes)),
                    SpanField::DroppedAttributesCount => Value::Int(i64::from(s.dropped_attributes_count)),
                    SpanField::DroppedEventsCount => Value::Int(i64::from(s.dropped_events_count)),
                    SpanField::DroppedLinksCount => Value::Int(i64::from(s.dropped_links_count)),
                    SpanField::StatusCode => Value::Int(i64::from(status.code)),
                    SpanField::StatusMessage => Value::String(status.message),
                    SpanField::Events | SpanField::Links | SpanField::Status => {
                        return Err(EvalError::Function("structured value".into()));
                    }
                }
            }
            Target::SpanEvent(f) => {
                let (index, e) = self.event.as_ref().ok_or_else(|| EvalError::Function("no event".into()))?;
                match f {
                    SpanEventField::TimeUnixNano => Value::Int(e.time_unix_nano as i64),
                    SpanEventField::Time => Value::Time(e.time_unix_nano as i64),
                    SpanEventField::Name => Value::String(e.name.clone()),
                    SpanEventField::Attributes => Value::Map(from_kvs(&e.attributes)),
                    SpanEventField::DroppedAttributesCount => {
                        Value::Int(i64::from(e.dropped_attributes_count))
                    }
                    SpanEventField::EventIndex => Value::Int(*index as i64),
                }
            }
            Target::Cache => return Err(EvalError::Function("the cache is the evaluator's".into())),
        })
    }

    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        if target == Target::Span(SpanField::TraceStateKey) {
            let s = self.span.as_ref().ok_or_else(|| EvalError::Function("no span".into()))?;
            return Ok(ottl::context::trace_state::get(&s.trace_state, key).map_or(Value::Nil, Value::String));
        }
        match self.get(target)? {
            Value::Map(entries) => Ok(Value::map_get(&entries, key).cloned().unwrap_or_default()),
            other => {
                Err(EvalError::Key(format!("type {} does not support string indexing", other.type_name())))
            }
        }
    }

    fn set_key(&mut self, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
        if target == Target::Span(SpanField::TraceStateKey) {
            let s = self.span.as_mut().ok_or_else(|| EvalError::Function("no span".into()))?;
            if let Some(updated) = ottl::context::trace_state::insert(&s.trace_state, key, &string(value)?) {
                s.trace_state = updated;
            }
            return Ok(());
        }
        let mut entries = match self.get(target)? {
            Value::Map(entries) => entries,
            other => {
                return Err(EvalError::Key(format!(
                    "type {} does not support string indexing",
                    other.type_name()
                )));
            }
        };
        ottl::eval::map_put(&mut entries, key, value);
        self.set(target, Value::Map(entries))
    }

    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        match target {
            Target::Resource(f) => match f {
                ResourceField::Attributes => self.resource.attributes = map(value)?,
                ResourceField::DroppedAttributesCount => {
                    self.resource.dropped_attributes_count = int(value)? as u32
                }
                ResourceField::SchemaUrl => *self.resource_schema_url = string(value)?,
            },
            Target::Scope(f) => {
                let (scope, url) =
                    self.scope.as_mut().ok_or_else(|| EvalError::Function("no scope".into()))?;
                match f {
                    ScopeField::Name => scope.name = string(value)?,
                    ScopeField::Version => scope.version = string(value)?,
                    ScopeField::Attributes => scope.attributes = map(value)?,
                    ScopeField::DroppedAttributesCount => scope.dropped_attributes_count = int(value)? as u32,
                    ScopeField::SchemaUrl => **url = string(value)?,
                }
            }
            Target::Span(f) => {
                let s = self.span.as_mut().ok_or_else(|| EvalError::Function("no span".into()))?;
                match (f, value) {
                    (SpanField::TraceId, Value::TraceId(v)) => s.trace_id = stored_id(&v),
                    (SpanField::SpanId, Value::SpanId(v)) => s.span_id = stored_id(&v),
                    (SpanField::ParentSpanId, Value::SpanId(v)) => s.parent_span_id = stored_id(&v),
                    (SpanField::TraceId, other) => {
                        return Err(EvalError::expected("pcommon.TraceID", &other));
                    }
                    (SpanField::SpanId | SpanField::ParentSpanId, other) => {
                        return Err(EvalError::expected("pcommon.SpanID", &other));
                    }
                    (SpanField::TraceIdString, v) => s.trace_id = stored_id(&hex_id(&string(v)?, 16)?),
                    (SpanField::SpanIdString, v) => s.span_id = stored_id(&hex_id(&string(v)?, 8)?),
                    (SpanField::ParentSpanIdString, v) => {
                        s.parent_span_id = stored_id(&hex_id(&string(v)?, 8)?)
                    }
                    (SpanField::TraceState, v) => s.trace_state = string(v)?,
                    (SpanField::Name, v) => s.name = string(v)?,
                    (SpanField::Kind, v) => s.kind = int(v)? as i32,
                    (SpanField::KindString | SpanField::KindDeprecatedString, v) => {
                        let name = string(v)?;
                        let deprecated = f == SpanField::KindDeprecatedString;
                        s.kind = KINDS
                            .iter()
                            .position(|k| if deprecated { k.1 == name } else { k.0 == name })
                            .ok_or_else(|| EvalError::Function(format!("unknown span kind {name}")))?
                            as i32;
                    }
                    (SpanField::StartTimeUnixNano, v) => s.start_time_unix_nano = int(v)? as u64,
                    (SpanField::EndTimeUnixNano, v) => s.end_time_unix_nano = int(v)? as u64,
                    (SpanField::StartTime, Value::Time(t)) => s.start_time_unix_nano = t as u64,
                    (SpanField::EndTime, Value::Time(t)) => s.end_time_unix_nano = t as u64,
                    (SpanField::StartTime | SpanField::EndTime, other) => {
                        return Err(EvalError::expected("time.Time", &other));
                    }
                    (SpanField::Attributes, v) => s.attributes = map(v)?,
                    (SpanField::DroppedAttributesCount, v) => s.dropped_attributes_count = int(v)? as u32,
                    (SpanField::DroppedEventsCount, v) => s.dropped_events_count = int(v)? as u32,
                    (SpanField::DroppedLinksCount, v) => s.dropped_links_count = int(v)? as u32,
                    (SpanField::StatusCode, v) => {
                        s.status.get_or_insert_with(Status::default).code = int(v)? as i32
                    }
                    (SpanField::StatusMessage, v) => {
                        s.status.get_or_insert_with(Status::default).message = string(v)?
                    }
                    (
                        SpanField::TraceStateKey | SpanField::Events | SpanField::Links | SpanField::Status,
                        _,
                    ) => {
                        return Err(EvalError::Function("not writable here".into()));
                    }
                }
            }
            Target::SpanEvent(f) => {
                let (_, e) = self.event.as_mut().ok_or_else(|| EvalError::Function("no event".into()))?;
                match f {
                    SpanEventField::TimeUnixNano => e.time_unix_nano = int(value)? as u64,
                    SpanEventField::Time => match value {
                        Value::Time(t) => e.time_unix_nano = t as u64,
                        other => return Err(EvalError::expected("time.Time", &other)),
                    },
                    SpanEventField::Name => e.name = string(value)?,
                    SpanEventField::Attributes => e.attributes = map(value)?,
                    SpanEventField::DroppedAttributesCount => e.dropped_attributes_count = int(value)? as u32,
                    SpanEventField::EventIndex => {
                        return Err(EvalError::Function("the 'event_index' path cannot be modified".into()));
                    }
                }
            }
            Target::Cache => return Err(EvalError::Function("the cache is the evaluator's".into())),
        }
        Ok(())
    }
}
