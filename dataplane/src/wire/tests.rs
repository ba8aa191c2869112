use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::testing::{
    flatten, otlp_accepts, request_strategy, request_with_any_ids_strategy, sample_request,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Scenario: a random valid request.
    /// Guarantees: the scanner accepts it and counts exactly the spans prost decodes.
    #[test]
    fn scan_counts_like_prost(req in request_strategy()) {
        let data = scan(Bytes::from(req.encode_to_vec())).unwrap();
        prop_assert_eq!(data.spans, flatten([&req]).len());
    }

    /// Scenario: arbitrary bytes.
    /// Guarantees: no panic; the scanner accepts exactly what prost accepts (and the Collector, ids).
    #[test]
    fn random_bytes_agree_with_prost(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), otlp_accepts(&bytes));
    }

    /// Scenario: a valid request, truncated or with one byte changed.
    /// Guarantees: no panic; the scanner accepts exactly what prost accepts.
    #[test]
    fn damaged_requests_agree_with_prost(req in request_strategy(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), to in any::<u8>()) {
        let encoded = req.encode_to_vec();
        if encoded.is_empty() { return Ok(()); }
        let truncated = &encoded[..cut.index(encoded.len())];
        prop_assert_eq!(scan(Bytes::copy_from_slice(truncated)).is_ok(), otlp_accepts(truncated));
        let mut changed = encoded.clone();
        changed[flip.index(encoded.len())] = to;
        prop_assert_eq!(scan(Bytes::from(changed.clone())).is_ok(), otlp_accepts(&changed));
    }
}

