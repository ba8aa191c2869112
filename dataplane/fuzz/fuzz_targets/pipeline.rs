//! Fuzzes the receiving path after the receivers: scan, the global stages (enrichment from a pod
//! index, both `service.*` modes, and Istio's noise filter) and the batcher. The first input byte
//! picks the sender's address and the service mode, the rest is the request. An accepted request
//! must come out of the stages still valid for the Collector, with no span lost but those the noise
//! filter counts, and out of the batcher decoding to exactly the spans that went in.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::batch::{BatchLimits, Batcher};
use otlp_gateway::process::GlobalStages;
use otlp_gateway::process::enrich::index::{IndexConfig, PodStore};
use otlp_gateway::process::enrich::pods::PodMeta;
use otlp_gateway::process::enrich::{Enricher, ServiceMode};
use otlp_gateway::testing::{otlp_accepts, encode_trace_data, flatten};
use prost::Message;

/// Pods at 10.0.0.0 to 10.0.0.3 (the last one on the host network, never matched by address).
fn stages(mode: ServiceMode) -> GlobalStages {
    let mut store =
        PodStore::new(IndexConfig { cluster_name: Some("fuzz".into()), ..IndexConfig::default() });
    for i in 0..4u8 {
        store.upsert(PodMeta {
            uid: format!("uid-{i}").into(),
            name: format!("app-{i}"),
            namespace: if i == 2 { "istio-system".into() } else { "shop".into() },
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))],
            host_network: i == 3,
            started: "2026-11-25T08:00:00Z".into(),
            owner: Some(("ReplicaSet".into(), format!("app-{i}-5d4f8b7c9"))),
            ..PodMeta::default()
        });
    }
    let enricher = Enricher::new(mode);
    enricher.publish(store.snapshot());
    GlobalStages::new(Some(Arc::new(enricher)))
}

fuzz_target!(|data: &[u8]| {
    static STAGES: OnceLock<[GlobalStages; 2]> = OnceLock::new();
    let stages = STAGES.get_or_init(|| [stages(ServiceMode::KymaLegacy), stages(ServiceMode::Otel)]);
    let Some((&pick, request)) = data.split_first() else { return };
    let Ok(mut scanned) = otlp_gateway::wire::scan(Bytes::copy_from_slice(request)) else { return };
    let peer = (pick & 0x08 == 0).then(|| IpAddr::V4(Ipv4Addr::new(10, 0, 0, pick & 0x07)));
    let spans_in = scanned.spans;
    let outcome = stages[usize::from(pick >> 7)].run(&mut scanned, peer);

    let staged = encode_trace_data(&scanned);
    assert!(otlp_accepts(&staged), "the stages made an invalid request");
    let staged = ExportTraceServiceRequest::decode(staged.as_slice()).expect("accepted, so it decodes");
    assert_eq!(flatten([&staged]).len() + outcome.noise_dropped, spans_in, "spans lost in the stages");
    assert_eq!(scanned.spans, spans_in - outcome.noise_dropped);

    let mut batcher = Batcher::new(BatchLimits { max_spans: 3, max_bytes: 512, ..BatchLimits::default() });
    let mut out = Vec::new();
    batcher.push(&scanned, &mut out);
    out.extend(batcher.take());
    let batches: Vec<_> = out
        .iter()
        .map(|b| {
            let bytes = b.to_bytes();
            assert!(otlp_accepts(&bytes), "an invalid batch");
            ExportTraceServiceRequest::decode(bytes).expect("batch decodes")
        })
        .collect();
    assert_eq!(flatten(&batches), flatten([&staged]));
});
