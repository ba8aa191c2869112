//! The rest of the stages and the whole in-process path, each beside its plain prost equivalent:
//! the Istio noise filter, export framing (compress + gRPC frame), and receive → enrich → filter →
//! batch → encoded export body for 100-span requests with 10 attributes per span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use bytes::Bytes;
use common::{enricher, exporter, prost_path, zero_copy_path};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::process::noise::drop_noise;
use otlp_gateway::testing::{kv, sample_request};
use otlp_gateway::wire::scan;
use prost::Message;
use tracegw_contract::Compression;

const REQUESTS: usize = 10;
const SPANS: usize = 100;

/// 100-span requests; every tenth span is an Istio proxy span, half of those noise. The filter group
/// also runs on requests of application spans only, the usual traffic.
fn requests() -> Vec<Bytes> {
    (0..REQUESTS)
        .map(|_| {
            let mut req = sample_request(1, SPANS, 10, 16);
            req.resource_spans[0].resource.as_mut().unwrap().attributes =
                vec![kv("service.name", "unknown_service:java")];
            for (i, span) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
                if i % 10 == 0 {
                    span.attributes.push(kv("component", "proxy"));
                    if i % 20 == 0 {
                        span.attributes.push(kv("http.method", "GET"));
                        span.attributes.push(kv("upstream_cluster.name", "inbound|8080||"));
                        span.attributes.push(kv("user_agent", "vm_promscrape"));
                    }
                }
            }
            Bytes::from(req.encode_to_vec())
        })
        .collect()
}

fn is_noise(attrs: &[KeyValue]) -> bool {
    let get = |k: &str| {
        attrs.iter().find(|a| a.key == k).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    };
    get("component") == Some("proxy")
        && get("http.method") == Some("GET")
        && get("upstream_cluster.name").is_some_and(|c| c.starts_with("inbound|"))
        && get("user_agent").is_some_and(|u| u.starts_with("vm_promscrape"))
}

fn bench(c: &mut Criterion) {
    let reqs = requests();
    let bytes: u64 = reqs.iter().map(|r| r.len() as u64).sum();
    let enricher = enricher();

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements((REQUESTS * SPANS) as u64));
    group.bench_function("scan_and_drop_noise", |b| {
        b.iter(|| reqs.iter().map(|r| drop_noise(&mut scan(r.clone()).unwrap())).sum::<usize>())
    });
    // The usual request: application spans only, no `component` attribute anywhere.
    let app: Vec<Bytes> =
        (0..REQUESTS).map(|_| Bytes::from(sample_request(1, SPANS, 10, 16).encode_to_vec())).collect();
    group.bench_function("scan_and_drop_noise_application_spans", |b| {
        b.iter(|| app.iter().map(|r| drop_noise(&mut scan(r.clone()).unwrap())).sum::<usize>())
    });
    group.bench_function("scan_only_application_spans", |b| {
        b.iter(|| app.iter().map(|r| scan(r.clone()).unwrap().spans).sum::<usize>())
    });
    group.bench_function("prost_decode_retain_encode", |b| {
        b.iter(|| {
            reqs.iter()
                .map(|r| {
                    let mut req = ExportTraceServiceRequest::decode(r.as_ref()).unwrap();
                    req.resource_spans[0].scope_spans[0].spans.retain(|s| !is_noise(&s.attributes));
                    req.encode_to_vec().len()
                })
                .sum::<usize>()
        })
    });
    group.finish();

    let batch = {
        let mut batcher = Batcher::new(BatchLimits::default());
        let mut out = Vec::new();
        for r in &reqs[..5] {
            batcher.push(&scan(r.clone()).unwrap(), &mut out);
        }
        out.extend(batcher.take());
        out.into_iter().next().unwrap()
    };
    let mut group = c.benchmark_group("export_framing");
    group.throughput(Throughput::Bytes(batch.len as u64));
    for (name, compression) in
        [("none", Compression::None), ("gzip", Compression::Gzip), ("zstd", Compression::Zstd)]
    {
        let e = exporter(compression);
        group
            .bench_function(BenchmarkId::new("encode", name), |b| b.iter(|| e.encode(&batch).unwrap().len()));
    }
    group.finish();

    let plain = exporter(Compression::None);
    let mut group = c.benchmark_group("in_process_path");
    for (unit, throughput) in
        [("spans", Throughput::Elements((REQUESTS * SPANS) as u64)), ("bytes", Throughput::Bytes(bytes))]
    {
        group.throughput(throughput);
        group.bench_function(BenchmarkId::new("zero_copy", unit), |b| {
            b.iter(|| zero_copy_path(&reqs, &enricher, &plain))
        });
        group.bench_function(BenchmarkId::new("prost", unit), |b| {
            b.iter(|| prost_path(&reqs, Some(is_noise)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
