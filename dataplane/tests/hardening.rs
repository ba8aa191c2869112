//! End-to-end tests of the real `otlp-gateway` binary for the hardening of issue 19: requests with ids
//! of wrong lengths, the OTLP/JSON success body, the queue gauge of a replaced pipeline, and readiness
//! without pipelines. Raw OTLP requests over HTTP (protobuf and JSON) and gRPC (the gateway's own
//! exporter as the client), the load test's verifying sink as the backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::Link;
use otlp_gateway::export::ExportError;
use otlp_gateway::testing::sample_request;
use otlp_gateway::wire::RpcStatus;
use prost::Message;
use serde_json::{Value, json};
use tracegw_contract::Compression;

const PROTOBUF: [(&str, &str); 1] = [("content-type", "application/x-protobuf")];
const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

/// `spans` spans whose span ids are `first_id`, `first_id + 1`, …, so that a test can tell whose
/// spans reached the backend.
fn request(spans: usize, first_id: u64) -> ExportTraceServiceRequest {
    let mut req = sample_request(1, spans, 2, 8);
    for (i, span) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        span.span_id = (first_id + i as u64).to_be_bytes().to_vec();
    }
    req
}

/// An OTLP/JSON request of one span with these hex ids.
fn json_span(trace_id: &str, span_id: &str) -> String {
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-json"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "json", "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000"}]}]}]})
    .to_string()
}

/// The span ids the backend received, as lower-case hex.
fn received_span_ids(sink: &Sink) -> Vec<String> {
    let mut ids: Vec<String> =
        sink.spans().iter().map(|s| s["spanId"].as_str().unwrap().to_lowercase()).collect();
    ids.sort();
    ids
}

fn hex_ids(first_id: u64, n: usize) -> Vec<String> {
    (0..n as u64).map(|i| format!("{:016x}", first_id + i)).collect()
}

