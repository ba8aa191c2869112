//! The abuse suite: broken and hostile clients against the real `otlp-gateway` binary over real
//! sockets. Each test reproduces one way a client could pin, starve or spin a node's gateway and
//! asserts what an operator would see instead: refusals with retry hints, closed connections,
//! bounded memory, probes answered, counters that say what happened.
//!
//! The tests take turns (one lock), so the timings they measure are not each other's load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Gateway, Sink, pipeline, tempdir, wait_until};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One abuse test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: usize = 1024 * 1024;

/// Resident memory of a process, from `/proc/<pid>/status` (`VmRSS`), in bytes.
fn rss_bytes(pid: u32) -> usize {
    status_kib(pid, "VmRSS:") * 1024
}

fn status_kib(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux the tests run on.
    Duration::from_millis(ticks * 10)
}

/// Whether the server closed `stream` (EOF or reset) within `within`; bytes it sends first (an
/// error response) are read and ignored.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Reads an HTTP/1.1 response head from `stream` (up to the blank line).
fn response_head(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn post_head(content_length: usize) -> String {
    format!(
        "POST /v1/traces HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-protobuf\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// An HTTP/2 connection to `addr` (prior knowledge), driven in the background.
async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<StreamBody<Chunks>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    send
}

type Chunks = futures::channel::mpsc::UnboundedReceiver<Result<Frame<Bytes>, std::io::Error>>;
type ChunkSender = futures::channel::mpsc::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>;
type Answer = hyper::Result<hyper::Response<hyper::body::Incoming>>;

/// A gRPC Export call whose message the caller feeds through the returned sender.
fn grpc_call(
    send: &mut hyper::client::conn::http2::SendRequest<StreamBody<Chunks>>,
) -> (ChunkSender, impl std::future::Future<Output = Answer> + Send + use<>) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let request =
        http::Request::post("http://gateway/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(StreamBody::new(rx))
            .unwrap();
    (tx, send.send_request(request))
}

/// `grpc-message` is percent-encoded on the wire.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `grpc-status` and decoded `grpc-message` of a response: from its headers (trailers-only)
/// or its trailers.
async fn grpc_status(response: hyper::Response<hyper::body::Incoming>) -> (String, String) {
    let header = |h: &http::HeaderMap, k: &str| h.get(k).map(|v| percent_decode(v.to_str().unwrap()));
    if let Some(code) = header(response.headers(), "grpc-status") {
        return (code, header(response.headers(), "grpc-message").unwrap_or_default());
    }
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    (
        header(&trailers, "grpc-status").unwrap_or_default(),
        header(&trailers, "grpc-message").unwrap_or_default(),
    )
}

fn grpc_prefix(len: usize) -> Bytes {
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(len as u32).to_be_bytes());
    Bytes::from(prefix)
}

/// A gateway exporting to a sink, with `extra` flags.
async fn gateway(dir: &std::path::Path, extra: &[&str]) -> (Gateway, Sink) {
    let sink = Sink::start(dir, "sink", &[]).await;
    let yaml = pipeline("backend", "grpc", &format!("http://{}", sink.grpc));
    let gw = Gateway::start(dir, &yaml, extra).await;
    wait_until("the pipeline to run", Duration::from_secs(10), || gw.status()["ready"] == true).await;
    (gw, sink)
}

/// A small valid OTLP/HTTP protobuf request; returns the status code (0 when the request failed).
async fn honest_request(gw: &Gateway) -> u16 {
    let body = otlp_gateway::testing::sample_request(1, 1, 5, 0);
    let body = prost::Message::encode_to_vec(&body);
    match common::post(&gw.url("/v1/traces"), &[("content-type", "application/x-protobuf")], body).await {
        Ok((response, _)) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// A GET over a fresh HTTP/1.1 connection; returns the status line.
fn raw_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let head = response_head(&mut stream, Duration::from_secs(5));
    head.lines().next().unwrap_or_default().to_string()
}

/// Scenario: HTTP/1.1 clients declare 7 MiB bodies, send 6 MiB and go quiet, eight of them against
/// a 24 MiB memory budget; then gRPC streams on one connection each send 6 MiB of a 7 MiB message.
/// Guarantees: the bodies the budget cannot hold are refused before being read (503 with
/// Retry-After; UNAVAILABLE over gRPC) and counted; the gateway's RSS stays within the budget plus
/// its baseline; once the stalled bodies hit the body deadline, their memory is released and an
/// honest request is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_bodies_are_bounded_by_the_memory_budget() {
    let _turn = TURN.lock().await;
    let dir = tempdir();
    let budget = 24 * MIB;
    let (gw, _sink) = gateway(
        dir.path(),
        &[
            "--memory-budget-bytes",
            &budget.to_string(),
            "--max-request-bytes",
            &(8 * MIB).to_string(),
            "--body-idle-timeout",
            "3s",
        ],
    )
    .await;
    let pid = gw.proc.child.id();
    let baseline = rss_bytes(pid);
    let declared = 7 * MIB;
    let sent = vec![0x0a; 6 * MIB];
    let refused_has_retry_after = |stream: &mut TcpStream, start: &[u8]| {
        let mut head = start.to_vec();
        head.extend(response_head(stream, Duration::from_secs(2)).into_bytes());
        String::from_utf8_lossy(&head).to_ascii_lowercase().contains("retry-after: 1")
    };
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let mut stream = TcpStream::connect(gw.http).unwrap();
        stream.write_all(post_head(declared).as_bytes()).unwrap();
        // A body the budget cannot hold is refused as soon as its head is read.
        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut peek = [0u8; 64];
        match stream.read(&mut peek) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&peek[..n]).to_string();
                assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                assert!(text.contains("retry-after") || refused_has_retry_after(&mut stream, &peek[..n]));
                refused += 1;
            }
            _ => {
                stream.write_all(&sent).unwrap();
                held.push(stream);
            }
        }
    }
    assert_eq!(held.len(), budget / declared, "the budget holds three 7 MiB bodies");
    assert_eq!(refused, 8 - held.len());
    let in_use = gw.metric("otlp_gateway_memory_in_use_bytes");
    assert!(in_use as usize <= budget, "in use {in_use} over the budget");
    assert!(rss_bytes(pid) < baseline + budget + 16 * MIB, "RSS {} MiB", rss_bytes(pid) / MIB);
    assert_eq!(honest_request(&gw).await, 200, "a small request still fits");

    // gRPC: one connection, streams without a declared length, each 6 MiB into a 7 MiB message.
    let mut send = h2(gw.grpc).await;
    let mut calls = Vec::new();
    for _ in 0..4 {
        let (tx, response) = grpc_call(&mut send);
        // A refused stream stops taking frames: the rest are not sent.
        let _ = tx.unbounded_send(Ok(Frame::data(grpc_prefix(declared))));
        for _ in 0..6 {
            let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(vec![0x0a; MIB]))));
        }
        calls.push((tx, tokio::spawn(response)));
    }
    let mut unavailable = 0;
    for (tx, response) in calls {
        if let Ok(Ok(Ok(response))) = tokio::time::timeout(Duration::from_secs(2), response).await {
            let (code, message) = grpc_status(response).await;
            assert_eq!(code, "14", "{message}");
            assert!(message.contains("short of memory"), "{message}");
            unavailable += 1;
        }
        drop(tx);
    }
    assert!(unavailable >= 1, "the budget was full: streams must be refused");
    assert!(rss_bytes(pid) < baseline + budget + 16 * MIB, "RSS {} MiB", rss_bytes(pid) / MIB);
    assert!(gw.metric("otlp_gateway_memory_refused_requests_total{transport=\"http\"}") >= 5.0);
    assert!(gw.metric("otlp_gateway_memory_refused_requests_total{transport=\"grpc\"}") >= 1.0);

    // The held bodies stall past the body deadline: answered 408, their memory given back.
    for mut stream in held {
        let head = response_head(&mut stream, Duration::from_secs(10));
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    }
    wait_until("the budget to be released", Duration::from_secs(10), || {
        gw.metric("otlp_gateway_memory_in_use_bytes") < (2 * MIB) as f64
    })
    .await;
    assert_eq!(honest_request(&gw).await, 200);
    assert!(gw.metric("otlp_gateway_receiver_timeouts_total{transport=\"http\",timeout=\"body\"}") >= 3.0);
}

