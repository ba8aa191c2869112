//! Kyma's `Telemetry` resource against the in-cluster reconciler, run for real (kube-rs client,
//! watches, server-side apply, status subresource) against the Kubernetes API server **simulated**
//! over HTTP on 127.0.0.1 (`apisim`, which keeps finalizers as the API server does). The tests are
//! the counterparts of Kyma's TestTelemetry, TestTelemetryWarning, TestTelemetryDeletionBlocking,
//! TestOverrides, and of the settings half of TestExtractLabels and TestServiceEnrichment (the data
//! half runs the real gateway in `dataplane/tests/cluster_e2e.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use apisim::ApiSim;
use base64::Engine as _;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig, ClusterManager, EnrichmentFlags};
use telemetry_manager::flow::FlowSettings;
use tracegw_contract::{PodLabelRule, ServiceMode};

const NS: &str = "kyma-system";
const TP: &str = "telemetry.kyma-project.io/v1beta1";
const OP: &str = "operator.kyma-project.io/v1beta1";
const GW: &str = "telemetry-otlp-gateway";
const FINALIZER: &str = "telemetry.kyma-project.io/finalizer";

fn config() -> ClusterConfig {
    ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        flow: FlowSettings {
            window: Duration::from_secs(3),
            stale_after: Duration::from_secs(2),
            evaluate_every: Duration::from_millis(200),
        },
        tls: false,
        ..ClusterConfig::default()
    }
}

async fn manager_with(sim: &ApiSim, config: ClusterConfig) -> ClusterManager {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    cluster::start(client, config).await.unwrap()
}

async fn cluster() -> ApiSim {
    let sim = ApiSim::start().await.unwrap();
    sim.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "cluster-uid-1"}}));
    sim
}

/// Kyma's default CR, as its releases apply it into kyma-system.
fn default_telemetry() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kyma-telemetry/default-cr.yaml");
    let mut cr: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cr["metadata"]["namespace"] = json!(NS);
    cr
}

fn pipeline(name: &str, endpoint: Value) -> Value {
    json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": name},
        "spec": {"output": {"otlp": {"endpoint": endpoint}}}})
}

fn from_secret(name: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"name": name, "namespace": "default", "key": "endpoint"}}})
}

fn secret(name: &str, endpoint: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
        "data": {"endpoint": base64::engine::general_purpose::STANDARD.encode(endpoint)}})
}

fn telemetry(sim: &ApiSim) -> Option<Value> {
    sim.get(OP, "Telemetry", Some(NS), "default")
}

fn state(sim: &ApiSim) -> String {
    telemetry(sim).and_then(|t| t["status"]["state"].as_str().map(str::to_string)).unwrap_or_default()
}

