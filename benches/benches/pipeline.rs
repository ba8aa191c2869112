//! The rest of the stages and the whole in-process path, each beside its plain prost equivalent:
//! the Istio noise filter, export framing (compress + gRPC frame), and receive → enrich → filter →
//! batch → encoded export body for 100-span requests with 10 attributes per span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_gateway::batch::{Batch, BatchLimits, Batcher};
use otlp_gateway::enrich::index::{IndexConfig, PodStore};
use otlp_gateway::enrich::pods::PodMeta;
use otlp_gateway::enrich::{Enricher, ServiceMode};
use otlp_gateway::export::{ExportSettings, Exporter};
use otlp_gateway::filter::drop_noise;
use otlp_gateway::testing::{kv, sample_request};
use otlp_gateway::wire::scan;
use prost::Message;
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

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

fn enricher() -> Enricher {
    let mut store =
        PodStore::new(IndexConfig { cluster_name: Some("bench".into()), ..IndexConfig::default() });
    for i in 0..100u8 {
        store.upsert(PodMeta {
            uid: format!("uid-{i}").into(),
            name: format!("app-{i}"),
            namespace: "shop".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))],
            started: "2026-11-25T08:00:00Z".into(),
            ..PodMeta::default()
        });
    }
    let e = Enricher::new(ServiceMode::KymaLegacy);
    e.publish(store.snapshot());
    e
}

fn exporter(compression: Compression) -> Exporter {
    let output = OtlpOutputConfig {
        protocol: Protocol::Grpc,
        url: "http://127.0.0.1:4317".into(),
        compression,
        headers: vec![],
        tls: TlsConfig { insecure: true, ..Default::default() },
    };
    Exporter::new(&output, ExportSettings::default()).unwrap()
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
    let peer = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
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
            b.iter(|| {
                let mut batcher = Batcher::new(BatchLimits::default());
                let mut out: Vec<Batch> = Vec::new();
                for r in &reqs {
                    let mut data = scan(r.clone()).unwrap();
                    enricher.enrich(&mut data, peer);
                    drop_noise(&mut data);
                    batcher.push(&data, &mut out);
                }
                out.extend(batcher.take());
                out.iter().map(|b| plain.encode(b).unwrap().len()).sum::<usize>()
            })
        });
        let attrs: Vec<KeyValue> = vec![
            kv("k8s.namespace.name", "shop"),
            kv("k8s.pod.name", "app-7"),
            kv("k8s.pod.uid", "uid-7"),
            kv("k8s.cluster.name", "bench"),
        ];
        group.bench_function(BenchmarkId::new("prost", unit), |b| {
            b.iter(|| {
                let mut pending = ExportTraceServiceRequest::default();
                let mut count = 0;
                let mut total = 0;
                for r in &reqs {
                    let mut req = ExportTraceServiceRequest::decode(r.as_ref()).unwrap();
                    for rs in &mut req.resource_spans {
                        let resource = rs.resource.get_or_insert_default();
                        resource.attributes.retain(|a| a.key != "service.name");
                        resource.attributes.extend(attrs.iter().cloned());
                        resource.attributes.push(kv("service.name", "app-7"));
                        for ss in &mut rs.scope_spans {
                            ss.spans.retain(|s| !is_noise(&s.attributes));
                            count += ss.spans.len();
                        }
                    }
                    pending.resource_spans.append(&mut req.resource_spans);
                    if count >= 512 {
                        total += pending.encode_to_vec().len();
                        pending = ExportTraceServiceRequest::default();
                        count = 0;
                    }
                }
                total + pending.encode_to_vec().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