/// Scenario: while one client sends 20 good spans over gRPC and 20 over HTTP, others send, at the
/// same moment, spans with a trace id of 8, 17 and 0 bytes, a span id of 16 bytes, a parent id of 3
/// and a link trace id of 8 bytes, as protobuf and JSON over HTTP and over gRPC.
/// Guarantees: every request with a wrong length, empty included, is refused with 400 /
/// INVALID_ARGUMENT and a message naming the field, its length and the span; the backend receives
/// exactly the good clients' spans, so no refused request took part in a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_length_ids_are_refused_and_other_clients_spans_still_arrive() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let gw = Gateway::start(
        dir.path(),
        &pipeline("p", "grpc", &format!("http://{}", sink.grpc)),
        &["--batch-timeout", "300ms"],
    )
    .await;
    let url = gw.url("/v1/traces");
    let grpc = grpc_client(gw.grpc, Compression::None, None);
    let good_grpc = grpc_client(gw.grpc, Compression::Gzip, None);
    let place = "resource_spans[0].scope_spans[0].spans[1]";

    // Protobuf bodies, each with the second of three spans changed.
    let bad = |change: &dyn Fn(&mut opentelemetry_proto::tonic::trace::v1::Span)| {
        let mut req = request(3, 0xbad0);
        change(&mut req.resource_spans[0].scope_spans[0].spans[1]);
        req.encode_to_vec()
    };
    let http_proto_cases = [
        (bad(&|s| s.trace_id = vec![1; 8]), format!("span.trace_id must be 16 bytes, got 8 at {place}")),
        (bad(&|s| s.trace_id = vec![1; 17]), format!("span.trace_id must be 16 bytes, got 17 at {place}")),
        (bad(&|s| s.span_id = vec![1; 16]), format!("span.span_id must be 8 bytes, got 16 at {place}")),
        (
            bad(&|s| s.parent_span_id = vec![1; 3]),
            format!("span.parent_span_id must be 8 bytes or empty, got 3 at {place}"),
        ),
    ];
    let json_cases = [
        (
            json_span("0102030405060708", "0102030405060708"),
            "span.trace_id must be 16 bytes, got 8 at resource_spans[0].scope_spans[0].spans[0]",
        ),
        (
            json_span(&"ab".repeat(17), "0102030405060708"),
            "span.trace_id must be 16 bytes, got 17 at resource_spans[0].scope_spans[0].spans[0]",
        ),
        (
            json_span(&"ab".repeat(16), &"cd".repeat(16)),
            "span.span_id must be 8 bytes, got 16 at resource_spans[0].scope_spans[0].spans[0]",
        ),
        (
            json_span("", "00000000000000ee"),
            "span.trace_id must be 16 bytes, got 0 at resource_spans[0].scope_spans[0].spans[0]",
        ),
    ];
    let grpc_cases = [
        (bad(&|s| s.span_id = vec![1; 16]), format!("span.span_id must be 8 bytes, got 16 at {place}")),
        (
            bad(&|s| {
                s.links = vec![Link { trace_id: vec![1; 8], span_id: vec![2; 8], ..Default::default() }]
            }),
            format!("link.trace_id must be 16 bytes, got 8 at {place}.links[0]"),
        ),
    ];

    let good_http = async {
        let (r, body) = post(&url, &PROTOBUF, request(20, 0x1000).encode_to_vec()).await.unwrap();
        assert_eq!((r.status().as_u16(), body.len()), (200, 0));
    };
    let good_over_grpc = async {
        send_raw(&good_grpc, request(20, 0x2000).encode_to_vec(), 20).await.unwrap();
    };
    let refused_http_proto = async {
        for (body, message) in &http_proto_cases {
            let (r, body) = post(&url, &PROTOBUF, body.clone()).await.unwrap();
            assert_eq!(r.status(), 400);
            let status = RpcStatus::decode(body).unwrap();
            assert_eq!(status.code, 3);
            assert_eq!(status.message, format!("invalid OTLP ExportTraceServiceRequest: {message}"));
        }
    };
    let refused_json = async {
        for (body, message) in &json_cases {
            let (r, body) = post(&url, &JSON, body.clone()).await.unwrap();
            assert_eq!(r.status(), 400);
            assert_eq!(r.headers()["content-type"], "application/json");
            let status: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(status["code"], 3);
            assert_eq!(status["message"], format!("invalid OTLP ExportTraceServiceRequest: {message}"));
        }
    };
    let refused_grpc = async {
        for (body, message) in &grpc_cases {
            match send_raw(&grpc, body.clone(), 3).await {
                Err(ExportError::Permanent { message: got }) => {
                    assert!(got.contains("InvalidArgument"), "{got}");
                    assert!(got.contains(message.as_str()), "{got}");
                }
                other => panic!("{other:?}"),
            }
        }
    };
    tokio::join!(good_http, good_over_grpc, refused_http_proto, refused_json, refused_grpc);

    wait_until("the good spans", Duration::from_secs(20), || sink.spans_received() >= 40).await;
    // Whatever a refused request held would come with the next batch: give it the time of one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut expected: Vec<String> = hex_ids(0x1000, 20).into_iter().chain(hex_ids(0x2000, 20)).collect();
    expected.sort();
    assert_eq!(received_span_ids(&sink), expected);
}

/// Scenario: a successful export over OTLP/HTTP, as JSON and as protobuf.
/// Guarantees: the JSON answer is `{}`, as the Collector's, not `{"partialSuccess":null}`; the
/// protobuf answer is an empty message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_success_answers_an_empty_message() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let gw = Gateway::start(dir.path(), &pipeline("p", "grpc", &format!("http://{}", sink.grpc)), &[]).await;
    let url = gw.url("/v1/traces");
    let (r, body) = post(&url, &JSON, json_span(&"ab".repeat(16), "0102030405060708")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(&body[..], b"{}");
    let (r, body) = post(&url, &PROTOBUF, request(1, 1).encode_to_vec()).await.unwrap();
    assert_eq!((r.status().as_u16(), body.len()), (200, 0));
}

