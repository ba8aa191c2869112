//! Runs each stage of the data path once over the same requests, each in a function of its own, so
//! that callgrind can count the instructions of every stage: a figure that does not move with the
//! load of a shared machine, unlike time. `benches/instructions.sh` runs it under callgrind and prints
//! instructions per span for each stage, beside the plain prost path.
//!
//! The requests are the load test's shape: 100 spans with 10 attributes of 16 bytes, one resource
//! that names no pod (enrichment finds it by the sender's address), no Istio proxy spans. Both paths
//! allocate through mimalloc, as the gateway does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::batch::{Batch, BatchLimits, Batcher};
use otlp_gateway::enrich::index::{IndexConfig, PodStore};
use otlp_gateway::enrich::pods::PodMeta;
use otlp_gateway::enrich::{Enricher, ServiceMode};
use otlp_gateway::export::{ExportSettings, Exporter};
use otlp_gateway::filter::drop_noise;
use otlp_gateway::testing::{kv, sample_request};
use otlp_gateway::wire::{TraceData, scan};
use prost::Message;
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUESTS: usize = 20;
const SPANS_PER_REQUEST: usize = 100;
/// The sender's address: one of the indexed pods.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

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

fn plain_exporter() -> Exporter {
    let output = OtlpOutputConfig {
        protocol: Protocol::Grpc,
        url: "http://127.0.0.1:4317".into(),
        compression: Compression::None,
        headers: vec![],
        tls: TlsConfig { insecure: true, ..Default::default() },
    };
    Exporter::new(&output, ExportSettings::default()).unwrap()
}

#[inline(never)]
fn stage_scan(reqs: &[Bytes]) -> Vec<TraceData> {
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

/// Receive to export body, as the gateway runs it per request and pipeline.
#[inline(never)]
fn path_zero_copy(reqs: &[Bytes], enricher: &Enricher, exporter: &Exporter) -> usize {
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    for r in reqs {
        let mut data = scan(r.clone()).unwrap();
        enricher.enrich(&mut data, Some(PEER));
        drop_noise(&mut data);
        batcher.push(&data, &mut out);
    }
    out.extend(batcher.take());
    out.iter().map(|b| exporter.encode(b).unwrap().len()).sum()
}

#[inline(never)]
fn scan_prost(reqs: &[Bytes]) -> Vec<ExportTraceServiceRequest> {
    reqs.iter().map(|r| ExportTraceServiceRequest::decode(r.as_ref()).unwrap()).collect()
}

/// What a forwarder on owned structs does: decode, add the pod's attributes, regroup into 512-span
/// requests, encode.
#[inline(never)]
fn path_prost(reqs: &[Bytes]) -> usize {
    let attrs = [
        kv("k8s.namespace.name", "shop"),
        kv("k8s.pod.name", "app-7"),
        kv("k8s.pod.uid", "uid-7"),
        kv("k8s.cluster.name", "bench"),
    ];
    let mut pending = ExportTraceServiceRequest::default();
    let (mut count, mut total) = (0, 0);
    for r in reqs {
        let mut req = ExportTraceServiceRequest::decode(r.as_ref()).unwrap();
        for rs in &mut req.resource_spans {
            let resource = rs.resource.get_or_insert_default();
            resource.attributes.retain(|a| a.key != "service.name");
            resource.attributes.extend(attrs.iter().cloned());
            resource.attributes.push(kv("service.name", "app-7"));
            count += rs.scope_spans.iter().map(|ss| ss.spans.len()).sum::<usize>();
        }
        pending.resource_spans.append(&mut req.resource_spans);
        if count >= 512 {
            total += pending.encode_to_vec().len();
            pending = ExportTraceServiceRequest::default();
            count = 0;
        }
    }
    total + pending.encode_to_vec().len()
}

fn main() {
    let reqs = requests();
    let enricher = enricher();
    let exporter = plain_exporter();

    let mut data = black_box(stage_scan(&reqs));
    stage_enrich(&mut data, &enricher);
    black_box(stage_filter(&mut data));
    let batches = black_box(stage_batch(&data));
    black_box(stage_export_framing(&batches, &exporter));
    black_box(path_zero_copy(&reqs, &enricher, &exporter));
    black_box(scan_prost(&reqs));
    black_box(path_prost(&reqs));
    println!("spans {}", REQUESTS * SPANS_PER_REQUEST);
}
