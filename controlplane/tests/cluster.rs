//! The in-cluster reconciler, run for real (kube-rs client, watches, server-side apply, status
//! subresource) against a Kubernetes API server **simulated** over HTTP on 127.0.0.1 (`apisim`), since
//! no cluster can run on these machines. The tests play the rest of the cluster: users creating and
//! editing objects, the DaemonSet controller and kubelet writing status, gateways posting counters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use apisim::{ApiSim, Fault};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig, ClusterManager};
use telemetry_manager::flow::FlowSettings;
use tracegw_contract::stream::{GatewayReport, PipelineCounters};

const NS: &str = "kyma-system";
const TP: &str = "telemetry.kyma-project.io/v1beta1";
const GW: &str = "telemetry-otlp-gateway";

fn config() -> ClusterConfig {
    ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        flow: FlowSettings {
            window: Duration::from_secs(3),
            stale_after: Duration::from_secs(2),
            evaluate_every: Duration::from_millis(200),
        },
        // These tests post reports in plain HTTP; TLS is covered by the gateway e2e tests.
        tls: false,
        ..ClusterConfig::default()
    }
}

async fn manager_with(sim: &ApiSim, config: ClusterConfig) -> ClusterManager {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    cluster::start(client, config).await.unwrap()
}

async fn manager(sim: &ApiSim) -> ClusterManager {
    manager_with(sim, config()).await
}

async fn cluster() -> ApiSim {
    let sim = ApiSim::start().await.unwrap();
    sim.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "cluster-uid-1"}}));
    sim.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shoot-info", "namespace": "kube-system"},
        "data": {"provider": "openstack"}}));
    sim
}

fn pipeline(name: &str, otlp: Value) -> Value {
    json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": name}, "spec": {"output": {"otlp": otlp}}})
}

fn inline(endpoint: &str) -> Value {
    json!({"endpoint": {"value": endpoint}})
}

fn from_secret(name: &str, key: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"name": name, "namespace": "default", "key": key}}})
}

fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(base64::engine::general_purpose::STANDARD.encode(v))))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// `(type, status, reason, message)` of each condition.
fn conditions(sim: &ApiSim, name: &str) -> Vec<(String, String, String, String)> {
    let Some(p) = sim.get(TP, "TracePipeline", None, name) else { return vec![] };
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (s("type"), s("status"), s("reason"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reason(sim: &ApiSim, name: &str, type_: &str) -> Option<String> {
    conditions(sim, name).into_iter().find(|c| c.0 == type_).map(|c| c.2)
}

fn message(sim: &ApiSim, name: &str, type_: &str) -> String {
    conditions(sim, name).into_iter().find(|c| c.0 == type_).map(|c| c.3).unwrap_or_default()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn configured(sim: &ApiSim, name: &str, want: &str) {
    eventually(&format!("{name}: ConfigurationGenerated {want}"), || {
        reason(sim, name, "ConfigurationGenerated").as_deref() == Some(want)
    })
    .await;
}

fn daemonset_ready(sim: &ApiSim, desired: i64, ready: i64) {
    sim.update("apps/v1", "DaemonSet", Some(NS), GW, |ds| {
        let generation = ds["metadata"]["generation"].clone();
        ds["status"] = json!({"desiredNumberScheduled": desired, "updatedNumberScheduled": desired,
            "numberReady": ready, "currentNumberScheduled": desired, "numberMisscheduled": 0, "observedGeneration": generation});
    });
}

fn token(sim: &ApiSim) -> String {
    let secret = sim.get("v1", "Secret", Some(NS), GW).unwrap();
    let raw =
        base64::engine::general_purpose::STANDARD.decode(secret["data"]["token"].as_str().unwrap()).unwrap();
    String::from_utf8(raw).unwrap()
}

async fn post_report(m: &ClusterManager, token: &str, report: &GatewayReport) -> u16 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("http://{}/v1/reports", m.snapshot_addr))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(report).unwrap())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn report(gateway: &str, pipeline: &str, sent: u64, failed: u64, refused: u64) -> GatewayReport {
    GatewayReport {
        gateway: gateway.into(),
        boot_id: "boot-1".into(),
        uptime_seconds: 1,
        snapshot_version: 1,
        refused_spans: refused,
        pipelines: vec![PipelineCounters {
            name: pipeline.into(),
            sent_spans: sent,
            send_failed_spans: failed,
            enqueue_failed_spans: 0,
        }],
    }
}

fn self_signed(ca: bool, not_after: time::OffsetDateTime) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["backend".into()]).unwrap();
    params.not_before = not_after - time::Duration::days(400);
    params.not_after = not_after;
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// Scenario: one TracePipeline whose endpoint is in a Secret, on a cluster without a gateway; then
/// the DaemonSet controller reports progress, a crash-looping pod, and readiness.
/// Guarantees: every gateway object is applied with server-side apply under one field manager; the
/// snapshot (served and stored in the gateway Secret) carries the endpoint from the Secret and the
/// cluster's facts; status is written through the status subresource, with observedGeneration;
/// GatewayHealthy goes RolloutInProgress, GatewayNotReady naming the container and reason, GatewayReady.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_pipeline_brings_up_the_gateway() {
    let sim = cluster().await;
    sim.put(secret("backend", &[("endpoint", "http://backend.default:4317")]));
    sim.put(pipeline("p1", json!({"endpoint": from_secret("backend", "endpoint")})));
    let m = manager(&sim).await;
    configured(&sim, "p1", "GatewayConfigured").await;
    for (api_version, kind, ns, name) in [
        ("apps/v1", "DaemonSet", Some(NS), GW),
        ("v1", "Service", Some(NS), "telemetry-otlp"),
        ("v1", "Service", Some(NS), "telemetry-otlp-traces"),
        ("v1", "Service", Some(NS), "telemetry-otlp-gateway-metrics"),
        ("v1", "ServiceAccount", Some(NS), GW),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", None, GW),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, GW),
        ("v1", "Secret", Some(NS), GW),
    ] {
        assert!(sim.get(api_version, kind, ns, name).is_some(), "{kind} {name} missing");
    }
    let writes = sim.writes();
    assert!(
        writes.iter().all(|w| w.method == "PATCH"
            && w.content_type == "application/apply-patch+yaml"
            && w.query.contains("fieldManager=telemetry-manager")),
        "{writes:#?}"
    );
    assert!(
        writes.iter().any(|w| w.path == "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/p1/status")
    );

    let snapshot = m.snapshots.borrow().clone();
    assert_eq!(snapshot.pipelines[0].output.url, "http://backend.default:4317");
    let enrichment = snapshot.enrichment.clone().unwrap();
    assert_eq!(
        (enrichment.cluster_uid.as_deref(), enrichment.cloud_provider.as_deref()),
        (Some("cluster-uid-1"), Some("sap"))
    );
    let stored = sim.get("v1", "Secret", Some(NS), GW).unwrap();
    let stored = base64::engine::general_purpose::STANDARD
        .decode(stored["data"]["snapshot.json"].as_str().unwrap())
        .unwrap();
    let stored: tracegw_contract::Snapshot = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored, *snapshot, "the Secret holds the snapshot being served");
    let p1 = sim.get(TP, "TracePipeline", None, "p1").unwrap();
    assert!(
        p1["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["observedGeneration"] == p1["metadata"]["generation"])
    );

    assert_eq!(reason(&sim, "p1", "GatewayHealthy").as_deref(), Some("RolloutInProgress"));
    sim.put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gw-1", "namespace": NS, "labels": {"app.kubernetes.io/name": GW}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
          "containerStatuses": [{"name": "gateway", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}));
    daemonset_ready(&sim, 2, 1);
    eventually("GatewayNotReady", || {
        reason(&sim, "p1", "GatewayHealthy").as_deref() == Some("GatewayNotReady")
    })
    .await;
    assert!(
        message(&sim, "p1", "GatewayHealthy").contains("container: gateway is not running due to: OOMKilled")
    );
    sim.delete("v1", "Pod", Some(NS), "gw-1");
    daemonset_ready(&sim, 2, 2);
    eventually("GatewayReady", || reason(&sim, "p1", "GatewayHealthy").as_deref() == Some("GatewayReady"))
        .await;
    m.stop.cancel();
}

