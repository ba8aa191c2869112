//! Kyma's `Telemetry` resource end to end: `telemetry-manager`'s in-cluster reconciler against a
//! Kubernetes API server **simulated** over HTTP on 127.0.0.1 (`apisim`; no cluster can run on these
//! machines), and the real `otlp-gateway` binary following it, enriching from a pods file, while spans
//! flow. The counterpart of Kyma's TestExtractLabels, TestServiceEnrichment and TestCustomClusterName
//! for traces, with the settings changed while the gateway runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use apisim::ApiSim;
use base64::Engine as _;
use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig};

const NS: &str = "kyma-system";
const OP: &str = "operator.kyma-project.io/v1beta1";
const SPANS_PER_REQUEST: usize = 10;

/// The node and the one pod the spans come from (they carry its `k8s.pod.ip`).
const PODS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node-e2e, labels: {topology.kubernetes.io/region: eu-1}}
---
apiVersion: v1
kind: Pod
metadata:
  name: checkout-0
  namespace: shop
  uid: 0b6b1d5e-1111-4000-8000-000000000001
  labels:
    app.kubernetes.io/name: checkout
    e2e.exact.should.match: exact
    e2e.prefix.should.match1: one
    e2e.prefix.should.match2: two
    e2e.should.not.match: other
  annotations:
    resource.opentelemetry.io/service.name: annotated-checkout
spec: {nodeName: node-e2e}
status: {podIP: 10.0.0.1, startTime: "2026-11-25T08:00:00Z"}
"#;

/// A request of `SPANS_PER_REQUEST` spans from the pod (`k8s.pod.ip` 10.0.0.1, `service.name`
/// svc-0), whose span ids encode the request number.
fn request(number: u64) -> Bytes {
    let mut req: ExportTraceServiceRequest = prost::Message::decode(Bytes::from(
        otlp_gateway::testing::sample_request(1, SPANS_PER_REQUEST, 2, 8).encode_to_vec(),
    ))
    .unwrap();
    for (i, span) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        span.span_id = (number * 1000 + i as u64 + 1).to_be_bytes().to_vec();
    }
    Bytes::from(req.encode_to_vec())
}

fn request_number(span: &Value) -> u64 {
    u64::from_str_radix(span["spanId"].as_str().unwrap(), 16).unwrap() / 1000
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["resource"][key].as_str()
}