/// Scenario: pipeline `p` exports to a backend that answers 503 to everything, so its spans stay
/// queued for retries; its endpoint is then changed to a healthy backend (the same exporter id), the
/// predecessor draining in the background.
/// Guarantees: `otelcol_exporter_queue_size` of `p` shows the successor's queue alone (0 at once,
/// not the predecessor's stuck spans), and the successor delivers the spans sent afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_pipelines_queue_gauge_is_its_own() {
    let dir = tempdir();
    let down = Sink::start(dir.path(), "down", &["--down-for", "1h"]).await;
    let healthy = Sink::start(dir.path(), "healthy", &[]).await;
    let gw = Gateway::start(
        dir.path(),
        &pipeline("p", "grpc", &format!("http://{}", down.grpc)),
        &["--batch-timeout", "50ms"],
    )
    .await;
    let gauge = "otelcol_exporter_queue_size{exporter=\"otlp_grpc/tracepipeline-p\"}";
    let (r, _) = post(&gw.url("/v1/traces"), &PROTOBUF, request(30, 0x100).encode_to_vec()).await.unwrap();
    assert_eq!(r.status(), 200);
    wait_until("the first export attempt", Duration::from_secs(20), || {
        gw.metric("otlp_gateway_exporter_retries_total{exporter=\"otlp_grpc/tracepipeline-p\"}") >= 1.0
    })
    .await;
    assert_eq!(gw.metric(gauge), 30.0, "{}", gw.metrics_text());

    let version = gw.metric("otlp_gateway_config_version");
    std::fs::write(&gw.pipelines, pipeline("p", "grpc", &format!("http://{}", healthy.grpc))).unwrap();
    wait_until("the reload", Duration::from_secs(20), || gw.metric("otlp_gateway_config_version") > version)
        .await;
    assert_eq!(gw.metric(gauge), 0.0, "the successor shows its predecessor's queue:\n{}", gw.metrics_text());

    let (r, _) = post(&gw.url("/v1/traces"), &PROTOBUF, request(5, 0x900).encode_to_vec()).await.unwrap();
    assert_eq!(r.status(), 200);
    wait_until("the successor's delivery", Duration::from_secs(20), || healthy.spans_received() >= 5).await;
    assert_eq!(received_span_ids(&healthy), hex_ids(0x900, 5));
    wait_until("the successor's queue to empty", Duration::from_secs(20), || gw.metric(gauge) == 0.0).await;
}

/// Scenario: a gateway started on an empty pipelines file, then given a pipeline, then an empty
/// file again.
/// Guarantees: without a pipeline it keeps serving (`/healthz` 200, exports answered 503 with
/// Retry-After) but is not ready: `/readyz` is 503 and `/readyz` and `/status` say that no
/// TracePipeline is configured; with the pipeline it is ready and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pipeline_the_gateway_serves_but_is_not_ready() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let gw = Gateway::start(dir.path(), "", &["--batch-timeout", "50ms"]).await;
    let readyz = format!("http://{}/readyz", gw.health);
    let reason = "no TracePipeline is configured: every export is refused with 503 / UNAVAILABLE";
    let not_ready = || async {
        let (status, body) = get(&readyz).await.unwrap();
        assert_eq!(status, 503);
        assert_eq!(String::from_utf8_lossy(&body), format!("not ready: {reason}\n"));
        let status = gw.status();
        assert_eq!((status["ready"].clone(), status["reason"].clone()), (json!(false), json!(reason)));
        let (status, _) = get(&format!("http://{}/healthz", gw.health)).await.unwrap();
        assert_eq!(status, 200);
        let (r, _) = post(&gw.url("/v1/traces"), &PROTOBUF, request(2, 1).encode_to_vec()).await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
    };
    not_ready().await;

    std::fs::write(&gw.pipelines, pipeline("p", "grpc", &format!("http://{}", sink.grpc))).unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if get(&readyz).await.unwrap().0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "{}", gw.status());
    let (r, _) = post(&gw.url("/v1/traces"), &PROTOBUF, request(3, 0x30).encode_to_vec()).await.unwrap();
    assert_eq!(r.status(), 200);
    wait_until("delivery", Duration::from_secs(20), || sink.spans_received() >= 3).await;

    std::fs::write(&gw.pipelines, "").unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if get(&readyz).await.unwrap().0 == 503 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "{}", gw.status());
    not_ready().await;
}
