//! Local mode: snapshots rendered from the same TracePipeline/Secret YAML that `otlp-gateway
//! --pipelines` reads, re-rendered when the files change, and served to subscribed gateways.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracegw_contract::Snapshot;
use tracegw_contract::load::{Change, ChangeDetector};

use crate::snapshots::{self, TokenError};

/// How often the files are checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What local mode needs.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// TracePipeline/Secret YAML file or directory.
    pub pipelines: PathBuf,
    /// Where gateways subscribe.
    pub snapshot_addr: SocketAddr,
    /// The shared token; created with a random value if missing.
    pub token_file: PathBuf,
}

/// Starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token is unavailable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running local manager.
#[derive(Debug)]
pub struct LocalManager {
    /// Bound snapshot address.
    pub addr: SocketAddr,
    /// Stops serving and watching.
    pub stop: CancellationToken,
    /// The latest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

/// Renders the files and starts serving. Condition lines go to `report` whenever they change.
pub async fn start(
    config: LocalConfig,
    report: impl Fn(String) + Send + 'static,
) -> Result<LocalManager, StartError> {
    let token = snapshots::load_or_create_token(&config.token_file)?;
    let listener = TcpListener::bind(config.snapshot_addr)
        .await
        .map_err(|source| StartError::Bind { addr: config.snapshot_addr, source })?;
    let addr = listener.local_addr().unwrap_or(config.snapshot_addr);
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let stop = CancellationToken::new();
    let mut renderer = Renderer {
        path: config.pipelines,
        changes: ChangeDetector::default(),
        tx,
        last: BTreeMap::new(),
        report,
    };
    renderer.poll();
    tokio::spawn(snapshots::serve(listener, token, rx.clone(), stop.clone()));
    let watch_stop = stop.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = watch_stop.cancelled() => return,
                _ = ticker.tick() => renderer.poll(),
            }
        }
    });
    Ok(LocalManager { addr, stop, snapshots: rx })
}

/// Re-renders on change.
struct Renderer<R> {
    path: PathBuf,
    changes: ChangeDetector,
    tx: watch::Sender<Arc<Snapshot>>,
    last: BTreeMap<String, String>,
    report: R,
}

impl<R: Fn(String)> Renderer<R> {
    fn poll(&mut self) {
        match self.changes.poll(&self.path) {
            Change::None => return,
            Change::Unreadable(e) => {
                (self.report)(format!("error: {e}; keeping the last snapshot"));
                return;
            }
            Change::Settled => {}
        }
        // Wall-clock milliseconds keep versions increasing across manager restarts, so a gateway that
        // asks for "after N" is never stuck behind a restarted manager.
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let version = now_ms.max(self.tx.borrow().version + 1);
        let resolution = match tracegw_contract::resolve_path(
            &self.path,
            tracegw_contract::ResolveOptions::at_version(version),
        ) {
            Ok(r) => r,
            Err(e) => {
                (self.report)(format!("error: {e}; keeping the last snapshot"));
                return;
            }
        };
        let mut current = BTreeMap::new();
        for status in &resolution.statuses {
            let line = crate::condition_line(status);
            if self.last.get(&status.name) != Some(&line) {
                (self.report)(line.clone());
            }
            current.insert(status.name.clone(), line);
        }
        for gone in self.last.keys().filter(|k| !current.contains_key(*k)) {
            (self.report)(format!("{gone}\tdeleted"));
        }
        self.last = current;
        if **self.tx.borrow() != resolution.snapshot || self.tx.borrow().version == 0 {
            self.tx.send_replace(Arc::new(resolution.snapshot));
        }
    }
}
