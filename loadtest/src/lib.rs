//! Load generator and verifying OTLP sink for `otlp-gateway`, usable in-process (tests, benchmarks)
//! and through the `loadtest` binary.

pub mod generate;
pub mod run;
pub mod sink;

/// Resolves on SIGTERM or SIGINT.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
