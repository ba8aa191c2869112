//! The processing stages, in the order data meets them. This is the whole chain:
//!
//! ```text
//! receiver -> wire::scan
//!   -> global stages, once per request (GlobalStages::run):
//!        enrich   Kubernetes attributes of the sending pod, service.name, cluster attributes, kyma.* dropped
//!        noise    Kyma's Istio noise filter
//!   -> fan-out: every pipeline gets the same scanned request (shared, not copied)
//!   -> per-pipeline stages (ottl::PipelineStages, in Pipeline::try_enqueue): the TracePipeline's OTTL
//!        transform, then its filter, changing only that pipeline's copy of what they touch
//!   -> bounded queue -> batch -> export
//! ```
//!
//! Global stages run before the fan-out because what they do is the same for every pipeline, and
//! enrichment needs the sender's address, which batching loses (Kyma runs them in the same place).
//! Every stage reads spans through [`crate::wire::view`] and changes a request by replacing or
//! appending encoded pieces, never by decoding it.

pub mod enrich;
pub mod noise;
pub mod ottl;

use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::TraceData;
use enrich::Enricher;

/// The stages that run once per request, before the fan-out.
#[derive(Debug, Default)]
pub struct GlobalStages {
    /// Absent when the gateway runs without a pod index (enrichment off).
    enricher: Option<Arc<Enricher>>,
}

/// What the global stages did to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalOutcome {
    /// Spans the Istio noise filter dropped.
    pub noise_dropped: usize,
}

// === impl GlobalStages ===

impl GlobalStages {
    /// The chain, with enrichment when `enricher` is given.
    pub fn new(enricher: Option<Arc<Enricher>>) -> Self {
        Self { enricher }
    }

    /// Runs every global stage on a request sent from `peer` (its canonical address).
    pub fn run(&self, data: &mut TraceData, peer: Option<IpAddr>) -> GlobalOutcome {
        if let Some(enricher) = &self.enricher {
            enricher.enrich(data, peer);
        }
        // After enrichment: the noise rules read the namespace that enrichment may have added.
        let noise_dropped = noise::drop_noise(data);
        GlobalOutcome { noise_dropped }
    }
}
