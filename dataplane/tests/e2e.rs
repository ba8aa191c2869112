//! End-to-end tests of the real `otlp-gateway` binary: spans sent with the OpenTelemetry Python SDK (gRPC
//! and HTTP/protobuf) and raw OTLP/JSON, through the gateway, to real OTLP receivers (the load test's
//! verifying sink).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::io::Write;

/// Converts an OTLP JSON AnyValue into a plain JSON value.
fn plain(v: &Value) -> Value {
    if let Some(s) = v.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = v.get("intValue") {
        let n: i64 = match i {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_i64().unwrap(),
        };
        return json!(n);
    }
    if let Some(d) = v.get("doubleValue") {
        return json!(d.as_f64().unwrap());
    }
    if let Some(b) = v.get("boolValue") {
        return b.clone();
    }
    if let Some(a) = v.get("arrayValue") {
        return Value::Array(a["values"].as_array().unwrap().iter().map(plain).collect());
    }
    panic!("unexpected value {v}")
}

fn u64_of(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}

/// Asserts that `received` holds every sent span exactly once, with ids, name, kind, times,
/// attributes, events, status and resource unchanged.
fn assert_same_spans(sent: &[Value], received: &[Value]) {
    let mut by_id: HashMap<String, &Value> = HashMap::new();
    for span in received {
        let id = span["spanId"].as_str().unwrap().to_lowercase();
        assert!(by_id.insert(id.clone(), span).is_none(), "span {id} received twice");
    }
    for want in sent {
        let id = want["span_id"].as_str().unwrap();
        let got = by_id.get(id).unwrap_or_else(|| panic!("span {id} ({}) never arrived", want["name"]));
        assert_eq!(got["traceId"].as_str().unwrap().to_lowercase(), want["trace_id"].as_str().unwrap());
        assert_eq!(got["name"], want["name"]);
        assert_eq!(got["kind"], want["kind"]);
        assert_eq!(got["service"], want["service"]);
        assert_eq!(u64_of(&got["startTimeUnixNano"]), want["start"].as_u64().unwrap());
        assert_eq!(u64_of(&got["endTimeUnixNano"]), want["end"].as_u64().unwrap());
        let attrs: serde_json::Map<String, Value> = got["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_string(), plain(&kv["value"])))
            .collect();
        assert_eq!(Value::Object(attrs), want["attributes"], "attributes of {id}");
        let events: Vec<Value> = got["events"]
            .as_array()
            .map(|e| e.iter().map(|e| e["name"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(Value::Array(events), want["events"]);
        assert_eq!(got["status"]["code"].as_u64().unwrap_or(0), want["status"].as_u64().unwrap());
    }
}

fn json_request(ids: &[(&str, &str)]) -> String {
    let spans: Vec<Value> = ids
        .iter()
        .map(|(trace, span)| {
            json!({
                "traceId": trace, "spanId": span, "name": format!("json-{span}"), "kind": 3,
                "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000000001000u64,
                "attributes": [{"key": "http.status_code", "value": {"intValue": "200"}},
                               {"key": "ok", "value": {"boolValue": true}}]
            })
        })
        .collect();
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}]}]})
    .to_string()
}