/// Scenario: slowloris clients (headers never finished), a body that stops half-way, idle HTTP/1.1
/// and HTTP/2 connections, and a gRPC message left half-sent, against short deadlines (1 s).
/// Guarantees: each is closed or answered within a few seconds (408, DEADLINE_EXCEEDED), every
/// deadline is counted under its name, and a client that keeps sending is not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_idle_connections_are_closed() {
    let _turn = TURN.lock().await;
    let dir = tempdir();
    let (gw, _sink) = gateway(
        dir.path(),
        &["--header-read-timeout", "1s", "--body-idle-timeout", "1s", "--connection-idle-timeout", "1s"],
    )
    .await;

    let mut slowloris: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(gw.http).unwrap();
            s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: gateway\r\n").unwrap();
            s
        })
        .collect();
    let mut half_body = TcpStream::connect(gw.http).unwrap();
    half_body.write_all(post_head(1000).as_bytes()).unwrap();
    half_body.write_all(&[0x0a; 10]).unwrap();
    let mut idle_h1: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(gw.http).unwrap()).collect();
    let mut idle_h2 = Vec::new();
    for _ in 0..20 {
        idle_h2.push(h2(gw.grpc).await);
    }
    let mut send = h2(gw.grpc).await;
    let (tx, response) = grpc_call(&mut send);
    tx.unbounded_send(Ok(Frame::data(grpc_prefix(1000)))).unwrap();
    tx.unbounded_send(Ok(Frame::data(Bytes::from_static(&[0x0a; 10])))).unwrap();

    // Meanwhile an honest client sends a request every 300 ms on one connection.
    let honest = {
        let url = gw.url("/v1/traces");
        tokio::spawn(async move {
            let body = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 1, 3, 0));
            let mut statuses = Vec::new();
            for _ in 0..15 {
                let (response, _) =
                    common::post(&url, &[("content-type", "application/x-protobuf")], body.clone())
                        .await
                        .unwrap();
                statuses.push(response.status().as_u16());
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            statuses
        })
    };

    let response = tokio::time::timeout(Duration::from_secs(5), response).await.unwrap().unwrap();
    let (code, message) = grpc_status(response).await;
    assert_eq!(code, "4", "a half-sent gRPC message ends in DEADLINE_EXCEEDED: {message}");
    drop(tx);
    let head = response_head(&mut half_body, Duration::from_secs(5));
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    for s in &mut slowloris {
        assert!(closed_within(s, Duration::from_secs(5)), "a slowloris connection was left open");
    }
    for s in &mut idle_h1 {
        assert!(closed_within(s, Duration::from_secs(5)), "an idle HTTP/1.1 connection was left open");
    }
    wait_until("idle HTTP/2 connections to be closed", Duration::from_secs(5), || {
        idle_h2.iter().all(|s| s.is_closed())
    })
    .await;
    assert!(honest.await.unwrap().iter().all(|&s| s == 200), "the honest client was disturbed");
    let timeouts = |transport: &str, kind: &str| {
        gw.metric(&format!(
            "otlp_gateway_receiver_timeouts_total{{transport=\"{transport}\",timeout=\"{kind}\"}}"
        ))
    };
    assert!(timeouts("http", "read") >= 50.0, "header deadlines: {}", timeouts("http", "read"));
    assert!(timeouts("http", "body") >= 1.0);
    assert!(timeouts("grpc", "body") >= 1.0);
    assert!(timeouts("grpc", "idle") >= 20.0, "idle HTTP/2: {}", timeouts("grpc", "idle"));
}

