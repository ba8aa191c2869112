//! `telemetry-manager`: the control plane. It turns TracePipelines and Secrets into versioned config
//! snapshots ([`tracegw_contract`]), serves them to every gateway over one authenticated long-lived
//! stream each ([`snapshots`]), and reports each pipeline's `ConfigurationGenerated` condition.
//!
//! [`local`] runs that push path from YAML files, without a cluster; the in-cluster reconciler is
//! still to come.

pub mod crd;
pub mod local;
pub mod snapshots;

/// Kyma's message for a pipeline that made it into the configuration.
pub const CONFIGURED_MESSAGE: &str =
    "TracePipeline specification is successfully applied to the configuration of OTLP Gateway";

/// The `ConfigurationGenerated` condition of one pipeline as one printable line.
pub fn condition_line(status: &tracegw_contract::PipelineStatus) -> String {
    match &status.result {
        Ok(_) => {
            format!("{}\tConfigurationGenerated=True\tGatewayConfigured\t{CONFIGURED_MESSAGE}", status.name)
        }
        Err(e) => format!("{}\tConfigurationGenerated=False\t{}\t{e}", status.name, e.reason.as_str()),
    }
}
