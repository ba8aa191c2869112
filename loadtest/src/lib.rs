//! Load generator and verifying OTLP sink for `otlp-gateway`, usable in-process (tests, benchmarks)
//! and through the `loadtest` binary.

pub mod compare;
pub mod fanout;
pub mod generate;
pub mod plot;
pub mod run;
pub mod sink;
pub mod sweep;

pub use tracegw_runtime::terminated;
