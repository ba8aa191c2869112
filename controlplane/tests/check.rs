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

/// Runs the manager with `args`; returns the exit code, stdout and stderr.
fn manager(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telemetry-manager")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// A TracePipeline document named `name`, or of another `kind`.
fn document(kind: &str, api_version: &str, name: &str) -> String {
    format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n  output:\n    otlp:\n      endpoint: {{value: 'http://127.0.0.1:4317'}}\n---\n"
    )
}

const V1BETA1: &str = "telemetry.kyma-project.io/v1beta1";

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

/// Scenario: `check` on a file with only a Secret, and on one whose pipeline's kind is misspelled
/// (`TracePipelin`) or whose API group is wrong.
/// Guarantees: each says there is no TracePipeline and what it found instead (naming the near miss)
/// and exits 1, where it used to print nothing and succeed.
#[test]
fn check_without_a_tracepipeline_fails_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {k: v}\n",
    )
    .unwrap();
    let (code, out, err) = manager(&["check", "--pipelines", secret.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("error: no TracePipeline in") && err.contains("found Secret (v1)"), "{err}");

    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, document("TracePipelin", V1BETA1, "p")).unwrap();
    let (code, out, err) = manager(&["check", "--pipelines", typo.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("kind 'TracePipelin'") && err.contains("did you mean kind: TracePipeline?"),
        "{err}"
    );
    assert!(err.contains("error: no TracePipeline in"), "{err}");

    let group = dir.path().join("group.yaml");
    std::fs::write(&group, document("TracePipeline", "telemetry.kyma.io/v1beta1", "p")).unwrap();
    let (code, _, err) = manager(&["check", "--pipelines", group.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the API group must be telemetry.kyma-project.io"), "{err}");
}

/// Scenario: three valid pipelines checked with `--max-pipelines 2` and `--unlimited-pipelines`
/// given after the subcommand (and before it), and `check --help`.
/// Guarantees: the options are accepted in either place and listed in `check --help`; the pipeline
/// over the limit keeps Kyma's condition message and a line under it names the limit; exit 1 over
/// the limit, 0 without one.
#[test]
fn check_takes_its_options_after_the_subcommand_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    let yaml: String = ["a", "b", "c"].iter().map(|n| document("TracePipeline", V1BETA1, n)).collect();
    std::fs::write(&file, yaml).unwrap();
    let path = file.to_str().unwrap();

    let (code, out, err) = manager(&["check", "--pipelines", path, "--max-pipelines", "2"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(
            "c\tConfigurationGenerated=False\tMaxPipelinesExceeded\tMaximum pipeline count limit exceeded\n"
        ),
        "Kyma's condition text changed: {out}"
    );
    assert!(out.contains("c\tlimit: at most 2 TracePipelines run, the oldest first"), "{out}");
    assert!(out.contains("a\tConfigurationGenerated=True") && out.contains("b\tConfigurationGenerated=True"));

    let (code, out, _) = manager(&["--max-pipelines", "2", "check", "--pipelines", path]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("at most 2 TracePipelines"), "{out}");
    let (code, out, err) =
        manager(&["check", "--pipelines", path, "--max-pipelines", "2", "--unlimited-pipelines"]);
    assert_eq!(code, Some(0), "{out}{err}");

    let (code, help, _) = manager(&["check", "--help"]);
    assert_eq!(code, Some(0));
    for option in ["--pipelines", "--max-pipelines", "--unlimited-pipelines"] {
        assert!(help.contains(option), "check --help does not list {option}: {help}");
    }
}

/// Whether `line` starts with an RFC 3339 UTC timestamp (`2026-12-07T13:21:20.513Z`, any precision).
fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && line[..line.find('Z').unwrap_or(0)].len() >= 19
}

/// Scenario: the manager in local mode on the example pipelines with stdout and stderr going to
/// files, then in cluster mode where no cluster can be configured.
/// Guarantees: every condition line and every log line starts with a timestamp; the address line
/// scripts read stays `serving snapshots on ADDR`; nothing carries colour codes.
#[test]
fn manager_output_has_timestamps_and_no_colour_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (dir.path().join("out"), dir.path().join("err"));
    let pipelines =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/local-pipelines.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .arg("--pipelines")
        .arg(&pipelines)
        .arg("--token-file")
        .arg(dir.path().join("token"))
        .args(["--snapshot-addr", "127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    while !(read(&stderr).contains("serving snapshots on ") && read(&stdout).lines().count() >= 6) {
        assert!(std::time::Instant::now() < deadline, "no output: {}{}", read(&stdout), read(&stderr));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (out, err) = (read(&stdout), read(&stderr));
    for line in out.lines() {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
    }
    assert!(out.contains("\tbackend-grpc\tConfigurationGenerated=True\tGatewayConfigured"), "{out}");
    assert!(err.lines().any(|l| l.starts_with("serving snapshots on 127.0.0.1:")), "{err}");

    let (code, out, err) = {
        let out = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
            .arg("--kubernetes")
            .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    assert_eq!(code, Some(64), "{out}{err}");
    let logged: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(logged.iter().any(|l| l.contains("cannot configure the Kubernetes client")), "{err}");
    for line in logged {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
    }
    assert!(!format!("{out}{err}{}", read(&stderr)).contains('\x1b'), "colour codes: {err:?}");
}
