//! No value taken from a Secret shows in what the gateway says: marker strings planted in Secret
//! values (endpoints, header values, basic auth, TLS material, OAuth2 credentials and token URL),
//! valid and invalid, are looked for in its debug log, `/status` and `/metrics` while spans flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Gateway, Sink, tempdir, wait_until};
use serde_json::{Value, json};

/// Every planted value contains this.
const MARKER: &str = "PLANTED";

fn from(secret: &str, key: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"name": secret, "namespace": "default", "key": key}}})
}

/// A pipeline's name, its `spec.output.otlp`, its Secret's values, and the reason it must be
/// reported with (`None`: it runs).
type Case = (&'static str, Value, Vec<(&'static str, String)>, Option<&'static str>);

/// Pipelines reading Secrets with planted values.
fn cases(backend: &str) -> Vec<Case> {
    let ok = json!({"value": backend});
    vec![
        (
            "ep-space",
            json!({"endpoint": from("ep-space", "v")}),
            vec![("v", format!("{MARKER}-1 host:4317"))],
            Some("EndpointInvalid"),
        ),
        (
            "ep-crlf",
            json!({"protocol": "http", "endpoint": from("ep-crlf", "v")}),
            vec![("v", format!("http://{MARKER}-2:4318/a\r\nb"))],
            Some("EndpointInvalid"),
        ),
        (
            "hdr-crlf",
            json!({"endpoint": ok, "headers": [{"name": "X-Api-Key", "valueFrom": from("hdr-crlf", "v")["valueFrom"]}]}),
            vec![("v", format!("{MARKER}-3\r\nX-Injected: 1"))],
            Some("HeaderInvalid"),
        ),
        (
            "basic",
            json!({"endpoint": ok, "authentication": {"basic": {"user": from("basic", "u"), "password": from("basic", "p")}}}),
            vec![("u", format!("{MARKER}-4")), ("p", format!("{MARKER}-5"))],
            None,
        ),
        (
            "tls",
            json!({"endpoint": ok, "tls": {"ca": from("tls", "ca")}}),
            vec![("ca", format!("-----BEGIN CERTIFICATE-----\n{MARKER}-6\n-----END CERTIFICATE-----\n"))],
            Some("TLSConfigurationInvalid"),
        ),
        (
            // A token endpoint that cannot be reached: every export fails and is logged.
            "oauth",
            json!({"endpoint": {"value": backend.replace("http://", "https://")}, "authentication": {"oauth2": {
                "tokenURL": from("oauth", "url"), "clientID": from("oauth", "id"), "clientSecret": from("oauth", "secret")}}}),
            vec![
                ("url", format!("http://127.0.0.1:9/{MARKER}-7/token")),
                ("id", format!("{MARKER}-8")),
                ("secret", format!("{MARKER}-9")),
            ],
            None,
        ),
    ]
}

fn yaml(backend: &str) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let mut docs = Vec::new();
    for (name, otlp, secret, _) in cases(backend) {
        docs.push(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
            "metadata": {"name": name}, "spec": {"output": {"otlp": otlp}}}));
        let data: serde_json::Map<String, Value> =
            secret.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
        docs.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "data": data}));
    }
    docs.iter().map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap())).collect()
}

/// Scenario: the gateway runs pipelines whose Secrets hold planted markers, valid and invalid, at
/// debug log level, while spans are sent and the OAuth2 pipeline's token requests fail.
/// Guarantees: each invalid pipeline is reported with its reason, the valid ones run, and no
/// marker appears in the log, `/status` or `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_show() {
    let dir = tempdir();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let backend = format!("http://{}", sink.grpc);
    let gw = Gateway::start(dir.path(), &yaml(&backend), &["--log-level", "debug"]).await;
    wait_until("pipelines to be applied", Duration::from_secs(10), || {
        gw.status()["pipelines"].as_array().is_some_and(|p| p.len() == cases(&backend).len())
    })
    .await;
    let status = gw.status();
    for (name, _, _, reason) in cases(&backend) {
        let state = status["pipelines"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(state["running"], reason.is_none(), "{name}: {state}");
        if let Some(reason) = reason {
            assert_eq!(state["reason"], reason, "{name}: {state}");
        }
    }
    let body = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 5, 2, 8));
    for _ in 0..3 {
        let (response, _) =
            common::post(&gw.url("/v1/traces"), &[("content-type", "application/x-protobuf")], body.clone())
                .await
                .unwrap();
        assert_eq!(response.status(), 200);
    }
    wait_until("spans at the backend", Duration::from_secs(20), || sink.spans_received() >= 15).await;
    wait_until("a failed token request", Duration::from_secs(20), || {
        gw.metric("otlp_gateway_oauth2_token_requests_total{exporter=\"otlp_grpc/tracepipeline-oauth\",result=\"failure\"}") >= 1.0
    })
    .await;
    for (what, text) in
        [("log", gw.proc.log_text()), ("/status", gw.status().to_string()), ("/metrics", gw.metrics_text())]
    {
        assert!(!text.is_empty());
        if let Some(at) = text.find(MARKER) {
            let context = &text[at.saturating_sub(200)..(at + 100).min(text.len())];
            panic!("a Secret value shows in the {what}: …{context}…");
        }
    }
}
