//! The exporter's output as Kyma's Collector writes it, checked end to end with the real
//! `otlp-gateway` binary against a backend that records every request as it arrived: snappy in both
//! directions (decoded and encoded by pysnappy, Google's C++ snappy, not by the gateway's code),
//! header prefixes, `Authorization` precedence, HTTP path joining, X.509 v1 client certificates and
//! the divided queue budget.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// One request as the backend received it.
#[derive(Clone, Debug)]
struct Received {
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

/// A plain-text OTLP backend (HTTP/1.1 and h2c) that records every request and answers success.
struct Capture {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Capture {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let kept = Arc::clone(&kept);
                let service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let kept = Arc::clone(&kept);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let grpc =
                                parts.headers.get("content-type").is_some_and(|v| v == "application/grpc");
                            kept.lock().unwrap().push(Received {
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                            });
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            let content_type =
                                if grpc { "application/grpc" } else { "application/x-protobuf" };
                            resp.headers_mut().insert("content-type", content_type.parse().unwrap());
                            if grpc {
                                // Trailers-only success.
                                resp.headers_mut().insert("grpc-status", "0".parse().unwrap());
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Runs `snappy_tool.py` (pysnappy) and returns its JSON answer.
async fn snappy_tool(args: &[&str]) -> Value {
    let script = workspace_root().join("dataplane/tests/snappy_tool.py");
    let out = tokio::process::Command::new(python()).arg(&script).args(args).output().await.unwrap();
    assert!(out.status.success(), "snappy_tool.py {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The span ids pysnappy finds in `body`, which must be in `format` (`raw` or `framed`).
async fn decode_independently(dir: &std::path::Path, body: &[u8], format: &str) -> Vec<String> {
    let file = dir.join(format!("body-{}.bin", fastrand_name()));
    std::fs::write(&file, body).unwrap();
    let answer = snappy_tool(&["decode", "--format", format, file.to_str().unwrap()]).await;
    answer["spans"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst).to_string()
}

fn ids_of(sent: &[Value]) -> HashSet<String> {
    sent.iter().map(|s| s["span_id"].as_str().unwrap().to_string()).collect()
}

/// A TracePipeline with extra lines under `spec.output.otlp` (indented by six spaces).
fn pipeline_with(name: &str, protocol: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\nspec:\n  output:\n    otlp:\n      protocol: {protocol}\n      endpoint:\n        value: {endpoint}\n{extra}---\n"
    )
}

/// Scenario: two pipelines with `compression: snappy`, one gRPC and one HTTP, both towards a backend
/// that records the raw requests; 1,500 spans of the Python SDK through the gateway in batches of
/// up to 512 (about 150 KB each, more than two 64 KiB snappy chunks).
/// Guarantees: as the Collector sends them, gRPC carries `grpc-encoding: snappy`, the compressed
/// flag and snappy's framing format (stream identifier, checksummed chunks of at most 64 KiB), and
/// HTTP carries `Content-Encoding: snappy` with one raw block; pysnappy (Google's C++ snappy)
/// decodes every body, and each backend gets every span exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_export_is_what_the_collector_sends() {
    let dir = tempdir();
    let grpc_backend = Capture::start().await;
    let http_backend = Capture::start().await;
    let yaml = pipeline_with(
        "snappy-grpc",
        "grpc",
        &format!("http://{}", grpc_backend.addr),
        "      compression: snappy\n",
    ) + &pipeline_with(
        "snappy-http",
        "http",
        &format!("http://{}", http_backend.addr),
        "      compression: snappy\n",
    );
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "200ms"]).await;
    let sent = ids_of(&send_with_python("grpc", gw.grpc, 1500, "snappy-e2e").await);
    assert_eq!(sent.len(), 1500);
    wait_until("both pipelines to export every span", Duration::from_secs(30), || {
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-snappy-grpc\"}")
            == 1500.0
            && gw
                .metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_http/tracepipeline-snappy-http\"}")
                == 1500.0
    })
    .await;