/// `(status, reason, message)` of one condition of the Telemetry.
fn condition(sim: &ApiSim, type_: &str) -> (String, String, String) {
    let t = telemetry(sim).unwrap_or_default();
    let c = t["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or_default();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

fn pipeline_reason(sim: &ApiSim, name: &str, type_: &str) -> Option<String> {
    let p = sim.get(TP, "TracePipeline", None, name)?;
    p["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?["reason"]
        .as_str()
        .map(str::to_string)
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

/// Asserts `check` holds for the whole of `period`.
async fn consistently(what: &str, period: Duration, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        assert!(check(), "no longer true: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn telemetry_writes(sim: &ApiSim) -> Vec<apisim::Recorded> {
    sim.writes().into_iter().filter(|w| w.path.contains("/telemetries/")).collect()
}

/// Scenario (TestTelemetryWarning, then TestTelemetry): Kyma's default CR and a TracePipeline whose
/// endpoint Secret does not exist; then the Secret is created; then nothing changes for a while.
/// Guarantees: the manager adds its finalizer; the module is `Warning` with TraceComponentsHealthy
/// False/ReferencedSecretMissing copied from the pipeline, the log and metric conditions say no
/// pipeline is deployed, and no endpoint is listed while no gateway Service exists. Once the
/// pipeline runs the module is `Ready` (ComponentsRunning) and lists the `otlp` and `traces`
/// endpoints. Status is written by server-side apply on the status subresource under the manager's
/// field manager, with observedGeneration, and a steady module sees no writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_then_ready_with_endpoints() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1", from_secret("backend")));
    let m = manager_with(&sim, config()).await;
    eventually("Warning", || state(&sim) == "Warning").await;
    let t = telemetry(&sim).unwrap();
    assert_eq!(t["metadata"]["finalizers"], json!([FINALIZER]));
    let (status, reason, message) = condition(&sim, "TraceComponentsHealthy");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ReferencedSecretMissing"));
    assert_eq!(
        message,
        "One or more referenced Secrets are missing: Secret 'backend' of Namespace 'default'"
    );
    for type_ in ["LogComponentsHealthy", "MetricComponentsHealthy"] {
        assert_eq!(
            condition(&sim, type_),
            ("True".into(), "NoPipelineDeployed".into(), "No pipelines have been deployed".into())
        );
    }
    assert_eq!(t["status"]["endpoints"], json!({}), "no gateway Service exists yet");
    let conditions = t["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().all(|c| c["observedGeneration"] == t["metadata"]["generation"]
        && c["lastTransitionTime"].as_str().is_some_and(|s| !s.is_empty())));

    sim.put(secret("backend", "http://backend.default:4317"));
    eventually("Ready", || state(&sim) == "Ready").await;
    assert_eq!(
        condition(&sim, "TraceComponentsHealthy"),
        ("True".into(), "ComponentsRunning".into(), "All trace components are running".into())
    );
    eventually("both endpoints", || {
        telemetry(&sim).unwrap()["status"]["endpoints"]
            == json!({
                "otlp": {"grpc": "http://telemetry-otlp.kyma-system:4317", "http": "http://telemetry-otlp.kyma-system:4318"},
                "traces": {"grpc": "http://telemetry-otlp-traces.kyma-system:4317", "http": "http://telemetry-otlp-traces.kyma-system:4318"},
            })
    })
    .await;
    let status_writes: Vec<_> =
        telemetry_writes(&sim).into_iter().filter(|w| w.path.ends_with("/status")).collect();
    assert!(!status_writes.is_empty());
    assert!(
        status_writes.iter().all(|w| w.method == "PATCH"
            && w.content_type == "application/apply-patch+yaml"
            && w.query.contains("fieldManager=telemetry-manager")
            && w.path == "/apis/operator.kyma-project.io/v1beta1/namespaces/kyma-system/telemetries/default/status"),
        "{status_writes:#?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let steady = telemetry_writes(&sim).len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(telemetry_writes(&sim).len(), steady, "writes to a steady Telemetry");
    m.stop.cancel();
}

/// Scenario (TestTelemetryDeletionBlocking): the default CR and a running TracePipeline; the CR is
/// deleted; later the pipeline is deleted.
/// Guarantees: while the pipeline exists the CR stays with exactly the manager's finalizer, in state
/// `Warning`, with exactly three conditions: TraceComponentsHealthy False/ResourceBlocksDeletion with
/// Kyma's message naming the pipeline, log and metric NoPipelineDeployed; the gateway keeps running.
/// Once the pipeline is gone the CR is gone, and so are the gateway's objects, its Secret included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_the_pipelines() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1", json!({"value": "http://backend:4317"})));
    let m = manager_with(&sim, config()).await;
    eventually("finalizer and gateway", || {
        telemetry(&sim).is_some_and(|t| t["metadata"]["finalizers"] == json!([FINALIZER]))
            && sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_some()
            && state(&sim) == "Ready"
    })
    .await;
    sim.delete(OP, "Telemetry", Some(NS), "default");
    eventually("ResourceBlocksDeletion", || {
        condition(&sim, "TraceComponentsHealthy").1 == "ResourceBlocksDeletion"
    })
    .await;
    let t = telemetry(&sim).expect("the finalizer holds the Telemetry");
    assert!(t["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(t["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(t["status"]["state"], "Warning");
    let conditions = t["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 3);
    assert_eq!(
        condition(&sim, "TraceComponentsHealthy"),
        (
            "False".into(),
            "ResourceBlocksDeletion".into(),
            "The deletion of the module is blocked. To unblock the deletion, delete the following resources: TracePipelines (p1)".into()
        )
    );
    for type_ in ["LogComponentsHealthy", "MetricComponentsHealthy"] {
        assert_eq!(condition(&sim, type_).1, "NoPipelineDeployed");
    }
    assert!(conditions.iter().all(|c| c["lastTransitionTime"].as_str().is_some_and(|s| !s.is_empty())));
    consistently("the gateway keeps running", Duration::from_millis(600), || {
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_some() && telemetry(&sim).is_some()
    })
    .await;

    sim.delete(TP, "TracePipeline", None, "p1");
    eventually("the Telemetry is gone", || telemetry(&sim).is_none()).await;
    eventually("the gateway's objects are gone", || {
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_none()
            && sim.get("v1", "Service", Some(NS), "telemetry-otlp").is_none()
            && sim.get("v1", "Service", Some(NS), "telemetry-otlp-traces").is_none()
            && sim.get("v1", "ServiceAccount", Some(NS), GW).is_none()
            && sim.get("rbac.authorization.k8s.io/v1", "ClusterRole", None, GW).is_none()
            && sim.get("v1", "Secret", Some(NS), GW).is_none()
    })
    .await;
    consistently("nothing comes back", Duration::from_millis(600), || {
        sim.get("v1", "Secret", Some(NS), GW).is_none() && telemetry(&sim).is_none()
    })
    .await;
    m.stop.cancel();
}

/// Scenario (the settings half of TestExtractLabels, TestServiceEnrichment and TestCustomClusterName):
/// a manager with enrichment flags and a running pipeline; Telemetry objects that do not count (named
/// `custom`, or `default` in another namespace); then the default CR with pod labels by key and by
/// prefix, a cluster name, `otel` and deprecated gateway settings; then edits of the annotation.
/// Guarantees: the flags hold until the default CR exists; then its settings replace them entirely
/// and each change reaches the served snapshot within a second; a missing or unknown annotation means
/// kyma-legacy; deprecated fields are accepted and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telemetry_replaces_the_flags() {
    let sim = cluster().await;
    sim.put(pipeline("p1", json!({"value": "http://backend:4317"})));
    let flags = EnrichmentFlags {
        service_mode: ServiceMode::Otel,
        pod_labels: vec![PodLabelRule::Key("from-flag".into())],
        cluster_name: Some("flag-cluster".into()),
    };
    let m = manager_with(&sim, ClusterConfig { enrichment: flags, ..config() }).await;
    let enrichment = || m.snapshots.borrow().enrichment.clone().unwrap_or_default();
    eventually("the flags in the snapshot", || enrichment().cluster_name.as_deref() == Some("flag-cluster"))
        .await;
    let mut custom = default_telemetry();
    custom["metadata"]["name"] = json!("custom");
    custom["spec"] = json!({"enrichments": {"cluster": {"name": "custom-cluster"}}});
    sim.put(custom);
    let mut elsewhere = default_telemetry();
    elsewhere["metadata"]["namespace"] = json!("default");
    elsewhere["spec"] = json!({"enrichments": {"cluster": {"name": "elsewhere"}}});
    sim.put(elsewhere);
    consistently("the flags hold", Duration::from_millis(600), || {
        let e = enrichment();
        e.cluster_name.as_deref() == Some("flag-cluster") && e.service_mode == ServiceMode::Otel
    })
    .await;

    let mut cr = default_telemetry();
    cr["spec"] = json!({
        "enrichments": {"extractPodLabels": [{"key": "team.exact.should.match"}, {"keyPrefix": "team.prefix"}],
                        "cluster": {"name": "prod-eu"}},
        "trace": {"gateway": {"scaling": {"type": "Static", "static": {"replicas": 3}}}},
    });
    let applied = Instant::now();
    sim.put(cr);
    eventually("the Telemetry's settings", || enrichment().cluster_name.as_deref() == Some("prod-eu")).await;
    assert!(applied.elapsed() < Duration::from_secs(1), "took {:?}", applied.elapsed());
    let e = enrichment();
    assert_eq!(
        e.pod_labels,
        vec![
            PodLabelRule::Key("team.exact.should.match".into()),
            PodLabelRule::KeyPrefix("team.prefix".into())
        ]
    );
    assert_eq!(e.service_mode, ServiceMode::Otel);
    assert_eq!(e.cluster_uid.as_deref(), Some("cluster-uid-1"), "cluster facts still come from the cluster");
    assert!(sim.get("apps/v1", "DaemonSet", Some(NS), GW).is_some());

    for (annotation, mode) in [
        (Some("kyma-legacy"), ServiceMode::KymaLegacy),
        (Some("otel"), ServiceMode::Otel),
        (Some("fancy"), ServiceMode::KymaLegacy),
        (Some("otel"), ServiceMode::Otel),
        (None, ServiceMode::KymaLegacy),
    ] {
        let edited = Instant::now();
        sim.update(OP, "Telemetry", Some(NS), "default", |t| match annotation {
            Some(a) => {
                t["metadata"]["annotations"]["telemetry.kyma-project.io/service-enrichment"] = json!(a)
            }
            None => t["metadata"]["annotations"] = json!({}),
        });
        eventually(&format!("{annotation:?} gives {mode:?}"), || enrichment().service_mode == mode).await;
        assert!(edited.elapsed() < Duration::from_secs(1), "took {:?}", edited.elapsed());
    }
    assert_eq!(enrichment().pod_labels.len(), 2, "the annotation changed nothing else");
    m.stop.cancel();
}

/// Scenario (TestOverrides): a running pipeline and the default CR, all reconciled; then the overrides
/// ConfigMap pauses the OTLP gateway and the Telemetry reconciliation while someone edits the
/// DaemonSet and deletes the OTLP Service; then it pauses tracing too and a pipeline is created; then
/// the ConfigMap is deleted.
/// Guarantees: while paused nothing is repaired (the edit and the deletion stay), the Telemetry's
/// status is not rewritten (it still lists the deleted Service's endpoint), and with tracing paused a
/// new pipeline gets no status; once the ConfigMap is gone everything is reconciled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_pause_reconciliation() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1", json!({"value": "http://backend:4317"})));
    let m = manager_with(&sim, config()).await;
    eventually("Ready with endpoints", || {
        state(&sim) == "Ready" && telemetry(&sim).unwrap()["status"]["endpoints"]["otlp"].is_object()
    })
    .await;
    let image = |sim: &ApiSim| {
        sim.get("apps/v1", "DaemonSet", Some(NS), GW).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone()
    };
    let original = image(&sim);
    let overrides = |text: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "telemetry-overrides", "namespace": NS},
            "data": {"overrides": text}})
    };
    sim.put(overrides(
        "global:\n  logLevel: debug\notlpGateway:\n  paused: true\ntelemetry:\n  paused: true\n",
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    sim.update("apps/v1", "DaemonSet", Some(NS), GW, |ds| {
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:latest");
    });
    sim.delete("v1", "Service", Some(NS), "telemetry-otlp");
    consistently("nothing is repaired while paused", Duration::from_millis(1200), || {
        image(&sim) == json!("evil:latest")
            && sim.get("v1", "Service", Some(NS), "telemetry-otlp").is_none()
            && telemetry(&sim).unwrap()["status"]["endpoints"]["otlp"].is_object()
    })
    .await;

    sim.put(overrides(
        "tracing:\n  paused: true\notlpGateway:\n  paused: true\ntelemetry:\n  paused: true\n",
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    sim.put(pipeline("p2", json!({"value": "http://other:4317"})));
    consistently("a new pipeline is not reconciled", Duration::from_millis(1000), || {
        pipeline_reason(&sim, "p2", "ConfigurationGenerated").is_none()
            && m.snapshots.borrow().pipelines.iter().all(|p| p.name != "p2")
    })
    .await;

    sim.delete("v1", "ConfigMap", Some(NS), "telemetry-overrides");
    eventually("everything reconciled again", || {
        image(&sim) == original
            && sim.get("v1", "Service", Some(NS), "telemetry-otlp").is_some()
            && pipeline_reason(&sim, "p2", "ConfigurationGenerated").as_deref() == Some("GatewayConfigured")
            && m.snapshots.borrow().pipelines.len() == 2
    })
    .await;
    eventually("the Telemetry's status follows", || {
        telemetry(&sim).unwrap()["status"]["endpoints"]["otlp"].is_object() && state(&sim) == "Ready"
    })
    .await;
    m.stop.cancel();
}

/// The manager's `/metrics` text.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: manager\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut body)).await.unwrap().unwrap();
    body
}

/// `telemetry_service_attributes_enrichment_strategy{strategy=...}` from a scrape.
fn strategy_gauge(metrics: &str, strategy: &str) -> Option<i64> {
    let prefix = format!("telemetry_service_attributes_enrichment_strategy{{strategy=\"{strategy}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok())
}

/// Scenario: a manager started with the kyma-legacy flag and no Telemetry; then Kyma's default CR
/// (annotation `otel`) is applied; then its annotation is removed.
/// Guarantees: `/metrics` exports Kyma's gauge `telemetry_service_attributes_enrichment_strategy`
/// with 1 for the strategy in force and 0 for the other, following each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_service_enrichment_strategy() {
    let sim = cluster().await;
    let m = manager_with(&sim, config()).await;
    let mut metrics = String::new();
    for (step, (otel, legacy)) in [(0, 1), (1, 0), (0, 1)].into_iter().enumerate() {
        match step {
            1 => {
                sim.put(default_telemetry());
            }
            2 => {
                sim.update(OP, "Telemetry", Some(NS), "default", |t| {
                    t["metadata"]["annotations"] = json!({})
                });
            }
            _ => {}
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            metrics = scrape(m.admin_addr).await;
            if strategy_gauge(&metrics, "otel") == Some(otel)
                && strategy_gauge(&metrics, "kyma-legacy") == Some(legacy)
            {
                break;
            }
            assert!(Instant::now() < deadline, "step {step}: {metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(metrics.contains("# TYPE telemetry_service_attributes_enrichment_strategy gauge"), "{metrics}");
    m.stop.cancel();
}

/// Lines the child writes to stderr, collected as they come.
fn collect_lines(stderr: std::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead as _;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Scenario (TestOverrides, log step): the real `telemetry-manager` binary in cluster mode
/// (`--kubernetes`, `--log-level info`) against the simulated API server, with the default CR and a
/// pipeline; then the overrides ConfigMap sets `global.logLevel: debug`; then it is deleted; then a
/// pipeline change prompts more passes; then SIGTERM.
/// Guarantees: the manager's log has INFO lines and no DEBUG line before the override, DEBUG lines
/// after it, and none again once the ConfigMap is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overrides_set_the_binarys_log_level() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1", json!({"value": "http://backend:4317"})));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["--kubernetes", "--namespace", NS, "--log-level", "info", "--snapshot-plaintext"])
        .args([
            "--snapshot-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--webhook-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(child.stderr.take().unwrap());
    let count = |level: &str, from: usize| {
        lines.lock().unwrap().iter().skip(from).filter(|l| l.contains(&format!(" {level} "))).count()
    };
    let len = || lines.lock().unwrap().len();
    eventually("the manager reconciles", || {
        sim.get(OP, "Telemetry", Some(NS), "default").is_some_and(|t| t["status"]["state"] == "Ready")
    })
    .await;
    assert!(count("INFO", 0) > 0, "{:#?}", lines.lock().unwrap());
    assert_eq!(count("DEBUG", 0), 0, "{:#?}", lines.lock().unwrap());

    let overrides = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "telemetry-overrides", "namespace": NS},
        "data": {"overrides": "global:\n  logLevel: debug\n"}});
    sim.put(overrides);
    eventually("DEBUG lines", || count("DEBUG", 0) > 0).await;

    sim.delete("v1", "ConfigMap", Some(NS), "telemetry-overrides");
    eventually("the starting level again", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("log level set by the overrides") && l.contains("filter=info"))
    })
    .await;
    // Events that passed the old filter just before the switch may still be written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let from = len();
    sim.put(pipeline("p2", json!({"value": "http://other:4317"})));
    eventually("p2 reconciled", || pipeline_reason(&sim, "p2", "ConfigurationGenerated").is_some()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(len() > from, "the manager logged nothing about p2");
    assert_eq!(count("DEBUG", from), 0, "{:#?}", &lines.lock().unwrap()[from..]);

    // SAFETY: kill(2) on the child's pid, which this test owns.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let stopping = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(stopping.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
