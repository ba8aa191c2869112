//! `otlp-gateway`: the node-local OTLP trace gateway.
//!
//! Data flows one way, through bounded queues:
//!
//! ```text
//! receiver (gRPC 4317, HTTP 4318) -> wire::scan -> router (arc-swapped pipelines)
//!     -> per pipeline: bounded queue -> batch::Batcher -> export (retry, own connections) -> backend
//! ```
//!
//! A request body is read once; from then on spans live as slices of that buffer ([`wire`]). Each
//! pipeline owns its queue, batcher and exporter, so a slow backend only holds up its own pipeline.
//! Configuration arrives as an immutable [`tracegw_contract::Snapshot`] swapped in atomically.

pub mod batch;
pub mod wire;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