/// Scenario: pipelines broken in each of Kyma's ways, next to a healthy one.
/// Guarantees: each gets its reason (ReferencedSecretMissing, EndpointInvalid, TLSConfigurationInvalid,
/// TLSCertificateExpired, UnsupportedFeature, SpecInvalid for an object that does not read), the
/// other two conditions say the configuration was not generated, and only the healthy pipeline is
/// in the snapshot. Creating the missing Secret heals its pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configuration_reason() {
    let sim = cluster().await;
    let expired = self_signed(false, time::OffsetDateTime::now_utc() - time::Duration::days(2));
    let tls = |cert: &str, key: &str| json!({"endpoint": {"value": "backend:4317"}, "tls": {"cert": {"value": cert}, "key": {"value": key}}});
    sim.put(pipeline("healthy", inline("http://backend:4317")));
    sim.put(pipeline("no-secret", json!({"endpoint": from_secret("absent", "endpoint")})));
    sim.put(pipeline("no-port", inline("backend")));
    sim.put(pipeline(
        "bad-tls",
        tls("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &expired.1),
    ));
    sim.put(pipeline("expired", tls(&expired.0, &expired.1)));
    // Kyma's TestFilterInvalid: a path without its context prefix.
    let mut ottl = pipeline("ottl", inline("http://backend:4317"));
    ottl["spec"]["filter"] = json!([{"conditions": ["Len(resource.attributes[\"k8s.namespace.name\"]) > 0", "attributes[\"foo\"] == \"bar\""]}]);
    sim.put(ottl);
    let mut ottl_valid = pipeline("ottl-valid", inline("http://backend:4317"));
    ottl_valid["spec"]["transform"] =
        json!([{"statements": ["set(span.attributes[\"x\"], \"y\") where span.name == \"a\""]}]);
    ottl_valid["spec"]["filter"] = json!([{"conditions": ["span.name == \"x\""]}]);
    sim.put(ottl_valid);
    sim.put(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "unreadable"}, "spec": {"output": {"otlp": {"endpoint": "backend:4317"}}}}));
    let m = manager(&sim).await;
    configured(&sim, "healthy", "GatewayConfigured").await;
    configured(&sim, "ottl-valid", "GatewayConfigured").await;
    for (name, want) in [
        ("no-secret", "ReferencedSecretMissing"),
        ("no-port", "EndpointInvalid"),
        ("bad-tls", "TLSConfigurationInvalid"),
        ("expired", "TLSCertificateExpired"),
        ("ottl", "OTTLSpecInvalid"),
        ("unreadable", "SpecInvalid"),
    ] {
        configured(&sim, name, want).await;
        assert_eq!(
            reason(&sim, name, "GatewayHealthy").as_deref(),
            Some("GatewayConfigurationNotGenerated"),
            "{name}"
        );
        assert_eq!(
            reason(&sim, name, "TelemetryFlowHealthy").as_deref(),
            Some("ConfigurationNotGenerated"),
            "{name}"
        );
    }
    assert_eq!(
        message(&sim, "no-secret", "ConfigurationGenerated"),
        "One or more referenced Secrets are missing: Secret 'absent' of Namespace 'default'"
    );
    assert_eq!(
        message(&sim, "no-port", "ConfigurationGenerated"),
        "OTLP output endpoint invalid: missing port"
    );
    assert!(message(&sim, "expired", "ConfigurationGenerated").starts_with("TLS certificate expired on "));
    let ottl_message = message(&sim, "ottl", "ConfigurationGenerated");
    assert!(
        ottl_message.starts_with("OTTL specification is invalid, invalid FilterSpec: ")
            && ottl_message.contains("missing context name for path \"attributes[foo]\"")
            && ottl_message.contains("see troubleshooting: https://kyma-project.io/"),
        "{ottl_message}"
    );
    let running: Vec<String> = m.snapshots.borrow().pipelines.iter().map(|p| p.name.clone()).collect();
    assert_eq!(running, ["healthy", "ottl-valid"]);

    sim.put(secret("absent", &[("endpoint", "http://late:4317")]));
    configured(&sim, "no-secret", "GatewayConfigured").await;
    assert!(m.snapshots.borrow().pipelines.iter().any(|p| p.output.url == "http://late:4317"));

    // The user fixes the condition: the pipeline runs, with its filter in the snapshot.
    let mut fixed = pipeline("ottl", inline("http://backend:4317"));
    fixed["spec"]["filter"] = json!([{"conditions": ["Len(resource.attributes[\"k8s.namespace.name\"]) > 0", "span.attributes[\"foo\"] == \"bar\""]}]);
    sim.put(fixed);
    configured(&sim, "ottl", "GatewayConfigured").await;
    let snapshot = m.snapshots.borrow().clone();
    let ottl = snapshot.pipelines.iter().find(|p| p.name == "ottl").expect("the fixed pipeline runs");
    assert_eq!(ottl.filter[0].conditions.len(), 2);
    m.stop.cancel();
}