/// Scenario: two pipelines (gRPC and HTTP exporters) fed by the Python SDK over gRPC and HTTP/protobuf,
/// and by a raw OTLP/JSON request with upper-case hex ids.
/// Guarantees: each backend receives every span exactly once with its content unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_arrive_once_and_unchanged_in_every_pipeline() {
    let dir = tempdir();
    let a = Sink::start(dir.path(), "a", &[]).await;
    let b = Sink::start(dir.path(), "b", &[]).await;
    let yaml = pipeline("grpc-out", "grpc", &format!("http://{}", a.grpc))
        + &pipeline("http-out", "http", &format!("http://{}", b.http));
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;

    let grpc_spans = send_with_python("grpc", gw.grpc, 120, "py-grpc").await;
    let http_spans = send_with_python("http", gw.http, 80, "py-http").await;
    let json_ids = [
        ("0AF7651916CD43DD8448EB211C80319C", "B7AD6B7169203331"),
        ("0af7651916cd43dd8448eb211c80319c", "00F067AA0BA902B7"),
    ];
    let (resp, body) =
        post(&gw.url("/v1/traces"), &[("content-type", "application/json")], json_request(&json_ids))
            .await
            .unwrap();
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(resp.headers()["content-type"], "application/json");

    let expected = 120 + 80 + json_ids.len() as u64;
    for sink in [&a, &b] {
        wait_until("all spans at the backend", Duration::from_secs(20), || sink.spans_received() >= expected)
            .await;
        let received = sink.spans();
        let sent: Vec<Value> = grpc_spans.iter().chain(&http_spans).cloned().collect();
        assert_same_spans(&sent, &received);
        for (trace, span) in json_ids {
            let got = received
                .iter()
                .find(|s| s["spanId"].as_str().unwrap().eq_ignore_ascii_case(span))
                .expect("json span");
            assert!(got["traceId"].as_str().unwrap().eq_ignore_ascii_case(trace));
            assert_eq!(got["service"], "json-client");
            assert_eq!(got["kind"], 3);
        }
        assert_eq!(received.len() as u64, expected);
        assert_eq!(sink.stats()["duplicates"], 0);
    }
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-grpc-out\"}"),
        expected as f64
    );
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_http/tracepipeline-http-out\"}"),
        expected as f64
    );
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"}"),
        120.0
    );
    assert_eq!(
        gw.metric("otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"http\"}"),
        82.0
    );
}

/// Scenario: one pipeline's backend is down (nothing listens), the other is healthy.
/// Guarantees: the healthy backend still gets every span; the dead one's spans wait in its own queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_backend_does_not_hold_up_the_others() {
    let dir = tempdir();
    let healthy = Sink::start(dir.path(), "healthy", &[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let yaml = pipeline("dead", "grpc", &format!("http://{closed}"))
        + &pipeline("alive", "grpc", &format!("http://{}", healthy.grpc));
    let gw =
        Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms", "--retry-initial-interval", "200ms"])
            .await;
    let sent = send_with_python("grpc", gw.grpc, 150, "py").await;
    wait_until("healthy backend has everything", Duration::from_secs(20), || healthy.spans_received() >= 150)
        .await;
    assert_same_spans(&sent, &healthy.spans());
    wait_until("retries towards the dead backend", Duration::from_secs(10), || {
        gw.metric("otlp_gateway_exporter_retries_total{exporter=\"otlp_grpc/tracepipeline-dead\"}") > 0.0
    })
    .await;
    assert_eq!(gw.metric("otelcol_exporter_queue_size{exporter=\"otlp_grpc/tracepipeline-dead\"}"), 150.0);
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-alive\"}"),
        150.0
    );
    // The dead backend's spans hold their encoded bytes in its queue; the healthy one's are released.
    let queued_bytes =
        gw.metric("otlp_gateway_exporter_queue_size_bytes{exporter=\"otlp_grpc/tracepipeline-dead\"}");
    assert!(queued_bytes > 150.0 * 50.0, "{queued_bytes} bytes for 150 spans");
    let alive_bytes = "otlp_gateway_exporter_queue_size_bytes{exporter=\"otlp_grpc/tracepipeline-alive\"}";
    wait_until("the healthy queue's bytes released", Duration::from_secs(10), || {
        gw.metrics_text().contains(alive_bytes) && gw.metric(alive_bytes) == 0.0
    })
    .await;
    // Its share of the node's 64 MiB budget: half, with two pipelines.
    assert_eq!(
        gw.metric("otlp_gateway_exporter_queue_capacity_bytes{exporter=\"otlp_grpc/tracepipeline-dead\"}"),
        (32 << 20) as f64
    );
}

