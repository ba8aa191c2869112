//! `telemetry-manager` binary.
//!
//! - `telemetry-manager --pipelines PATH --snapshot-addr ADDR --token-file FILE`: renders config
//!   snapshots from TracePipeline/Secret YAML, serves them to gateways (`otlp-gateway --snapshot-url
//!   http://ADDR --token-file FILE`), and prints each pipeline's conditions whenever they change.
//! - `telemetry-manager check --pipelines PATH`: validates once and prints the conditions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_manager::local::{self, LocalConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Control plane for otlp-gateway: validates TracePipelines and pushes config snapshots"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TracePipeline and Secret YAML: a file or a directory; re-read when it changes.
    #[arg(long)]
    pipelines: Option<PathBuf>,
    /// Where gateways subscribe to snapshots.
    #[arg(long, default_value = "127.0.0.1:9090")]
    snapshot_addr: SocketAddr,
    /// The token gateways must present; created with a random value if the file is missing.
    #[arg(long)]
    token_file: Option<PathBuf>,
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
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { pipelines }) => check(&pipelines),
        None => {
            let (Some(pipelines), Some(token_file)) = (cli.pipelines, cli.token_file) else {
                eprintln!("error: serving needs --pipelines and --token-file (or use `check`)");
                return ExitCode::from(64);
            };
            serve(LocalConfig { pipelines, snapshot_addr: cli.snapshot_addr, token_file })
        }
    }
}

fn serve(config: LocalConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let manager = match local::start(config, |line| println!("{line}")).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(64);
            }
        };
        eprintln!("serving snapshots on {}", manager.addr);
        let _ = tokio::signal::ctrl_c().await;
        manager.stop.cancel();
        ExitCode::SUCCESS
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    let resolution =
        match tracegw_contract::resolve_path(path, tracegw_contract::ResolveOptions::at_version(1)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    for status in &resolution.statuses {
        println!("{}", telemetry_manager::condition_line(status));
    }
    if resolution.statuses.iter().any(|s| s.result.is_err()) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
