//! `telemetry-manager`: the control plane.
//!
//! Today it offers `check`: it reads TracePipeline and Secret YAML (the same files `otlp-gateway
//! --pipelines` reads), validates them with the shared contract and prints each pipeline's
//! `ConfigurationGenerated` condition as Kyma would set it. Reconciling in a cluster, the gateway
//! DaemonSet and the snapshot push are not built yet.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KYMA_CONFIGURED_MESSAGE: &str =
    "TracePipeline specification is successfully applied to the configuration of OTLP Gateway";

#[derive(Debug, Parser)]
#[command(version, about = "Control plane for otlp-gateway: validates and reconciles TracePipelines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate TracePipeline/Secret YAML and print each pipeline's ConfigurationGenerated condition.
    /// Exits 1 when any pipeline is invalid.
    Check {
        /// A YAML file or a directory of them.
        #[arg(long)]
        pipelines: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { pipelines } => check(&pipelines),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let resolution = match tracegw_contract::resolve_path(path, 1) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut invalid = 0;
    for status in &resolution.statuses {
        let (state, reason, message) = match &status.result {
            Ok(()) => ("True", "GatewayConfigured", KYMA_CONFIGURED_MESSAGE.to_string()),
            Err(e) => {
                invalid += 1;
                ("False", e.reason.as_str(), e.to_string())
            }
        };
        println!("{}\tConfigurationGenerated={state}\t{reason}\t{message}", status.name);
    }
    if invalid > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