/// Scenario: malformed protobuf and JSON, unknown content type and encoding, an oversized body and a
/// gzip bomb over HTTP; garbage and oversized messages over gRPC.
/// Guarantees: 400/415/413/405 and INVALID_ARGUMENT/RESOURCE_EXHAUSTED with readable messages, and the
/// gateway stays up and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_the_right_answer_and_the_gateway_stays_up() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let gw = Gateway::start(
        dir.path(),
        &pipeline("p", "grpc", &format!("http://{}", sink.grpc)),
        &["--max-request-bytes", "65536", "--batch-timeout", "100ms"],
    )
    .await;
    let url = gw.url("/v1/traces");
    let proto = [("content-type", "application/x-protobuf")];

    let (r, body) = post(&url, &proto, vec![0x0a, 0xff, 0x01]).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let status = <otlp_gateway::wire::RpcStatus as prost::Message>::decode(body).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("invalid OTLP"), "{}", status.message);

    let (r, body) =
        post(&url, &[("content-type", "application/json")], "{\"resourceSpans\": 7}").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(v["message"].as_str().unwrap().contains("invalid OTLP JSON"));

    let (r, _) = post(&url, &[("content-type", "text/plain")], "hello").await.unwrap();
    assert_eq!(r.status(), 415);
    let (r, _) = post(&url, &[("content-type", "application/x-protobuf"), ("content-encoding", "br")], "x")
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (r, _) = post(&url, &proto, vec![0u8; 100_000]).await.unwrap();
    assert_eq!(r.status(), 413);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 65536);
    let (r, _) =
        post(&url, &[("content-type", "application/x-protobuf"), ("content-encoding", "gzip")], bomb)
            .await
            .unwrap();
    assert_eq!(r.status(), 413);
    let (status, _) = get(&url).await.unwrap();
    assert_eq!(status, 405);

    // gRPC, through the gateway's own exporter as a real HTTP/2 gRPC client.
    use otlp_gateway::export::ExportError;
    use tracegw_contract::Compression;
    let client = |compression| grpc_client(gw.grpc, compression, None);
    let plain = client(Compression::None);
    match send_raw(&plain, vec![0x0a, 0xff, 0x01], 1).await {
        Err(ExportError::Permanent { message }) => assert!(message.contains("InvalidArgument"), "{message}"),
        other => panic!("{other:?}"),
    }
    match send_raw(&plain, vec![0u8; 100_000], 1).await {
        Err(ExportError::Permanent { message }) => {
            assert!(message.contains("ResourceExhausted"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let gzip = client(Compression::Gzip);
    match send_raw(&gzip, vec![0u8; 8 << 20], 1).await {
        Err(ExportError::Permanent { message }) => {
            assert!(message.contains("ResourceExhausted"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    let (status, _) = get(&format!("http://{}/healthz", gw.health)).await.unwrap();
    assert_eq!(status, 200);
    let sent = send_with_python("http", gw.http, 5, "after-abuse").await;
    wait_until("spans after bad requests", Duration::from_secs(20), || sink.spans_received() >= 5).await;
    assert_same_spans(&sent, &sink.spans());
}

/// Scenario: a backend that takes 3 s per export, one export at a time, and a 200-span queue.
/// Guarantees: once the queue is full, HTTP clients get 503 with Retry-After and gRPC clients
/// UNAVAILABLE with RetryInfo; refused spans are counted, not silently lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_with_retry_hints() {
    let dir = tempdir();
    let slow = Sink::start(dir.path(), "slow", &["--delay", "3s"]).await;
    let gw = Gateway::start(
        dir.path(),
        &pipeline("slow", "grpc", &format!("http://{}", slow.grpc)),
        &[
            "--queue-capacity-spans",
            "200",
            "--max-in-flight-exports",
            "1",
            "--batch-max-spans",
            "100",
            "--batch-timeout",
            "10ms",
        ],
    )
    .await;
    let body = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 100, 2, 8));
    let mut refused = None;
    for _ in 0..10 {
        let (r, _) = post(&gw.url("/v1/traces"), &[("content-type", "application/x-protobuf")], body.clone())
            .await
            .unwrap();
        if r.status() == 503 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let refused = refused.expect("a full queue must refuse");
    assert_eq!(refused.headers()["retry-after"], "1");
    use otlp_gateway::export::ExportError;
    use tracegw_contract::Compression;
    let grpc = grpc_client(gw.grpc, Compression::Gzip, None);
    match send_raw(&grpc, body, 100).await {
        Err(ExportError::Retryable { message, retry_after }) => {
            assert!(message.contains("Unavailable"), "{message}");
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("{other:?}"),
    }
    assert!(gw.metric("otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"http\"}") >= 100.0);
    assert!(gw.metric("otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"}") >= 100.0);
    assert!(
        gw.metric("otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp_grpc/tracepipeline-slow\"}")
            >= 200.0
    );
}

/// Scenario: spans flow at 2,000/s while the pipelines file is rewritten: the existing pipeline gets a
/// new header (a changed config) and a second pipeline appears.
/// Guarantees: the first backend receives every span the generator had accepted, exactly once; the
/// second pipeline starts receiving; no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_reload_while_spans_flow_loses_nothing() {
    let dir = tempdir();
    let a = Sink::start(dir.path(), "a", &[]).await;
    let b = Sink::start(dir.path(), "b", &[]).await;
    let v1 = pipeline("main", "grpc", &format!("http://{}", a.grpc));
    let gw = Gateway::start(dir.path(), &v1, &["--batch-timeout", "200ms"]).await;
    #[derive(clap::Parser)]
    struct GenerateCli {
        #[command(flatten)]
        args: loadtest::generate::GenerateArgs,
    }
    let endpoint = gw.grpc.to_string();
    let argv = ["generate", "--endpoint", &endpoint, "--rate", "2000", "--duration", "4s"];
    let extra = ["--spans-per-request", "20", "--concurrency", "4"];
    let args = <GenerateCli as clap::Parser>::parse_from(argv.into_iter().chain(extra)).args;
    let reload = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let v2 = v1.replace(
            "      endpoint:",
            "      headers:\n        - name: X-Tenant\n          value: team-a\n      endpoint:",
        ) + &pipeline("second", "http", &format!("http://{}", b.http));
        std::fs::write(&gw.pipelines, v2).unwrap();
    };
    let (report, ()) = tokio::join!(loadtest::generate::run(args), reload);
    let report = report.unwrap();
    let sent = report["sent_spans"].as_u64().unwrap();
    assert!(sent >= 6000, "{report}");
    assert_eq!(report["refused_spans"], 0);
    wait_until("every accepted span at backend a", Duration::from_secs(20), || {
        a.stats()["unique_spans"].as_u64() >= Some(sent)
    })
    .await;
    let stats = a.stats();
    assert_eq!(stats["unique_spans"].as_u64(), Some(sent), "{stats}");
    assert_eq!(stats["duplicates"], 0, "{stats}");
    assert!(b.spans_received() > 0, "{}", gw.proc.log_text());
    assert_eq!(gw.metric("otlp_gateway_config_reloads_total{result=\"success\"}"), 2.0);
    let status = gw.status();
    assert_eq!(status["pipelines"].as_array().unwrap().len(), 2, "{status}");
}

/// Scenario: SIGTERM while a batch waits for its 60 s timeout.
/// Guarantees: the batch is flushed and delivered before the process exits with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_flushes_pending_batches() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let mut gw = Gateway::start(
        dir.path(),
        &pipeline("p", "http", &format!("http://{}", sink.http)),
        &["--batch-timeout", "60s"],
    )
    .await;
    let sent = send_with_python("grpc", gw.grpc, 42, "shutdown").await;
    assert_eq!(sink.spans_received(), 0);
    let status = gw.proc.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_same_spans(&sent, &sink.spans());
    assert!(gw.proc.log_text().contains("\"undelivered_spans\":0"));
}

/// Scenario: a file with one valid pipeline, one that references a missing Secret and one with a bad
/// endpoint.
/// Guarantees: the valid one runs; the others are reported by name with the field and Kyma's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_pipelines_are_reported_and_valid_ones_run() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let yaml = pipeline("good", "grpc", &format!("http://{}", sink.grpc))
        + &pipeline("no-port", "grpc", "collector.example")
        + "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: no-secret}\nspec:\n  output:\n    otlp:\n      endpoint:\n        valueFrom: {secretKeyRef: {name: gone, namespace: ns, key: url}}\n";
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    let status = gw.status();
    let by_name =
        |n: &str| status["pipelines"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by_name("good")["running"], true);
    assert_eq!(by_name("no-port")["reason"], "EndpointInvalid");
    assert!(
        by_name("no-port")["message"]
            .as_str()
            .unwrap()
            .contains("spec.output.otlp.endpoint: OTLP output endpoint invalid: missing port")
    );
    assert_eq!(by_name("no-secret")["reason"], "ReferencedSecretMissing");
    let log = gw.proc.log_text();
    assert!(log.contains("\"pipeline\":\"no-secret\"") && log.contains("ReferencedSecretMissing"), "{log}");
    let sent = send_with_python("grpc", gw.grpc, 10, "valid").await;
    wait_until("valid pipeline delivers", Duration::from_secs(20), || sink.spans_received() >= 10).await;
    assert_same_spans(&sent, &sink.spans());
}

/// Scenario: the backend answers 503 with Retry-After for its first 2 seconds, then recovers.
/// Guarantees: the gateway retries and delivers every span exactly once; retries are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retryable_failures_are_retried_until_the_backend_recovers() {
    // The Python is found (or made, on a fresh clone) before the backend's 2 s outage starts.
    python();
    let dir = tempdir();
    let flaky = Sink::start(dir.path(), "flaky", &["--down-for", "2s"]).await;
    let gw = Gateway::start(
        dir.path(),
        &pipeline("flaky", "http", &format!("http://{}", flaky.http)),
        &["--batch-timeout", "50ms", "--retry-initial-interval", "100ms"],
    )
    .await;
    let sent = send_with_python("grpc", gw.grpc, 30, "retry").await;
    wait_until("delivery after recovery", Duration::from_secs(20), || flaky.spans_received() >= 30).await;
    assert_same_spans(&sent, &flaky.spans());
    assert!(flaky.stats()["refused_requests"].as_u64().unwrap() > 0);
    assert!(
        gw.metric("otlp_gateway_exporter_retries_total{exporter=\"otlp_http/tracepipeline-flaky\"}") > 0.0
    );
    assert_eq!(
        gw.metric("otelcol_exporter_send_failed_spans_total{exporter=\"otlp_http/tracepipeline-flaky\"}"),
        0.0
    );
}

/// Scenario: the backend rejects every request as invalid (not retryable); the pipeline uses basic
/// auth and a header from a Secret.
/// Guarantees: batches are dropped without retries and counted as send failures; the credentials never
/// appear in the gateway's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_failures_are_counted_and_secrets_stay_out_of_logs() {
    let dir = tempdir();
    let rejecting = Sink::start(dir.path(), "rejecting", &["--reject-fraction", "1.0"]).await;
    let yaml = format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {{name: strict}}\nspec:\n  output:\n    otlp:\n      endpoint: {{value: 'http://{}'}}\n      authentication:\n        basic:\n          user: {{value: admin}}\n          password: {{valueFrom: {{secretKeyRef: {{name: creds, namespace: ns, key: pw}}}}}}\n      headers:\n        - name: X-Api-Key\n          valueFrom: {{secretKeyRef: {{name: creds, namespace: ns, key: token}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: ns}}\nstringData: {{pw: hunter2-password, token: tok-4f9a1c}}\n",
        rejecting.grpc
    );
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "50ms", "--log-level", "debug"]).await;
    send_with_python("http", gw.http, 25, "rejected").await;
    let failed = "otelcol_exporter_send_failed_spans_total{exporter=\"otlp_grpc/tracepipeline-strict\"}";
    wait_until("failures counted", Duration::from_secs(20), || gw.metric(failed) >= 25.0).await;
    assert_eq!(gw.metric(failed), 25.0);
    assert_eq!(
        gw.metric("otlp_gateway_exporter_retries_total{exporter=\"otlp_grpc/tracepipeline-strict\"}"),
        0.0
    );
    assert_eq!(rejecting.spans_received(), 0);
    let log = gw.proc.log_text();
    assert!(log.contains("dropping batch"), "{log}");
    for secret in ["hunter2-password", "tok-4f9a1c", "YWRtaW46aHVudGVyMi1wYXNzd29yZA"] {
        assert!(!log.contains(secret), "secret {secret} leaked into the log");
    }
}

