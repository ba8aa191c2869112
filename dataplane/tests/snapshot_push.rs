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

/// The value of `key=` in a text log line, up to the next space.
fn text_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split(' ').next()
}

/// Scenario: a gateway told to follow a manager on a closed port of 127.0.0.1 (nobody listens),
/// logging as text into a file. Guarantees: `/status` and `/readyz` say it is not ready because no
/// snapshot came, with the cause under hyper's message (the refused connection); the log says so
/// too, names the manager's URL and not the unused `--pipelines` path, and has no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_manager_the_gateway_says_why_it_is_not_ready() {
    let dir = tempdir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let log = dir.path().join("gateway.log");
    let child = std::process::Command::new(gateway_bin())
        .args(["--snapshot-url", &url, "--token-file", token.to_str().unwrap()])
        .args(["--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"])
        .args(["--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc { child, log };
    let mut started = String::new();
    wait_until("the gateway to start", Duration::from_secs(20), || {
        started = proc.log_text().lines().find(|l| l.contains("otlp-gateway started")).unwrap_or("").into();
        !started.is_empty()
    })
    .await;
    assert_eq!(text_field(&started, "snapshot_url"), Some(url.as_str()), "{started}");
    assert!(!started.contains("pipelines="), "the unused --pipelines path is printed: {started}");
    let health = text_field(&started, "health_addr").unwrap().to_string();

    let mut status = serde_json::Value::Null;
    wait_until("/status to name the refused connection", Duration::from_secs(20), || {
        status = serde_json::from_slice(&blocking_get(format!("http://{health}/status"))).unwrap();
        status["reason"].as_str().is_some_and(|r| r.contains("refused"))
    })
    .await;
    assert_eq!(status["ready"], false, "{status}");
    let reason = status["reason"].as_str().unwrap();
    assert!(reason.starts_with("no configuration loaded yet: no snapshot from the manager at"), "{reason}");
    assert!(reason.contains("cannot reach the manager: client error (Connect): "), "{reason}");
    let (code, body) = get(&format!("http://{health}/readyz")).await.unwrap();
    assert_eq!(code, 503);
    assert!(String::from_utf8_lossy(&body).starts_with("not ready: no configuration loaded yet"), "{body:?}");

    let text = proc.log_text();
    assert!(
        text.lines().any(
            |l| l.contains("cannot reach the manager: client error (Connect): ") && l.contains("refused")
        ),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "colour codes in a log written to a file: {text:?}");
}
