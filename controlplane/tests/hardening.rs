//! The manager's listeners against clients that stall, go quiet or come in too great numbers, over
//! real sockets on 127.0.0.1, and the binary stopping on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use telemetry_manager::local::{self, LocalConfig, LocalManager};
use telemetry_manager::net::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const TOKEN: &str = "test-token";
const PIPELINE: &str = "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: p}\nspec:\n  output:\n    otlp:\n      endpoint: {value: 'http://127.0.0.1:4317'}\n";
/// Short deadlines, so that the tests wait little.
const SHORT: Duration = Duration::from_millis(300);
/// How much later than its deadline a connection may be closed (a loaded machine).
const SLACK: Duration = Duration::from_secs(2);

fn limits(max_connections: usize) -> ServerLimits {
    ServerLimits {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        idle_timeout: SHORT * 2,
        handshake_timeout: SHORT,
        max_connections,
    }
}

async fn start(dir: &Path, limits: ServerLimits) -> LocalManager {
    std::fs::write(dir.join("pipelines.yaml"), PIPELINE).unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let config = LocalConfig {
        limits,
        ..LocalConfig::new(dir.join("pipelines.yaml"), "127.0.0.1:0".parse().unwrap(), dir.join("token"))
    };
    local::start(config, |_| {}).await.unwrap()
}

fn metrics_text(m: &LocalManager) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.metrics.registry()).unwrap();
    out
}

fn sample(text: &str, series: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

/// Sends `bytes` and reads until the server closes, for at most `limit`; returns what was read, or
/// `None` when the connection was still open at the limit.
async fn send_and_wait_close(
    mut stream: TcpStream,
    bytes: impl AsRef<[u8]>,
    limit: Duration,
) -> Option<String> {
    stream.write_all(bytes.as_ref()).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        loop {
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Scenario: 2,000 connections to the snapshot/report listener that never finish: 1,000 send half a
/// request head, 600 a whole report head and half its body, 400 nothing at all.
/// Guarantees: every one is closed by the server within its deadline (plus slack); the body ones
/// first get `408 Request Timeout`; the metrics count 1,400 header and 600 body deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_after_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path(), limits(10_000)).await;
    let partial_head = b"GET /v1/snapshots HTTP/1.1\r\nhost: manager\r\nauthorization: Bear".to_vec();
    let partial_body = format!(
        "POST /v1/reports HTTP/1.1\r\nhost: manager\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"gateway\":"
    )
    .into_bytes();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let bytes = match i % 10 {
            0..5 => partial_head.clone(),
            5..8 => partial_body.clone(),
            _ => Vec::new(),
        };
        let stream = TcpStream::connect(m.addr).await.unwrap();
        tasks.push(tokio::spawn(send_and_wait_close(stream, bytes, SHORT + SLACK * 3)));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let open = answers.iter().filter(|a| a.is_none()).count();
    assert_eq!(open, 0, "{open} of 2,000 half-sent requests still open after {elapsed:?}");
    let timed_out = answers.iter().flatten().filter(|a| a.starts_with("HTTP/1.1 408")).count();
    assert_eq!(timed_out, 600);
    assert!(answers.iter().flatten().all(|a| a.is_empty() || a.starts_with("HTTP/1.1 408")));
    let text = metrics_text(&m);
    let deadline = |kind: &str| {
        sample(
            &text,
            &format!(
                "telemetry_manager_connection_deadlines_total{{listener=\"snapshots\",deadline=\"{kind}\"}}"
            ),
        )
    };
    assert_eq!((deadline("header"), deadline("body")), (1400, 600), "{text}");
    m.stop.cancel();
}

/// Scenario: a client sends one complete request on a keep-alive connection and then nothing; another
/// follows the snapshot stream.
/// Guarantees: the idle connection is closed after the idle deadline and not before; the stream,
/// a request in flight, stays open well past every deadline; the idle close is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_streams_stay() {
    let dir = tempfile::tempdir().unwrap();
    let limits = limits(100);
    let m = start(dir.path(), limits).await;
    let mut stream = TcpStream::connect(m.addr).await.unwrap();
    let subscribe =
        format!("GET /v1/snapshots HTTP/1.1\r\nhost: manager\r\nauthorization: Bearer {TOKEN}\r\n\r\n");
    stream.write_all(subscribe.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 4096];
    let n = tokio::time::timeout(SLACK, stream.read(&mut first)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));

    let idle = TcpStream::connect(m.addr).await.unwrap();
    let started = Instant::now();
    let answer = send_and_wait_close(
        idle,
        b"GET /nothing HTTP/1.1\r\nhost: manager\r\n\r\n",
        limits.idle_timeout + SLACK,
    )
    .await
    .expect("closed after the idle deadline");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(started.elapsed() >= limits.idle_timeout, "closed after {:?}", started.elapsed());

    // The stream outlives every deadline: nothing more arrives, and it is not closed.
    let more = tokio::time::timeout(limits.idle_timeout * 2, stream.read(&mut first)).await;
    assert!(more.is_err(), "the snapshot stream ended: {more:?}");
    let text = metrics_text(&m);
    assert_eq!(
        sample(
            &text,
            "telemetry_manager_connection_deadlines_total{listener=\"snapshots\",deadline=\"idle\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(sample(&text, "telemetry_manager_connections_open{listener=\"snapshots\"}"), 1, "{text}");
    m.stop.cancel();
}

/// Scenario: a listener capped at 3 connections holds 3 quiet ones, a 4th connects, then one of the
/// 3 leaves and another connects.
/// Guarantees: the 4th is closed at once and counted as refused; once a slot is free, a new
/// connection is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let long = ServerLimits { max_connections: 3, ..ServerLimits::default() };
    let m = start(dir.path(), long).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(m.addr).await.unwrap());
    }
    // Wait until the server holds all three (its gauge), so that the 4th is the one refused.
    let deadline = Instant::now() + SLACK;
    while sample(&metrics_text(&m), "telemetry_manager_connections_open{listener=\"snapshots\"}") < 3 {
        assert!(Instant::now() < deadline, "{}", metrics_text(&m));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fourth = TcpStream::connect(m.addr).await.unwrap();
    let closed = send_and_wait_close(fourth, b"", SLACK).await;
    assert_eq!(closed.as_deref(), Some(""), "the 4th connection was not closed at once");
    let text = metrics_text(&m);
    assert_eq!(
        sample(&text, "telemetry_manager_connections_refused_total{listener=\"snapshots\"}"),
        1,
        "{text}"
    );

    drop(held.pop());
    let deadline = Instant::now() + SLACK;
    while sample(&metrics_text(&m), "telemetry_manager_connections_open{listener=\"snapshots\"}") > 2 {
        assert!(Instant::now() < deadline, "{}", metrics_text(&m));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fifth = TcpStream::connect(m.addr).await.unwrap();
    let answer =
        send_and_wait_close(fifth, b"GET /nothing HTTP/1.1\r\nhost: m\r\nconnection: close\r\n\r\n", SLACK)
            .await
            .unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    m.stop.cancel();
}

/// Reads the child's stderr on a thread until the line with `serving snapshots on ADDR`, returning the
/// address and the thread that keeps collecting the rest.
fn serving_address(stderr: std::process::ChildStderr) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("serving snapshots on ") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("the manager announced its address");
    (addr, reader)
}