/// Scenario: a client certificate that expires three seconds from now.
/// Guarantees: the pipeline runs with TLSCertificateAboutToExpire, and at expiry, with no other
/// change anywhere, it turns to TLSCertificateExpired and leaves the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_is_requeued() {
    let sim = cluster().await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let (cert, key) = self_signed(false, soon);
    sim.put(pipeline("mtls", json!({"endpoint": {"value": "backend:4317"}, "tls": {"cert": {"value": cert}, "key": {"value": key}}})));
    let m = manager(&sim).await;
    configured(&sim, "mtls", "TLSCertificateAboutToExpire").await;
    assert_eq!(conditions(&sim, "mtls")[0].1, "True");
    assert!(
        message(&sim, "mtls", "ConfigurationGenerated")
            .contains("is about to expire, configured certificate is valid until")
    );
    assert_eq!(m.snapshots.borrow().pipelines.len(), 1);
    configured(&sim, "mtls", "TLSCertificateExpired").await;
    assert!(m.snapshots.borrow().pipelines.is_empty());
    m.stop.cancel();
}

/// Scenario: a running pipeline whose endpoint Secret is rotated.
/// Guarantees: a new snapshot version with the new endpoint is served within a second of the
/// change; the DaemonSet is not touched (no pod roll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_reaches_the_snapshot() {
    let sim = cluster().await;
    sim.put(secret("backend", &[("endpoint", "http://old:4317")]));
    sim.put(pipeline("p", json!({"endpoint": from_secret("backend", "endpoint")})));
    let m = manager(&sim).await;
    configured(&sim, "p", "GatewayConfigured").await;
    let before = m.snapshots.borrow().version;
    let ds_before =
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).unwrap()["metadata"]["resourceVersion"].clone();
    let rotated = Instant::now();
    sim.put(secret("backend", &[("endpoint", "http://new:4317")]));
    let mut rx = m.snapshots.clone();
    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            rx.changed().await.unwrap();
            if rx.borrow().pipelines[0].output.url == "http://new:4317" {
                break;
            }
        }
    })
    .await
    .expect("the rotation reached the snapshot within a second");
    println!("secret rotation reached the snapshot after {:?}", rotated.elapsed());
    assert!(m.snapshots.borrow().version > before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).unwrap()["metadata"]["resourceVersion"],
        ds_before
    );
    m.stop.cancel();
}

/// Scenario: six valid pipelines created one after another; then one of the five oldest is deleted;
/// then a manager with `--max-pipelines 2`.
/// Guarantees: the youngest gets MaxPipelinesExceeded (and its Flow ConfigurationNotGenerated); it
/// takes the freed slot once one is deleted; the limit is configurable and still picks the oldest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_five_win() {
    let sim = cluster().await;
    for (i, name) in ["f", "e", "d", "c", "b", "a"].iter().enumerate() {
        let mut p = pipeline(name, inline("http://backend:4317"));
        p["metadata"]["creationTimestamp"] = json!(format!("2026-11-2{i}T10:00:00Z"));
        sim.put(p);
    }
    let m = manager(&sim).await;
    configured(&sim, "a", "MaxPipelinesExceeded").await;
    assert_eq!(message(&sim, "a", "ConfigurationGenerated"), "Maximum pipeline count limit exceeded");
    assert_eq!(reason(&sim, "a", "TelemetryFlowHealthy").as_deref(), Some("ConfigurationNotGenerated"));
    for name in ["b", "c", "d", "e", "f"] {
        configured(&sim, name, "GatewayConfigured").await;
    }
    sim.delete(TP, "TracePipeline", None, "d");
    configured(&sim, "a", "GatewayConfigured").await;
    assert_eq!(m.snapshots.borrow().pipelines.len(), 5);
    m.stop.cancel();

    let two = manager_with(&sim, ClusterConfig { max_pipelines: Some(2), ..config() }).await;
    configured(&sim, "c", "MaxPipelinesExceeded").await;
    let running: Vec<String> = two.snapshots.borrow().pipelines.iter().map(|p| p.name.clone()).collect();
    assert_eq!(running, ["e", "f"]);
    two.stop.cancel();
}

