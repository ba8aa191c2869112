//! `otlp-gateway`: the node-local OTLP trace gateway.
//!
//! Data flows one way, through bounded queues:
//!
//! ```text
//! receiver (gRPC 4317, HTTP 4318) -> wire::scan
//!     -> process: global stages once per request (enrichment, Istio noise filter)
//!     -> pipeline::Router (arc-swapped table): fan-out to every pipeline
//!     -> per pipeline: its own stages -> bounded queue -> batch::Batcher -> export::Exporter (retry) -> backend
//! ```
//!
//! A request body is read once; from then on spans live as slices of that buffer ([`wire`]), stages
//! read them through typed views ([`wire::view`]) and change them by replacing encoded pieces
//! ([`process`]), and outgoing batches are assembled from those slices ([`batch`]). Each pipeline owns
//! its queue, batcher and exporter ([`pipeline`]), so a slow backend only holds up its own pipeline.
//! Configuration arrives as an immutable [`tracegw_contract::Snapshot`] swapped in atomically ([`reload`]).

// The data path, in order.
pub mod receiver;
pub mod wire;
pub mod process;
pub mod pipeline;
pub mod batch;
pub mod export;

// I/O plumbing under the data path.
pub mod budget;
pub mod buffer;
pub mod compression;
pub mod socket;

// The control link: configuration in, counters out.
pub mod link;
pub mod reload;
pub mod report;
pub mod subscribe;

// Composition and operations.
pub mod admin;
pub mod app;
pub mod metrics;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use app::{Gateway, GatewayConfig, ShutdownReport};
