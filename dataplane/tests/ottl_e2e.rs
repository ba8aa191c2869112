//! End-to-end tests of a TracePipeline's OTTL `transform` and `filter` with the real `otlp-gateway`
//! binary: spans sent with the OpenTelemetry Python SDK, received by real OTLP receivers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A span's attributes as plain JSON values.
fn attributes(span: &Value) -> HashMap<String, Value> {
    span["attributes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    let v = &kv["value"];
                    let plain = v
                        .get("stringValue")
                        .cloned()
                        .or_else(|| v.get("boolValue").cloned())
                        .or_else(|| v.get("doubleValue").cloned())
                        .or_else(|| {
                            v.get("intValue").map(|i| match i {
                                Value::String(s) => Value::from(s.parse::<i64>().unwrap()),
                                other => other.clone(),
                            })
                        })
                        .unwrap_or(Value::Null);
                    (kv["key"].as_str().unwrap().to_string(), plain)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn index_of(span: &Value) -> i64 {
    attributes(span)["e2e.index"].as_i64().unwrap()
}

/// A pipeline with Kyma's `transform` and `filter` sections (YAML lines, indented under `spec`).
fn pipeline_with(name: &str, endpoint: &str, processing: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\nspec:\n  output:\n    otlp:\n      protocol: grpc\n      endpoint:\n        value: {endpoint}\n{processing}---\n"
    )
}

/// Scenario: two pipelines, one with Kyma's documented transform (TestTransform's `where` statement),
/// condition-scoped statements, a statement that fails on some spans, and a filter that reads what
/// the transform wrote; the other with no processing. Twenty spans from the Python SDK.
/// Guarantees: the transformed pipeline gets exactly the spans its filter keeps, each changed as the
/// statements say (a failing statement skipped only where it fails); transform runs before filter;
/// the plain pipeline gets every span unchanged; the filter and error counters say what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transform_then_filter_per_pipeline() {
    let dir = tempdir();
    let processed = Sink::start(dir.path(), "processed", &[]).await;
    let plain = Sink::start(dir.path(), "plain", &[]).await;
    let processing = r#"  transform:
    - statements:
        - 'set(span.attributes["system"], "false") where not IsMatch(resource.attributes["k8s.namespace.name"], ".*-system")'
    - conditions:
        - 'span.attributes["e2e.flag"] == true'
      statements:
        - 'set(span.attributes["parity"], "even")'
        - 'set(span.name, Concat([span.name, "even"], "-"))'
    - statements:
        - 'set(span.attributes["ratio.doubled"], span.attributes["e2e.ratio"] * 2)'
        - 'set(span.attributes["broken"], span.attributes["e2e.text"] * 2) where span.attributes["e2e.index"] < 3'
        - 'set(resource.attributes["k8s.cluster.name"], "e2e-cluster")'
  filter:
    - conditions:
        - 'span.attributes["e2e.index"] >= 15'
        - 'span.attributes["parity"] == "even" and span.attributes["e2e.index"] == 0'
"#;
    let yaml = pipeline_with("processed", &format!("http://{}", processed.grpc), processing)
        + &pipeline("plain", "grpc", &format!("http://{}", plain.grpc));
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;

    let sent = send_with_python("grpc", gw.grpc, 20, "py-ottl").await;
    wait_until("every span at the plain backend", Duration::from_secs(20), || plain.spans_received() >= 20)
        .await;
    // Spans 1..=14 pass the filter (0 is dropped through what the transform wrote, 15..=19 by index).
    wait_until("the kept spans at the processed backend", Duration::from_secs(20), || {
        processed.spans_received() >= 14
    })
    .await;

    let received = processed.spans();
    let mut indexes: Vec<i64> = received.iter().map(index_of).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=14).collect::<Vec<_>>(), "the filter keeps exactly spans 1..=14");
    for span in &received {
        let i = index_of(span);
        let attrs = attributes(span);
        let sent_span = sent.iter().find(|s| s["attributes"]["e2e.index"] == i).unwrap();
        assert_eq!(attrs["system"], "false", "Kyma's TestTransform statement ran on span {i}");
        if i % 2 == 0 {
            assert_eq!(attrs["parity"], "even");
            assert_eq!(span["name"], format!("operation-{i}-even"));
        } else {
            assert!(!attrs.contains_key("parity"), "span {i} is not selected by the group's condition");
            assert_eq!(span["name"], format!("operation-{i}"));
        }
        let ratio = sent_span["attributes"]["e2e.ratio"].as_f64().unwrap();
        assert_eq!(attrs["ratio.doubled"].as_f64().unwrap(), ratio * 2.0, "span {i}");
        assert!(!attrs.contains_key("broken"), "a string times an int fails and is skipped on span {i}");
        assert_eq!(span["resource"]["k8s.cluster.name"], "e2e-cluster");
        // Untouched fields stay as sent.
        assert_eq!(span["spanId"].as_str().unwrap().to_lowercase(), sent_span["span_id"].as_str().unwrap());
        assert_eq!(attrs["e2e.text"], sent_span["attributes"]["e2e.text"]);
    }

    let untouched = plain.spans();
    assert_eq!(untouched.len(), 20);
    for span in &untouched {
        let attrs = attributes(span);
        assert!(
            !attrs.contains_key("system") && !attrs.contains_key("parity"),
            "the plain pipeline is untouched"
        );
        assert!(span["resource"].get("k8s.cluster.name").is_none());
    }

    assert_eq!(
        gw.metric("otelcol_processor_filter_spans_filtered_total{filter=\"filter/tracepipeline-user-defined-processed\"}"),
        6.0
    );
    // Spans 0, 1 and 2 each fail the `broken` statement once.
    assert_eq!(gw.metric("otlp_gateway_ottl_errors_total{pipeline=\"processed\",stage=\"transform\"}"), 3.0);
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-processed\"}"),
        14.0
    );
    assert_eq!(
        gw.metric("otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-plain\"}"),
        20.0
    );
}

/// Scenario: Kyma's TestFilterInvalid pipeline (a condition without its context prefix) beside a valid
/// one, in the gateway's local mode. Guarantees: the invalid pipeline does not run and is reported
/// with Kyma's reason and message; the valid one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_spec_is_refused_with_kymas_message() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let invalid = "  filter:\n    - conditions:\n        - 'Len(resource.attributes[\"k8s.namespace.name\"]) > 0'\n        - 'attributes[\"foo\"] == \"bar\"'\n";
    let yaml = pipeline_with("invalid", &format!("http://{}", sink.grpc), invalid)
        + &pipeline("valid", "grpc", &format!("http://{}", sink.grpc));
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    let status = gw.status();
    let by_name =
        |n: &str| status["pipelines"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by_name("valid")["running"], true);
    let invalid = by_name("invalid");
    assert_eq!(invalid["reason"], "OTTLSpecInvalid");
    let message = invalid["message"].as_str().unwrap();
    assert!(
        message.contains("spec.filter[0]: OTTL specification is invalid, invalid FilterSpec: ")
            && message.contains("missing context name for path \"attributes[foo]\""),
        "{message}"
    );
    send_with_python("grpc", gw.grpc, 5, "py-valid").await;
    wait_until("the valid pipeline delivers", Duration::from_secs(20), || sink.spans_received() >= 5).await;
}