/// Scenario: the real `telemetry-manager` binary in local mode, given short deadlines by flags,
/// receives half a request, and then SIGTERM (what Kubernetes sends to PID 1 of the container).
/// Guarantees: the half-sent request is closed after the flag's deadline; the process logs that it
/// stops on SIGTERM and that it stopped, and exits 0 within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_honours_deadline_flags_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipelines.yaml"), PIPELINE).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["--pipelines", &dir.path().join("pipelines.yaml").display().to_string()])
        .args(["--token-file", &dir.path().join("token").display().to_string()])
        .args(["--snapshot-addr", "127.0.0.1:0", "--header-read-timeout", "300ms", "--log-level", "info"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = serving_address(child.stderr.take().unwrap());
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let closed = send_and_wait_close(stream, b"GET /v1/snapshots HTTP/1.1\r\nhost:", SHORT + SLACK).await;
    assert_eq!(closed.as_deref(), Some(""));
    assert!(started.elapsed() >= SHORT, "closed after {:?}", started.elapsed());

    // SAFETY: kill(2) on the child's pid, which this test owns.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let stopping = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    let log = stderr.join().unwrap();
    assert!(log.contains("stopping") && log.contains("SIGTERM"), "{log}");
    assert!(log.contains("telemetry-manager stopped"), "{log}");
}

/// A TLS connection to the webhook on `addr`, trusting only `ca_pem`.
async fn tls_connect(addr: SocketAddr, ca_pem: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("telemetry-manager-webhook.kyma-system.svc").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap()
}

/// Scenario: the admission webhook's HTTPS listener with short deadlines: one client connects and
/// never starts its TLS handshake, another completes it and sends half a request head.
/// Guarantees: both are closed after their deadline, counted as `handshake` and `header` on the
/// `webhook` listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_closes_stalled_handshakes_and_heads() {
    use telemetry_manager::webhook_cert;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let certs = webhook_cert::render(
        &webhook_cert::Current::default(),
        &webhook_cert::service_names("kyma-system"),
        now,
    )
    .unwrap();
    let slot = Arc::new(
        telemetry_manager::webhook::CertSlot::new(&certs.serving.cert_pem, &certs.serving.key_pem).unwrap(),
    );
    let tls = telemetry_manager::webhook::server_config(slot).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = telemetry_manager::metrics::ManagerMetrics::default();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(telemetry_manager::webhook::serve_with_limits(
        listener,
        tls,
        metrics.clone(),
        limits(10),
        stop.clone(),
    ));

    let started = Instant::now();
    let silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(send_and_wait_close(silent, b"", SHORT + SLACK).await.as_deref(), Some(""));
    assert!(started.elapsed() >= SHORT, "closed after {:?}", started.elapsed());

    let mut half = tls_connect(addr, &certs.ca.cert_pem).await;
    let started = Instant::now();
    half.write_all(b"POST /validate-telemetry-kyma-project-io-v1beta1-tracepipeline HTTP/1.1\r\nhost: w")
        .await
        .unwrap();
    half.flush().await.unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(SHORT + SLACK, half.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= SHORT, "closed after {:?}", started.elapsed());

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry()).unwrap();
    let deadline = |kind: &str| {
        sample(
            &text,
            &format!(
                "telemetry_manager_connection_deadlines_total{{listener=\"webhook\",deadline=\"{kind}\"}}"
            ),
        )
    };
    assert_eq!((deadline("handshake"), deadline("header")), (1, 1), "{text}");
    stop.cancel();
}
