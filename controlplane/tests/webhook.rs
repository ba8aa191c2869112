//! The TracePipeline admission webhook served for real: the HTTPS server on 127.0.0.1:0 with the
//! certificates the manager generates, asked by a client that trusts only the generated CA and
//! names the webhook Service, exactly as kube-apiserver does with the configuration's `caBundle`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use telemetry_manager::metrics::ManagerMetrics;
use telemetry_manager::webhook::{self, CertSlot, READ_TIMEOUT, SERVED};
use telemetry_manager::webhook_cert::{self, Current, Rendered};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const SERVICE_NAME: &str = "telemetry-manager-webhook.kyma-system.svc";
const NOW: i64 = 1_800_000_000;

struct Server {
    addr: SocketAddr,
    slot: Arc<CertSlot>,
    metrics: ManagerMetrics,
    stop: CancellationToken,
}

fn certificates(now: i64) -> Rendered {
    webhook_cert::render(&Current::default(), &webhook_cert::service_names("kyma-system"), now).unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn start(certs: &Rendered) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slot = Arc::new(CertSlot::new(&certs.serving.cert_pem, &certs.serving.key_pem).unwrap());
    let tls = webhook::server_config(Arc::clone(&slot)).unwrap();
    let (metrics, stop) = (ManagerMetrics::default(), CancellationToken::new());
    tokio::spawn(webhook::serve(listener, tls, metrics.clone(), stop.clone()));
    Server { addr, slot, metrics, stop }
}

/// A TLS connection to `addr` trusting only `ca_pem`, for the webhook Service's name, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from(SERVICE_NAME).unwrap(), tcp).await
}

/// Posts `body` to `path` over HTTP/2 or HTTP/1.1; the status and the JSON answer.
async fn post(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    body: Vec<u8>,
    h2: bool,
) -> std::io::Result<(u16, Value)> {
    let tls = connect(addr, ca_pem, if h2 { b"h2" } else { b"http/1.1" }).await?;
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .header("host", SERVICE_NAME)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    };
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn review(version: &str, operation: &str, uid: &str, spec: Value) -> Vec<u8> {
    let gvk = json!({"group": "telemetry.kyma-project.io", "version": version, "kind": "TracePipeline"});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": gvk, "requestKind": gvk,
            "resource": {"group": "telemetry.kyma-project.io", "version": version, "resource": "tracepipelines"},
            "name": "p", "operation": operation, "userInfo": {"username": "admin"},
            "object": {"apiVersion": format!("telemetry.kyma-project.io/{version}"), "kind": "TracePipeline",
                       "metadata": {"name": "p"}, "spec": spec},
            "oldObject": null, "dryRun": false,
        }
    }))
    .unwrap()
}

fn valid_spec() -> Value {
    json!({"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}},
           "filter": [{"conditions": ["span.name == \"GET /healthz\""]}]})
}

fn invalid_spec() -> Value {
    json!({"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}},
           "filter": [{"conditions": ["Len(resource.attributes[\"k8s.namespace.name\"]) > 0", "attributes[\"foo\"] == \"bar\""]}]})
}

