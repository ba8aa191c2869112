//! Harness for end-to-end tests: runs the real `otlp-gateway` binary as a child process and the load
//! test's verifying sink in-process, on 127.0.0.1, talking over real sockets; kills what it started
//! when a test ends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use clap::Parser;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {timeout:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Cargo builds this package's binary for its integration tests, so it is never stale.
pub fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_otlp-gateway"))
}

pub mod python_env;

/// The Python with the OpenTelemetry SDK: `OTLP_TEST_PYTHON`, else the workspace's `.venv`, else
/// `target/test-venv`, created on first use ([`python_env`]).
pub fn python() -> PathBuf {
    python_env::python()
}

pub async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Parses `loadtest sink` flags.
#[derive(Parser)]
struct SinkCli {
    #[command(flatten)]
    args: loadtest::sink::SinkArgs,
}

/// The verifying sink, serving in this process.
pub struct Sink {
    pub handle: loadtest::sink::SinkHandle,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub dump: PathBuf,
}

impl Sink {
    pub async fn start(dir: &Path, name: &str, extra: &[&str]) -> Self {
        let dump = dir.join(format!("{name}.jsonl"));
        let mut argv = vec!["sink".to_string(), "--dump".into(), dump.display().to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args = SinkCli::parse_from(argv).args;
        let handle = loadtest::sink::start(args).await.unwrap();
        Self { grpc: handle.grpc, http: handle.http, handle, dump }
    }

    pub fn stats(&self) -> Value {
        self.handle.stats()
    }

    pub fn spans_received(&self) -> u64 {
        self.stats()["spans"].as_u64().unwrap()
    }

    /// Every received span as OTLP JSON, with its resource's `service.name` under `"service"`.
    pub fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.dump).unwrap_or_default();
        let mut out = Vec::new();
        // A request being written right now may have left half a line at the end; it is not counted yet.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines() {
            let req: Value = serde_json::from_str(line).unwrap();
            for rs in req["resourceSpans"].as_array().unwrap() {
                let resource: serde_json::Map<String, Value> = rs["resource"]["attributes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|kv| {
                                (kv["key"].as_str().unwrap().to_string(), kv["value"]["stringValue"].clone())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let service = resource.get("service.name").cloned().unwrap_or(Value::Null);
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    for span in ss["spans"].as_array().unwrap() {
                        let mut span = span.clone();
                        span["service"] = service.clone();
                        span["resource"] = Value::Object(resource.clone());
                        out.push(span);
                    }
                }
            }
        }
        out
    }
}

/// A running gateway.
pub struct Gateway {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
    pub pipelines: PathBuf,
}

impl Gateway {
    /// Writes `yaml` as the pipelines file and starts the gateway on ephemeral ports.
    pub async fn start(dir: &Path, yaml: &str, extra: &[&str]) -> Self {
        Self::start_with_env(dir, yaml, extra, &[]).await
    }

    /// Like [`Gateway::start`], with extra environment variables.
    pub async fn start_with_env(dir: &Path, yaml: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let pipelines = dir.join("pipelines.yaml");
        std::fs::write(&pipelines, yaml).unwrap();
        let log = dir.join("gateway.log");
        let child = Command::new(gateway_bin())
            .arg("--pipelines")
            .arg(&pipelines)
            .args(["--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"])
            .args(["--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(["--log-format", "json", "--reload-interval", "100ms"])
            // k8s.cluster.name falls back to this; tests must not depend on the machine.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(env.iter().copied())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let proc = Proc { child, log };
        let mut started = Value::Null;
        wait_until("the gateway to start", Duration::from_secs(20), || {
            started = proc
                .log_text()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "otlp-gateway started")
                .unwrap_or(Value::Null);
            !started.is_null()
        })
        .await;
        let addr = |k: &str| started[k].as_str().unwrap().parse().unwrap();
        Self {
            grpc: addr("otlp_grpc_addr"),
            http: addr("otlp_http_addr"),
            health: addr("health_addr"),
            metrics: addr("metrics_addr"),
            pipelines,
            proc,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn status(&self) -> Value {
        serde_json::from_slice(&blocking_get(format!("http://{}/status", self.health))).unwrap()
    }

    pub fn metrics_text(&self) -> String {
        String::from_utf8(blocking_get(format!("http://{}/metrics", self.metrics)).to_vec()).unwrap()
    }

    /// The value of the first sample whose line starts with `prefix` (name and labels), or 0.
    pub fn metric(&self, prefix: &str) -> f64 {
        self.metrics_text()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Runs the Python SDK sender; returns the spans it reports as sent.
pub async fn send_with_python(
    protocol: &str,
    endpoint: SocketAddr,
    count: usize,
    service: &str,
) -> Vec<Value> {
    send_with_python_attrs(protocol, endpoint, count, service, &[]).await
}

/// Like [`send_with_python`], with extra resource attributes (`key=value`).
pub async fn send_with_python_attrs(
    protocol: &str,
    endpoint: SocketAddr,
    count: usize,
    service: &str,
    resource_attrs: &[&str],
) -> Vec<Value> {
    let script = workspace_root().join("dataplane/tests/otel_send.py");
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .args(["--protocol", protocol, "--endpoint", &endpoint.to_string()])
        .args(["--count", &count.to_string(), "--service", service])
        .args(resource_attrs.iter().flat_map(|a| ["--resource-attr", a]))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python sender failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A GET from synchronous code, on a thread of its own so it also works inside an async test.
pub fn blocking_get(url: String) -> Bytes {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(get(&url)).unwrap().1
    })
    .join()
    .unwrap()
}

type HttpResult = Result<(http::Response<()>, Bytes), hyper_util::client::legacy::Error>;

pub async fn get(url: &str) -> Result<(http::StatusCode, Bytes), hyper_util::client::legacy::Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(url.parse().unwrap()).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body))
}

/// POSTs a body with the given headers.
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> HttpResult {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(body.into())).unwrap()).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Ok((http::Response::from_parts(parts, ()), body))
}

/// A TracePipeline document.
pub fn pipeline(name: &str, protocol: &str, endpoint: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\nspec:\n  output:\n    otlp:\n      protocol: {protocol}\n      endpoint:\n        value: {endpoint}\n---\n"
    )
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("otlp-gateway-e2e").tempdir().unwrap()
}

/// A real OTLP/gRPC client (the gateway's own exporter) towards `addr`, optionally connecting from
/// `source` (a 127.0.0.x address standing for a pod).
pub fn grpc_client(
    addr: SocketAddr,
    compression: tracegw_contract::Compression,
    source: Option<std::net::IpAddr>,
) -> otlp_gateway::export::Exporter {
    let output = tracegw_contract::OtlpOutputConfig {
        protocol: tracegw_contract::Protocol::Grpc,
        url: format!("http://{addr}"),
        compression,
        headers: vec![],
        tls: tracegw_contract::TlsConfig { insecure: true, ..Default::default() },
        oauth2: None,
    };
    otlp_gateway::export::Exporter::with_source(
        &output,
        otlp_gateway::export::ExportSettings::default(),
        source,
    )
    .unwrap()
}

/// Sends already-encoded request bytes once through `client`.
pub async fn send_raw(
    client: &otlp_gateway::export::Exporter,
    body: impl Into<Bytes>,
    spans: usize,
) -> Result<otlp_gateway::export::Delivered, otlp_gateway::export::ExportError> {
    let body = body.into();
    let batch = otlp_gateway::batch::Batch { len: body.len(), chunks: vec![body], spans };
    client.send(client.encode(&batch)?).await
}
