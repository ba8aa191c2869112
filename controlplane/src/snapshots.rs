//! Serving config snapshots to gateways: one long-lived, authenticated stream per gateway, fed from a
//! `tokio::sync::watch` that always holds the newest snapshot (see `tracegw_contract::stream`).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::Snapshot;
use tracegw_contract::stream::{AFTER_PARAM, SNAPSHOTS_PATH, encode_line, token_matches};

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
    let mut raw = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &token).map_err(io)?;
    Ok(token)
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

fn handle(
    req: &Request<Incoming>,
    token: &str,
    snapshots: &watch::Receiver<Arc<Snapshot>>,
) -> Response<Body> {
    if req.uri().path() != SNAPSHOTS_PATH {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !token_matches(presented, token) {
        return plain(StatusCode::UNAUTHORIZED, "invalid token");
    }
    let after: u64 = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix(AFTER_PARAM).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rx = snapshots.clone();
    rx.mark_changed();
    // Each subscriber waits on the watch; a slow one simply skips to the newest snapshot.
    let lines = futures::stream::unfold((rx, after), |(mut rx, mut sent)| async move {
        loop {
            rx.changed().await.ok()?;
            let snapshot = Arc::clone(&rx.borrow_and_update());
            if snapshot.version > sent {
                sent = snapshot.version;
                let line = encode_line(&snapshot).unwrap_or_default();
                return Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), (rx, sent)));
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(lines)));
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-ndjson"));
    r
}

/// Serves snapshots until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    token: String,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    stop: CancellationToken,
) {
    let token = Arc::new(token);
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let (token, snapshots, stop) = (Arc::clone(&token), snapshots.clone(), stop.clone());
        let service = hyper::service::service_fn(move |req| {
            let r = handle(&req, &token, &snapshots);
            async move { Ok::<_, Infallible>(r) }
        });
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