/// Scenario: a steady cluster, then someone edits the DaemonSet's image, deletes the OTLP Service,
/// and adds a label of their own to the DaemonSet.
/// Guarantees: a steady cluster gets no writes at all across many passes; the edited and deleted
/// objects are restored; a foreign addition that contradicts nothing is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_and_nothing_else_is_written() {
    let sim = cluster().await;
    sim.put(pipeline("p", inline("http://backend:4317")));
    let m = manager(&sim).await;
    configured(&sim, "p", "GatewayConfigured").await;
    eventually("flow probing settles", || {
        message(&sim, "p", "TelemetryFlowHealthy").starts_with("No OTLP gateway reported")
    })
    .await;
    let steady = sim.writes().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.writes().len(), steady, "writes in a steady state: {:#?}", &sim.writes()[steady..]);

    let image = sim.get("apps/v1", "DaemonSet", Some(NS), GW).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    sim.update("apps/v1", "DaemonSet", Some(NS), GW, |ds| {
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:latest");
    });
    sim.delete("v1", "Service", Some(NS), "telemetry-otlp");
    eventually("image restored", || {
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"] == image
    })
    .await;
    eventually("Service recreated", || sim.get("v1", "Service", Some(NS), "telemetry-otlp").is_some()).await;
    assert_eq!(
        m.metrics
            .applies
            .get_or_create(&telemetry_manager::metrics::KindLabels { kind: "DaemonSet".into() })
            .get(),
        2
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let repaired = sim.writes().len();
    sim.update("apps/v1", "DaemonSet", Some(NS), GW, |ds| {
        ds["metadata"]["labels"]["team"] = json!("observability");
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sim.writes().len(),
        repaired,
        "a harmless foreign label caused writes: {:#?}",
        &sim.writes()[repaired..]
    );
    m.stop.cancel();
}

/// Scenario: two pipelines; one is deleted, then the other.
/// Guarantees: a deleted pipeline leaves the snapshot at once; when none is left, the DaemonSet,
/// Services, ServiceAccount and RBAC are deleted, and the Secret (token, empty snapshot) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_pipelines() {
    let sim = cluster().await;
    sim.put(pipeline("a", inline("http://a:4317")));
    sim.put(pipeline("b", inline("http://b:4317")));
    let m = manager(&sim).await;
    configured(&sim, "b", "GatewayConfigured").await;
    eventually("both running", || m.snapshots.borrow().pipelines.len() == 2).await;
    sim.delete(TP, "TracePipeline", None, "a");
    eventually("a left the snapshot", || {
        m.snapshots.borrow().pipelines.iter().map(|p| p.name.as_str()).eq(["b"])
    })
    .await;
    assert!(sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_some());
    sim.delete(TP, "TracePipeline", None, "b");
    eventually("gateway removed", || sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_none()).await;
    eventually("everything removed", || {
        sim.get("v1", "Service", Some(NS), "telemetry-otlp").is_none()
            && sim.get("v1", "ServiceAccount", Some(NS), GW).is_none()
            && sim.get("rbac.authorization.k8s.io/v1", "ClusterRole", None, GW).is_none()
            && sim.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, GW).is_none()
    })
    .await;
    assert!(sim.get("v1", "Secret", Some(NS), GW).is_some());
    assert!(m.snapshots.borrow().pipelines.is_empty());
    m.stop.cancel();
}

/// Scenario: the API server fails every read of Secrets in one namespace, then recovers.
/// Guarantees: the pipeline that references a Secret there gets ValidationFailed (not a false
/// "missing"), another pipeline is unaffected, and the first heals once reads work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_give_validation_failed() {
    let sim = cluster().await;
    sim.put(secret("backend", &[("endpoint", "http://backend:4317")]));
    sim.inject(Fault {
        method: "GET".into(),
        path_prefix: "/api/v1/namespaces/default/secrets".into(),
        code: 500,
        times: None,
    });
    sim.put(pipeline("needs-secret", json!({"endpoint": from_secret("backend", "endpoint")})));
    sim.put(pipeline("inline", inline("http://other:4317")));
    let m = manager(&sim).await;
    configured(&sim, "needs-secret", "ValidationFailed").await;
    assert!(
        message(&sim, "needs-secret", "ConfigurationGenerated")
            .starts_with("Pipeline validation failed due to an error from the Kubernetes API server")
    );
    configured(&sim, "inline", "GatewayConfigured").await;
    sim.clear_faults();
    configured(&sim, "needs-secret", "GatewayConfigured").await;
    m.stop.cancel();
}

