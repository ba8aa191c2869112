//! Export failures a user can act on: each message names what is wrong and the field to change
//! (the exporter against real backends of the wrong kind on 127.0.0.1, and the real binary's logs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use otlp_gateway::export::diagnose::{GRPC_BACKEND, HTTP_BACKEND, HTTP1_ONLY_BACKEND, PLAIN_TEXT_BACKEND};
use otlp_gateway::export::{ExportError, ExportSettings, Exporter};
use serde_json::Value;
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, TlsConfig};

/// One export of three spans to `url`.
async fn export_to(protocol: Protocol, url: String) -> Result<(), ExportError> {
    let output = OtlpOutputConfig {
        protocol,
        url,
        compression: Compression::None,
        headers: vec![],
        tls: TlsConfig::default(),
        oauth2: None,
    };
    let exporter = Exporter::new(&output, ExportSettings::default()).unwrap();
    let request = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 3, 1, 4));
    send_raw(&exporter, request, 3).await.map(|_| ())
}

/// A plain-text server that speaks HTTP/1.1 only and answers 404, as many HTTP backends do for a
/// path they do not know.
async fn http1_only_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    let body = http_body_util::Full::new(bytes::Bytes::from_static(b"404 page not found"));
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder().status(404).body(body).unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// Scenario: TLS (an `https://` endpoint, or one without a scheme) towards plain-text OTLP
/// receivers, over gRPC and HTTP.
/// Guarantees: the error says the backend answered in plain text and how to fix it (`http://` or
/// `tls.insecure`) instead of rustls' `received corrupt message of type InvalidContentType`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_towards_a_plain_text_backend_says_so() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "plain", &[]).await;
    for (protocol, url) in [
        (Protocol::Grpc, format!("https://{}", sink.grpc)),
        (Protocol::Http, format!("https://{}/v1/traces", sink.http)),
    ] {
        let error = export_to(protocol, url).await.unwrap_err();
        assert!(error.to_string().contains(PLAIN_TEXT_BACKEND), "{protocol:?}: {error}");
        assert!(error.is_retryable());
    }
}

/// Scenario: a gRPC exporter towards an OTLP/HTTP receiver (which answers 404) and towards an
/// HTTP/1.1-only server, and an HTTP exporter towards an OTLP/gRPC receiver (HTTP/2 only).
/// Guarantees: each error points at `spec.output.otlp.protocol` with the value to set, instead of
/// only `HTTP 404`, `channel closed` or `received unexpected message from connection`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_protocol_is_named() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "protocols", &[]).await;
    let grpc_to_http = export_to(Protocol::Grpc, format!("http://{}", sink.http)).await.unwrap_err();
    assert!(grpc_to_http.to_string().contains("HTTP 404"), "{grpc_to_http}");
    assert!(grpc_to_http.to_string().contains(HTTP_BACKEND), "{grpc_to_http}");
    let grpc_to_http1 =
        export_to(Protocol::Grpc, format!("http://{}", http1_only_server().await)).await.unwrap_err();
    assert!(grpc_to_http1.to_string().contains(HTTP1_ONLY_BACKEND), "{grpc_to_http1}");
    let http_to_grpc =
        export_to(Protocol::Http, format!("http://{}/v1/traces", sink.grpc)).await.unwrap_err();
    assert!(http_to_grpc.to_string().contains(GRPC_BACKEND), "{http_to_grpc}");
    assert_eq!(sink.spans_received(), 0);
}

/// Scenario: the real gateway with a pipeline whose endpoint has no scheme (so TLS) towards a
/// plain-text backend, retrying quickly.
/// Guarantees: every "export failed, will retry" warning names the pipeline's exporter
/// (`exporter=otlp_grpc/tracepipeline-no-scheme`) and carries the plain-text advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_warnings_name_the_pipeline() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "retry", &[]).await;
    let yaml = pipeline("no-scheme", "grpc", &sink.grpc.to_string());
    let args =
        ["--batch-timeout", "50ms", "--retry-initial-interval", "50ms", "--retry-max-interval", "100ms"];
    let gw = Gateway::start(dir.path(), &yaml, &args).await;
    let client = grpc_client(gw.grpc, Compression::None, None);
    let request = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 5, 1, 4));
    send_raw(&client, request, 5).await.unwrap();
    let retries = || -> Vec<Value> {
        gw.proc
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"] == "export failed, will retry")
            .collect()
    };
    wait_until("two retry warnings", Duration::from_secs(20), || retries().len() >= 2).await;
    for warning in retries() {
        assert_eq!(warning["exporter"], "otlp_grpc/tracepipeline-no-scheme", "{warning}");
        assert!(warning["error"].as_str().unwrap().contains(PLAIN_TEXT_BACKEND), "{warning}");
    }
}
