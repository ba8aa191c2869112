//! Fuzzes the scanner and batcher: any input must be accepted exactly when prost accepts it, never
//! panic, and an accepted input must come out of the batcher decoding to the same spans.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::testing::flatten;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let scanned = otlp_gateway::wire::scan(Bytes::copy_from_slice(data));
    let decoded = ExportTraceServiceRequest::decode(data);
    assert_eq!(scanned.is_ok(), decoded.is_ok(), "scanner and prost disagree");
    let (Ok(scanned), Ok(decoded)) = (scanned, decoded) else { return };
    let limits = BatchLimits { max_spans: 3, max_bytes: 256, ..BatchLimits::default() };
    let mut batcher = Batcher::new(limits);
    let mut out = Vec::new();
    batcher.push(&scanned, &mut out);
    out.extend(batcher.take());
    let batches: Vec<_> = out.iter().map(|b| ExportTraceServiceRequest::decode(b.to_bytes()).expect("batch decodes")).collect();
    assert_eq!(flatten(&batches), flatten([&decoded]));
});