/// Scenario: gateways post their counters: deliveries only; then failures beside deliveries; then
/// only failures; then refusals to clients; then they fall silent. A report with a wrong token.
/// Guarantees: FlowHealthy, GatewaySomeTelemetryDataDropped, GatewayAllTelemetryDataDropped,
/// GatewayThrottling, and GatewayProbingFailed (Unknown), as Kyma's self-monitor would report; the
/// wrong token is refused with 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_health_from_gateway_counters() {
    let sim = cluster().await;
    sim.put(pipeline("p", inline("http://backend:4317")));
    let m = manager(&sim).await;
    configured(&sim, "p", "GatewayConfigured").await;
    let token = token(&sim);
    assert_eq!(post_report(&m, "wrong", &report("gw-a", "p", 1, 0, 0)).await, 401);
    let flow = |sim: &ApiSim| reason(sim, "p", "TelemetryFlowHealthy");
    // Gateway a's counters; gateway b only ever delivers until it stops.
    let (mut sent, mut failed, mut refused, mut b_sent) = (0u64, 0u64, 0u64, 0u64);
    let post = |sent: u64, failed: u64, refused: u64, b_sent: u64| {
        let (a, b) = (report("gw-a", "p", sent, failed, refused), report("gw-b", "p", b_sent, 0, 0));
        let m = &m;
        let token = token.clone();
        async move {
            assert_eq!(post_report(m, &token, &a).await, 204);
            assert_eq!(post_report(m, &token, &b).await, 204);
        }
    };
    sent += 100;
    b_sent += 100;
    post(sent, failed, refused, b_sent).await;
    eventually("FlowHealthy", || flow(&sim).as_deref() == Some("FlowHealthy")).await;
    failed += 5;
    b_sent += 100;
    post(sent, failed, refused, b_sent).await;
    eventually("SomeDropped", || flow(&sim).as_deref() == Some("GatewaySomeTelemetryDataDropped")).await;
    // Only failures from now on: once the last delivery leaves the window, all data is dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while flow(&sim).as_deref() != Some("GatewayAllTelemetryDataDropped") {
        assert!(Instant::now() < deadline, "never AllDropped: {:?}", conditions(&sim, "p"));
        failed += 5;
        post(sent, failed, refused, b_sent).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(conditions(&sim, "p")[2].1, "False");
    // Deliveries again and no failures, but clients are refused: once the failures age out, throttling.
    let deadline = Instant::now() + Duration::from_secs(10);
    while flow(&sim).as_deref() != Some("GatewayThrottling") {
        assert!(Instant::now() < deadline, "never Throttling: {:?}", conditions(&sim, "p"));
        sent += 50;
        refused += 7;
        post(sent, failed, refused, b_sent).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("ProbingFailed when gateways fall silent", || {
        flow(&sim).as_deref() == Some("GatewayProbingFailed")
    })
    .await;
    assert_eq!(conditions(&sim, "p")[2].1, "Unknown");
    m.stop.cancel();
}

/// Scenario: the manager restarts with nothing changed; then restarts after a pipeline changed.
/// Guarantees: the token survives (gateways keep their mounted copy); an unchanged configuration
/// keeps its version, so no gateway reloads; a changed one gets a higher version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_token_and_version() {
    let sim = cluster().await;
    sim.put(pipeline("p", inline("http://one:4317")));
    let first = manager(&sim).await;
    configured(&sim, "p", "GatewayConfigured").await;
    let (token1, version1) = (token(&sim), first.snapshots.borrow().version);
    first.stop.cancel();
    first.wait().await;
    let second = manager(&sim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(token(&sim), token1);
    assert_eq!(second.snapshots.borrow().version, version1);
    second.stop.cancel();
    second.wait().await;
    sim.update(TP, "TracePipeline", None, "p", |p| {
        p["spec"]["output"]["otlp"]["endpoint"]["value"] = json!("http://two:4317")
    });
    let third = manager(&sim).await;
    eventually("new version", || third.snapshots.borrow().version > version1).await;
    assert_eq!(third.snapshots.borrow().pipelines[0].output.url, "http://two:4317");
    assert_eq!(token(&sim), token1);
    third.stop.cancel();
}
