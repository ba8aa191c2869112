//! Enrichment cost per request of 100 spans (one resource), found by the connection's address, with
//! an index of 100 and of 10,000 pods, with and without a writer publishing index updates as fast as
//! it can on another thread; beside the prost path (decode, add the same attributes, encode).
//! Also prints the heap bytes per indexed pod, counted by a wrapping allocator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::process::enrich::Enricher;
use otlp_gateway::process::enrich::index::{IndexConfig, PodStore};
use otlp_gateway::process::enrich::pods::PodMeta;
use otlp_gateway::testing::{kv, sample_request};
use otlp_gateway::wire::scan;
use prost::Message;

/// Counts live heap bytes so the index's size per pod can be reported.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn pod(i: usize) -> PodMeta {
    PodMeta {
        uid: format!("0b6b1d5e-{i:04}-4000-8000-{i:012}").into(),
        name: format!("checkout-7d4b9c8f5d-{i:05}"),
        namespace: format!("team-{}", i % 40),
        node_name: "node-1".into(),
        ips: vec![IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8))],
        started: "2026-11-25T08:00:00Z".into(),
        labels: [
            ("app.kubernetes.io/name".to_string(), format!("checkout-{}", i % 50)),
            ("pod-template-hash".to_string(), "7d4b9c8f5d".to_string()),
        ]
        .into_iter()
        .collect(),
        owner: Some(("ReplicaSet".into(), "checkout-7d4b9c8f5d".into())),
        ..PodMeta::default()
    }
}

fn store(pods: usize) -> PodStore {
    let mut s = PodStore::new(IndexConfig { cluster_name: Some("bench".into()), ..IndexConfig::default() });
    for i in 0..pods {
        s.upsert(pod(i));
    }
    s
}

fn request() -> Bytes {
    let mut req = sample_request(1, 100, 10, 16);
    // Association by connection: the resource names no pod itself.
    req.resource_spans[0].resource.as_mut().unwrap().attributes =
        vec![kv("service.name", "unknown_service:java")];
    Bytes::from(req.encode_to_vec())
}

fn bench(c: &mut Criterion) {
    let body = request();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let big = store(10_000);
    let index = big.snapshot();
    let per_pod = (LIVE_BYTES.load(Ordering::Relaxed) - before) / 10_000;
    eprintln!("heap bytes per indexed pod (store + one published snapshot): {per_pod}");
    drop(index);

    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(100));
    for pods in [100usize, 10_000] {
        let enricher = Arc::new(Enricher::default());
        enricher.publish(store(pods).snapshot());
        let peer = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 42)));
        group.bench_function(BenchmarkId::new("scan_and_enrich", pods), |b| {
            b.iter(|| {
                let mut data = scan(body.clone()).unwrap();
                enricher.enrich(&mut data, peer);
                data.resources[0].added.len()
            })
        });
        // A writer replaces the index as fast as it can while readers enrich.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (enricher, stop) = (Arc::clone(&enricher), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut s = store(pods);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    s.upsert(pod(n % pods));
                    enricher.publish(s.snapshot());
                    n += 1;
                }
                n
            })
        };
        group.bench_function(BenchmarkId::new("scan_and_enrich_while_writing", pods), |b| {
            b.iter(|| {
                let mut data = scan(body.clone()).unwrap();
                enricher.enrich(&mut data, peer);
                data.resources[0].added.len()
            })
        });
        stop.store(true, Ordering::Relaxed);
        let published = writer.join().unwrap();
        eprintln!("index of {pods} pods: the writer published {published} snapshots during the run");
    }
    group.bench_function("scan_only", |b| b.iter(|| scan(body.clone()).unwrap().spans));
    let one = store(1).snapshot();
    let attrs: Vec<(String, String)> = one
        .by_ip(&IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)))
        .unwrap()
        .attrs
        .iter()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    group.bench_function("prost_decode_enrich_encode", |b| {
        b.iter(|| {
            let mut req = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
            let resource = req.resource_spans[0].resource.as_mut().unwrap();
            for (k, v) in &attrs {
                if !resource.attributes.iter().any(|kv| kv.key == *k) {
                    resource.attributes.push(kv(k, v));
                }
            }
            req.encode_to_vec().len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
