//! Fuzzes the pipelines loader behind `--pipelines` (and `telemetry-manager --pipelines`): YAML or
//! JSON text, possibly several documents, read into TracePipelines and Secrets, then resolved
//! (Secrets, endpoints, headers, TLS material, OTTL statements) into a snapshot, as
//! `tracegw_contract::resolve_path` does for a file. Nothing may panic, and every pipeline gets
//! exactly one verdict.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tracegw_contract::load::Objects;
use tracegw_contract::{ResolveOptions, SecretStore, resolve};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut objects = Objects::default();
    if objects.add_text(Path::new("pipelines.yaml"), text).is_err() {
        return;
    }
    let secrets = SecretStore::new(&objects.secrets);
    let resolution = resolve(&objects.pipelines, &secrets, ResolveOptions::at_version(1));
    assert_eq!(resolution.statuses.len(), objects.pipelines.len());
    let running = resolution.statuses.iter().filter(|s| s.result.is_ok()).count();
    assert_eq!(resolution.snapshot.pipelines.len(), running);
    // The snapshot goes to gateways as JSON.
    let _ = serde_json::to_vec(&resolution.snapshot);
});
