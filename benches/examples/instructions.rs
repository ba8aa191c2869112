//! Runs each stage of the data path once over the same requests, each in a function of its own, so
//! that callgrind can count the instructions of every stage: a figure that does not move with the
//! load of a shared machine, unlike time. `benches/instructions.sh` runs it under callgrind and prints
//! instructions per span for each stage (the `ottl` scenario's processing among them), beside the plain
//! prost path.
//!
//! The requests are the load test's shape: 100 spans with 10 attributes of 16 bytes, one resource
//! that names no pod (enrichment finds it by the sender's address), no Istio proxy spans. Both paths
//! allocate through mimalloc, as the gateway does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::hint::black_box;

use bytes::Bytes;
use common::PEER;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Status;
use otlp_gateway::batch::{Batch, BatchLimits, Batcher};
use otlp_gateway::buffer::{BufferPool, DEFAULT_POOLED_BUFFERS};
use otlp_gateway::export::Exporter;
use otlp_gateway::process::enrich::Enricher;
use otlp_gateway::process::noise::drop_noise;
use otlp_gateway::process::ottl::work::SpanKeys;
use otlp_gateway::process::ottl::{Processed, apply_with_keys};
use otlp_gateway::testing::{kv, sample_request};
use otlp_gateway::wire::{TraceData, scan};
use prost::Message;
use tracegw_contract::Compression;
use tracegw_contract::pipeline::{FilterSpec, TransformSpec};
use tracegw_contract::processing::{Processing, compile};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUESTS: usize = 20;
const SPANS_PER_REQUEST: usize = 100;

fn requests() -> Vec<Bytes> {
    (0..REQUESTS)
        .map(|_| {
            let mut req = sample_request(1, SPANS_PER_REQUEST, 10, 16);
            req.resource_spans[0].resource.as_mut().unwrap().attributes =
                vec![kv("service.name", "unknown_service:java")];
            Bytes::from(req.encode_to_vec())
        })
        .collect()
}

/// The same spans as OpenTelemetry's SDKs write them (the Python SDK's encoder, for one): with a parent
/// id, an empty status and the flags, and two of the ten attributes integers.
fn sdk_requests() -> Vec<Bytes> {
    (0..REQUESTS)
        .map(|_| {
            let mut req = sample_request(1, SPANS_PER_REQUEST, 10, 16);
            for span in &mut req.resource_spans[0].scope_spans[0].spans {
                span.parent_span_id = span.span_id.iter().rev().copied().collect();
                span.status = Some(Status::default());
                span.flags = 0x100;
                for (a, attribute) in span.attributes.iter_mut().take(2).enumerate() {
                    attribute.value =
                        Some(AnyValue { value: Some(any_value::Value::IntValue(200 + a as i64)) });
                }
            }
            Bytes::from(req.encode_to_vec())
        })
        .collect()
}

#[inline(never)]
fn stage_scan(reqs: &[Bytes]) -> Vec<TraceData> {
    reqs.iter().map(|r| scan(r.clone()).unwrap()).collect()
}

#[inline(never)]
fn scan_sdk_spans(reqs: &[Bytes]) -> Vec<TraceData> {
    reqs.iter().map(|r| scan(r.clone()).unwrap()).collect()
}

#[inline(never)]
fn stage_enrich(data: &mut [TraceData], enricher: &Enricher) {
    for d in data {
        enricher.enrich(d, Some(PEER));
    }
}

#[inline(never)]
fn stage_filter(data: &mut [TraceData]) -> usize {
    data.iter_mut().map(drop_noise).sum()
}

#[inline(never)]
fn stage_batch(data: &[TraceData]) -> Vec<Batch> {
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    for d in data {
        batcher.push(d, &mut out);
    }
    out.extend(batcher.take());
    out
}

#[inline(never)]
fn stage_export_framing(batches: &[Batch], exporter: &Exporter) -> usize {
    batches.iter().map(|b| exporter.encode(b).unwrap().len()).sum()
}

/// The `ottl` load test scenario's processing (`loadtest/src/run.rs`, `OTTL_PROCESSING`): a transform
/// with a resource condition and one `set … where span.kind == …` (every span here is a server span,
/// so every span is changed), a filter with two conditions, one a regex (no span matches).
fn ottl_processing() -> Processing {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let transform = TransformSpec {
        conditions: strings(&[r#"resource.attributes["service.name"] != nil"#]),
        statements: strings(&[
            r#"set(span.attributes["deployment.environment"], "production") where span.kind == SPAN_KIND_SERVER"#,
        ]),
    };
    let filter = FilterSpec {
        conditions: strings(&[
            r#"span.name == "GET /healthz" or span.attributes["http.route"] == "/healthz""#,
            r#"IsMatch(span.attributes["url.path"], "^/(livez|readyz)$")"#,
        ]),
    };
    compile(&[transform], &[filter]).expect("the scenario's processing compiles")
}

/// A pipeline's OTTL processing on enriched requests, as the gateway runs it after the fan-out.
#[inline(never)]
fn stage_ottl(data: &[TraceData], processing: &Processing, keys: &SpanKeys) -> usize {
    let pool = BufferPool::new(DEFAULT_POOLED_BUFFERS);
    data.iter()
        .map(|d| {
            match apply_with_keys(processing, keys, d, ottl::eval::ErrorMode::Ignore, &pool)
                .unwrap()
                .processed
            {
                Processed::Unchanged => 0,
                Processed::Changed(own) => own.spans,
            }
        })
        .sum()
}

/// Receive to export body, as the gateway runs it per request and pipeline.
#[inline(never)]
fn path_zero_copy(reqs: &[Bytes], enricher: &Enricher, exporter: &Exporter) -> usize {
    common::zero_copy_path(reqs, enricher, exporter)
}

#[inline(never)]
fn scan_prost(reqs: &[Bytes]) -> Vec<ExportTraceServiceRequest> {
    reqs.iter().map(|r| ExportTraceServiceRequest::decode(r.as_ref()).unwrap()).collect()
}

#[inline(never)]
fn scan_prost_sdk(reqs: &[Bytes]) -> Vec<ExportTraceServiceRequest> {
    reqs.iter().map(|r| ExportTraceServiceRequest::decode(r.as_ref()).unwrap()).collect()
}

/// What a forwarder on owned structs does: decode, add the pod's attributes, regroup into 512-span
/// requests, encode.
#[inline(never)]
fn path_prost(reqs: &[Bytes]) -> usize {
    common::prost_path(reqs, None)
}

fn main() {
    let reqs = requests();
    let enricher = common::enricher();
    let exporter = common::exporter(Compression::None);

    let mut data = black_box(stage_scan(&reqs));
    stage_enrich(&mut data, &enricher);
    black_box(stage_filter(&mut data));
    let processing = ottl_processing();
    let changed = black_box(stage_ottl(&data, &processing, &SpanKeys::of(&processing)));
    assert_eq!(changed, REQUESTS * SPANS_PER_REQUEST, "the transform changes every span");
    let batches = black_box(stage_batch(&data));
    black_box(stage_export_framing(&batches, &exporter));
    black_box(path_zero_copy(&reqs, &enricher, &exporter));
    black_box(scan_prost(&reqs));
    black_box(path_prost(&reqs));
    let sdk = sdk_requests();
    black_box(scan_sdk_spans(&sdk));
    black_box(scan_prost_sdk(&sdk));
    println!("spans {}", REQUESTS * SPANS_PER_REQUEST);
}
