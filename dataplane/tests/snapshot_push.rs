//! The control plane's push path without a cluster: `telemetry-manager`'s local mode (in-process)
//! renders snapshots from TracePipeline YAML and serves them; the real `otlp-gateway` binary subscribes
//! with `--snapshot-url` and a token file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use telemetry_manager::local::{self, LocalConfig};

/// Scenario: the manager serves a snapshot with one pipeline; the gateway subscribes and spans flow;
/// the file is edited to point at another backend; then the manager goes away.
/// Guarantees: spans reach the first backend, then (after the edit reached the gateway) only the
/// second; a wrong token is refused with 401; without the manager the gateway keeps its last snapshot;
/// the manager reports each pipeline's condition when it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_reach_a_running_gateway() {
    let dir = tempdir();
    let a = Sink::start(dir.path(), "a", &[]).await;
    let b = Sink::start(dir.path(), "b", &[]).await;
    let pipelines = dir.path().join("manager-pipelines.yaml");
    std::fs::write(&pipelines, pipeline("traces", "grpc", &format!("http://{}", a.grpc))).unwrap();
    let token_file = dir.path().join("token");
    let reports = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink_reports = Arc::clone(&reports);
    let manager = local::start(
        LocalConfig::new(pipelines.clone(), "127.0.0.1:0".parse().unwrap(), token_file.clone()),
        move |line| sink_reports.lock().unwrap().push(line),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().len(), 64, "a random token was created");
    assert!(
        reports
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("traces\tConfigurationGenerated=True\tGatewayConfigured"))
    );

    let url = format!("http://{}", manager.addr);
    let (status, _) = get_with_token(&format!("{url}/v1/snapshots"), "wrong").await;
    assert_eq!(status, 401);

    let gw = Gateway::start(
        dir.path(),
        "# unused: the gateway follows the manager\n",
        &["--snapshot-url", &url, "--token-file", token_file.to_str().unwrap(), "--batch-timeout", "50ms"],
    )
    .await;
    let ready = format!("http://{}/readyz", gw.health);
    wait_until_ok(&ready).await;
    let first = send_with_python("grpc", gw.grpc, 10, "before").await;
    wait_until("backend a", Duration::from_secs(20), || a.spans_received() >= 10).await;
    assert_eq!(a.spans().len(), first.len());

    let version = gw.metric("otlp_gateway_config_version");
    let edited = Instant::now();
    std::fs::write(&pipelines, pipeline("traces", "grpc", &format!("http://{}", b.grpc))).unwrap();
    wait_until("the new snapshot at the gateway", Duration::from_secs(20), || {
        gw.metric("otlp_gateway_config_version") > version
    })
    .await;
    eprintln!("edit reached the gateway after {:?}", edited.elapsed());
    send_with_python("grpc", gw.grpc, 7, "after").await;
    wait_until("backend b", Duration::from_secs(20), || b.spans_received() >= 7).await;
    assert_eq!(a.spans_received(), 10, "the old backend got spans after the switch");

    manager.stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_with_python("http", gw.http, 5, "manager-gone").await;
    wait_until("last good snapshot still in force", Duration::from_secs(20), || b.spans_received() >= 12)
        .await;
}

async fn get_with_token(url: &str, token: &str) -> (u16, bytes::Bytes) {
    use http_body_util::{BodyExt, Full};
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = http::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn wait_until_ok(url: &str) {
    for _ in 0..400 {
        if get(url).await.map(|(s, _)| s == 200).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}