    let mut grpc_ids = Vec::new();
    let mut largest_chunks = 0;
    for request in grpc_backend.requests() {
        assert_eq!(request.headers["grpc-encoding"], "snappy");
        let (prefix, message) = request.body.split_at(5);
        assert_eq!(prefix[0], 1, "the compressed flag");
        assert_eq!(u32::from_be_bytes(prefix[1..].try_into().unwrap()) as usize, message.len());
        let file = dir.path().join(format!("grpc-{}.bin", fastrand_name()));
        std::fs::write(&file, message).unwrap();
        let answer = snappy_tool(&["decode", "--format", "framed", file.to_str().unwrap()]).await;
        largest_chunks = largest_chunks.max(answer["chunks"].as_u64().unwrap());
        grpc_ids.extend(answer["spans"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()));
    }
    assert!(largest_chunks >= 2, "no batch spanned more than one 64 KiB chunk");
    let mut http_ids = Vec::new();
    for request in http_backend.requests() {
        assert_eq!(request.headers["content-encoding"], "snappy");
        assert_eq!(request.headers["content-type"], "application/x-protobuf");
        http_ids.extend(decode_independently(dir.path(), &request.body, "raw").await);
    }
    for (what, ids) in [("gRPC", grpc_ids), ("HTTP", http_ids)] {
        assert_eq!(ids.len(), 1500, "{what}: spans received, duplicates included");
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), sent, "{what}");
    }
}

/// Scenario: pysnappy compresses OTLP requests as one raw block and in the framing format; they are
/// posted to the gateway's HTTP receiver as `snappy` (both forms) and `x-snappy-framed`, and the
/// framed one is sent over gRPC as `grpc-encoding: snappy`.
/// Guarantees: the receivers accept every form the Collector's do, and every span reaches the
/// pipeline's backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_requests_from_another_implementation_are_accepted() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "snappy-in", &[]).await;
    let yaml = pipeline("in", "grpc", &format!("http://{}", sink.grpc));
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    let mut expected = HashSet::new();
    let encode = |format: &'static str| {
        let file = dir.path().join(format!("client-{format}-{}.bin", fastrand_name()));
        async move {
            let answer =
                snappy_tool(&["encode", "--format", format, "--count", "40", file.to_str().unwrap()]).await;
            let ids: Vec<String> =
                answer["spans"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
            (std::fs::read(&file).unwrap(), ids)
        }
    };
    for (format, encoding) in [("raw", "snappy"), ("framed", "snappy"), ("framed", "x-snappy-framed")] {
        let (body, ids) = encode(format).await;
        let (resp, answer) = post(
            &gw.url("/v1/traces"),
            &[("content-type", "application/x-protobuf"), ("content-encoding", encoding)],
            body,
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200, "{format} as {encoding}: {}", String::from_utf8_lossy(&answer));
        expected.extend(ids);
    }
    let (framed, ids) = encode("framed").await;
    let mut message = vec![1u8];
    message.extend_from_slice(&(framed.len() as u32).to_be_bytes());
    message.extend_from_slice(&framed);
    let status = grpc_post(gw.grpc, "snappy", message).await;
    assert_eq!(status, "0", "gRPC snappy");
    expected.extend(ids);

    wait_until("every span at the backend", Duration::from_secs(20), || sink.spans().len() >= expected.len())
        .await;
    let got: HashSet<String> =
        sink.spans().iter().map(|s| s["spanId"].as_str().unwrap().to_lowercase()).collect();
    assert_eq!(got, expected);
}