/// Scenario: for each served version, over HTTP/1.1 and HTTP/2, a valid pipeline and Kyma's
/// `TestFilterInvalid` pipeline are reviewed through TLS by a client trusting only the generated CA.
/// Guarantees: the handshake succeeds for the Service's name; the valid one is allowed and the
/// invalid one denied with 403 and Kyma's message, each with its uid echoed; the metrics count them.
#[tokio::test]
async fn reviews_over_tls_trusting_only_the_generated_ca() {
    let certs = certificates(unix_now());
    let server = start(&certs).await;
    for served in SERVED {
        for h2 in [false, true] {
            let (status, answer) = post(
                server.addr,
                &certs.ca.cert_pem,
                served.path,
                review(served.version, "CREATE", "u-ok", valid_spec()),
                h2,
            )
            .await
            .unwrap();
            assert_eq!(status, 200);
            assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(answer["response"]["uid"], "u-ok");
            assert_eq!(answer["response"]["allowed"], true, "{answer}");

            let (status, answer) = post(
                server.addr,
                &certs.ca.cert_pem,
                served.path,
                review(served.version, "UPDATE", "u-bad", invalid_spec()),
                h2,
            )
            .await
            .unwrap();
            assert_eq!(status, 200);
            assert_eq!(answer["response"]["uid"], "u-bad");
            assert_eq!(answer["response"]["allowed"], false);
            assert_eq!(answer["response"]["status"]["code"], 403);
            assert_eq!(answer["response"]["status"]["reason"], "Forbidden");
            let message = answer["response"]["status"]["message"].as_str().unwrap();
            assert!(message.starts_with("OTTL specification is invalid, invalid FilterSpec: "), "{message}");
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &server.metrics.registry()).unwrap();
    assert!(text.contains("telemetry_manager_admission_reviews_total{result=\"allowed\"} 4"), "{text}");
    assert!(text.contains("telemetry_manager_admission_reviews_total{result=\"denied\"} 4"), "{text}");
    server.stop.cancel();
}

/// Scenario: a client that trusts another CA; garbage, an oversized body, a GET and an unknown path.
/// Guarantees: the handshake fails for the foreign CA; garbage and a body above 3 MiB get an
/// AdmissionReview with 400; the others get 405 and 404.
#[tokio::test]
async fn refuses_strangers_and_bad_requests() {
    let certs = certificates(unix_now());
    let server = start(&certs).await;
    let other = certificates(unix_now());
    assert!(connect(server.addr, &other.ca.cert_pem, b"http/1.1").await.is_err());

    let path = SERVED[1].path;
    let (status, answer) =
        post(server.addr, &certs.ca.cert_pem, path, b"{garbage".to_vec(), false).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 400);
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("cannot decode"), "{answer}");

    let big = vec![b' '; webhook::MAX_BODY_BYTES + 1];
    let (_, answer) = post(server.addr, &certs.ca.cert_pem, path, big, false).await.unwrap();
    assert_eq!(answer["response"]["status"]["code"], 400);
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("exceeds"), "{answer}");

    let (status, _) = post(server.addr, &certs.ca.cert_pem, "/other", b"{}".to_vec(), false).await.unwrap();
    assert_eq!(status, 404);
    let tls = connect(server.addr, &certs.ca.cert_pem, b"http/1.1").await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let get = http::Request::get(path).header("host", SERVICE_NAME).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(sender.send_request(get).await.unwrap().status(), 405);
    server.stop.cancel();
}

/// Scenario: the serving certificate is renewed under a new CA while the server runs.
/// Guarantees: the next handshake presents the new certificate (a client trusting only the new CA
/// succeeds, one trusting only the old CA fails) without restarting the listener; a client refuses
/// an expired one.
#[tokio::test]
async fn renewed_certificate_is_served_without_restart() {
    let old = certificates(unix_now());
    let server = start(&old).await;
    assert!(connect(server.addr, &old.ca.cert_pem, b"h2").await.is_ok());
    let new = certificates(unix_now());
    server.slot.replace(&new.serving.cert_pem, &new.serving.key_pem).unwrap();
    assert!(connect(server.addr, &old.ca.cert_pem, b"h2").await.is_err());
    let (_, answer) = post(
        server.addr,
        &new.ca.cert_pem,
        SERVED[0].path,
        review("v1alpha1", "CREATE", "u", valid_spec()),
        true,
    )
    .await
    .unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    // An expired certificate (made for an instant 400 days ago) is refused by the client.
    let past = certificates(NOW - 400 * 24 * 3600);
    server.slot.replace(&past.serving.cert_pem, &past.serving.key_pem).unwrap();
    assert!(connect(server.addr, &past.ca.cert_pem, b"h2").await.is_err());
    server.stop.cancel();
}

/// Scenario: a client sends the headers and part of the body, then stalls (paused clock).
/// Guarantees: after the read timeout the server answers 400 saying the body did not arrive, and not
/// before.
#[tokio::test(start_paused = true)]
async fn a_stalled_body_times_out() {
    let certs = certificates(unix_now());
    let server = start(&certs).await;
    let mut tls = connect(server.addr, &certs.ca.cert_pem, b"http/1.1").await.unwrap();
    let started = tokio::time::Instant::now();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {SERVICE_NAME}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"apiVersion\"",
        SERVED[1].path
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    // The request was written by hand; read the answer the same way.
    let mut buf = Vec::new();
    while !String::from_utf8_lossy(&buf).contains("within") {
        let read = tokio::io::AsyncReadExt::read_buf(&mut tls, &mut buf);
        let n = tokio::time::timeout(Duration::from_secs(60), read).await.unwrap().unwrap();
        assert!(n > 0, "closed after {:?}: {}", started.elapsed(), String::from_utf8_lossy(&buf));
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("did not arrive within 10s"), "{text}");
    assert!(started.elapsed() >= READ_TIMEOUT, "{:?}", started.elapsed());
    assert!(started.elapsed() < READ_TIMEOUT + Duration::from_secs(1), "{:?}", started.elapsed());
    server.stop.cancel();
}
