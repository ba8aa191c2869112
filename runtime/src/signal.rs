//! The signal a process stops on. In a container the binary is PID 1, where the kernel applies no
//! default action to SIGTERM: unless it is handled, Kubernetes' stop request is ignored until the
//! grace period ends and the kubelet sends SIGKILL.

use std::fmt;

/// Which signal asked the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: Kubernetes stopping the pod, `kill`, systemd.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

// === impl Signal ===

impl Signal {
    /// `SIGTERM` or `SIGINT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === free functions ===

/// Resolves on SIGTERM or SIGINT (Ctrl-C), saying which. Where SIGTERM cannot be handled (not Unix,
/// or the handler cannot be installed) only Ctrl-C ends it.
pub async fn terminated() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => Signal::Terminate,
                    _ = tokio::signal::ctrl_c() => Signal::Interrupt,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGTERM; only Ctrl-C stops this process cleanly");
                let _ = tokio::signal::ctrl_c().await;
                Signal::Interrupt
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
