//! Fuzzes the scanner and batcher: any input must be accepted exactly when the Collector would take
//! it (prost decodes it and every id has a length pdata accepts), never panic, and an accepted input
//! must come out of the batcher decoding to the same spans.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::testing::{otlp_accepts, flatten};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let scanned = otlp_gateway::wire::scan(Bytes::copy_from_slice(data));
    assert_eq!(scanned.is_ok(), otlp_accepts(data), "scanner and the Collector's rules disagree");
    let Ok(scanned) = scanned else { return };
    let decoded = ExportTraceServiceRequest::decode(data).expect("accepted, so prost decodes it");
    let limits = BatchLimits { max_spans: 3, max_bytes: 256, ..BatchLimits::default() };
    let mut batcher = Batcher::new(limits);
    let mut out = Vec::new();
    batcher.push(&scanned, &mut out);
    out.extend(batcher.take());
    let batches: Vec<_> =
        out.iter().map(|b| ExportTraceServiceRequest::decode(b.to_bytes()).expect("batch decodes")).collect();
    assert_eq!(flatten(&batches), flatten([&decoded]));
});
