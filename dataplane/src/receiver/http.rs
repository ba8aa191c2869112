//! OTLP/HTTP: `POST /v1/traces` with protobuf or JSON bodies, gzip, zstd or snappy (a raw block or
//! the framing format, as the Collector's receiver reads it), on hyper (HTTP/1.1 and
//! HTTP/2). Answers follow the OTLP specification: the response has the request's content type; errors
//! carry a `google.rpc.Status`; back-pressure is 503 with `Retry-After`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER as RETRY_AFTER_HEADER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{CONNECTION_DRAIN_TIMEOUT, ExportSink, IngestError, RETRY_AFTER, Transport};
use crate::buffer::{BufferPool, DEFAULT_POOLED_BUFFERS, MAX_POOLED_BUFFER_BYTES};
use crate::compression::{self, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, DecompressError, Encoding};
use crate::socket::ReadAhead;
use crate::wire::RpcStatus;

const TRACES_PATH: &str = "/v1/traces";
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// gRPC-style codes inside `google.rpc.Status` bodies.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
const CODE_UNAVAILABLE: i32 = 14;
const CODE_UNIMPLEMENTED: i32 = 12;

/// Body format of a request, and so of its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

/// Per-server state shared by connections.
#[derive(Debug)]
struct Server<S> {
    sink: Arc<S>,
    max_request_bytes: usize,
    pool: Arc<BufferPool>,
}

// === impl Server ===

impl<S: ExportSink> Server<S> {
    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        if request.uri().path() != TRACES_PATH {
            return plain(StatusCode::NOT_FOUND, "only /v1/traces is served here");
        }
        if request.method() != Method::POST {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        let content_type = header_str(&request, CONTENT_TYPE);
        let format = match content_type.split(';').next().unwrap_or_default().trim() {
            PROTOBUF => Format::Protobuf,
            JSON => Format::Json,
            other => {
                return plain(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!("unsupported content type '{other}': use {PROTOBUF} or {JSON}"),
                );
            }
        };
        let Some(encoding) = Encoding::parse(header_str(&request, CONTENT_ENCODING)) else {
            return error(
                format,
                None,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_UNIMPLEMENTED,
                "unsupported content encoding: use gzip, zstd, snappy, x-snappy-framed or none",
            );
        };
        let accept = header_str(&request, ACCEPT_ENCODING);
        let reply_encoding =
            (encoding != Encoding::Identity && accept.contains(encoding.as_str())).then_some(encoding);
        let too_large = || {
            self.sink.count_failure(Transport::Http);
            error(
                format,
                reply_encoding,
                StatusCode::PAYLOAD_TOO_LARGE,
                CODE_RESOURCE_EXHAUSTED,
                &format!("request body exceeds {} bytes", self.max_request_bytes),
            )
        };
        let bad_request = |message: &str| {
            self.sink.count_failure(Transport::Http);
            error(format, reply_encoding, StatusCode::BAD_REQUEST, CODE_INVALID_ARGUMENT, message)
        };
        // Read once into a pooled buffer. A declared length sizes it, but only up to what the pool keeps:
        // a client that claims 64 MiB and sends 1 KiB must not make us reserve 64 MiB.
        let declared = header_str(&request, http::header::CONTENT_LENGTH).parse::<usize>().unwrap_or(0);
        let mut raw = self.pool.take(declared.min(MAX_POOLED_BUFFER_BYTES));
        let mut incoming = request.into_body();
        while let Some(frame) = incoming.frame().await {
            let data = match frame {
                Ok(frame) => frame.into_data().unwrap_or_default(),
                Err(e) => return bad_request(&format!("cannot read body: {e}")),
            };
            if raw.len() + data.len() > self.max_request_bytes {
                return too_large();
            }
            raw.extend_from_slice(&data);
        }
        let body = if encoding == Encoding::Identity {
            raw.freeze()
        } else {
            match compression::decompress_pooled(encoding, raw.as_ref(), self.max_request_bytes, &self.pool) {
                Ok(inflated) => inflated,
                Err(DecompressError::TooLarge { .. }) => return too_large(),
                Err(e) => return bad_request(&e.to_string()),
            }
        };
        let body = match format {
            Format::Protobuf => body,
            Format::Json => match serde_json::from_slice::<ExportTraceServiceRequest>(&body) {
                Ok(req) => Bytes::from(req.encode_to_vec()),
                Err(e) => return bad_request(&format!("invalid OTLP JSON: {e}")),
            },
        };
        match self.sink.export(Transport::Http, body, Some(peer.ip())).await {
            Ok(()) => {
                let response = ExportTraceServiceResponse { partial_success: None };
                let payload = match format {
                    Format::Protobuf => Bytes::from(response.encode_to_vec()),
                    Format::Json => {
                        Bytes::from(serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()))
                    }
                };
                respond(StatusCode::OK, format, reply_encoding, payload)
            }
            Err(IngestError::Invalid(e)) => {
                error(format, reply_encoding, StatusCode::BAD_REQUEST, CODE_INVALID_ARGUMENT, &e.to_string())
            }
            Err(IngestError::Unavailable(why)) => {
                let mut r =
                    error(format, reply_encoding, StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE, why);
                r.headers_mut().insert(RETRY_AFTER_HEADER, HeaderValue::from(RETRY_AFTER.as_secs()));
                r
            }
            Err(IngestError::Throttled(why, delay)) => {
                let mut r =
                    error(format, reply_encoding, StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE, why);
                r.headers_mut().insert(RETRY_AFTER_HEADER, HeaderValue::from(delay.as_secs()));
                r
            }
        }
    }
}

