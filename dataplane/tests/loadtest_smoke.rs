//! A short, small `loadtest run` as part of the suite: the real gateway binary, the verifying sink and
//! the generator, a few seconds at a modest rate. It asserts delivery (nothing lost, nothing
//! duplicated), never timing: speed is measured by hand and recorded in PERF.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: loadtest::run::RunArgs,
}

async fn run(scenario: &str) -> serde_json::Value {
    let bin = env!("CARGO_BIN_EXE_otlp-gateway");
    let argv =
        ["run", scenario, "--rate", "20000", "--duration", "2s", "--concurrency", "8", "--gateway-bin", bin];
    loadtest::run::run(Cli::parse_from(argv).args).await.unwrap()
}

/// Scenario: two seconds of 20,000 spans/s through one pipeline, then through three.
/// Guarantees: every span the gateway accepted reaches every backend exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_load_loses_and_duplicates_nothing() {
    for scenario in ["single", "multi3"] {
        let r = run(scenario).await;
        assert!(r["sent_spans"].as_u64().unwrap() >= 20_000, "{r}");
        assert_eq!(r["refused_spans"], 0, "{r}");
        assert_eq!(r["lost_spans"], 0, "{r}");
        assert_eq!(r["duplicated_spans"], 0, "{r}");
    }
}
