//! OTLP export to one backend, over gRPC or HTTP, with Kyma's output semantics.
//!
//! Both protocols run on one hyper client with rustls, so TLS, mTLS, `insecureSkipVerify`, headers and
//! connection pooling behave the same whichever protocol a pipeline uses. gRPC is framed here (five
//! bytes of prefix) rather than through tonic's client: tonic fixes gzip at level 6 and would copy the
//! batch through its codec buffer, while the CPU budget per span needs the level chosen and the
//! already-encoded batch sent as it is.

pub mod diagnose;
pub mod oauth2;
mod payload;
pub mod retry;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tracegw_contract::{OtlpOutputConfig, Protocol};

use crate::batch::Batch;
use crate::buffer::BufferPool;
use crate::compression::{self, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, Encoding};

pub use payload::Payload;
pub use retry::RetryPolicy;

/// The gRPC method path.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Responses larger than this are refused, as the OTLP specification recommends.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Idle pooled connections are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Encoded batches kept for reuse per backend: enough for the exports one pipeline has in flight.
const EXPORT_POOLED_BUFFERS: usize = 8;
/// Compressed flag and message length in front of every gRPC message.
const GRPC_FRAME_HEADER_BYTES: usize = 5;
/// gRPC status codes that OTLP says to retry; RESOURCE_EXHAUSTED only with RetryInfo.
const GRPC_RETRYABLE: [i32; 6] = [1, 4, 10, 11, 14, 15];
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const USER_AGENT: &str = concat!("otlp-gateway/", env!("CARGO_PKG_VERSION"));

/// Export settings shared by every pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportSettings {
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// gzip level (0–9).
    pub gzip_level: u32,
    /// zstd level.
    pub zstd_level: i32,
}

/// Sends encoded batches to one backend.
#[derive(Clone, Debug)]
pub struct Exporter {
    client: Client<HttpsConnector<HttpConnector>, Full<Payload>>,
    uri: Uri,
    protocol: Protocol,
    encoding: Encoding,
    headers: HeaderMap,
    settings: ExportSettings,
    /// Export buffers: a compressed batch is encoded into one, which goes back when the last attempt is
    /// done.
    pool: Arc<BufferPool>,
    /// OAuth2 client credentials: each request carries the source's token.
    oauth2: Option<Arc<oauth2::TokenSource>>,
}

/// The exporter cannot be built from this configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The URL is not usable as an HTTP URI.
    #[error("invalid endpoint URL: {0}")]
    Url(String),
    /// A header name or value is not valid in HTTP.
    #[error("invalid header '{0}'")]
    Header(String),
    /// The pipeline's `transform` or `filter` does not compile (the manager would have said so too).
    #[error(transparent)]
    Processing(#[from] tracegw_contract::PipelineError),
    /// The OAuth2 token URL is unusable.
    #[error("OAuth2: {0}")]
    OAuth2(#[from] oauth2::TokenError),
    /// OAuth2 over gRPC in plain text, which grpc-go refuses (the token would travel unprotected);
    /// Kyma's validation refuses it before a gateway sees it.
    #[error("OAuth2 requires TLS when using gRPC protocol")]
    OAuth2WithoutTls,
}

impl BuildError {
    /// The condition reason and the field it concerns, as the manager would report them. The
    /// contract's validation refuses all of these first; this is the gateway's backstop, so that a
    /// pipeline it cannot build is reported under the right reason, and no message carries a value
    /// (the errors name fields and keys, never what a Secret holds).
    pub fn reason(&self) -> (tracegw_contract::Reason, &'static str) {
        use tracegw_contract::Reason;
        match self {
            BuildError::Tls(_) => (Reason::TlsConfigurationInvalid, "spec.output.otlp.tls"),
            BuildError::Url(_) => (Reason::EndpointInvalid, "spec.output.otlp.endpoint"),
            BuildError::Header(_) => (Reason::HeaderInvalid, "spec.output.otlp.headers"),
            BuildError::Processing(e) => (e.reason, "spec"),
            BuildError::OAuth2(_) => {
                (Reason::EndpointInvalid, "spec.output.otlp.authentication.oauth2.tokenURL")
            }
            BuildError::OAuth2WithoutTls => (Reason::SpecInvalid, "spec.output.otlp.authentication.oauth2"),
        }
    }
}

/// One failed attempt. Retryability is data: the pipeline decides from it whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Worth retrying: throttling, unavailability, a broken connection, a timeout.
    #[error("{message}")]
    Retryable {
        /// What happened.
        message: String,
        /// The delay the backend asked for, if any.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: the backend refused the data.
    #[error("{message}")]
    Permanent {
        /// What happened.
        message: String,
    },
}

/// A batch the backend took; `rejected` spans of it were refused in a partial success.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Spans the backend rejected.
    pub rejected: u64,
    /// The backend's message, if any.
    pub message: String,
}

