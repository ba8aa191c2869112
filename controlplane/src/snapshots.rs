//! Serving config snapshots to gateways: one long-lived, authenticated stream per gateway, fed from a
//! `tokio::sync::watch` that always holds the newest snapshot, and taking the gateways' counter
//! reports for flow health (see `tracegw_contract::stream`).

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::Snapshot;
use tracegw_contract::stream::{
    AFTER_PARAM, GatewayReport, MAX_REPORT_BYTES, REPORTS_PATH, SNAPSHOTS_PATH, encode_line, token_matches,
};

use crate::flow::FlowTracker;
use crate::metrics::ManagerMetrics;
use crate::net::{BodyError, BodyReader, Server, ServerLimits};

/// Bytes of randomness in a generated token.
const TOKEN_BYTES: usize = 32;

/// Why the shared token is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read or written.
    #[error("token file {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot generate a token: {0}")]
    Random(String),
}

type Body = BoxBody<Bytes, Infallible>;

/// What the snapshot server needs; clones share it.
#[derive(Clone, Debug)]
pub struct Channel {
    /// The token gateways must present.
    pub token: Arc<String>,
    /// The newest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Where reports go.
    pub flow: Arc<Mutex<FlowTracker>>,
    /// Subscriber and report counts.
    pub metrics: ManagerMetrics,
    /// The newest snapshot's line, encoded once for every subscriber.
    encoded: Arc<Mutex<Option<(u64, Bytes)>>>,
}

// === impl Channel ===

impl Channel {
    /// A channel serving `snapshots` to holders of `token`, recording reports in `flow`.
    pub fn new(
        token: Arc<String>,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        flow: Arc<Mutex<FlowTracker>>,
        metrics: ManagerMetrics,
    ) -> Self {
        Self { token, snapshots, flow, metrics, encoded: Arc::default() }
    }

    /// The stream line for `snapshot`, serialised once per version however many gateways follow.
    fn line(&self, snapshot: &Snapshot) -> Bytes {
        let mut cache = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, line)) = cache.as_ref()
            && *version == snapshot.version
        {
            return line.clone();
        }
        let line = Bytes::from(encode_line(snapshot).unwrap_or_default());
        *cache = Some((snapshot.version, line.clone()));
        line
    }
}

/// Decrements the subscriber gauge when a stream ends, however it ends.
struct Subscription(ManagerMetrics);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.subscribers.dec();
    }
}

// === free functions ===

/// Reads the token from `path`, or creates the file with a fresh random token (readable by the owner
/// only) if it does not exist.
pub fn load_or_create_token(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let token = random_token()?;
    write_private(path, &token).map_err(io)?;
    Ok(token)
}

/// A fresh random token, hex-encoded.
pub fn random_token() -> Result<String, TokenError> {
    let mut raw = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(unix)]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(token.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    std::fs::write(path, token)
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))).boxed());
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Incoming>, channel: &Channel, bodies: &BodyReader) -> Response<Body> {
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorized = token_matches(presented, &channel.token);
    match (req.method(), req.uri().path()) {
        (_, SNAPSHOTS_PATH | REPORTS_PATH) if !authorized => plain(StatusCode::UNAUTHORIZED, "invalid token"),
        (&http::Method::GET, SNAPSHOTS_PATH) => subscribe(&req, channel),
        (&http::Method::POST, REPORTS_PATH) => report(req, channel, bodies).await,
        (_, SNAPSHOTS_PATH | REPORTS_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Takes one gateway's counters.
async fn report(req: Request<Incoming>, channel: &Channel, bodies: &BodyReader) -> Response<Body> {
    let body = match bodies.read(req.into_body(), MAX_REPORT_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            channel.metrics.report(false);
            let status = match e {
                BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
                BodyError::Read(_) => StatusCode::BAD_REQUEST,
            };
            let mut response = plain(status, &e.to_string());
            // The rest of the body is not read: the connection cannot carry another request.
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return response;
        }
    };
    match serde_json::from_slice::<GatewayReport>(&body) {
        Ok(r) => {
            channel.metrics.report(true);
            let mut flow = channel.flow.lock().unwrap_or_else(|p| p.into_inner());
            flow.record(r, Instant::now());
            plain(StatusCode::NO_CONTENT, "")
        }
        Err(e) => {
            channel.metrics.report(false);
            plain(StatusCode::BAD_REQUEST, &format!("invalid report: {e}"))
        }
    }
}

/// One gateway's stream of snapshots.
fn subscribe(req: &Request<Incoming>, channel: &Channel) -> Response<Body> {
    let after: u64 = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix(AFTER_PARAM).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rx = channel.snapshots.clone();
    rx.mark_changed();
    channel.metrics.subscribers.inc();
    let subscription = Subscription(channel.metrics.clone());
    let channel = channel.clone();
    // Each subscriber waits on the watch; a slow one simply skips to the newest snapshot.
    let lines = futures::stream::unfold((rx, after, subscription), move |(mut rx, mut sent, sub)| {
        let channel = channel.clone();
        async move {
            loop {
                rx.changed().await.ok()?;
                let snapshot = Arc::clone(&rx.borrow_and_update());
                if snapshot.version > sent {
                    sent = snapshot.version;
                    let line = channel.line(&snapshot);
                    return Some((Ok::<_, Infallible>(Frame::data(line)), (rx, sent, sub)));
                }
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(lines)));
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-ndjson"));
    r
}

/// Serves snapshots and takes reports until `stop` fires, under `limits`; over TLS when `tls` is
/// given.
pub async fn serve(
    listener: TcpListener,
    channel: Channel,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ServerLimits,
    stop: CancellationToken,
) {
    let server = Server::new("snapshots", limits, channel.metrics.clone());
    let bodies = server.body_reader();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    server
        .serve(listener, acceptor, stop, move |req| {
            let (channel, bodies) = (channel.clone(), bodies.clone());
            async move { handle(req, &channel, &bodies).await }
        })
        .await;
}
