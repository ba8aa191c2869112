//! Export compression on a realistic batch: 500 spans with random ids and random alphanumeric
//! attribute values (as `loadtest --random-values` sends), compressed whole as the exporter does.
//! Compares the deflate implementations for gzip (flate2 on zlib-rs, libdeflate, and the gateway's
//! own level 1 path: ISA-L with `cargo bench -p benches --bench compress --features isal`, else
//! libdeflate) at the levels that matter, and zstd, reporting time per span; the compressed sizes
//! are printed once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::testing::sample_request;
use prost::Message;

const SPANS: usize = 500;

fn batch() -> Bytes {
    let mut req: ExportTraceServiceRequest = sample_request(5, SPANS, 10, 16);
    let mut rng = 7u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.trace_id = [next().to_be_bytes(), next().to_be_bytes()].concat();
                span.span_id = next().to_be_bytes().to_vec();
                span.start_time_unix_nano = 1_764_000_000_000_000_000 + next() % 1_000_000_000;
                span.end_time_unix_nano = span.start_time_unix_nano + next() % 10_000_000;
                for kv in &mut span.attributes {
                    let v: String = (0..16).map(|_| ALNUM[(next() % 62) as usize] as char).collect();
                    kv.value = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v)),
                    });
                }
            }
        }
    }
    Bytes::from(req.encode_to_vec())
}

fn zlib_rs(data: &[u8], level: u32) -> usize {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len()), flate2::Compression::new(level));
    enc.write_all(data).unwrap();
    enc.finish().unwrap().len()
}

fn libdeflate(compressor: &mut libdeflater::Compressor, data: &[u8], out: &mut Vec<u8>) -> usize {
    out.resize(compressor.gzip_compress_bound(data.len()), 0);
    compressor.gzip_compress(data, out).unwrap()
}

/// The gateway's own gzip at its default level 1: ISA-L with `--features isal`, else libdeflate.
fn gateway_gzip1(data: &Bytes) -> usize {
    let chunks = [data.clone()];
    otlp_gateway::compression::compress(otlp_gateway::compression::Encoding::Gzip, &chunks, data.len(), 1, 1)
        .unwrap()
        .len()
}

fn bench(c: &mut Criterion) {
    let data = batch();
    println!("batch: {} spans, {} bytes", SPANS, data.len());
    for level in [1u32, 6] {
        println!("  zlib-rs level {level}: {} bytes", zlib_rs(&data, level));
    }
    let mut out = Vec::new();
    for level in [1i32, 4, 6] {
        let mut comp = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        println!("  libdeflate level {level}: {} bytes", libdeflate(&mut comp, &data, &mut out));
    }
    println!(
        "  the gateway's level 1 ({}): {} bytes",
        otlp_gateway::compression::GZIP_LEVEL1_COMPRESSOR,
        gateway_gzip1(&data)
    );
    println!("  zstd level 1: {} bytes", zstd::bulk::compress(&data, 1).unwrap().len());

    let mut group = c.benchmark_group("gzip_random_values");
    group.throughput(Throughput::Elements(SPANS as u64));
    for level in [1u32, 6] {
        group.bench_function(BenchmarkId::new("zlib_rs", level), |b| b.iter(|| zlib_rs(&data, level)));
    }
    for level in [1i32, 4, 6] {
        let mut comp = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new("libdeflate", level), |b| {
            b.iter(|| libdeflate(&mut comp, &data, &mut out))
        });
    }
    let gateway = format!("gateway_{}", otlp_gateway::compression::GZIP_LEVEL1_COMPRESSOR);
    group.bench_function(BenchmarkId::new(gateway, 1), |b| b.iter(|| gateway_gzip1(&data)));
    group.bench_function(BenchmarkId::new("zstd", 1), |b| {
        b.iter(|| zstd::bulk::compress(&data, 1).unwrap().len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