// === impl ExportSettings ===

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            // The Collector's exporter default.
            timeout: Duration::from_secs(5),
            gzip_level: DEFAULT_GZIP_LEVEL,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

// === impl ExportError ===

impl ExportError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable { message: message.into(), retry_after: None }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent { message: message.into() }
    }
}

// === impl Exporter ===

impl Exporter {
    /// Builds the client for one output. Fails on unusable TLS material or headers.
    pub fn new(config: &OtlpOutputConfig, settings: ExportSettings) -> Result<Self, BuildError> {
        Self::with_source(config, settings, None)
    }

    /// Like [`Exporter::new`], with connections made from `source` (the load generator uses this to
    /// look like many pods on 127.0.0.x).
    pub fn with_source(
        config: &OtlpOutputConfig,
        settings: ExportSettings,
        source: Option<std::net::IpAddr>,
    ) -> Result<Self, BuildError> {
        let tls = tls::client_config(&config.tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_local_address(source);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
        let connector = match config.protocol {
            Protocol::Grpc => builder.enable_http2().wrap_connector(http),
            Protocol::Http => builder.enable_all_versions().wrap_connector(http),
        };
        let mut client = Client::builder(TokioExecutor::new());
        client.pool_idle_timeout(POOL_IDLE_TIMEOUT);
        if config.protocol == Protocol::Grpc {
            client.http2_only(true);
        }
        let client = client.build(connector);

        let url = match config.protocol {
            Protocol::Grpc => format!("{}{GRPC_EXPORT_PATH}", config.url.trim_end_matches('/')),
            Protocol::Http => config.url.clone(),
        };
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| BuildError::Url(e.to_string()))?;
        // gRPC's `snappy` is snappy's framing format; OTLP/HTTP's is one raw block (the Collector's
        // configgrpc and confighttp).
        let encoding = match config.protocol {
            Protocol::Grpc => Encoding::from(config.compression).for_grpc(),
            Protocol::Http => Encoding::from(config.compression),
        };

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| BuildError::Header(name.clone()))?;
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|_| BuildError::Header(name.to_string()))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        headers.insert(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        match config.protocol {
            Protocol::Grpc => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
                if encoding != Encoding::Identity {
                    headers.insert("grpc-encoding", HeaderValue::from_static(encoding.grpc_name()));
                }
                if let Ok(v) = HeaderValue::from_str(&format!("{}m", settings.timeout.as_millis())) {
                    headers.insert("grpc-timeout", v);
                }
            }
            Protocol::Http => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
                if encoding != Encoding::Identity {
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.as_str()));
                }
            }
        }
        if config.oauth2.is_some() && config.protocol == Protocol::Grpc && uri.scheme_str() != Some("https") {
            return Err(BuildError::OAuth2WithoutTls);
        }
        let oauth2 = match &config.oauth2 {
            Some(o) => Some(Arc::new(oauth2::TokenSource::http(o, settings.timeout)?)),
            None => None,
        };
        Ok(Self {
            client,
            uri,
            protocol: config.protocol,
            encoding,
            headers,
            settings,
            pool: BufferPool::new(EXPORT_POOLED_BUFFERS),
            oauth2,
        })
    }

    /// Counts token requests in `observer` and names its exporter in token logs. Call before the
    /// exporter is cloned.
    pub fn observe_tokens(&mut self, observer: oauth2::TokenObserver) {
        if let Some(source) = self.oauth2.as_mut().and_then(Arc::get_mut) {
            source.set_observer(observer);
        }
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.settings.retry
    }

    /// Compresses and frames a batch once; every attempt sends the same bytes. Uncompressed, the body
    /// is the batch's own parts behind the gRPC prefix, not a copy; compressed, the batch is streamed
    /// through the compressor into one pooled buffer.
    pub fn encode(&self, batch: &Batch) -> Result<Payload, ExportError> {
        if self.encoding == Encoding::Identity {
            let prefix = match self.protocol {
                Protocol::Http => None,
                Protocol::Grpc => Some(Bytes::copy_from_slice(&grpc_prefix(false, batch.len)?)),
            };
            return Ok(Payload::from_parts(prefix.into_iter().chain(batch.chunks.iter().cloned())));
        }
        let prefix = match self.protocol {
            Protocol::Http => 0,
            Protocol::Grpc => GRPC_FRAME_HEADER_BYTES,
        };
        let mut buf = self.pool.take(prefix + batch.len);
        let out = buf.as_mut_vec();
        out.resize(prefix, 0);
        compression::compress_into(
            self.encoding,
            &batch.chunks,
            out,
            self.settings.gzip_level,
            self.settings.zstd_level,
        )
        .map_err(|e| ExportError::permanent(format!("cannot compress the batch: {e}")))?;
        if prefix > 0 {
            let header = grpc_prefix(true, out.len() - prefix)?;
            out[..prefix].copy_from_slice(&header);
        }
        Ok(Payload::from(buf.freeze()))
    }

    /// The same body in one pooled buffer, so that a body kept for retries pins only its own bytes,
    /// not the request buffers its parts point into.
    pub fn compact(&self, payload: Payload) -> Payload {
        if payload.part_count() <= 1 {
            return payload;
        }
        let mut buf = self.pool.take(payload.len());
        let mut rest = payload;
        while rest.has_remaining() {
            let n = rest.chunk().len();
            buf.extend_from_slice(rest.chunk());
            rest.advance(n);
        }
        Payload::from(buf.freeze())
    }

    /// One attempt, bounded by the per-attempt timeout.
    pub async fn send(&self, body: Payload) -> Result<Delivered, ExportError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        if let Some(source) = &self.oauth2 {
            // The token request is bounded by its own timeout; the export's starts after it. The
            // Collector names the token URL here; it may come from a Secret, so it is left out.
            let authorization = source.authorization().await.map_err(|e| {
                ExportError::retryable(format!("failed to get security token from token endpoint: {e}"))
            })?;
            request.headers_mut().insert(http::header::AUTHORIZATION, authorization);
        }
        let attempt = async {
            let response = self.client.request(request).await.map_err(|e| {
                let advice = diagnose::connection_advice(self.protocol, &e).map(|a| format!(" ({a})"));
                ExportError::retryable(format!(
                    "cannot reach {}: {}{}",
                    self.authority(),
                    error_chain(&e),
                    advice.unwrap_or_default()
                ))
            })?;
            let (parts, body) = response.into_parts();
            let collected = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ExportError::retryable(format!("reading the response failed: {e}")))?;
            let trailers = collected.trailers().cloned();
            let data = collected.to_bytes();
            match self.protocol {
                Protocol::Http => http_outcome(parts.status, &parts.headers, data),
                Protocol::Grpc => grpc_outcome(parts.status, &parts.headers, trailers.as_ref(), data),
            }
        };
        match tokio::time::timeout(self.settings.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ExportError::retryable(format!(
                "no answer from {} within {:?}",
                self.authority(),
                self.settings.timeout
            ))),
        }
    }

    fn authority(&self) -> &str {
        self.uri.authority().map_or("backend", |a| a.as_str())
    }
}

