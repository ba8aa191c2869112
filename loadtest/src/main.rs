//! `loadtest`: a load generator and a verifying OTLP sink for `otlp-gateway`.

mod generate;
mod sink;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Load generator and verifying sink for otlp-gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive OTLP, count and verify spans, misbehave on request.
    Sink(sink::SinkArgs),
    /// Send OTLP spans at a rate or as fast as possible.
    Generate(generate::GenerateArgs),
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sink(args) => sink::run(args).await,
        Command::Generate(args) => {
            let report = generate::run(args).await?;
            println!("{report}");
            Ok(())
        }
    }
}
