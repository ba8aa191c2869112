//! The `Telemetry` resource without a cluster: in the `--pipelines` files of `telemetry-manager check`
//! and of local mode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use telemetry_manager::local::{self, LocalConfig};
use tracegw_contract::{PodLabelRule, ServiceMode};

const VALID: &str = "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: good}\nspec: {output: {otlp: {endpoint: {value: 'http://127.0.0.1:4317'}}}}\n---\n";
const NO_SECRET: &str = "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: needs-secret}\nspec: {output: {otlp: {endpoint: {valueFrom: {secretKeyRef: {name: s, namespace: n, key: k}}}}}}\n---\n";

fn telemetry_doc(spec: &str, annotation: &str) -> String {
    format!(
        "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata:\n  name: default\n  annotations: {{telemetry.kyma-project.io/service-enrichment: {annotation}}}\nspec: {spec}\n---\n"
    )
}

/// Runs `telemetry-manager check` on `text`; returns the exit code, stdout and stderr.
fn check(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["check", "--pipelines", path.to_str().unwrap()])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Scenario: `check` on files holding Kyma's default Telemetry beside a valid pipeline and one whose
/// Secret is missing; beside the valid one only; without a Telemetry; with a Telemetry that does not
/// read.
/// Guarantees: after the pipelines' lines it prints the module's state and TraceComponentsHealthy
/// with Kyma's reason and message (Warning with the missing Secret copied, Ready with
/// ComponentsRunning); nothing without a Telemetry; a broken Telemetry is named with its field and
/// fails the check.
#[test]
fn check_prints_the_module_status() {
    let (code, out, err) = check(&format!("{VALID}{NO_SECRET}{}", telemetry_doc("{}", "otel")));
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("good\tConfigurationGenerated=True"), "{out}");
    assert!(lines[1].starts_with("needs-secret\tConfigurationGenerated=False"), "{out}");
    assert_eq!(lines[2], "Telemetry default\tstate=Warning");
    assert_eq!(
        lines[3],
        "Telemetry default\tTraceComponentsHealthy=False\tReferencedSecretMissing\tOne or more referenced Secrets are missing: Secret 's' of Namespace 'n'"
    );

    let (code, out, _) = check(&format!("{VALID}{}", telemetry_doc("{}", "otel")));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.ends_with(
        "Telemetry default\tstate=Ready\nTelemetry default\tTraceComponentsHealthy=True\tComponentsRunning\tAll trace components are running\n"
    ), "{out}");

    let (code, out, _) = check(VALID);
    assert_eq!(code, Some(0));
    assert!(!out.contains("Telemetry"), "{out}");

    let (code, out, err) =
        check(&format!("{VALID}{}", telemetry_doc("{enrichments: {extractPodLabel: []}}", "otel")));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("Telemetry default is not valid at spec.enrichments.extractPodLabel"), "{err}");
}

/// Scenario: local mode on a file with a pipeline and the default Telemetry (labels by key and by
/// prefix, a cluster name, `otel`); the Telemetry's annotation is edited; then the Telemetry is removed.
/// Guarantees: the served snapshot carries the Telemetry's settings (and no cluster facts, which the
/// gateway's pod files give); the edit reaches the snapshot; without the Telemetry the snapshot leaves
/// enrichment to the gateway's flags again; the module's status is reported like the pipelines'
/// conditions (here: no gateway follows yet, copied from GatewayHealthy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_serves_the_telemetry_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipelines.yaml");
    let spec = "{enrichments: {extractPodLabels: [{key: team}, {keyPrefix: app.kubernetes.io/}], cluster: {name: local-cluster}}}";
    std::fs::write(&path, format!("{VALID}{}", telemetry_doc(spec, "otel"))).unwrap();
    let reports = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&reports);
    let manager = local::start(
        LocalConfig::new(path.clone(), "127.0.0.1:0".parse().unwrap(), dir.path().join("token")),
        move |line| sink.lock().unwrap().push(line),
    )
    .await
    .unwrap();
    let enrichment = || manager.snapshots.borrow().enrichment.clone();
    let e = enrichment().expect("the Telemetry's settings");
    assert_eq!(e.service_mode, ServiceMode::Otel);
    assert_eq!(
        e.pod_labels,
        vec![PodLabelRule::Key("team".into()), PodLabelRule::KeyPrefix("app.kubernetes.io/".into())]
    );
    assert_eq!(e.cluster_name.as_deref(), Some("local-cluster"));
    assert_eq!((e.cluster_uid, e.cloud_provider), (None, None));
    assert!(
        reports.lock().unwrap().iter().any(|l| l
            == "Telemetry default\tTraceComponentsHealthy=False\tGatewayNotReady\tNo gateway follows the snapshot stream"),
        "{:?}",
        reports.lock().unwrap()
    );

    let wait = |what: &'static str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ok = loop {
            if check() {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(ok, "timed out waiting for {what}");
    };
    std::fs::write(&path, format!("{VALID}{}", telemetry_doc(spec, "kyma-legacy"))).unwrap();
    wait("kyma-legacy", &|| enrichment().is_some_and(|e| e.service_mode == ServiceMode::KymaLegacy));
    std::fs::write(&path, VALID).unwrap();
    wait("no Telemetry", &|| enrichment().is_none());
    manager.stop.cancel();
}