/// One unary gRPC call to `Export` over h2c with `grpc-encoding`; returns `grpc-status`.
async fn grpc_post(addr: SocketAddr, encoding: &str, message: Vec<u8>) -> String {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let request = http::Request::post(format!(
        "http://{addr}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-encoding", encoding)
    .body(Full::new(Bytes::from(message)))
    .unwrap();
    let response = client.request(request).await.unwrap();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    trailers
        .get("grpc-status")
        .or_else(|| headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Scenario: a gRPC and an HTTP pipeline, each with basic auth and a custom `Authorization` header,
/// a header whose prefix ends in a space (`"Bearer "`), and for HTTP a `path` that Go's
/// `path.Join` cleans (`//`, `..`, trailing `/`) with a query, on an endpoint that has a path and a
/// query of its own.
/// Guarantees: the backend receives exactly one `Authorization`, the custom one; the prefix is
/// joined with one space (`Bearer tok`); the HTTP request goes to the cleaned join of both paths
/// with `path`'s query only, as Kyma's Collector sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_paths_are_kymas() {
    let dir = tempdir();
    let backend = Capture::start().await;
    let auth = "      authentication:\n        basic:\n          user: {value: user}\n          password: {value: pass}\n      headers:\n        - {name: Authorization, prefix: 'Bearer ', value: custom-token}\n        - {name: X-Token, prefix: 'Token ', value: abc}\n";
    let yaml = pipeline_with("hdr-grpc", "grpc", &format!("http://{}", backend.addr), auth)
        + &pipeline_with(
            "hdr-http",
            "http",
            &format!("http://{}/base/?ignored=1", backend.addr),
            &format!("{auth}      path: '//custom/../v2/traces/?tenant=a'\n"),
        );
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    send_with_python("http", gw.http, 10, "headers").await;
    wait_until("both requests at the backend", Duration::from_secs(20), || backend.requests().len() >= 2)
        .await;
    let requests = backend.requests();
    let grpc = requests.iter().find(|r| r.headers["content-type"] == "application/grpc").unwrap();
    let http = requests.iter().find(|r| r.headers["content-type"] == "application/x-protobuf").unwrap();
    for (what, request) in [("gRPC", grpc), ("HTTP", http)] {
        let auth: Vec<_> = request.headers.get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer custom-token"], "{what}");
        assert_eq!(request.headers["x-token"], "Token abc", "{what}");
    }
    assert_eq!(http.uri.path(), "/base/v2/traces");
    assert_eq!(http.uri.query(), Some("tenant=a"));
}

#[path = "../../contract/src/tls/v1_cert.rs"]
mod v1_cert;

/// Scenario: an HTTP pipeline with mTLS whose client certificate is X.509 version 1 (no extensions,
/// as old private CAs issue them), towards a backend that requires a client certificate and
/// verifies it with OpenSSL (Python's `ssl`) against the CA, as a Go backend would.
/// Guarantees: the pipeline is valid (no `TLSConfigurationInvalid`), the gateway presents the
/// version 1 certificate, the backend accepts it, and the spans are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_client_certificates_are_presented() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempdir();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = v1_cert::v1_certificate(
        "gateway-v1",
        &client_key,
        Some(ca.der()),
        &ca_key,
        "250101000000Z",
        "380101000000Z",
    );
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        write("ca.pem", &ca.pem()),
        write("server.pem", &server.pem()),
        write("server.key", &server_key.serialize_pem()),
    );
    let log = dir.path().join("tls-backend.log");
    let script = workspace_root().join("dataplane/tests/tls_backend.py");
    let child = std::process::Command::new(python())
        .arg(&script)
        .args(["--cert", &cert_file, "--key", &key_file, "--ca", &ca_file])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("tls-backend.err")).unwrap())
        .spawn()
        .unwrap();
    let backend = Proc { child, log: log.clone() };
    let mut port = 0;
    wait_until("the TLS backend to listen", Duration::from_secs(20), || {
        port = backend
            .log_text()
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok()?["port"].as_u64())
            .unwrap_or(0);
        port != 0
    })
    .await;
    let indent = |pem: &str| pem.lines().map(|l| format!("            {l}\n")).collect::<String>();
    let tls = format!(
        "      tls:\n        ca:\n          value: |\n{}        cert:\n          value: |\n{}        key:\n          value: |\n{}",
        indent(&ca.pem()),
        indent(&client),
        indent(&client_key.serialize_pem())
    );
    let yaml = pipeline_with("v1", "http", &format!("https://127.0.0.1:{port}"), &tls);
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    assert_eq!(gw.status()["pipelines"][0]["running"], true, "{}", gw.status());
    send_with_python("grpc", gw.grpc, 5, "v1-cert").await;
    wait_until("the spans at the TLS backend", Duration::from_secs(20), || {
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_http/tracepipeline-v1\"}") == 5.0
    })
    .await;
    let request: Value = backend
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &Value| v.get("path").is_some())
        .unwrap();
    assert_eq!(request["path"], "/v1/traces");
    assert_eq!(request["client_cert_version"], 1, "{request}");
    assert_eq!(request["client_subject"], "gateway-v1");
}

