use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::testing::{flatten, request_strategy, sample_request};

fn prost_accepts(bytes: &[u8]) -> bool {
    ExportTraceServiceRequest::decode(bytes).is_ok()
}

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
    /// Guarantees: no panic; the scanner accepts exactly what prost accepts.
    #[test]
    fn random_bytes_agree_with_prost(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), prost_accepts(&bytes));
    }

    /// Scenario: a valid request, truncated or with one byte changed.
    /// Guarantees: no panic; the scanner accepts exactly what prost accepts.
    #[test]
    fn damaged_requests_agree_with_prost(req in request_strategy(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), to in any::<u8>()) {
        let encoded = req.encode_to_vec();
        if encoded.is_empty() { return Ok(()); }
        let truncated = &encoded[..cut.index(encoded.len())];
        prop_assert_eq!(scan(Bytes::copy_from_slice(truncated)).is_ok(), prost_accepts(truncated));
        let mut changed = encoded.clone();
        changed[flip.index(encoded.len())] = to;
        prop_assert_eq!(scan(Bytes::from(changed.clone())).is_ok(), prost_accepts(&changed));
    }
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
        assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), prost_accepts(&bytes), "depth {depth}");
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
        assert_eq!(scan(Bytes::from(bytes.clone())).is_ok(), prost_accepts(&bytes), "group depth {depth}");
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
