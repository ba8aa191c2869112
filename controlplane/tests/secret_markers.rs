//! No value taken from a Secret shows in what the manager writes or says: marker strings planted in
//! Secret values (endpoints, header values, basic auth, TLS material, OAuth2 credentials and token
//! URL), in valid and in invalid forms, are looked for in `check`'s output, in local mode's condition
//! lines and logs, and in cluster mode's TracePipeline statuses, logs and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read as _, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apisim::ApiSim;
use base64::Engine as _;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig};

/// Every planted value contains this.
const MARKER: &str = "PLANTED";
const TP: &str = "telemetry.kyma-project.io/v1beta1";

/// One pipeline and the Secret it reads: its name, its `spec.output.otlp`, the Secret's values,
/// and the `ConfigurationGenerated` verdict users must see.
struct Case {
    name: &'static str,
    otlp: Value,
    secret: Vec<(&'static str, String)>,
    verdict: &'static str,
}

fn from(secret: &str, key: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"name": secret, "namespace": "default", "key": key}}})
}

fn endpoint_case(name: &'static str, protocol: &str, endpoint: String) -> Case {
    Case {
        name,
        otlp: json!({"protocol": protocol, "endpoint": from(name, "endpoint")}),
        secret: vec![("endpoint", endpoint)],
        verdict: "False\tEndpointInvalid",
    }
}

fn cases() -> Vec<Case> {
    let grpc_ok = || json!({"value": "backend.example:4317"});
    vec![
        endpoint_case("ep-space", "grpc", format!("{MARKER}-1 host:4317")),
        endpoint_case("ep-scheme", "grpc", format!("http//{MARKER}-2:4317")),
        endpoint_case("ep-port", "grpc", format!("{MARKER}-3.example")),
        endpoint_case("ep-crlf", "http", format!("http://{MARKER}-4:4318/a\r\nb")),
        endpoint_case("ep-path", "grpc", format!("https://{MARKER}-5:4317/v1")),
        Case {
            name: "hdr-crlf",
            otlp: json!({"endpoint": grpc_ok(), "headers": [{"name": "X-Api-Key", "prefix": "Bearer", "valueFrom": from("hdr-crlf", "token")["valueFrom"]}]}),
            secret: vec![("token", format!("{MARKER}-h1\r\nX-Injected: 1"))],
            verdict: "False\tHeaderInvalid\tHeader 'X-Api-Key' invalid: the value of Key 'token' in Secret 'hdr-crlf'",
        },
        Case {
            name: "hdr-nul",
            otlp: json!({"endpoint": grpc_ok(), "headers": [{"name": "X-Tenant", "valueFrom": from("hdr-nul", "tenant")["valueFrom"]}]}),
            secret: vec![("tenant", format!("{MARKER}-h2\0"))],
            verdict: "False\tHeaderInvalid\tHeader 'X-Tenant' invalid",
        },
        Case {
            name: "basic",
            otlp: json!({"endpoint": grpc_ok(), "authentication": {"basic": {"user": from("basic", "user"), "password": from("basic", "password")}}}),
            secret: vec![("user", format!("{MARKER}-u\r\n")), ("password", format!("{MARKER}-p"))],
            verdict: "True\tGatewayConfigured",
        },
        Case {
            name: "tls",
            otlp: json!({"endpoint": grpc_ok(), "tls": {"ca": from("tls", "ca"), "cert": from("tls", "cert"), "key": from("tls", "key")}}),
            secret: vec![
                ("ca", format!("-----BEGIN CERTIFICATE-----\n{MARKER}-ca\n-----END CERTIFICATE-----\n")),
                ("cert", format!("{MARKER}-cert")),
                ("key", format!("-----BEGIN PRIVATE KEY-----\n{MARKER}-key\n-----END PRIVATE KEY-----\n")),
            ],
            verdict: "False\tTLSConfigurationInvalid",
        },
        Case {
            name: "oauth-url",
            otlp: json!({"endpoint": grpc_ok(), "authentication": {"oauth2": {
                "tokenURL": from("oauth-url", "url"), "clientID": from("oauth-url", "id"), "clientSecret": from("oauth-url", "secret")}}}),
            secret: vec![
                ("url", format!("{MARKER}-url")),
                ("id", format!("{MARKER}-id")),
                ("secret", format!("{MARKER}-s")),
            ],
            verdict: "False\tEndpointInvalid\tOAuth2 token URL invalid: the value of Key 'url' in Secret 'oauth-url'",
        },
        Case {
            name: "oauth-ok",
            otlp: json!({"endpoint": grpc_ok(), "authentication": {"oauth2": {
                "tokenURL": {"value": "https://auth.example/token"}, "clientID": from("oauth-ok", "id"), "clientSecret": from("oauth-ok", "secret")}}}),
            secret: vec![("id", format!("{MARKER}-id2\n")), ("secret", format!("{MARKER}-s2\r\n"))],
            verdict: "True\tGatewayConfigured",
        },
    ]
}

