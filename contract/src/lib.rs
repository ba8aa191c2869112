//! The contract between the control plane (`telemetry-manager`) and the data plane (`otlp-gateway`).
//!
//! Users write Kyma `TracePipeline` objects and `Secret`s ([`pipeline`]). Either plane reads them
//! ([`load`]), checks them (the OTTL of `transform` and `filter` in [`processing`]) and resolves every
//! secret reference ([`resolve()`]) into an immutable, versioned
//! [`Snapshot`] ([`snapshot`]), which is all a gateway ever runs. Keeping this crate free of tokio, tonic
//! and kube means both planes, tests and tools agree on one definition of "valid".

pub mod load;
pub mod pipeline;
pub mod processing;
pub mod resolve;
#[cfg(feature = "schema")]
mod schema;
pub mod snapshot;
pub mod stream;
pub mod telemetry;
pub mod tls;

pub use resolve::{
    DEFAULT_MAX_PIPELINES, Generated, PipelineError, PipelineStatus, Reason, Resolution, ResolveOptions,
    SecretStore, resolve,
};
pub use snapshot::{
    Compression, EnrichmentSettings, OAuth2Config, OtlpOutputConfig, PipelineConfig, PodLabelRule, Protocol,
    Sensitive, ServiceMode, Snapshot, TlsConfig,
};

/// Loads a path and resolves it in one step, folding schema breakage into per-pipeline statuses.
pub fn resolve_path(path: &std::path::Path, options: ResolveOptions) -> Result<Resolution, load::LoadError> {
    let objects = load::load_path(path)?;
    let secrets = SecretStore::new(&objects.secrets);
    let mut resolution = resolve(&objects.pipelines, &secrets, options);
    for broken in objects.broken_pipelines {
        let field =
            if broken.field.is_empty() || broken.field == "." { "(root)".to_string() } else { broken.field };
        resolution.statuses.push(PipelineStatus {
            name: broken.name,
            result: Err(PipelineError::new(Reason::SpecInvalid, field, broken.message)),
        });
    }
    resolution.statuses.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(resolution)
}
