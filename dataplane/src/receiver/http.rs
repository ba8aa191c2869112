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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracegw_runtime::AcceptBackoff;

use super::limits::{self, Activity, Watched};
use super::{
    CONNECTION_DRAIN_TIMEOUT, ExportSink, INLINE_JSON_BYTES, IngestError, JSON_DECODE_BYTES_PER_BYTE,
    RETRY_AFTER, ReadError, Receiving, Transport,
};
use crate::budget::Reservation;
use crate::buffer::MAX_POOLED_BUFFER_BYTES;
use crate::compression::{self, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, Encoding};
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
    receiving: Arc<Receiving>,
}

/// A JSON request re-encoded as protobuf, counted against the memory budget while it lives.
struct Charged {
    encoded: Vec<u8>,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.encoded
    }
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
        let limit = self.receiving.max_request_bytes();
        let too_large = || {
            self.sink.count_failure(Transport::Http);
            error(
                format,
                reply_encoding,
                StatusCode::PAYLOAD_TOO_LARGE,
                CODE_RESOURCE_EXHAUSTED,
                &format!("request body exceeds {limit} bytes"),
            )
        };
        let bad_request = |message: &str| {
            self.sink.count_failure(Transport::Http);
            error(format, reply_encoding, StatusCode::BAD_REQUEST, CODE_INVALID_ARGUMENT, message)
        };
        let over_budget = || {
            self.sink.count_refused(Transport::Http);
            self.receiving.count_over_budget(Transport::Http);
            let mut r = error(
                format,
                reply_encoding,
                StatusCode::SERVICE_UNAVAILABLE,
                CODE_UNAVAILABLE,
                &ReadError::OverBudget.to_string(),
            );
            r.headers_mut().insert(RETRY_AFTER_HEADER, HeaderValue::from(RETRY_AFTER.as_secs()));
            r
        };
        let refused = |e: ReadError| match e {
            ReadError::TooLarge { .. } => too_large(),
            ReadError::OverBudget => over_budget(),
            ReadError::Stalled(_) => {
                self.receiving.listener(Transport::Http).body_timeouts.inc();
                self.sink.count_failure(Transport::Http);
                error(format, reply_encoding, StatusCode::REQUEST_TIMEOUT, CODE_UNAVAILABLE, &e.to_string())
            }
            ReadError::Malformed(message) => bad_request(&message),
        };
        // A declared length over the limit is refused before anything is read, and one within it is
        // reserved against the memory budget up front: a body that cannot fit is never read.
        let declared = header_str(&request, http::header::CONTENT_LENGTH).parse::<usize>().ok();
        let mut reservation = self.receiving.reserve();
        if let Some(declared) = declared {
            if declared > limit {
                return too_large();
            }
            if !reservation.try_grow(declared) {
                return over_budget();
            }
        }
        // Read once into a pooled buffer. A declared length sizes it, but only up to what the pool keeps:
        // a client that claims 64 MiB and sends 1 KiB must not make us reserve 64 MiB.
        let mut raw = self.receiving.pool().take(declared.unwrap_or(0).min(MAX_POOLED_BUFFER_BYTES));
        let mut incoming = request.into_body();
        let stall = self.receiving.listener(Transport::Http).limits().body_idle_timeout;
        loop {
            let Some(next) = limits::within(incoming.frame(), stall).await else {
                return refused(ReadError::Stalled(stall));
            };
            let Some(frame) = next else { break };
            let data = match frame {
                Ok(frame) => frame.into_data().unwrap_or_default(),
                Err(e) => return bad_request(&format!("cannot read body: {e}")),
            };
            let len = raw.len() + data.len();
            if len > limit {
                return too_large();
            }
            if !reservation.try_grow_to(len) {
                return over_budget();
            }
            raw.extend_from_slice(&data);
        }
        raw.charge(reservation);
        let body = if encoding == Encoding::Identity {
            raw.freeze()
        } else {
            match self.receiving.decompress(encoding, raw).await {
                Ok(inflated) => inflated,
                Err(e) => return refused(e),
            }
        };
        let body = match format {
            Format::Protobuf => body,
            Format::Json => match self.json_to_protobuf(body).await {
                Ok(Ok(encoded)) => encoded,
                Ok(Err(message)) => return bad_request(&message),
                Err(e) => return refused(e),
            },
        };
        match self.sink.export(Transport::Http, body, Some(peer.ip())).await {
            Ok(()) => {
                // A full success carries no partial success: `{}` in OTLP/JSON, as the Collector
                // answers (serde would write `{"partialSuccess":null}`), and no bytes in protobuf.
                const JSON_FULL_SUCCESS: &[u8] = b"{}";
                let payload = match format {
                    Format::Protobuf => Bytes::from(ExportTraceServiceResponse::default().encode_to_vec()),
                    Format::Json => Bytes::from_static(JSON_FULL_SUCCESS),
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

impl<S> Server<S> {
    /// Decodes an OTLP/JSON request and encodes it as protobuf; a large body is decoded on a
    /// heavy-work thread. The decoding's memory is counted against the budget while it runs, and the
    /// encoded request's while it lives. The inner error is the client's (400), the outer the
    /// gateway's (503).
    async fn json_to_protobuf(&self, body: Bytes) -> Result<Result<Bytes, String>, ReadError> {
        let inline = body.len() <= INLINE_JSON_BYTES;
        let mut reservation = self.receiving.reserve();
        if !reservation.try_grow(body.len().saturating_mul(JSON_DECODE_BYTES_PER_BYTE)) {
            return Err(ReadError::OverBudget);
        }
        let decode = move || {
            let encoded = serde_json::from_slice::<ExportTraceServiceRequest>(&body)
                .map(|request| request.encode_to_vec())
                .map_err(|e| format!("invalid OTLP JSON: {e}"))?;
            drop(body);
            reservation.shrink_to(encoded.len());
            Ok(Bytes::from_owner(Charged { encoded, _reservation: reservation }))
        };
        if inline {
            return Ok(decode());
        }
        self.receiving.heavy(decode).await.ok_or_else(|| ReadError::Malformed("decoding failed".into()))
    }
}

// === free functions ===

/// Serves until `shutdown` fires, then lets open connections finish for a few seconds. Connections
/// are held to the limits in `receiving` ([`limits`]).
pub async fn serve<S: ExportSink>(
    listener: TcpListener,
    sink: Arc<S>,
    receiving: Arc<Receiving>,
    shutdown: CancellationToken,
) {
    let server = Arc::new(Server { sink, receiving: Arc::clone(&receiving) });
    let listener_limits = Arc::clone(receiving.listener(Transport::Http));
    let limits = *listener_limits.limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let connections = TaskTracker::new();
    let mut backoff = AcceptBackoff::new("otlp-http");
    while let Some((stream, peer, slot)) =
        super::accept(&listener, &shutdown, &receiving, Transport::Http, &mut backoff).await
    {
        let server = Arc::clone(&server);
        let activity = Arc::new(Activity::default());
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req| {
            let server = Arc::clone(&server);
            let running = requests.start();
            async move {
                let response = server.handle(req, peer).await;
                drop(running);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = builder.serve_connection(TokioIo::new(ReadAhead::new(stream)), service).into_owned();
        let watched = Watched::new(connection, activity, shutdown.clone(), Arc::clone(&listener_limits));
        let listener_limits = Arc::clone(&listener_limits);
        connections.spawn(async move {
            if let Err(e) = watched.await {
                listener_limits.count_connection_error(&*e);
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(CONNECTION_DRAIN_TIMEOUT, connections.wait()).await;
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
