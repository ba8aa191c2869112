#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a failure here is a broken test
//! Test support shared by unit tests, integration tests and benchmarks: proptest strategies for OTLP
//! requests, a deterministic request generator, and helpers that flatten requests for comparison.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

/// One span with the context it was sent in, for order-preserving comparisons across re-batching.
pub type FlatSpan = (Option<Resource>, String, Option<InstrumentationScope>, String, Span);

/// Every span of the requests, in order, with its resource and scope.
pub fn flatten<'a>(requests: impl IntoIterator<Item = &'a ExportTraceServiceRequest>) -> Vec<FlatSpan> {
    let mut out = Vec::new();
    for req in requests {
        for rs in &req.resource_spans {
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push((
                        rs.resource.clone(),
                        rs.schema_url.clone(),
                        ss.scope.clone(),
                        ss.schema_url.clone(),
                        s.clone(),
                    ));
                }
            }
        }
    }
    out
}

/// Decodes an encoded request with prost.
pub fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("valid request")
}

/// A span with ids of the right lengths and nothing else: the base for hand-made spans
/// (`Span { name, ..span_with_ids() }`), which the scan refuses without ids.
pub fn span_with_ids() -> Span {
    Span { trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() }
}

/// Whether the gateway must take this encoded request: prost decodes it, every span and link has a
/// trace id (16 bytes) and a span id (8 bytes), every occurrence of those is of that length, and
/// every occurrence of a span's parent id is 8 bytes or empty. The OTLP schema's rules for ids;
/// the Collector checks every occurrence's length as this does (pdata's `UnmarshalProto` of ids) but
/// lets empty and missing ids through. The scanner's verdict must be this. Independent of the
/// scanner: the ids come from a second prost decode into the messages below, whose id fields are
/// `repeated` so that every occurrence is kept.
pub fn otlp_accepts(bytes: &[u8]) -> bool {
    const TRACE_ID: usize = 16;
    const SPAN_ID: usize = 8;
    let exact = |ids: &[Vec<u8>], size: usize| !ids.is_empty() && ids.iter().all(|id| id.len() == size);
    if ExportTraceServiceRequest::decode(bytes).is_err() {
        return false;
    }
    let Ok(ids) = IdsRequest::decode(bytes) else { return false };
    ids.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).all(|span| {
        exact(&span.trace_id, TRACE_ID)
            && exact(&span.span_id, SPAN_ID)
            && span.parent_span_id.iter().all(|id| id.is_empty() || id.len() == SPAN_ID)
            && span.links.iter().all(|l| exact(&l.trace_id, TRACE_ID) && exact(&l.span_id, SPAN_ID))
    })
}

/// `ExportTraceServiceRequest` reduced to the ids of its spans and links ([`otlp_accepts`]).
#[derive(Clone, PartialEq, prost::Message)]
struct IdsRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<IdsResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdsResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<IdsScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdsScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<IdsSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdsSpan {
    #[prost(bytes = "vec", repeated, tag = "1")]
    trace_id: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    span_id: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    parent_span_id: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "13")]
    links: Vec<IdsLink>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdsLink {
    #[prost(bytes = "vec", repeated, tag = "1")]
    trace_id: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    span_id: Vec<Vec<u8>>,
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(any_value::Value::StringValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        any::<f64>()
            .prop_filter("NaN never compares equal", |f| !f.is_nan())
            .prop_map(any_value::Value::DoubleValue),
        vec(any::<u8>(), 0..8).prop_map(any_value::Value::BytesValue),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values }))
            }),
            vec(("[a-z.]{1,8}", inner), 0..3).prop_map(|kvs| AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| KeyValue { key, value: Some(v), key_strindex: 0 })
                        .collect()
                }))
            }),
        ]
    })
}

fn attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(("[a-z.]{1,10}", proptest::option::of(any_value())), 0..max).prop_map(|kvs| {
        kvs.into_iter().map(|(key, value)| KeyValue { key, value, key_strindex: 0 }).collect()
    })
}