/// One piece of a hand-built `KeyValue`: the common shape and every way to leave it.
fn key_value_piece() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just(b"service.name".to_vec()),
        Just("säule".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(vec![b'x'; 130]),
        Just(Vec::new()),
    ];
    let len_prefixed = |tag: u8, body: Vec<u8>| {
        let mut out = vec![tag];
        out.extend(varint(body.len()));
        out.extend(body);
        out
    };
    prop_oneof![
        text.clone().prop_map(move |t| len_prefixed(0x0a, t)),
        (text, any::<bool>()).prop_map(move |(t, bytes)| {
            let any = if bytes { len_prefixed(0x3a, t) } else { len_prefixed(0x0a, t) };
            len_prefixed(0x12, any)
        }),
        Just(vec![0x12, 0x00]),
        // Numbers, as the span walk takes them, and their near misses.
        Just(vec![0x12, 0x02, 0x18, 0x05]),
        Just(vec![0x12, 0x03, 0x18, 0xc8, 0x01]),
        Just([&[0x12, 0x0b, 0x18][..], &[0xff; 9], &[0x01]].concat()),
        Just([&[0x12, 0x0b, 0x18][..], &[0xff; 9], &[0x02]].concat()),
        Just([&[0x12, 0x0a, 0x18][..], &[0x80; 8], &[0x00]].concat()),
        Just(vec![0x12, 0x02, 0x18, 0x80]),
        Just(vec![0x12, 0x01, 0x18]),
        Just(vec![0x12, 0x03, 0x10, 0x81, 0x00]),
        Just(vec![0x12, 0x02, 0x10, 0x01]),
        Just([&[0x12, 0x09, 0x21][..], &[0xab; 8]].concat()),
        Just([&[0x12, 0x08, 0x21][..], &[0xab; 7]].concat()),
        Just(vec![0x12, 0x04, 0x18, 0x05, 0x18, 0x06]),
        Just(vec![0x18, 0x07]),
        Just(vec![0x12, 0x02, 0x10, 0x01]),
        Just(vec![0x12, 0x05, 0x0a]),
        Just(vec![0x0a, 0x81, 0x00]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Scenario: runs of span attributes, each built from the usual shape's parts and its near misses
    /// (other value types, UTF-8 and invalid text, long and non-canonical lengths, extra and truncated
    /// fields, repeated fields), between plain attributes, placed in a valid request.
    /// Guarantees: the attribute fast path never accepts what prost refuses, nor refuses what it
    /// accepts.
    #[test]
    fn attribute_fast_path_agrees_with_prost(
        attributes in proptest::collection::vec(proptest::collection::vec(key_value_piece(), 0..4), 1..5),
        plain_before in any::<bool>(),
        plain_after in any::<bool>(),
    ) {
        // A valid span, with the hand-built KeyValues appended as its field 9 (attributes).
        let mut span = sample_request(1, 1, 0, 0).resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        let plain = len_field(0x4a, &[len_field(0x0a, b"k"), len_field(0x12, &len_field(0x0a, b"v"))].concat());
        if plain_before {
            span.extend(&plain);
        }
        for pieces in &attributes {
            span.extend(len_field(0x4a, &pieces.concat()));
        }
        if plain_after {
            span.extend(&plain);
        }
        let request = len_field(0x0a, &len_field(0x12, &len_field(0x12, &span)));
        prop_assert_eq!(scan(Bytes::from(request.clone())).is_ok(), otlp_accepts(&request), "{:02x?}", span);
    }
}

/// One field of a hand-built span, with its field number for ordering: each field in the form the span
/// walk takes and in forms it leaves to the general loop, valid or not.
fn span_field_piece() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let bytes = |n: usize| proptest::collection::vec(any::<u8>(), n);
    prop_oneof![
        bytes(16).prop_map(|id| (1, [&[0x0a, 16][..], &id].concat())),
        bytes(15).prop_map(|id| (1, [&[0x0a, 15][..], &id].concat())),
        bytes(8).prop_map(|id| (1, [&[0x0a, 8][..], &id].concat())),
        Just((1, vec![0x0a, 0x00])),
        bytes(16).prop_map(|id| (1, [&[0x8a, 0x00, 16][..], &id].concat())),
        bytes(9).prop_map(|id| (1, [&[0x8a, 0x00, 9][..], &id].concat())),
        bytes(8).prop_map(|id| (2, [&[0x12, 8][..], &id].concat())),
        bytes(16).prop_map(|id| (2, [&[0x12, 16][..], &id].concat())),
        Just((2, vec![0x12, 0x00])),
        Just((3, [&[0x1a, 3][..], b"a=b"].concat())),
        Just((3, vec![0x1a, 0x02, 0xc3, 0xa4])),
        Just((3, vec![0x1a, 0x02, 0xff, 0xfe])),
        Just((3, [&[0x1a, 0x81, 0x00][..], b"a"].concat())),
        bytes(8).prop_map(|id| (4, [&[0x22, 8][..], &id].concat())),
        bytes(7).prop_map(|id| (4, [&[0x22, 7][..], &id].concat())),
        Just((4, vec![0x22, 0x00])),
        // Links: ids of the right lengths, empty, and of wrong ones.
        (bytes(16), bytes(8))
            .prop_map(|(t, s)| (13, len_field(0x6a, &[len_field(0x0a, &t), len_field(0x12, &s)].concat()))),
        Just((13, len_field(0x6a, &[vec![0x0a, 0x00], vec![0x12, 0x00]].concat()))),
        bytes(17).prop_map(|t| (13, len_field(0x6a, &len_field(0x0a, &t)))),
        bytes(4).prop_map(|s| (13, len_field(0x6a, &len_field(0x12, &s)))),
        Just((5, [&[0x2a, 5][..], b"hello"].concat())),
        Just((5, vec![0x2a, 0x02, 0xff, 0xfe])),
        Just((5, [&[0x2a, 0x80, 0x01][..], &[b'x'; 128]].concat())),
        Just((5, vec![0x2a, 0x05, b'h'])),
        Just((6, vec![0x30, 0x02])),
        Just((6, vec![0x30, 0xff, 0x01])),
        Just((6, [&[0x30][..], &[0xff; 9], &[0x02]].concat())),
        Just((6, vec![0x31, 0x02])),
        bytes(8).prop_map(|t| (7, [&[0x39][..], &t].concat())),
        bytes(3).prop_map(|t| (7, [&[0x39][..], &t].concat())),
        bytes(8).prop_map(|t| (8, [&[0x41][..], &t].concat())),
        Just((
            9,
            len_field(0x4a, &[len_field(0x0a, b"k"), len_field(0x12, &len_field(0x0a, b"v"))].concat())
        )),
        Just((9, len_field(0x4a, &[len_field(0x0a, b"n"), vec![0x12, 0x02, 0x18, 0x07]].concat()))),
        Just((9, len_field(0x4a, &[len_field(0x0a, b"n"), vec![0x12, 0x02, 0x18, 0x87]].concat()))),
        Just((15, vec![0x7a, 0x00])),
        Just((15, vec![0x7a, 0x02, 0x18, 0x02])),
        Just((15, vec![0x7a, 0x02, 0x18, 0x80])),
        Just((15, vec![0x7a, 0x03, 0x18, 0x80, 0x01])),
        Just((15, [&[0x7a, 0x04, 0x12, 0x02][..], b"ok"].concat())),
        Just((15, vec![0x78, 0x01])),
        bytes(4).prop_map(|f| (16, [&[0x85, 0x01][..], &f].concat())),
        bytes(4).prop_map(|f| (16, [&[0x85, 0x02][..], &f].concat())),
        bytes(3).prop_map(|f| (16, [&[0x85, 0x01][..], &f].concat())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Scenario: spans built field by field from the forms the span walk takes and their near misses
    /// (other lengths, non-ASCII and invalid text, long and non-canonical lengths, bad varints, wrong
    /// wire types, truncated fields, ids of wrong lengths), mostly in field order as SDKs write them,
    /// sometimes not, one or two spans in a valid request.
    /// Guarantees: the scan accepts exactly what prost accepts when every id has a length the
    /// Collector takes, and counts the spans prost decodes.
    #[test]
    fn span_walk_agrees_with_prost(
        mut fields in proptest::collection::vec(span_field_piece(), 0..10),
        in_order in any::<bool>(),
        twice in any::<bool>(),
    ) {
        if in_order {
            fields.sort_by_key(|(number, _)| *number);
        }
        let span: Vec<u8> = fields.iter().flat_map(|(_, field)| field.clone()).collect();
        let mut spans = len_field(0x12, &span);
        if twice {
            spans.extend(len_field(0x12, &span));
        }
        let request = len_field(0x0a, &len_field(0x12, &spans));
        let prost = ExportTraceServiceRequest::decode(request.as_slice());
        let ours = scan(Bytes::from(request.clone()));
        prop_assert_eq!(ours.is_ok(), otlp_accepts(&request), "{:02x?}", span);
        if let (Ok(ours), Ok(prost)) = (ours, prost) {
            prop_assert_eq!(ours.spans, flatten([&prost]).len());
        }
    }
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

fn len_field(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// Scenario: messages nested deeper than prost's recursion limit, through known fields and groups.
/// Guarantees: the scanner refuses exactly when prost does.
#[test]
fn recursion_limit_matches_prost() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value};
    for depth in [90, 93, 94, 95, 96, 100] {
        let mut v = AnyValue { value: Some(any_value::Value::StringValue("x".into())) };
        for _ in 0..depth {
            v = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })) };
        }
        let mut req = sample_request(1, 1, 0, 0);
        req.resource_spans[0].scope_spans[0].spans[0].attributes.push(
            opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "deep".into(),
                value: Some(v),
                key_strindex: 0,
            },
        );
        let bytes = req.encode_to_vec();
        assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), otlp_accepts(&bytes), "depth {depth}");
    }
    // Key-value lists nested down to a plain string attribute (the fast path's shape); each list
    // level costs three levels of budget, so at 32 the innermost one has none left for its value.
    for depth in 28..36 {
        use opentelemetry_proto::tonic::common::v1::{KeyValue, KeyValueList};
        let plain = |v: AnyValue| KeyValue { key: "k".into(), value: Some(v), key_strindex: 0 };
        let mut kv = plain(AnyValue { value: Some(any_value::Value::StringValue("x".into())) });
        for _ in 0..depth {
            kv = plain(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList { values: vec![kv] })),
            });
        }
        let mut req = sample_request(1, 1, 0, 0);
        req.resource_spans[0].scope_spans[0].spans[0].attributes.push(kv);
        let bytes = req.encode_to_vec();
        assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), otlp_accepts(&bytes), "kvlist depth {depth}");
    }
    for depth in [97usize, 98, 99, 100, 101] {
        // An unknown group field nested `depth` times inside the request.
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes.push((7 << 3 | 3) as u8);
        }
        for _ in 0..depth {
            bytes.push((7 << 3 | 4) as u8);
        }
        assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), otlp_accepts(&bytes), "group depth {depth}");
    }
}

