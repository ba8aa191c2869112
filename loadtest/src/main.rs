//! `loadtest`: a load generator and a verifying OTLP sink for `otlp-gateway`.

use clap::{Parser, Subcommand};
use loadtest::{compare, fanout, generate, plot, run, sink, sweep};

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
    /// Run a measured scenario: forwarder, sinks and generator; prints a table and one JSON line.
    Run(run::RunArgs),
    /// Run a scenario for a candidate gateway and a baseline (another binary, or rotel), interleaved
    /// round by round; prints medians and the per-round ratio of CPU per span, then one JSON line.
    Compare(compare::CompareArgs),
    /// Measure what many gateways cost telemetry-manager: snapshot streams, changes, reports.
    Fanout(fanout::FanoutArgs),
    /// Run a scenario at several offered loads (for the gateway, and rotel with --with-rotel);
    /// prints a table and one JSON document for `loadtest plot cpu`.
    Sweep(sweep::SweepArgs),
    /// Draw SVG charts from the JSON that `loadtest sweep` and `loadtest run` print.
    Plot(plot::PlotArgs),
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
        Command::Fanout(args) => {
            let result = fanout::run(args).await?;
            eprint!("{}", fanout::table(&result));
            println!("{result}");
            Ok(())
        }
        Command::Compare(args) => {
            let result = compare::run(args).await?;
            eprint!("{}", compare::table(&result));
            println!("{result}");
            Ok(())
        }
        Command::Sweep(args) => {
            let result = sweep::run(args).await?;
            eprint!("{}", sweep::table(&result));
            println!("{result}");
            Ok(())
        }
        Command::Plot(args) => {
            eprintln!("{}", plot::run(args)?);
            Ok(())
        }
        Command::Run(args) => {
            let result = run::run(args).await?;
            eprint!("{}", run::table(&result));
            println!("{result}");
            Ok(())
        }
    }
}