/// Scenario: a pods file describes two pods; the Python SDK sends spans carrying `k8s.pod.ip` of one
/// (and an SDK default service name); a client bound to 127.0.0.5 sends as the other; a third client
/// is no known pod.
/// Guarantees: the first two arrive with their pod's attributes and a resolved service.name; the
/// unknown sender's resource passes through unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_are_enriched_from_the_pod_index() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let pods = r#"
apiVersion: v1
kind: Node
metadata: {name: node-e2e, labels: {topology.kubernetes.io/zone: zone-b, kubernetes.io/arch: arm64}}
---
apiVersion: v1
kind: Pod
metadata:
  {name: cart-5f6d7c-abcde, namespace: shop, uid: uid-cart, labels: {app.kubernetes.io/name: cart, pod-template-hash: 5f6d7c},
   ownerReferences: [{kind: ReplicaSet, name: cart-5f6d7c, controller: true}]}
spec: {nodeName: node-e2e}
status: {podIP: 10.1.2.3}
---
apiVersion: v1
kind: Pod
metadata: {name: ledger-0, namespace: bank, uid: uid-ledger, ownerReferences: [{kind: StatefulSet, name: ledger, controller: true}]}
spec: {nodeName: node-e2e}
status: {podIP: 127.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere, namespace: x, uid: uid-else}
spec: {nodeName: other-node}
status: {podIP: 127.0.0.1}
"#;
    let pods_path = dir.path().join("pods.yaml");
    std::fs::write(&pods_path, pods).unwrap();
    let gw = Gateway::start(
        dir.path(),
        &pipeline("p", "grpc", &format!("http://{}", sink.grpc)),
        &["--batch-timeout", "50ms", "--pods", pods_path.to_str().unwrap(), "--node-name", "node-e2e"],
    )
    .await;

    let by_attr =
        send_with_python_attrs("grpc", gw.grpc, 20, "unknown_service:python", &["k8s.pod.ip=10.1.2.3"]).await;
    let unknown = send_with_python("http", gw.http, 5, "plain-service").await;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use tracegw_contract::Compression;
    let mut req: ExportTraceServiceRequest = otlp_gateway::testing::sample_request(1, 7, 1, 4);
    req.resource_spans[0].resource = Some(Resource {
        attributes: vec![otlp_gateway::testing::kv("service.name", "unknown_service")],
        ..Default::default()
    });
    let body = bytes::Bytes::from(prost::Message::encode_to_vec(&req));
    let client = grpc_client(gw.grpc, Compression::None, Some("127.0.0.5".parse().unwrap()));
    send_raw(&client, body, 7).await.unwrap();

    wait_until("all spans at the backend", Duration::from_secs(20), || sink.spans_received() >= 32).await;
    let spans = sink.spans();
    let resource_of = |span_id: &str| {
        spans.iter().find(|s| s["spanId"].as_str().unwrap().eq_ignore_ascii_case(span_id)).unwrap()["resource"].clone()
    };
    let cart = resource_of(by_attr[0]["span_id"].as_str().unwrap());
    assert_eq!(cart["service.name"], "cart", "{cart}");
    assert_eq!(cart["k8s.deployment.name"], "cart");
    assert_eq!(cart["k8s.namespace.name"], "shop");
    assert_eq!(cart["k8s.pod.name"], "cart-5f6d7c-abcde");
    assert_eq!(cart["k8s.pod.uid"], "uid-cart");
    assert_eq!(cart["k8s.node.name"], "node-e2e");
    assert_eq!(cart["cloud.availability_zone"], "zone-b");
    assert_eq!(cart["host.arch"], "arm64");
    assert_eq!(cart["k8s.pod.ip"], "10.1.2.3");

    let ledger: Vec<&Value> = spans.iter().filter(|s| s["resource"]["k8s.pod.name"] == "ledger-0").collect();
    assert_eq!(ledger.len(), 7);
    let ledger = &ledger[0]["resource"];
    assert_eq!(ledger["service.name"], "ledger", "{ledger}");
    assert_eq!(ledger["k8s.statefulset.name"], "ledger");
    assert_eq!(ledger["k8s.namespace.name"], "bank");

    // 127.0.0.1 belongs to a pod of another node, which is not indexed: nothing is added.
    let plain = resource_of(unknown[0]["span_id"].as_str().unwrap());
    assert_eq!(plain["service.name"], "plain-service");
    let added: Vec<&String> = plain
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("k8s.") || k.starts_with("cloud.") || k.starts_with("host."))
        .collect();
    assert!(added.is_empty(), "unknown sender was enriched: {plain}");
}