/// Scenario: a gateway with a budget of 6,144 spans (12 batches of 512) and 3 MB runs three
/// pipelines towards backends that refuse connections and is sent 4,000 spans in requests of 500,
/// then is reloaded with two of the pipelines.
/// Guarantees: each pipeline's queue capacity (the `otelcol_exporter_queue_capacity` and
/// `otlp_gateway_exporter_queue_capacity_bytes` metrics) is its share, 4 batches and 1 MB; no
/// queue holds more than its share, so together they stay within the budget; what did not fit is
/// counted as enqueue failures and the client is refused once every queue is full; after the
/// reload the two remaining pipelines get 6 batches and 1.5 MB each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_queue_budget_is_divided_among_the_pipelines() {
    let dir = tempdir();
    let dead = |_| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let endpoints: Vec<String> = (0..3).map(dead).collect();
    let names = ["q-a", "q-b", "q-c"];
    let yaml = |count: usize| -> String {
        names.iter().zip(&endpoints).take(count).map(|(n, e)| pipeline(n, "grpc", e)).collect()
    };
    let gw = Gateway::start(
        dir.path(),
        &yaml(3),
        &["--queue-capacity-spans", "6144", "--queue-capacity-bytes", "3000000", "--batch-timeout", "100ms"],
    )
    .await;
    let metric = |name: &str, pipeline: &str| {
        gw.metric(&format!("{name}{{exporter=\"otlp_grpc/tracepipeline-{pipeline}\"}}"))
    };
    for name in names {
        assert_eq!(metric("otelcol_exporter_queue_capacity", name), 2048.0, "{name}");
        assert_eq!(metric("otlp_gateway_exporter_queue_capacity_bytes", name), 1_000_000.0, "{name}");
    }
    let client = grpc_client(gw.grpc, tracegw_contract::Compression::None, None);
    let request = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 500, 2, 20));
    for _ in 0..8 {
        // Refused (UNAVAILABLE) once every queue is full; that is part of what is checked.
        let _ = send_raw(&client, request.clone(), 500).await;
    }
    for name in names {
        let queued = metric("otelcol_exporter_queue_size", name);
        assert!(queued > 0.0 && queued <= 2048.0, "{name}: {queued} spans queued");
        assert!(metric("otlp_gateway_exporter_queue_size_bytes", name) <= 1_000_000.0, "{name}");
        assert_eq!(queued + metric("otelcol_exporter_enqueue_failed_spans_total", name), 4000.0, "{name}");
    }
    assert!(gw.metric("otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"}") > 0.0);

    std::fs::write(&gw.pipelines, yaml(2)).unwrap();
    wait_until("the reload to re-divide the budget", Duration::from_secs(20), || {
        metric("otelcol_exporter_queue_capacity", "q-a") == 3072.0
    })
    .await;
    assert_eq!(metric("otelcol_exporter_queue_capacity", "q-b"), 3072.0);
    assert_eq!(metric("otlp_gateway_exporter_queue_capacity_bytes", "q-b"), 1_500_000.0);
}
