#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .arg("check")
        .arg("--pipelines")
        .arg(path)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

/// Scenario: the example pipelines shipped in deploy/examples.
/// Guarantees: every pipeline gets ConfigurationGenerated=True with Kyma's reason; exit status 0.
#[test]
fn shipped_examples_are_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/local-pipelines.yaml");
    let (ok, out) = check(&path);
    assert!(ok, "{out}");
    assert!(out.contains("backend-grpc\tConfigurationGenerated=True\tGatewayConfigured"), "{out}");
    assert!(out.contains("backend-http\tConfigurationGenerated=True\tGatewayConfigured"), "{out}");
}

/// Scenario: a directory with a pipeline whose Secret is missing.
/// Guarantees: it is reported False with ReferencedSecretMissing and Kyma's message; exit status 1.
#[test]
fn missing_secret_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: p}\nspec:\n  output:\n    otlp:\n      endpoint: {valueFrom: {secretKeyRef: {name: s, namespace: n, key: k}}}\n",
    )
    .unwrap();
    let (ok, out) = check(dir.path());
    assert!(!ok);
    assert!(
        out.contains("p\tConfigurationGenerated=False\tReferencedSecretMissing\tOne or more referenced Secrets are missing: Secret 's' of Namespace 'n'"),
        "{out}"
    );
}
