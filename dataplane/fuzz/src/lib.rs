//! What the fuzz targets share: a sink that scans what the receivers hand it, and the gateway's real
//! OTLP receivers served on 127.0.0.1 by a runtime that lives as long as the fuzzing process.
//!
//! The receivers' `serve` functions take a TCP listener, so the targets that drive them talk over
//! loopback TCP: one connection per input (HTTP/1) or one connection for many inputs (HTTP/2), each
//! exchange bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // fuzzing support: a failure is a finding

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use otlp_gateway::receiver::{ExportFuture, ExportSink, IngestError, Receiving, Transport};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Largest request the fuzzed receivers take (after decompression).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// How long one input's exchange with a receiver may take once the client has sent everything: a
/// receiver that holds a finished connection longer hangs, which is a finding.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The gateway's verdict on a request, without pipelines: the scan's.
#[derive(Debug, Default)]
pub struct ScanSink;

impl ExportSink for ScanSink {
    fn export(&self, _transport: Transport, body: Bytes, _peer: Option<IpAddr>) -> ExportFuture {
        let verdict = otlp_gateway::wire::scan(body).map(|_| ()).map_err(IngestError::from);
        Box::pin(std::future::ready(verdict))
    }
}

/// A current-thread runtime and the address of a receiver served on it. The receiver runs while a
/// target's `block_on` runs.
pub struct Served {
    pub runtime: Runtime,
    pub addr: SocketAddr,
}

/// Runs `serve(listener, receiving, shutdown)` on 127.0.0.1:0 on a runtime of its own; the shutdown
/// token never fires.
pub fn serve<F, Fut>(serve: F) -> Served
where
    F: FnOnce(TcpListener, Arc<Receiving>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let receiving = runtime.block_on(async { Receiving::unmetered(MAX_REQUEST_BYTES) });
    runtime.spawn(serve(listener, receiving, CancellationToken::new()));
    Served { runtime, addr }
}
