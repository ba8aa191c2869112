//! Fixtures and the two in-process paths shared by the criterion benchmarks and the instruction
//! counter (`examples/instructions.rs`), so both measure the same code.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::export::{ExportSettings, Exporter};
use otlp_gateway::process::enrich::index::{IndexConfig, PodStore};
use otlp_gateway::process::enrich::pods::PodMeta;
use otlp_gateway::process::enrich::{Enricher, ServiceMode};
use otlp_gateway::process::noise::drop_noise;
use otlp_gateway::testing::kv;
use otlp_gateway::wire::scan;
use prost::Message;
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

/// The sender's address: pod `app-7` of [`enricher`]'s index.
pub const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

/// An enricher (`kyma-legacy` service rules) whose index holds 100 pods at 10.0.0.0–10.0.0.99.
pub fn enricher() -> Enricher {
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

/// An OTLP/gRPC exporter (never connected; only its encoding is used).
pub fn exporter(compression: Compression) -> Exporter {
    let output = OtlpOutputConfig {
        protocol: Protocol::Grpc,
        url: "http://127.0.0.1:4317".into(),
        compression,
        headers: vec![],
        tls: TlsConfig { insecure: true, ..Default::default() },
        oauth2: None,
    };
    Exporter::new(&output, ExportSettings::default()).unwrap()
}

/// Receive to export body as the gateway runs it: scan, enrich, drop noise, batch, encode.
pub fn zero_copy_path(reqs: &[Bytes], enricher: &Enricher, exporter: &Exporter) -> usize {
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

/// What a forwarder on owned structs does: decode, add the pod's attributes, drop the spans whose
/// attributes `is_noise` names (when given), regroup into 512-span requests, encode.
pub fn prost_path(reqs: &[Bytes], is_noise: Option<fn(&[KeyValue]) -> bool>) -> usize {
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
            for ss in &mut rs.scope_spans {
                if let Some(is_noise) = is_noise {
                    ss.spans.retain(|s| !is_noise(&s.attributes));
                }
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
}