// === free functions ===

/// The five bytes in front of a gRPC message: compressed flag and big-endian length.
fn grpc_prefix(compressed: bool, len: usize) -> Result<[u8; GRPC_FRAME_HEADER_BYTES], ExportError> {
    let len =
        u32::try_from(len).map_err(|_| ExportError::permanent("batch larger than a gRPC message can be"))?;
    let mut prefix = [0; GRPC_FRAME_HEADER_BYTES];
    prefix[0] = u8::from(compressed);
    prefix[1..].copy_from_slice(&len.to_be_bytes());
    Ok(prefix)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Parses `Retry-After`: seconds or an HTTP-date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn partial(data: &[u8]) -> Delivered {
    match ExportTraceServiceResponse::decode(data) {
        Ok(ExportTraceServiceResponse { partial_success: Some(p) }) => {
            Delivered { rejected: u64::try_from(p.rejected_spans).unwrap_or(0), message: p.error_message }
        }
        _ => Delivered::default(),
    }
}

/// A short, printable excerpt of an error body: the `google.rpc.Status` message, or the text.
fn body_message(data: &[u8]) -> String {
    if let Ok(s) = crate::wire::RpcStatus::decode(data)
        && !s.message.is_empty()
    {
        return s.message;
    }
    let text = String::from_utf8_lossy(data);
    text.chars().take(256).collect()
}

/// `message`, with advice on what to change when there is any.
fn advised(message: String, advice: Option<&str>) -> String {
    match advice {
        Some(advice) => format!("{message} ({advice})"),
        None => message,
    }
}

fn http_outcome(status: StatusCode, headers: &HeaderMap, data: Bytes) -> Result<Delivered, ExportError> {
    let advice = diagnose::answer_advice(Protocol::Http, status, headers);
    if status.is_success() && advice.is_none() {
        return Ok(partial(&data));
    }
    let message = advised(format!("HTTP {status}: {}", body_message(&data)), advice);
    if status.is_success() {
        // A gRPC server's answer: the data did not arrive, and will not until the protocol changes.
        return Err(ExportError::permanent(message));
    }
    match status.as_u16() {
        429 | 502 | 503 | 504 => Err(ExportError::Retryable { message, retry_after: retry_after(headers) }),
        _ => Err(ExportError::permanent(message)),
    }
}

fn grpc_outcome(
    status: StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    mut data: Bytes,
) -> Result<Delivered, ExportError> {
    if status != StatusCode::OK {
        let advice = diagnose::answer_advice(Protocol::Grpc, status, headers);
        let message = advised(format!("gRPC transport answered HTTP {status}"), advice);
        return match status.as_u16() {
            429 | 502 | 503 | 504 => {
                Err(ExportError::Retryable { message, retry_after: retry_after(headers) })
            }
            _ => Err(ExportError::permanent(message)),
        };
    }
    // Trailers-only responses carry the status in the headers.
    let status =
        trailers.and_then(tonic::Status::from_header_map).or_else(|| tonic::Status::from_header_map(headers));
    let Some(status) = status else {
        let advice = diagnose::answer_advice(Protocol::Grpc, StatusCode::OK, headers);
        return Err(ExportError::retryable(advised("gRPC response without grpc-status".into(), advice)));
    };
    let code = status.code() as i32;
    if code != 0 {
        use tonic_types::StatusExt as _;
        let delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
        let message = format!("gRPC {:?}: {}", status.code(), status.message());
        return if GRPC_RETRYABLE.contains(&code) || (code == GRPC_RESOURCE_EXHAUSTED && delay.is_some()) {
            Err(ExportError::Retryable { message, retry_after: delay })
        } else {
            Err(ExportError::permanent(message))
        };
    }
    if data.len() < 5 {
        return Ok(Delivered::default());
    }
    let compressed = data.get_u8() == 1;
    let len = data.get_u32() as usize;
    let message = data.slice(..len.min(data.len()));
    let message = if compressed {
        let encoding = headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .and_then(Encoding::parse_grpc)
            .map_or(Encoding::Identity, Encoding::for_grpc);
        compression::decompress(encoding, &message, MAX_RESPONSE_BYTES).unwrap_or_default()
    } else {
        message
    };
    Ok(partial(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: HTTP answers a backend can give.
    /// Guarantees: only 429/502/503/504 are retried; Retry-After is read in seconds and as a date.
    #[test]
    fn http_status_mapping() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        match http_outcome(StatusCode::TOO_MANY_REQUESTS, &h, Bytes::new()) {
            Err(ExportError::Retryable { retry_after, .. }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("{other:?}"),
        }
        for code in [400u16, 401, 403, 404, 413, 500] {
            let r = http_outcome(
                StatusCode::from_u16(code).unwrap(),
                &HeaderMap::new(),
                Bytes::from_static(b"nope"),
            );
            assert!(matches!(r, Err(ExportError::Permanent { .. })), "{code}");
        }
        let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&when).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(55) && d <= Duration::from_secs(60), "{d:?}");
    }

    /// Scenario: OAuth2 over gRPC towards an `http://` endpoint, and towards `https://`.
    /// Guarantees: the plain-text one is refused when the exporter is built, as grpc-go refuses
    /// per-RPC credentials without transport security; TLS builds.
    #[test]
    fn oauth2_over_plain_grpc_is_refused() {
        let oauth2 = tracegw_contract::OAuth2Config {
            token_url: "http://auth.example/token".into(),
            client_id: tracegw_contract::Sensitive::new("id"),
            client_secret: tracegw_contract::Sensitive::new("secret"),
            scopes: vec![],
            params: Default::default(),
        };
        let config = |url: &str| OtlpOutputConfig {
            protocol: Protocol::Grpc,
            url: url.into(),
            compression: tracegw_contract::Compression::None,
            headers: vec![],
            tls: tracegw_contract::TlsConfig::default(),
            oauth2: Some(oauth2.clone()),
        };
        let plain = Exporter::new(&config("http://backend:4317"), ExportSettings::default());
        assert!(matches!(plain, Err(BuildError::OAuth2WithoutTls)), "{plain:?}");
        assert!(Exporter::new(&config("https://backend:4317"), ExportSettings::default()).is_ok());
    }

    /// Scenario: a 200 answer carrying a partial success.
    /// Guarantees: the rejected count and message are reported, not treated as a failure.
    #[test]
    fn partial_success_is_read() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        let d = http_outcome(StatusCode::OK, &HeaderMap::new(), Bytes::from(body)).unwrap();
        assert_eq!(d, Delivered { rejected: 3, message: "too old".into() });
    }
}
