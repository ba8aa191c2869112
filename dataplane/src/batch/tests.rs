use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::testing::{decode, flatten, request_strategy, sample_request};
use crate::wire::scan;

fn run(
    requests: &[opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest],
    limits: BatchLimits,
) -> Vec<Batch> {
    let mut batcher = Batcher::new(limits);
    let mut out = Vec::new();
    for req in requests {
        batcher.push(&scan(Bytes::from(req.encode_to_vec())).unwrap(), &mut out);
    }
    out.extend(batcher.take());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Scenario: random requests pass through a batcher with random span and byte limits.
    /// Guarantees: the batches decode (prost) to exactly the input spans, in order, each with its own
    /// resource and scope; no batch exceeds a limit unless it holds one oversized span.
    #[test]
    fn batches_preserve_every_span(
        requests in proptest::collection::vec(request_strategy(), 1..4),
        max_spans in 1usize..10,
        max_bytes in 64usize..4096,
    ) {
        let limits = BatchLimits { max_spans, max_bytes, ..BatchLimits::default() };
        let batches = run(&requests, limits);
        let decoded: Vec<_> = batches.iter().map(|b| {
            let bytes = b.to_bytes();
            assert_eq!(bytes.len(), b.len);
            decode(&bytes)
        }).collect();
        prop_assert_eq!(flatten(&decoded), flatten(&requests));
        for (b, d) in batches.iter().zip(&decoded) {
            prop_assert_eq!(b.spans, flatten([d]).len());
            prop_assert!(b.spans <= max_spans);
            prop_assert!(b.len <= max_bytes || b.spans == 1, "batch of {} bytes, {} spans", b.len, b.spans);
            prop_assert!(b.spans > 0);
        }
    }
}

/// Scenario: requests of 100 spans with Kyma's defaults (512 spans, 4 MiB).
/// Guarantees: full batches hold exactly 512 spans; the rest waits for the flush.
#[test]
fn default_limits_make_512_span_batches() {
    let req = sample_request(3, 100, 10, 16);
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    let data = scan(Bytes::from(req.encode_to_vec())).unwrap();
    for _ in 0..11 {
        batcher.push(&data, &mut out);
    }
    assert_eq!(out.iter().map(|b| b.spans).collect::<Vec<_>>(), vec![512, 512]);
    assert_eq!(batcher.pending_spans(), 1100 - 1024);
    assert_eq!(batcher.take().unwrap().spans, 76);
    assert!(batcher.take().is_none());
}

/// Scenario: one request larger than the byte limit.
/// Guarantees: it is split into several batches, each under the byte limit.
#[test]
fn oversized_request_is_split_by_bytes() {
    let req = sample_request(1, 200, 10, 200);
    let limits = BatchLimits { max_bytes: 64 * 1024, ..BatchLimits::default() };
    let batches = run(std::slice::from_ref(&req), limits);
    assert!(batches.len() > 5);
    assert!(batches.iter().all(|b| b.len <= 64 * 1024));
    let decoded: Vec<_> = batches.iter().map(|b| decode(&b.to_bytes())).collect();
    assert_eq!(flatten(&decoded), flatten([&req]));
}