/// Scenario: a listener capped at 5 connections gets a sixth.
/// Guarantees: the sixth is closed at once and counted; when one of the five leaves, a new one is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed() {
    let _turn = TURN.lock().await;
    let dir = tempdir();
    let (gw, _sink) = gateway(dir.path(), &["--max-connections", "5"]).await;
    let mut open: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(gw.http).unwrap()).collect();
    // The five are accepted before the sixth arrives.
    wait_until("five open connections", Duration::from_secs(5), || {
        gw.metric("otlp_gateway_receiver_connections_open{transport=\"http\"}") == 5.0
    })
    .await;
    let mut sixth = TcpStream::connect(gw.http).unwrap();
    assert!(closed_within(&mut sixth, Duration::from_secs(2)), "the sixth connection was served");
    assert_eq!(gw.metric("otlp_gateway_receiver_connections_rejected_total{transport=\"http\"}"), 1.0);
    drop(open.pop());
    wait_until("a free slot", Duration::from_secs(5), || {
        gw.metric("otlp_gateway_receiver_connections_open{transport=\"http\"}") == 4.0
    })
    .await;
    assert_eq!(honest_request(&gw).await, 200);
}

/// Scenario: the gateway runs out of file descriptors (its soft `RLIMIT_NOFILE` lowered with
/// `prlimit` to what it has open plus a few) while clients keep connecting to its OTLP and health ports.
/// Guarantees: it does not spin (under 20 % of a core while exhausted), logs the failures at a
/// bounded rate, counts them, and serves again as soon as descriptors are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_backs_off() {
    let _turn = TURN.lock().await;
    let dir = tempdir();
    let (gw, _sink) = gateway(dir.path(), &[]).await;
    let pid = gw.proc.child.id();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let limit = fds + 4;
    let status = std::process::Command::new("prlimit")
        .args([format!("--pid={pid}"), format!("--nofile={limit}:")])
        .status()
        .unwrap();
    assert!(status.success());
    // Connections pile up in the backlogs: the first few take the last descriptors.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(TcpStream::connect(gw.http).unwrap());
        clients.push(TcpStream::connect(gw.grpc).unwrap());
        clients.push(TcpStream::connect(gw.health).unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    let (cpu_before, wall) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let busy = cpu_time(pid).saturating_sub(cpu_before).as_secs_f64() / wall.elapsed().as_secs_f64();
    assert!(busy < 0.2, "the gateway spun at {:.0} % of a core while out of descriptors", busy * 100.0);
    let warnings = gw.proc.log_text().lines().filter(|l| l.contains("accepting a connection failed")).count();
    assert!((1..=12).contains(&warnings), "{warnings} warnings in 3.5 s");
    drop(clients);
    let raise = std::process::Command::new("prlimit")
        .args([format!("--pid={pid}"), "--nofile=4096:".to_string()])
        .status()
        .unwrap();
    assert!(raise.success());
    // The next accept comes within the longest back-off.
    let started = Instant::now();
    loop {
        if honest_request(&gw).await == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the gateway did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gw.metric("otlp_gateway_accept_errors_total{transport=\"http\"}") >= 1.0);
}