/// Runs `ensure_venv` for a requirements file from `threads` threads at once; returns each result.
fn ensure_venv_concurrently(
    target: &std::path::Path,
    requirements: &std::path::Path,
    threads: usize,
) -> Vec<Result<(std::path::PathBuf, bool), String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..threads {
        let (tx, target, requirements) = (tx.clone(), target.to_path_buf(), requirements.to_path_buf());
        std::thread::spawn(move || {
            let _ = tx.send(common::python_env::ensure_venv(&target, &requirements));
        });
    }
    (0..threads)
        .map(|_| rx.recv_timeout(Duration::from_secs(180)).expect("venv creation took over 180 s"))
        .collect()
}

/// Scenario: four tests ask at once for the test Python in a target directory that has none, then
/// one asks again. Guarantees: the virtual environment is created exactly once (the others wait on
/// the lock and reuse it), all get the same working Python, and the later call reuses it.
#[test]
fn test_python_is_created_once_and_reused() {
    let dir = tempdir();
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "# nothing beyond the standard library\n").unwrap();
    let results = ensure_venv_concurrently(dir.path(), &requirements, 4);
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "{results:?}");
    assert!(results.iter().all(|(p, _)| *p == dir.path().join("test-venv/bin/python")), "{results:?}");
    let out = std::process::Command::new(&results[0].0).args(["-c", "import json"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let again = common::python_env::ensure_venv(dir.path(), &requirements).unwrap();
    assert!(!again.1, "a complete environment was created again");
}

/// Scenario: the requirements cannot be installed (pip rejects a line). Guarantees: every caller gets
/// an error that names the failed step and carries pip's own output; nothing counts as complete, so
/// a fixed requirements file is installed on the next call.
#[test]
fn test_python_creation_failure_says_what_failed() {
    let dir = tempdir();
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "this is not a requirement!!\n").unwrap();
    for result in ensure_venv_concurrently(dir.path(), &requirements, 2) {
        let e = result.unwrap_err();
        assert!(e.contains("pip install failed"), "{e}");
        assert!(e.contains("this is not a requirement"), "pip's output is missing: {e}");
    }
    std::fs::write(&requirements, "# fixed\n").unwrap();
    let (_, created) = common::python_env::ensure_venv(dir.path(), &requirements).unwrap();
    assert!(created);
}