fn pipeline(c: &Case) -> Value {
    json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": c.name}, "spec": {"output": {"otlp": c.otlp}}})
}

fn secret(c: &Case) -> Value {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let data: serde_json::Map<String, Value> =
        c.secret.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": c.name, "namespace": "default"}, "data": data})
}

/// The cases as one YAML file, plus a Secret whose data is not base64 (only a file can hold that;
/// the API server refuses it).
fn yaml_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut docs: Vec<Value> = Vec::new();
    for c in cases() {
        docs.push(pipeline(&c));
        docs.push(secret(&c));
    }
    docs.push(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "b64"},
        "spec": {"output": {"otlp": {"endpoint": from("b64", "endpoint")}}}}));
    docs.push(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b64", "namespace": "default"},
        "data": {"endpoint": format!("{MARKER}!!not-base64")}}),
    );
    let text: String =
        docs.iter().map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap())).collect();
    let path = dir.join("pipelines.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_verdicts(text: &str, with_b64: bool) {
    for c in cases() {
        let expected = format!("{}\tConfigurationGenerated={}", c.name, c.verdict);
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    if with_b64 {
        let expected = "b64\tConfigurationGenerated=False\tReferencedSecretMissing\tKey 'endpoint' in Secret 'b64' of Namespace 'default' is not valid base64";
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

fn assert_no_marker(what: &str, text: &str) {
    if let Some(at) = text.find(MARKER) {
        let from = at.saturating_sub(200);
        panic!("a Secret value shows in {what}: …{}…", &text[from..(at + 100).min(text.len())]);
    }
}

/// Scenario: `telemetry-manager check` on pipelines whose Secrets hold the planted values.
/// Guarantees: each pipeline gets the verdict users must see (the invalid header as `HeaderInvalid`,
/// named by header and key; endpoints and token URL as `EndpointInvalid`; TLS as
/// `TLSConfigurationInvalid`; basic auth and OAuth2 credentials with line breaks run), and no
/// planted value appears on stdout or stderr.
#[test]
fn check_never_prints_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["check", "--unlimited-pipelines", "--pipelines"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_verdicts(&text, true);
    assert_no_marker("check's output", &text);
}

/// Scenario: the `telemetry-manager` binary in local mode at debug level on the same files; a
/// gateway follows the snapshot stream (which does carry the values, to the gateway); then SIGTERM.
/// Guarantees: the condition lines show the verdicts, and neither they nor any log line show a
/// planted value.
#[test]
fn local_mode_never_prints_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(dir.path());
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args([
            "--unlimited-pipelines",
            "--snapshot-addr",
            "127.0.0.1:0",
            "--log-level",
            "debug",
            "--pipelines",
        ])
        .arg(&path)
        .arg("--token-file")
        .arg(dir.path().join("token"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Arc::new(Mutex::new(String::new()));
    let collected = Arc::clone(&stdout);
    let mut pipe = BufReader::new(child.stdout.take().unwrap());
    let out_thread = std::thread::spawn(move || {
        let mut line = String::new();
        while pipe.read_line(&mut line).unwrap_or(0) > 0 {
            collected.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let mut err_pipe = BufReader::new(child.stderr.take().unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let err_thread = std::thread::spawn(move || {
        let mut all = String::new();
        let mut line = String::new();
        while err_pipe.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("serving snapshots on ") {
                let _ = addr_tx.send(addr.parse::<std::net::SocketAddr>().unwrap());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(20)).expect("the manager announced its address");
    // Every pipeline's first condition line, within 20 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cases()
        .iter()
        .all(|c| stdout.lock().unwrap().contains(&format!("{}\tConfigurationGenerated", c.name)))
    {
        assert!(std::time::Instant::now() < deadline, "{}", stdout.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A gateway follows the stream (the one place the values go) and then leaves.
    let mut gateway = std::net::TcpStream::connect(addr).unwrap();
    gateway.write_all(b"GET /v1/snapshots HTTP/1.1\r\nhost: m\r\nauthorization: Bearer t\r\n\r\n").unwrap();
    gateway.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = vec![0u8; 64 * 1024];
    let n = gateway.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    drop(gateway);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the child's pid, which this test owns.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    out_thread.join().unwrap();
    let err = err_thread.join().unwrap();
    let out = stdout.lock().unwrap().clone();
    assert_verdicts(&out, true);
    assert_no_marker("local mode's condition lines", &out);
    assert_no_marker("local mode's log", &err);
    assert!(err.contains("DEBUG") || err.contains("INFO"), "no log captured: {err}");
}

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Scenario: the in-cluster manager (against the simulated API server) with the same pipelines and
/// Secrets, its log captured at debug level.
/// Guarantees: the TracePipelines' status conditions carry the verdicts; no planted value appears in
/// any status, in the manager's log, or in its `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_never_writes_secret_values() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .finish(),
    )
    .unwrap();
    let sim = ApiSim::start().await.unwrap();
    sim.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "u"}}),
    );
    for c in cases() {
        sim.put(secret(&c));
        sim.put(pipeline(&c));
    }
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        max_pipelines: None,
        tls: false,
        ..ClusterConfig::default()
    };
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let m = cluster::start(client, config).await.unwrap();
    let statuses = || -> String {
        cases()
            .iter()
            .filter_map(|c| sim.get(TP, "TracePipeline", None, c.name))
            .flat_map(|p| {
                p.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |c| (p["metadata"]["name"].clone(), c))
            })
            .map(|(name, c)| {
                format!(
                    "{}\t{}={}\t{}\t{}\n",
                    name.as_str().unwrap_or_default(),
                    c["type"].as_str().unwrap_or_default(),
                    c["status"].as_str().unwrap_or_default(),
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cases().iter().all(|c| statuses().contains(&format!("{}\tConfigurationGenerated", c.name))) {
        assert!(tokio::time::Instant::now() < deadline, "{}", statuses());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = statuses();
    assert_verdicts(&text, false);
    let everything: String = cases()
        .iter()
        .filter_map(|c| sim.get(TP, "TracePipeline", None, c.name))
        .map(|p| p["status"].to_string())
        .collect();
    assert_no_marker("the TracePipeline statuses", &everything);

    let mut admin = tokio::net::TcpStream::connect(m.admin_addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut admin,
        b"GET /metrics HTTP/1.1\r\nhost: m\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut metrics = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_string(&mut admin, &mut metrics),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(metrics.contains("telemetry_manager_pipelines"), "{metrics}");
    assert_no_marker("the manager's metrics", &metrics);
    m.stop.cancel();
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("pipeline status"), "{log}");
    assert_no_marker("the manager's log", &log);
}
