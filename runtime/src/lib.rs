//! Process plumbing shared by `otlp-gateway` and `telemetry-manager`: the signal to stop on
//! ([`terminated`]), and accept loops that neither spin nor flood the log when accepting fails, e.g.
//! when the process runs out of file descriptors ([`accept`], [`AcceptBackoff`]).

#![forbid(unsafe_code)]

mod accept;
mod signal;

pub use accept::{
    AcceptBackoff, BackoffPolicy, FIRST_ACCEPT_DELAY, MAX_ACCEPT_DELAY, RateLimitedLog, WARN_INTERVAL,
    accept, accept_with, is_connection_error,
};
pub use signal::{Signal, terminated};