/// Scenario: six clients send 12 MiB OTLP/JSON requests (and two send zstd bombs that inflate to
/// the 64 MiB limit) while `/healthz`, `/readyz` and `/metrics` are polled every 20 ms.
/// Guarantees: the probes answer within 100 ms at the 99th percentile (the kubelet gives 1–2 s), the
/// JSON requests are accepted, the bombs refused, and the peak RSS stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_heavy_requests_are_decoded() {
    let _turn = TURN.lock().await;
    let dir = tempdir();
    let (gw, _sink) = gateway(dir.path(), &[]).await;
    let pid = gw.proc.child.id();
    let json = heavy_json(12 * MIB);
    let bomb = Bytes::from(zstd::encode_all(&vec![0u8; 80 * MIB][..], 3).unwrap());
    let url = gw.url("/v1/traces");
    let mut senders = Vec::new();
    for i in 0..8 {
        let (url, json, bomb) = (url.clone(), json.clone(), bomb.clone());
        senders.push(tokio::spawn(async move {
            let (response, body) = if i < 6 {
                common::post(&url, &[("content-type", "application/json")], json).await.unwrap()
            } else {
                common::post(
                    &url,
                    &[("content-type", "application/x-protobuf"), ("content-encoding", "zstd")],
                    bomb,
                )
                .await
                .unwrap()
            };
            (i, response.status().as_u16(), body)
        }));
    }
    let probes = tokio::task::spawn_blocking({
        let (health, metrics) = (gw.health, gw.metrics);
        move || {
            let mut latencies = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                for (addr, path) in [(health, "/healthz"), (health, "/readyz"), (metrics, "/metrics")] {
                    let t = Instant::now();
                    let status = raw_get(addr, path);
                    latencies.push(t.elapsed());
                    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            latencies
        }
    });
    for sender in senders {
        let (i, status, body) = sender.await.unwrap();
        if i < 6 {
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        } else {
            assert_eq!(status, 413, "a bomb must be refused: {}", String::from_utf8_lossy(&body));
        }
    }
    let mut latencies = probes.await.unwrap();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?} over {} probes", latencies.len());
    let peak = status_kib(pid, "VmHWM:") * 1024;
    assert!(peak < 400 * MIB, "peak RSS {} MiB", peak / MIB);
}

/// An OTLP/JSON request of about `bytes` bytes: spans with a few attributes.
fn heavy_json(bytes: usize) -> Bytes {
    let span = |i: usize| {
        format!(
            r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"heavy-{i}","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000001000000","attributes":[{{"key":"http.method","value":{{"stringValue":"GET"}}}},{{"key":"http.url","value":{{"stringValue":"https://example.com/a/rather/long/path/{i}"}}}}]}}"#,
            i + 1,
            i + 1
        )
    };
    let mut spans = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < bytes {
        let s = span(i);
        len += s.len() + 1;
        spans.push(s);
        i += 1;
    }
    Bytes::from(format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"heavy"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    ))
}