fn span_strategy() -> impl Strategy<Value = Span> {
    (
        vec(any::<u8>(), 16),
        vec(any::<u8>(), 8),
        "[a-zA-Z /]{0,16}",
        any::<u64>(),
        0..6i32,
        attributes(5),
        proptest::option::of((".{0,8}", 0..3i32)),
        vec(
            (any::<u64>(), "[a-z]{0,6}", attributes(2)).prop_map(|(t, name, attributes)| span::Event {
                time_unix_nano: t,
                name,
                attributes,
                dropped_attributes_count: 0,
            }),
            0..2,
        ),
        // Parent (none for a root span), trace state, links and flags (field 16, the schema's one
        // two-byte key).
        (
            prop_oneof![Just(Vec::new()), vec(any::<u8>(), 8)],
            "[a-z=,]{0,6}",
            vec(
                (vec(any::<u8>(), 16), vec(any::<u8>(), 8), attributes(1), any::<u32>()).prop_map(
                    |(trace_id, span_id, attributes, flags)| span::Link {
                        trace_id,
                        span_id,
                        attributes,
                        flags,
                        ..Default::default()
                    },
                ),
                0..2,
            ),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                trace_id,
                span_id,
                name,
                start,
                kind,
                attributes,
                status,
                events,
                (parent_span_id, trace_state, links, flags),
            )| Span {
                trace_id,
                span_id,
                parent_span_id,
                trace_state,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: start.wrapping_add(1000),
                attributes,
                events,
                links,
                flags,
                status: status.map(|(message, code)| Status { message, code }),
                ..Default::default()
            },
        )
}

/// Random valid requests: several resources and scopes, some empty, a few spans each.
pub fn request_strategy() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope = (
        proptest::option::of(("[a-z.]{0,8}", "[0-9.]{0,5}", attributes(2))),
        vec(span_strategy(), 0..6),
        "[a-z:/.]{0,6}",
    )
        .prop_map(|(scope, spans, schema_url)| ScopeSpans {
            scope: scope.map(|(name, version, attributes)| InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 0,
            }),
            spans,
            schema_url,
        });
    let resource = (proptest::option::of(attributes(6)), vec(scope, 0..4), "[a-z:/.]{0,6}").prop_map(
        |(attrs, scope_spans, schema_url)| ResourceSpans {
            resource: attrs.map(|attributes| Resource { attributes, ..Default::default() }),
            scope_spans,
            schema_url,
        },
    );
    vec(resource, 0..4).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// Random requests as [`request_strategy`] makes them, with a few trace, span, parent and link ids
/// resized to a random length from 0 to 20 bytes: valid, or refused for an id alone.
pub fn request_with_any_ids_strategy() -> impl Strategy<Value = ExportTraceServiceRequest> {
    (request_strategy(), vec((any::<prop::sample::Index>(), 0..=20usize), 0..3)).prop_map(
        |(mut req, resizes)| {
            let mut ids: Vec<&mut Vec<u8>> = Vec::new();
            for span in
                req.resource_spans.iter_mut().flat_map(|rs| &mut rs.scope_spans).flat_map(|ss| &mut ss.spans)
            {
                let Span { trace_id, span_id, parent_span_id, links, .. } = span;
                ids.extend([trace_id, span_id, parent_span_id]);
                for link in links {
                    ids.extend([&mut link.trace_id, &mut link.span_id]);
                }
            }
            if ids.is_empty() {
                return req;
            }
            for (at, len) in resizes {
                let n = ids.len();
                ids[at.index(n)].resize(len, 0xab);
            }
            req
        },
    )
}

/// A deterministic request like the load test's: `resources` resources, `spans` spans in total,
/// `attrs` string attributes of `attr_len` characters per span. Used by benchmarks and tests.
pub fn sample_request(
    resources: usize,
    spans: usize,
    attrs: usize,
    attr_len: usize,
) -> ExportTraceServiceRequest {
    let resources = resources.max(1);
    let value: String = "x".repeat(attr_len);
    let resource_spans = (0..resources)
        .map(|r| {
            let n = spans / resources + usize::from(r < spans % resources);
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", &format!("svc-{r}")),
                        kv("k8s.pod.ip", &format!("10.0.0.{}", r % 250 + 1)),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "bench".into(), ..Default::default() }),
                    spans: (0..n)
                        .map(|i| Span {
                            trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                            name: format!("span-{i}"),
                            kind: 2,
                            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                            end_time_unix_nano: 1_700_000_000_000_100_000 + i as u64,
                            attributes: (0..attrs).map(|a| kv(&format!("attr.{a}"), &value)).collect(),
                            ..Default::default()
                        })
                        .collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

/// A scanned (and processed) request encoded back into one `ExportTraceServiceRequest`, resources and
/// scopes as they are, for comparing a stage's output with prost.
pub fn encode_trace_data(data: &crate::wire::TraceData) -> Vec<u8> {
    use crate::wire::put_len_header;
    let mut out = Vec::new();
    for rs in &data.resources {
        let mut body = Vec::new();
        if rs.has_resource {
            put_len_header(&mut body, 1, rs.resource.len() + rs.added.len());
            body.extend_from_slice(&rs.resource);
            body.extend_from_slice(&rs.added);
        }
        for scope in &rs.scopes {
            put_len_header(&mut body, 2, scope.body.len());
            body.extend_from_slice(&scope.body);
        }
        for rest in &rs.rest {
            body.extend_from_slice(rest);
        }
        put_len_header(&mut out, 1, body.len());
        out.extend_from_slice(&body);
    }
    out
}
