//! Fuzzes the OTLP/gRPC receiver's message framing: the gateway's HTTP/2 server
//! (`receiver::grpc::serve`) on 127.0.0.1, one `Export` call per input on a connection kept across
//! inputs, its body cut into DATA frames where the input says.
//!
//! Input: byte 0 picks the `grpc-encoding` (none, gzip, zstd, snappy, or one the receiver does not
//! know); byte 1 the mode and the size of the body's chunks; the rest is the message. In framed mode
//! the rest is a protobuf payload the target compresses (with the picked encoding) and frames
//! correctly, and the call must succeed exactly when the Collector would take the payload (else
//! `INVALID_ARGUMENT`; an unknown encoding is `UNIMPLEMENTED`). In raw mode the rest is the body as
//! sent, prefix and all, and any answer will do. Either way the receiver must not panic and must
//! answer within [`EXCHANGE_TIMEOUT`].

#![no_main]

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use libfuzzer_sys::fuzz_target;
use otlp_gateway::testing::otlp_accepts;
use otlp_gateway_fuzz::{EXCHANGE_TIMEOUT, MAX_REQUEST_BYTES, ScanSink, Served, serve};

type Body =
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>>>;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// gRPC status codes the framed mode expects.
const OK: &str = "0";
const INVALID_ARGUMENT: &str = "3";
const UNIMPLEMENTED: &str = "12";

fn compress(encoding: &str, payload: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(payload).unwrap();
            gz.finish().unwrap()
        }
        "zstd" => zstd::encode_all(payload, 1).unwrap(),
        "snappy" => {
            let mut framed = snap::write::FrameEncoder::new(Vec::new());
            framed.write_all(payload).unwrap();
            framed.into_inner().unwrap()
        }
        _ => payload.to_vec(),
    }
}

async fn connect(served: &Served) -> SendRequest<Body> {
    let stream = tokio::net::TcpStream::connect(served.addr).await.expect("the receiver listens");
    // Small frames must not wait for the server's delayed acknowledgement.
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    send
}

fuzz_target!(|data: &[u8]| {
    static SERVED: OnceLock<Served> = OnceLock::new();
    static CLIENT: Mutex<Option<SendRequest<Body>>> = Mutex::new(None);
    let served = SERVED.get_or_init(|| {
        serve(|listener, receiving, shutdown| {
            let service =
                otlp_gateway::receiver::grpc::TraceService::new(std::sync::Arc::new(ScanSink), receiving);
            otlp_gateway::receiver::grpc::serve(listener, service, shutdown)
        })
    });
    let [pick, mode, message @ ..] = data else { return };
    let encoding = ["", "gzip", "zstd", "snappy", "br"][usize::from(*pick % 5)];
    let framed = mode & 0x80 == 0;
    let chunk = usize::from(mode & 0x7f) + 1;
    // snappy's framing writer writes nothing at all for an empty message: a compressed message of
    // no bytes, which grpc-go's snappy reader takes as an empty message, and so does the gateway.
    let body = if framed {
        let payload = compress(encoding, message);
        let mut body = vec![u8::from(!encoding.is_empty())];
        body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        body.extend_from_slice(&payload);
        body
    } else {
        message.to_vec()
    };
    let frames: Vec<_> = body.chunks(chunk).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
    let mut request = http::Request::post(format!("http://{}{EXPORT}", served.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if !encoding.is_empty() {
        request = request.header("grpc-encoding", encoding);
    }
    let request = request.body(StreamBody::new(futures::stream::iter(frames))).unwrap();

    let status = served.runtime.block_on(async {
        let mut client = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
        let reused = match client.take() {
            Some(mut send) => send.ready().await.is_ok().then_some(send),
            None => None,
        };
        let mut send = match reused {
            Some(send) => send,
            None => connect(served).await,
        };
        // `None` when the call failed as a whole (the stream or connection reset): the next input
        // takes a new connection.
        let exchange = async {
            let response = send.send_request(request).await.ok()?;
            let (parts, body) = response.into_parts();
            let trailers = body.collect().await.ok()?.trailers().cloned();
            let status =
                parts.headers.get("grpc-status").or(trailers.as_ref().and_then(|t| t.get("grpc-status")));
            Some(status.map(|s| s.to_str().unwrap_or_default().to_string()))
        };
        let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await.expect("no answer in time");
        if answer.is_some() {
            *client = Some(send);
        }
        answer
    });
    // A body sent in one-byte DATA frames can end the connection instead: h2 answers a flood of
    // tiny frames with GOAWAY ENHANCE_YOUR_CALM (found by this target with a 2 KB message in 2,065
    // frames). That is h2's protection against hostile clients, kept; no client splits a message so.
    let flood = chunk == 1 && status.is_none();
    if framed && message.len() <= MAX_REQUEST_BYTES && !flood {
        let expected = match encoding {
            "br" => UNIMPLEMENTED,
            _ if otlp_accepts(message) => OK,
            _ => INVALID_ARGUMENT,
        };
        assert_eq!(status.flatten().as_deref(), Some(expected), "encoding {encoding:?}");
    }
});