/// Scenario: a TracePipeline, and a gateway binary following the manager with a pods file; a client
/// sends without pause while the default Telemetry is created (pod labels by key and by prefix, a
/// cluster name, no annotation), annotated `otel`, then switched back to `kyma-legacy` with another
/// cluster name and the prefix rule removed.
/// Guarantees: every accepted span arrives exactly once and the gateway never restarts; once a
/// change has reached the gateway, the spans sent after it carry the new attributes:
/// `k8s.pod.label.<key>` for the exact key and each prefixed label and never the other label,
/// `k8s.cluster.name` from the CR, `service.name` from the pod's annotation in `otel` mode and the
/// sender's own in `kyma-legacy` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_changes_reach_running_gateway_while_spans_flow() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "backend", &[]).await;
    let sim = ApiSim::start().await.unwrap();
    sim.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "cluster-uid-e2e"}}));
    sim.put(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline", "metadata": {"name": "traces"},
        "spec": {"output": {"otlp": {"endpoint": {"value": format!("http://{}", sink.grpc)}}}}}));
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        ..ClusterConfig::default()
    };
    let manager = cluster::start(client, config).await.unwrap();
    wait_until("the gateway Secret", Duration::from_secs(20), || {
        sim.get("v1", "Secret", Some(NS), "telemetry-otlp-gateway").is_some()
    })
    .await;
    let secret = sim.get("v1", "Secret", Some(NS), "telemetry-otlp-gateway").unwrap();
    let token =
        base64::engine::general_purpose::STANDARD.decode(secret["data"]["token"].as_str().unwrap()).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let pods = dir.path().join("pods.yaml");
    std::fs::write(&pods, PODS).unwrap();
    let url = format!("http://127.0.0.1:{}", manager.snapshot_addr.port());
    let gw = Gateway::start(
        dir.path(),
        "# unused: the gateway follows the manager\n",
        &[
            "--snapshot-url",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
            "--pods",
            pods.to_str().unwrap(),
            "--node-name",
            "node-e2e",
            "--batch-timeout",
            "50ms",
        ],
    )
    .await;
    wait_until("readiness", Duration::from_secs(20), || {
        blocking_get(format!("http://{}/readyz", gw.health)).starts_with(b"ready")
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        let client = grpc_client(gw.grpc, tracegw_contract::Compression::Gzip, None);
        tokio::spawn(async move {
            let (mut accepted, mut number) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                number += 1;
                sent.store(number, Ordering::Relaxed);
                if send_raw(&client, request(number), SPANS_PER_REQUEST).await.is_ok() {
                    accepted += SPANS_PER_REQUEST as u64;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            accepted
        })
    };
    wait_until("spans before any Telemetry", Duration::from_secs(20), || sink.spans_received() >= 100).await;
    assert!(sink.spans().iter().all(|s| attr(s, "k8s.pod.label.e2e.exact.should.match").is_none()
        && attr(s, "service.name") == Some("svc-0")));

    // Each change, and what every span sent after it reached the gateway must show.
    type Check = fn(&Value) -> bool;
    let labelled: Check = |s| {
        attr(s, "k8s.pod.label.e2e.exact.should.match") == Some("exact")
            && attr(s, "k8s.pod.label.e2e.prefix.should.match1") == Some("one")
            && attr(s, "k8s.pod.label.e2e.prefix.should.match2") == Some("two")
            && attr(s, "k8s.pod.label.e2e.should.not.match").is_none()
            && attr(s, "k8s.cluster.name") == Some("cluster-one")
            && attr(s, "k8s.cluster.uid") == Some("cluster-uid-e2e")
            && attr(s, "service.name") == Some("svc-0")
    };
    let otel: Check = |s| {
        attr(s, "k8s.pod.label.e2e.exact.should.match") == Some("exact")
            && attr(s, "k8s.pod.label.e2e.prefix.should.match1") == Some("one")
            && attr(s, "k8s.cluster.name") == Some("cluster-one")
            && attr(s, "service.name") == Some("annotated-checkout")
            && attr(s, "service.namespace") == Some("shop")
    };
    let legacy_again: Check = |s| {
        attr(s, "k8s.pod.label.e2e.exact.should.match") == Some("exact")
            && attr(s, "k8s.pod.label.e2e.prefix.should.match1").is_none()
            && attr(s, "k8s.cluster.name") == Some("cluster-two")
            && attr(s, "service.name") == Some("svc-0")
    };
    let phases: Vec<(&str, Value, Check)> = vec![
        (
            "labels and cluster name",
            json!({"apiVersion": OP, "kind": "Telemetry", "metadata": {"name": "default", "namespace": NS},
                "spec": {"enrichments": {"extractPodLabels": [{"key": "e2e.exact.should.match"}, {"keyPrefix": "e2e.prefix"}],
                                         "cluster": {"name": "cluster-one"}}}}),
            labelled,
        ),
        (
            "otel",
            json!({"apiVersion": OP, "kind": "Telemetry",
                "metadata": {"name": "default", "namespace": NS, "annotations": {"telemetry.kyma-project.io/service-enrichment": "otel"}},
                "spec": {"enrichments": {"extractPodLabels": [{"key": "e2e.exact.should.match"}, {"keyPrefix": "e2e.prefix"}],
                                         "cluster": {"name": "cluster-one"}}}}),
            otel,
        ),
        (
            "kyma-legacy, another cluster name, no prefix rule",
            json!({"apiVersion": OP, "kind": "Telemetry",
                "metadata": {"name": "default", "namespace": NS, "annotations": {"telemetry.kyma-project.io/service-enrichment": "kyma-legacy"}},
                "spec": {"enrichments": {"extractPodLabels": [{"key": "e2e.exact.should.match"}], "cluster": {"name": "cluster-two"}}}}),
            legacy_again,
        ),
    ];
    for (what, cr, check) in phases {
        let version = gw.metric("otlp_gateway_config_version");
        match sim.get(OP, "Telemetry", Some(NS), "default") {
            Some(live) => {
                sim.update(OP, "Telemetry", Some(NS), "default", |t| {
                    t["metadata"]["annotations"] = cr["metadata"]["annotations"].clone();
                    t["spec"] = cr["spec"].clone();
                });
                assert!(live["metadata"]["finalizers"].is_array(), "the manager holds the Telemetry");
            }
            None => {
                sim.put(cr);
            }
        }
        wait_until(&format!("{what}: the snapshot at the gateway"), Duration::from_secs(20), || {
            gw.metric("otlp_gateway_config_version") > version
        })
        .await;
        // The pod index is rebuilt from the files on the gateway's next poll (100 ms).
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mark = sent.load(Ordering::Relaxed);
        wait_until(&format!("{what}: spans sent after the change"), Duration::from_secs(20), || {
            sink.spans().iter().filter(|s| request_number(s) > mark).count() >= 100
        })
        .await;
        let after: Vec<Value> = sink.spans().into_iter().filter(|s| request_number(s) > mark).collect();
        let wrong: Vec<&Value> = after.iter().filter(|s| !check(s)).collect();
        assert!(
            wrong.is_empty(),
            "{what}: {} of {} spans lack the new attributes, e.g. {}",
            wrong.len(),
            after.len(),
            wrong[0]["resource"]
        );
    }

    stop.store(true, Ordering::Relaxed);
    let accepted = sender.await.unwrap();
    wait_until("every accepted span delivered", Duration::from_secs(20), || {
        sink.spans_received() >= accepted
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.spans_received(), accepted, "spans lost or duplicated");
    assert_eq!(sink.stats()["duplicates"].as_u64(), Some(0), "{}", sink.stats());
    let ids: HashSet<String> =
        sink.spans().iter().map(|s| s["spanId"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len() as u64, accepted);
    assert_eq!(gw.proc.log_text().matches("otlp-gateway started").count(), 1, "the gateway restarted");
    manager.stop.cancel();
}

/// Scenario: a gateway on its own (`--pipelines` file, `--pods` file, `--service-enrichment otel`
/// and `--cluster-name flag-cluster` as flags); the pipelines file gains the default Telemetry (a
/// label by key, a cluster name, `kyma-legacy`), then loses it again.
/// Guarantees: with the Telemetry in the file its settings replace the flags, as a manager's
/// snapshot does, without a restart; without it the flags are in force again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_in_the_pipelines_file() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "backend", &[]).await;
    let pods = dir.path().join("pods.yaml");
    std::fs::write(&pods, PODS).unwrap();
    let pipelines = pipeline("traces", "grpc", &format!("http://{}", sink.grpc));
    let telemetry = "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata:\n  name: default\n  annotations: {telemetry.kyma-project.io/service-enrichment: kyma-legacy}\nspec:\n  enrichments:\n    extractPodLabels: [{key: e2e.exact.should.match}]\n    cluster: {name: file-cluster}\n";
    let gw = Gateway::start(
        dir.path(),
        &pipelines,
        &[
            "--pods",
            pods.to_str().unwrap(),
            "--node-name",
            "node-e2e",
            "--service-enrichment",
            "otel",
            "--cluster-name",
            "flag-cluster",
            "--batch-timeout",
            "50ms",
        ],
    )
    .await;
    wait_until("readiness", Duration::from_secs(20), || {
        blocking_get(format!("http://{}/readyz", gw.health)).starts_with(b"ready")
    })
    .await;
    let client = grpc_client(gw.grpc, tracegw_contract::Compression::None, None);
    let mut number = 0u64;
    // Sends until the spans of one request show `check`, for at most 20 s.
    let mut until = async |what: &str, check: fn(&Value) -> bool| {
        for _ in 0..100 {
            number += 1;
            send_raw(&client, request(number), SPANS_PER_REQUEST).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let last: Vec<Value> = sink.spans().into_iter().filter(|s| request_number(s) == number).collect();
            if !last.is_empty() && last.iter().all(check) {
                return;
            }
        }
        panic!(
            "timed out waiting for {what}: {}",
            sink.spans().last().map(|s| s["resource"].clone()).unwrap_or_default()
        );
    };
    until("the flags", |s| {
        attr(s, "service.name") == Some("annotated-checkout")
            && attr(s, "k8s.cluster.name") == Some("flag-cluster")
            && attr(s, "k8s.pod.label.e2e.exact.should.match").is_none()
    })
    .await;
    std::fs::write(&gw.pipelines, format!("{pipelines}{telemetry}")).unwrap();
    until("the Telemetry's settings", |s| {
        attr(s, "service.name") == Some("svc-0")
            && attr(s, "k8s.cluster.name") == Some("file-cluster")
            && attr(s, "k8s.pod.label.e2e.exact.should.match") == Some("exact")
    })
    .await;
    std::fs::write(&gw.pipelines, &pipelines).unwrap();
    until("the flags again", |s| {
        attr(s, "service.name") == Some("annotated-checkout")
            && attr(s, "k8s.cluster.name") == Some("flag-cluster")
            && attr(s, "k8s.pod.label.e2e.exact.should.match").is_none()
    })
    .await;
    assert_eq!(gw.proc.log_text().matches("otlp-gateway started").count(), 1, "the gateway restarted");
}
