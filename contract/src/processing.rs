//! A pipeline's own processing: Kyma's `transform` and `filter` OTTL, compiled by the one function both
//! planes use. The manager calls [`compile`] to decide `ConfigurationGenerated` (and its admission
//! webhook to admit or deny), the gateway calls it again to get what it runs: the same verdict on the
//! same text, by construction.

use ottl::bind::{FilterGroup, TransformGroup, bind_filter, bind_transform};

use crate::pipeline::{FilterSpec, TransformSpec};
use crate::resolve::{PipelineError, Reason};

/// Where Kyma's troubleshooting guide explains OTTL errors; its message points there.
pub const OTTL_TROUBLESHOOTING: &str = "https://kyma-project.io/external-content/telemetry-manager/docs/user/troubleshooting.html#ottl-spec-invalid-with-unspecific-error-message";

/// The compiled statement and condition groups of one pipeline, in order.
#[derive(Debug, Default)]
pub struct Processing {
    pub transforms: Vec<TransformGroup>,
    pub filters: Vec<FilterGroup>,
}

// === impl Processing ===

impl Processing {
    /// Whether the pipeline has no processing of its own.
    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty() && self.filters.is_empty()
    }
}

/// Compiles a pipeline's transforms, then its filters (Kyma's reconcile order), failing with Kyma's
/// `OTTLSpecInvalid` on the first spec that does not parse or bind.
pub fn compile(transform: &[TransformSpec], filter: &[FilterSpec]) -> Result<Processing, PipelineError> {
    let mut processing = Processing::default();
    for (i, spec) in transform.iter().enumerate() {
        let group = bind_transform(&spec.statements, &spec.conditions)
            .map_err(|e| invalid(&format!("spec.transform[{i}]"), &format!("invalid TransformSpec: {e}")))?;
        processing.transforms.push(group);
    }
    for (i, spec) in filter.iter().enumerate() {
        let group = bind_filter(&spec.conditions)
            .map_err(|e| invalid(&format!("spec.filter[{i}]"), &format!("invalid FilterSpec: {e}")))?;
        processing.filters.push(group);
    }
    Ok(processing)
}

/// Kyma's message for `OTTLSpecInvalid`, as its webhook and its condition both word it.
pub fn spec_invalid_message(cause: &str) -> String {
    format!(
        "OTTL specification is invalid, {cause}. Fix the syntax error indicated by the message or see troubleshooting: {OTTL_TROUBLESHOOTING}"
    )
}

fn invalid(field: &str, cause: &str) -> PipelineError {
    PipelineError::new(Reason::OttlSpecInvalid, field, spec_invalid_message(cause))
}
