//! The receive-to-batch path on encoded bytes, beside the plain prost path that decodes, re-batches
//! and encodes owned structs. Both take the same 100-span requests (10 attributes of 16 bytes per span)
//! and produce 512-span export requests; the ratio is what the zero-copy design buys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::compression::{Encoding, compress};
use otlp_gateway::testing::sample_request;
use otlp_gateway::wire::scan;
use prost::Message;

const SPANS_PER_REQUEST: usize = 100;
const REQUESTS: usize = 50;

fn requests() -> Vec<Bytes> {
    (0..REQUESTS).map(|_| Bytes::from(sample_request(1, SPANS_PER_REQUEST, 10, 16).encode_to_vec())).collect()
}

/// Scan + batch + encode, as the gateway does per pipeline.
fn zero_copy(reqs: &[Bytes]) -> usize {
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    let mut bytes = 0;
    for r in reqs {
        let data = scan(r.clone()).unwrap();
        batcher.push(&data, &mut out);
        for b in out.drain(..) {
            bytes += b.to_bytes().len();
        }
    }
    bytes + batcher.take().map_or(0, |b| b.to_bytes().len())
}

/// Decode into owned structs, regroup 512 spans per request, encode: what a prost-based forwarder does.
fn prost_path(reqs: &[Bytes]) -> usize {
    let mut pending = ExportTraceServiceRequest::default();
    let mut count = 0;
    let mut bytes = 0;
    for r in reqs {
        let mut req = ExportTraceServiceRequest::decode(r.as_ref()).unwrap();
        count +=
            req.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum::<usize>();
        pending.resource_spans.append(&mut req.resource_spans);
        if count >= 512 {
            bytes += pending.encode_to_vec().len();
            pending = ExportTraceServiceRequest::default();
            count = 0;
        }
    }
    bytes + pending.encode_to_vec().len()
}

fn bench(c: &mut Criterion) {
    let reqs = requests();
    let total_bytes: usize = reqs.iter().map(Bytes::len).sum();
    let mut group = c.benchmark_group("receive_to_batch");
    group.throughput(Throughput::Elements((REQUESTS * SPANS_PER_REQUEST) as u64));
    group.bench_function(BenchmarkId::new("zero_copy", "100x10attr"), |b| b.iter(|| zero_copy(&reqs)));
    group.bench_function(BenchmarkId::new("prost", "100x10attr"), |b| b.iter(|| prost_path(&reqs)));
    group.finish();

    let mut group = c.benchmark_group("scan_only");
    group.throughput(Throughput::Elements((REQUESTS * SPANS_PER_REQUEST) as u64));
    group.bench_function("scan", |b| {
        b.iter(|| reqs.iter().map(|r| scan(r.clone()).unwrap().spans).sum::<usize>())
    });
    group.bench_function("prost_decode", |b| {
        b.iter(|| {
            reqs.iter()
                .map(|r| ExportTraceServiceRequest::decode(r.as_ref()).unwrap().resource_spans.len())
                .sum::<usize>()
        })
    });
    group.finish();

    let batch: Vec<Bytes> = reqs[..5].to_vec();
    let len: usize = batch.iter().map(Bytes::len).sum();
    let mut group = c.benchmark_group("export_compression");
    group.throughput(Throughput::Elements((5 * SPANS_PER_REQUEST) as u64));
    for level in [1u32, 6] {
        group.bench_function(BenchmarkId::new("gzip", level), |b| {
            b.iter(|| compress(Encoding::Gzip, &batch, len, level, 1).unwrap().len())
        });
    }
    group.bench_function(BenchmarkId::new("zstd", 1), |b| {
        b.iter(|| compress(Encoding::Zstd, &batch, len, 1, 1).unwrap().len())
    });
    group.finish();
    let _ = total_bytes;
}

criterion_group!(benches, bench);
criterion_main!(benches);