// === free functions ===

/// Serves until `shutdown` fires, then lets open connections finish for a few seconds.
pub async fn serve<S: ExportSink>(
    listener: TcpListener,
    sink: Arc<S>,
    max_request_bytes: usize,
    shutdown: CancellationToken,
) {
    let server = Arc::new(Server { sink, max_request_bytes, pool: BufferPool::new(DEFAULT_POOLED_BUFFERS) });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    while let Some((stream, peer)) = super::accept(&listener, &shutdown, "OTLP/HTTP").await {
        let server = Arc::clone(&server);
        let service = hyper::service::service_fn(move |req| {
            let server = Arc::clone(&server);
            async move { Ok::<_, std::convert::Infallible>(server.handle(req, peer).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(ReadAhead::new(stream)), service).into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(CONNECTION_DRAIN_TIMEOUT, graceful.shutdown()).await;
}

fn header_str(request: &Request<Incoming>, name: http::header::HeaderName) -> &str {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn error(
    format: Format,
    encoding: Option<Encoding>,
    status: StatusCode,
    code: i32,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = RpcStatus { code, message: message.to_string() };
    let payload = match format {
        Format::Protobuf => Bytes::from(body.encode_to_vec()),
        Format::Json => Bytes::from(serde_json::json!({ "code": code, "message": message }).to_string()),
    };
    respond(status, format, encoding, payload)
}

fn respond(
    status: StatusCode,
    format: Format,
    encoding: Option<Encoding>,
    payload: Bytes,
) -> Response<Full<Bytes>> {
    // A response that cannot be compressed goes out plain; the header below says which it is.
    let (payload, encoding) = match encoding.map(|e| {
        (
            e,
            compression::compress(
                e,
                std::slice::from_ref(&payload),
                payload.len(),
                DEFAULT_GZIP_LEVEL,
                DEFAULT_ZSTD_LEVEL,
            ),
        )
    }) {
        Some((e, Ok(compressed))) => (compressed, Some(e)),
        _ => (payload, None),
    };
    let mut r = Response::new(Full::new(payload));
    *r.status_mut() = status;
    let content_type = match format {
        Format::Protobuf => PROTOBUF,
        Format::Json => JSON,
    };
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(e) = encoding {
        r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(e.as_str()));
    }
    r
}
