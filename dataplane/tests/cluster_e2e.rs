//! The control plane and the data plane together: `telemetry-manager`'s in-cluster reconciler against
//! a Kubernetes API server **simulated** over HTTP on 127.0.0.1 (`apisim`; no cluster can run on
//! these machines), and the real `otlp-gateway` binary following it as the DaemonSet's pods do, with
//! the gateway Secret's keys written to files as the kubelet mounts them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apisim::ApiSim;
use base64::Engine as _;
use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig, ClusterManager};
use telemetry_manager::flow::FlowSettings;
use telemetry_manager::gateway::GatewaySettings;

const NS: &str = "kyma-system";
const TP: &str = "telemetry.kyma-project.io/v1beta1";
const SPANS_PER_REQUEST: usize = 20;

async fn start_manager(sim: &ApiSim) -> ClusterManager {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        flow: FlowSettings {
            window: Duration::from_secs(5),
            stale_after: Duration::from_secs(3),
            evaluate_every: Duration::from_millis(200),
        },
        // The serving certificate must name the address the gateway dials.
        gateway: GatewaySettings {
            manager_url: "https://127.0.0.1:9090".into(),
            ..GatewaySettings::default()
        },
        ..ClusterConfig::default()
    };
    cluster::start(client, config).await.unwrap()
}

fn endpoint_secret(endpoint: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend", "namespace": "default"},
        "data": {"endpoint": base64::engine::general_purpose::STANDARD.encode(endpoint)}})
}

fn flow_reason(sim: &ApiSim, name: &str) -> Option<String> {
    let p = sim.get(TP, "TracePipeline", None, name)?;
    p.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "TelemetryFlowHealthy")
        .and_then(|c| c["reason"].as_str().map(str::to_string))
}

/// Writes the gateway Secret's keys into `dir` as the kubelet mounts them; returns the token path.
async fn mount_gateway_secret(sim: &ApiSim, dir: &Path) -> std::path::PathBuf {
    wait_until("the gateway Secret", Duration::from_secs(20), || {
        sim.get("v1", "Secret", Some(NS), "telemetry-otlp-gateway").is_some_and(|s| {
            let snapshot = &s["data"]["snapshot.json"];
            let text = base64::engine::general_purpose::STANDARD
                .decode(snapshot.as_str().unwrap_or_default())
                .unwrap_or_default();
            serde_json::from_slice::<Value>(&text)
                .is_ok_and(|v| v["pipelines"].as_array().is_some_and(|p| !p.is_empty()))
        })
    })
    .await;
    let secret = sim.get("v1", "Secret", Some(NS), "telemetry-otlp-gateway").unwrap();
    for key in ["token", "snapshot.json", "ca.crt"] {
        let raw =
            base64::engine::general_purpose::STANDARD.decode(secret["data"][key].as_str().unwrap()).unwrap();
        std::fs::write(dir.join(key), raw).unwrap();
    }
    dir.join("token")
}

/// A request of `SPANS_PER_REQUEST` spans whose span ids are unique across the whole test.
fn request(number: u64) -> Bytes {
    let mut req: ExportTraceServiceRequest = prost::Message::decode(Bytes::from(
        otlp_gateway::testing::sample_request(1, SPANS_PER_REQUEST, 4, 16).encode_to_vec(),
    ))
    .unwrap();
    for (i, span) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        span.span_id = (number * 1000 + i as u64 + 1).to_be_bytes().to_vec();
    }
    Bytes::from(req.encode_to_vec())
}