/// Scenario: spans interleaved with the scope field inside one ScopeSpans.
/// Guarantees: the spans are gathered into one run and decode unchanged.
#[test]
fn interleaved_spans_are_normalised() {
    let req = sample_request(1, 3, 1, 4);
    let ss = &req.resource_spans[0].scope_spans[0];
    let mut body = Vec::new();
    for (i, span) in ss.spans.iter().enumerate() {
        prost::encoding::message::encode(2, span, &mut body);
        if i == 0 {
            prost::encoding::message::encode(1, ss.scope.as_ref().unwrap(), &mut body);
        }
    }
    let mut rs = Vec::new();
    prost::encoding::bytes::encode(2, &body, &mut rs);
    let mut top = Vec::new();
    prost::encoding::bytes::encode(1, &rs, &mut top);
    let data = scan(Bytes::from(top)).unwrap();
    let scope = &data.resources[0].scopes[0];
    assert_eq!(scope.count, 3);
    assert_eq!(scope.spans_end, scope.body.len());
    let decoded = opentelemetry_proto::tonic::trace::v1::ScopeSpans::decode(&scope.body[..]).unwrap();
    assert_eq!(&decoded, ss);
}

#[test]
fn varint_len_matches_encoding() {
    for v in [0u64, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert_eq!(buf.len(), varint_len(v), "{v}");
        let mut pos = 0;
        assert_eq!(read_varint(&buf, &mut pos).unwrap(), v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Scenario: random requests, read span by span from the encoding (as the verifying sink does).
    /// Guarantees: every span is visited once, in order, with the id and start time prost decodes.
    #[test]
    fn span_identity_matches_prost(req in request_strategy()) {
        let data = scan(Bytes::from(req.encode_to_vec())).unwrap();
        let mut seen = Vec::new();
        data.for_each_span(|span| {
            let (id, start) = span_identity(span);
            seen.push((id.map(<[u8]>::to_vec).unwrap_or_default(), start.unwrap_or(0)));
        });
        let expected: Vec<(Vec<u8>, u64)> =
            flatten([&req]).into_iter().map(|(_, _, _, _, s)| (s.span_id, s.start_time_unix_nano)).collect();
        prop_assert_eq!(seen, expected);
    }
}

/// Calls `f` on every `KeyValue` of a request, at any depth (resource, scope, span, event and link
/// attributes, and the lists and arrays inside values), in encoding order.
fn for_each_key_value(req: &mut ExportTraceServiceRequest, f: &mut impl FnMut(&mut KeyValue)) {
    fn in_value(value: &mut AnyValue, f: &mut impl FnMut(&mut KeyValue)) {
        match &mut value.value {
            Some(any_value::Value::KvlistValue(list)) => in_list(&mut list.values, f),
            Some(any_value::Value::ArrayValue(array)) => {
                for v in &mut array.values {
                    in_value(v, f);
                }
            }
            _ => {}
        }
    }
    fn in_list(kvs: &mut [KeyValue], f: &mut impl FnMut(&mut KeyValue)) {
        for kv in kvs {
            f(kv);
            if let Some(value) = &mut kv.value {
                in_value(value, f);
            }
        }
    }
    for rs in &mut req.resource_spans {
        if let Some(r) = &mut rs.resource {
            in_list(&mut r.attributes, f);
        }
        for ss in &mut rs.scope_spans {
            if let Some(scope) = &mut ss.scope {
                in_list(&mut scope.attributes, f);
            }
            for span in &mut ss.spans {
                in_list(&mut span.attributes, f);
                for event in &mut span.events {
                    in_list(&mut event.attributes, f);
                }
                for link in &mut span.links {
                    in_list(&mut link.attributes, f);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Scenario: random requests in which a few random `KeyValue`s, wherever they are (resource, scope,
    /// span, event and link attributes, lists nested in values) and whatever their value, are renamed
    /// `component`. Guarantees: the scan reports the key absent exactly when no `KeyValue` has it, so
    /// the noise filter and enrichment skip only requests without Istio proxy spans.
    #[test]
    fn component_key_is_seen_wherever_it_is(
        mut req in request_strategy(),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let mut total = 0;
        for_each_key_value(&mut req, &mut |_| total += 1);
        if total > 0 {
            let chosen: Vec<usize> = picks.iter().map(|p| p.index(total)).collect();
            let mut i = 0;
            for_each_key_value(&mut req, &mut |kv| {
                if chosen.contains(&i) {
                    kv.key = "component".into();
                }
                i += 1;
            });
        }
        let mut present = false;
        for_each_key_value(&mut req, &mut |kv| present |= kv.key == "component");
        let data = scan(Bytes::from(req.encode_to_vec())).unwrap();
        prop_assert_eq!(data.no_component_key, !present);
    }
}

/// Scenario: a `component` attribute encoded the ways prost accepts but the attribute fast path does
/// not take: value before key, a two-byte (non-minimal) key tag, a value beside an unknown field.
/// Guarantees: the scan still sees the key.
#[test]
fn component_key_is_seen_off_the_fast_path() {
    let value = len_field(0x12, &len_field(0x0a, b"proxy"));
    let key = len_field(0x0a, b"component");
    let overlong_key = [&[0x8a, 0x00, 0x09][..], b"component"].concat();
    for kv in [
        [value.clone(), key.clone()].concat(),
        [overlong_key, value.clone()].concat(),
        [key.clone(), value.clone(), vec![0x78, 0x01]].concat(),
    ] {
        let mut span = sample_request(1, 1, 0, 0).resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        span.extend(len_field(0x4a, &kv));
        let request = len_field(0x0a, &len_field(0x12, &len_field(0x12, &span)));
        assert!(otlp_accepts(&request), "{kv:02x?}");
        let data = scan(Bytes::from(request)).unwrap();
        assert!(!data.no_component_key, "{kv:02x?}");
    }
    let plain = sample_request(1, 3, 4, 8);
    assert!(scan(Bytes::from(plain.encode_to_vec())).unwrap().no_component_key);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Scenario: byte strings of every length up to 300, mostly ASCII, with a byte of 0x80 or more
    /// placed anywhere (first, last, inside the re-read tail) or nowhere.
    /// Guarantees: the scan's ASCII check agrees with the standard library's.
    #[test]
    fn ascii_check_agrees_with_std(
        mut bytes in proptest::collection::vec(0u8..0x80, 0..300),
        high in proptest::option::of((any::<prop::sample::Index>(), 0x80u8..=0xff)),
    ) {
        if let Some((at, byte)) = high && !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        prop_assert_eq!(validate::is_ascii(&bytes), bytes.is_ascii());
    }
}

/// Scenario: one scope whose spans have lengths of one, two and three varint bytes (a span with a
/// 20 KB attribute), then its schema URL. Guarantees: the span walk counts every span, keeps them as
/// one run, and the run decodes as the spans sent.
#[test]
fn span_run_reads_every_length_size() {
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};
    let span = |attr_bytes: usize| Span {
        name: "s".into(),
        attributes: vec![crate::testing::kv("a", &"x".repeat(attr_bytes))],
        ..crate::testing::span_with_ids()
    };
    let spans = vec![span(10), span(1_000), span(20_000), span(10), span(20_000)];
    for (s, want) in spans.iter().zip([1, 2, 3, 1, 3]) {
        assert_eq!(varint(s.encoded_len()).len(), want, "length bytes of the test spans");
    }
    let ss = ScopeSpans { scope: None, spans: spans.clone(), schema_url: "https://s".into() };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
            resource: None,
            scope_spans: vec![ss],
            schema_url: String::new(),
        }],
    };
    let data = scan(Bytes::from(req.encode_to_vec())).unwrap();
    let scope = &data.resources[0].scopes[0];
    assert_eq!((scope.count, data.spans), (5, 5));
    let run = ScopeSpans::decode(&scope.body[scope.spans_start..scope.spans_end]).unwrap();
    assert_eq!(run.spans, spans);
}

/// The message the scan gives for the first id of a wrong length in `req`, in the scan's order: in
/// each span, the ids present by field number, then each link's (present ones, then a missing one),
/// then the span's missing ones (prost writes an empty id as no field, which the scan sees only at
/// the span's end); with its place. `None` when every id fits.
fn first_wrong_id(req: &ExportTraceServiceRequest) -> Option<String> {
    let wrong = |id: &[u8], size: usize| !id.is_empty() && id.len() != size;
    for (r, rs) in req.resource_spans.iter().enumerate() {
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            for (i, span) in ss.spans.iter().enumerate() {
                let at = format!("resource_spans[{r}].scope_spans[{s}].spans[{i}]");
                for (name, id, size, rule) in [
                    ("trace_id", &span.trace_id, 16, ""),
                    ("span_id", &span.span_id, 8, ""),
                    ("parent_span_id", &span.parent_span_id, 8, " or empty"),
                ] {
                    if wrong(id, size) {
                        return Some(format!(
                            "span.{name} must be {size} bytes{rule}, got {} at {at}",
                            id.len()
                        ));
                    }
                }
                for (l, link) in span.links.iter().enumerate() {
                    let ids = [("trace_id", &link.trace_id, 16), ("span_id", &link.span_id, 8)];
                    for (name, id, size) in ids {
                        if wrong(id, size) {
                            return Some(format!(
                                "link.{name} must be {size} bytes, got {} at {at}.links[{l}]",
                                id.len()
                            ));
                        }
                    }
                    if let Some((name, _, size)) = ids.into_iter().find(|(_, id, _)| id.is_empty()) {
                        return Some(format!("link.{name} must be {size} bytes, got 0 at {at}.links[{l}]"));
                    }
                }
                for (name, id, size) in [("trace_id", &span.trace_id, 16), ("span_id", &span.span_id, 8)] {
                    if id.is_empty() {
                        return Some(format!("span.{name} must be {size} bytes, got 0 at {at}"));
                    }
                }
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Scenario: random requests in which a few trace, span, parent and link ids have a random
    /// length from 0 to 20 bytes.
    /// Guarantees: the scan accepts exactly when prost decodes the request and every id is of its
    /// length (16 bytes for trace ids, 8 for span ids; a parent id may be empty), and a refusal names
    /// the first wrong id's field, its length and where it is.
    #[test]
    fn ids_of_any_length_get_the_schemas_verdict(req in request_with_any_ids_strategy()) {
        let bytes = req.encode_to_vec();
        let expected = first_wrong_id(&req);
        prop_assert_eq!(expected.is_none(), otlp_accepts(&bytes));
        match (scan(Bytes::from(bytes)), expected) {
            (Ok(data), None) => prop_assert_eq!(data.spans, flatten([&req]).len()),
            (Err(e), Some(message)) => {
                prop_assert_eq!(e.to_string(), format!("invalid OTLP ExportTraceServiceRequest: {message}"));
            }
            (verdict, expected) => prop_assert!(false, "scan {:?}, expected refusal {:?}", verdict.map(|d| d.spans), expected),
        }
    }
}

/// Scenario: the ids of a span and of its links with the lengths a client gets wrong (8, 17, 0
/// bytes for a trace id; 16 and 0 for a span id; 3 for a parent id; missing link ids), in the second
/// span of the second scope, in the span walk's form and with an over-long (two-byte) key.
/// Guarantees: every wrong length is refused, empty (absent) trace and span ids too, as the OTLP
/// schema requires them (the Collector lets empty ones through), with a message naming the field,
/// its length and the span (and link) it is in; an empty parent id, a root span's, is accepted.
#[test]
fn wrong_id_lengths_are_refused_with_the_field_and_place() {
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    let place = "resource_spans[0].scope_spans[1].spans[1]";
    type Change = Box<dyn Fn(&mut opentelemetry_proto::tonic::trace::v1::Span)>;
    let cases: Vec<(&str, Change, Option<String>)> = vec![
        (
            "trace id of 8",
            Box::new(|s| s.trace_id = vec![1; 8]),
            Some(format!("span.trace_id must be 16 bytes, got 8 at {place}")),
        ),
        (
            "trace id of 17",
            Box::new(|s| s.trace_id = vec![1; 17]),
            Some(format!("span.trace_id must be 16 bytes, got 17 at {place}")),
        ),
        (
            "empty trace id",
            Box::new(|s| s.trace_id.clear()),
            Some(format!("span.trace_id must be 16 bytes, got 0 at {place}")),
        ),
        (
            "span id of 16",
            Box::new(|s| s.span_id = vec![1; 16]),
            Some(format!("span.span_id must be 8 bytes, got 16 at {place}")),
        ),
        (
            "empty span id",
            Box::new(|s| s.span_id.clear()),
            Some(format!("span.span_id must be 8 bytes, got 0 at {place}")),
        ),
        ("empty parent id", Box::new(|s| s.parent_span_id.clear()), None),
        (
            "parent id of 3",
            Box::new(|s| s.parent_span_id = vec![1; 3]),
            Some(format!("span.parent_span_id must be 8 bytes or empty, got 3 at {place}")),
        ),
        ("parent id of 8", Box::new(|s| s.parent_span_id = vec![1; 8]), None),
        (
            "link trace id of 8",
            Box::new(|s| {
                s.links = vec![
                    Link { trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() },
                    Link { trace_id: vec![1; 8], ..Default::default() },
                ]
            }),
            Some(format!("link.trace_id must be 16 bytes, got 8 at {place}.links[1]")),
        ),
        (
            "link span id of 9",
            Box::new(|s| {
                s.links = vec![Link { trace_id: vec![1; 16], span_id: vec![2; 9], ..Default::default() }]
            }),
            Some(format!("link.span_id must be 8 bytes, got 9 at {place}.links[0]")),
        ),
        (
            "link without a span id",
            Box::new(|s| s.links = vec![Link { trace_id: vec![1; 16], ..Default::default() }]),
            Some(format!("link.span_id must be 8 bytes, got 0 at {place}.links[0]")),
        ),
    ];
    for (what, change, expected) in cases {
        let mut req = sample_request(1, 4, 2, 8);
        let rs = &mut req.resource_spans[0];
        let second = rs.scope_spans[0].spans.split_off(2);
        rs.scope_spans
            .push(opentelemetry_proto::tonic::trace::v1::ScopeSpans { spans: second, ..Default::default() });
        change(&mut rs.scope_spans[1].spans[1]);
        let bytes = req.encode_to_vec();
        assert!(prost_decodes(&bytes), "{what}");
        match (scan(Bytes::from(bytes)), expected) {
            (Ok(data), None) => assert_eq!(data.spans, 4, "{what}"),
            (Err(WireError(message)), Some(expected)) => assert_eq!(message, expected, "{what}"),
            (verdict, expected) => panic!("{what}: {:?}, expected {expected:?}", verdict.map(|d| d.spans)),
        }
    }
    // The same trace id of 8 bytes behind a two-byte key, which the general loop reads.
    let mut span = vec![0x8a, 0x00, 8];
    span.extend([7; 8]);
    let request = len_field(0x0a, &len_field(0x12, &len_field(0x12, &span)));
    assert!(prost_decodes(&request));
    assert_eq!(
        scan(Bytes::from(request)).unwrap_err().0,
        "span.trace_id must be 16 bytes, got 8 at resource_spans[0].scope_spans[0].spans[0]"
    );
    // A whole span behind a two-byte key (`ScopeSpans.spans` as 0x92 0x00): its ids are looked for
    // too, and found when there.
    let trace_id = len_field(0x0a, &[7; 16]);
    let request = |span: &[u8]| {
        let mut spans = vec![0x92, 0x00];
        spans.extend(&len_field(0x12, span)[1..]);
        len_field(0x0a, &len_field(0x12, &spans))
    };
    let without_span_id = request(&trace_id);
    assert!(prost_decodes(&without_span_id));
    assert_eq!(
        scan(Bytes::from(without_span_id)).unwrap_err().0,
        "span.span_id must be 8 bytes, got 0 at resource_spans[0].scope_spans[0].spans[0]"
    );
    let whole = request(&[trace_id, len_field(0x12, &[8; 8])].concat());
    assert_eq!(scan(Bytes::from(whole)).map(|d| d.spans).ok(), Some(1));
}

/// Scenario: a span whose trace id occurs twice, 8 bytes then 16 (prost keeps the last, valid one),
/// and one with 16 then 8.
/// Guarantees: both are refused, as the Collector refuses them: it reads every occurrence of an id.
#[test]
fn every_occurrence_of_an_id_is_checked() {
    for (first, second) in [(8, 16), (16, 8)] {
        let span = [len_field(0x0a, &vec![1; first]), len_field(0x0a, &vec![2; second])].concat();
        let request = len_field(0x0a, &len_field(0x12, &len_field(0x12, &span)));
        assert!(prost_decodes(&request));
        assert!(!otlp_accepts(&request));
        let e = scan(Bytes::from(request)).unwrap_err();
        assert!(e.0.starts_with("span.trace_id must be 16 bytes, got 8"), "{e}");
    }
}

/// Scenario: a request refused for a malformed field that comes before an id of a wrong length.
/// Guarantees: the message is the malformed field's; no place of an id is attached to it.
#[test]
fn an_earlier_error_is_not_reported_as_an_id() {
    let bad_name = [0x2a, 0x02, 0xff, 0xfe];
    let span = [&bad_name[..], &len_field(0x0a, &[1; 8])].concat();
    let request = len_field(0x0a, &len_field(0x12, &len_field(0x12, &span)));
    let e = scan(Bytes::from(request)).unwrap_err();
    assert!(e.0.contains("not UTF-8"), "{e}");
}

fn prost_decodes(bytes: &[u8]) -> bool {
    ExportTraceServiceRequest::decode(bytes).is_ok()
}
