//! `otlp-gateway`: the node-local OTLP trace gateway.
//!
//! Data flows one way, through bounded queues:
//!
//! ```text
//! receiver (gRPC 4317, HTTP 4318) -> wire::scan -> pipeline::Router (arc-swapped table)
//!     -> per pipeline: bounded queue -> batch::Batcher -> export::Exporter (retry) -> backend
//! ```
//!
//! A request body is read once; from then on spans live as slices of that buffer ([`wire`]) and
//! outgoing batches are assembled from those slices ([`batch`]). Each pipeline owns its queue, batcher
//! and exporter ([`pipeline`]), so a slow backend only holds up its own pipeline. Configuration
//! arrives as an immutable [`tracegw_contract::Snapshot`] swapped in atomically ([`reload`]).

pub mod admin;
pub mod app;
pub mod batch;
pub mod buffer;
pub mod compression;
pub mod enrich;
pub mod export;
pub mod filter;
pub mod link;
pub mod metrics;
pub mod pipeline;
pub mod receiver;
pub mod reload;
pub mod report;
pub mod socket;
pub mod subscribe;
pub mod wire;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use app::{Gateway, GatewayConfig, ShutdownReport};