/// Scenario: a TracePipeline whose endpoint is in a Secret; a gateway binary follows the manager;
/// a client sends continuously while the Secret is rotated to a second backend.
/// Guarantees: the rotation reaches the running gateway without a restart; every span the gateway
/// accepted arrives exactly once, at the old backend before the switch and the new one after; the
/// gateway's counter reports turn the pipeline's flow FlowHealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_reaches_a_running_gateway_while_spans_flow() {
    let dir = tempdir();
    let a = Sink::start(dir.path(), "a", &[]).await;
    let b = Sink::start(dir.path(), "b", &[]).await;
    let sim = ApiSim::start().await.unwrap();
    sim.put(endpoint_secret(&format!("http://{}", a.grpc)));
    sim.put(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "traces"},
        "spec": {"output": {"otlp": {"endpoint": {"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "default", "key": "endpoint"}}}}}}}));
    let manager = start_manager(&sim).await;
    let token = mount_gateway_secret(&sim, dir.path()).await;
    let url = format!("https://127.0.0.1:{}", manager.snapshot_addr.port());
    let gw = Gateway::start(
        dir.path(),
        "# unused: the gateway follows the manager\n",
        &[
            "--snapshot-url",
            &url,
            "--token-file",
            token.to_str().unwrap(),
            "--snapshot-file",
            dir.path().join("snapshot.json").to_str().unwrap(),
            "--snapshot-ca",
            dir.path().join("ca.crt").to_str().unwrap(),
            "--batch-timeout",
            "50ms",
            "--report-interval",
            "200ms",
            "--report-name",
            "gw-node-1",
        ],
    )
    .await;
    wait_until("readiness", Duration::from_secs(20), || {
        blocking_get(format!("http://{}/readyz", gw.health)).starts_with(b"ready")
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let client = grpc_client(gw.grpc, tracegw_contract::Compression::Gzip, None);
        tokio::spawn(async move {
            let (mut accepted, mut number) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                number += 1;
                if send_raw(&client, request(number), SPANS_PER_REQUEST).await.is_ok() {
                    accepted += SPANS_PER_REQUEST as u64;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            accepted
        })
    };
    wait_until("spans at the first backend", Duration::from_secs(20), || a.spans_received() >= 200).await;
    let version = gw.metric("otlp_gateway_config_version");
    let rotated = Instant::now();
    sim.put(endpoint_secret(&format!("http://{}", b.grpc)));
    wait_until("the rotation at the gateway", Duration::from_secs(20), || {
        gw.metric("otlp_gateway_config_version") > version
    })
    .await;
    eprintln!("secret rotation reached the running gateway after {:?}", rotated.elapsed());
    wait_until("spans at the second backend", Duration::from_secs(20), || b.spans_received() >= 200).await;
    stop.store(true, Ordering::Relaxed);
    let accepted = sender.await.unwrap();
    wait_until("every accepted span delivered", Duration::from_secs(20), || {
        a.spans_received() + b.spans_received() >= accepted
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (at_a, at_b) = (a.spans_received(), b.spans_received());
    assert_eq!(at_a + at_b, accepted, "spans lost or duplicated: a {at_a} + b {at_b} != accepted {accepted}");
    for sink in [&a, &b] {
        assert_eq!(sink.stats()["duplicates"].as_u64(), Some(0), "{}", sink.stats());
    }
    let ids = |s: &Sink| {
        s.spans().iter().map(|sp| sp["spanId"].as_str().unwrap().to_string()).collect::<HashSet<_>>()
    };
    assert!(ids(&a).is_disjoint(&ids(&b)), "a span reached both backends");
    assert!(gw.proc.log_text().matches("otlp-gateway started").count() == 1, "the gateway restarted");

    wait_until("FlowHealthy from the gateway's reports", Duration::from_secs(20), || {
        flow_reason(&sim, "traces").as_deref() == Some("FlowHealthy")
    })
    .await;
    assert!(
        manager
            .metrics
            .reports
            .get_or_create(&telemetry_manager::metrics::ResultLabels { result: "accepted".into() })
            .get()
            > 0
    );
    manager.stop.cancel();
}

/// Scenario: the manager stores its snapshot and goes away; a gateway starts on a node while the
/// manager is unreachable, with the gateway Secret mounted.
/// Guarantees: the gateway runs the stored snapshot (ready, delivering to the backend) instead of
/// waiting for a manager that is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_start_from_the_stored_snapshot() {
    let dir = tempdir();
    let a = Sink::start(dir.path(), "a", &[]).await;
    let sim = ApiSim::start().await.unwrap();
    sim.put(endpoint_secret(&format!("http://{}", a.grpc)));
    sim.put(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "traces"},
        "spec": {"output": {"otlp": {"endpoint": {"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "default", "key": "endpoint"}}}}}}}));
    let manager = start_manager(&sim).await;
    let token = mount_gateway_secret(&sim, dir.path()).await;
    let url = format!("https://127.0.0.1:{}", manager.snapshot_addr.port());
    manager.stop.cancel();
    manager.wait().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gw = Gateway::start(
        dir.path(),
        "# unused\n",
        &[
            "--snapshot-url",
            &url,
            "--token-file",
            token.to_str().unwrap(),
            "--snapshot-file",
            dir.path().join("snapshot.json").to_str().unwrap(),
            "--snapshot-ca",
            dir.path().join("ca.crt").to_str().unwrap(),
            "--batch-timeout",
            "50ms",
        ],
    )
    .await;
    wait_until("readiness from the stored snapshot", Duration::from_secs(20), || {
        blocking_get(format!("http://{}/readyz", gw.health)).starts_with(b"ready")
    })
    .await;
    let client = grpc_client(gw.grpc, tracegw_contract::Compression::None, None);
    send_raw(&client, request(1), SPANS_PER_REQUEST).await.unwrap();
    wait_until("delivery", Duration::from_secs(20), || a.spans_received() >= SPANS_PER_REQUEST as u64).await;
    assert!(gw.proc.log_text().contains("applying the stored snapshot"), "{}", gw.proc.log_text());
}

/// Scenario: the manager's snapshot channel in a cluster, probed without TLS, with TLS but trusting
/// another certificate, and as a gateway does; then the manager restarts.
/// Guarantees: plain HTTP gets no snapshot, a client that does not trust the manager's own
/// certificate cannot connect, the gateway (trusting `ca.crt` from its Secret) is served; a restart
/// keeps the certificate, so running gateways need nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_snapshot_channel_is_tls_with_the_managers_own_certificate() {
    let dir = tempdir();
    let sim = ApiSim::start().await.unwrap();
    sim.put(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "traces"},
        "spec": {"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}}}}));
    let manager = start_manager(&sim).await;
    let token_file = mount_gateway_secret(&sim, dir.path()).await;
    let port = manager.snapshot_addr.port();

    let plain = get(&format!("http://127.0.0.1:{port}/v1/snapshots")).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    let link = |ca: &Path| otlp_gateway::link::ManagerLink {
        url: format!("https://127.0.0.1:{port}"),
        token_file: token_file.clone(),
        ca_file: Some(ca.to_path_buf()),
    };
    let request = |link: &otlp_gateway::link::ManagerLink| {
        http::Request::get(format!("{}/v1/reports", link.url))
            .header("authorization", link.authorization().unwrap())
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    };
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.path().join("other.crt"), stranger.cert.pem()).unwrap();
    let other = link(&dir.path().join("other.crt"));
    let client: otlp_gateway::link::ManagerClient<http_body_util::Empty<Bytes>> = other.client().unwrap();
    assert!(
        client.request(request(&other)).await.is_err(),
        "a client trusting another certificate connected"
    );
    let trusted = link(&dir.path().join("ca.crt"));
    let client: otlp_gateway::link::ManagerClient<http_body_util::Empty<Bytes>> = trusted.client().unwrap();
    let answer = client.request(request(&trusted)).await.unwrap();
    assert_eq!(answer.status(), 405, "over TLS the request reaches the manager (GET on the report path)");

    let cert_before = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    manager.stop.cancel();
    manager.wait().await;
    let again = start_manager(&sim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let secret = sim.get("v1", "Secret", Some(NS), "telemetry-otlp-gateway").unwrap();
    let cert_after =
        base64::engine::general_purpose::STANDARD.decode(secret["data"]["ca.crt"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(cert_after).unwrap(), cert_before, "the certificate changed on restart");
    again.stop.cancel();
}
