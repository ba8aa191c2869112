//! Writes the TracePipeline CRD to `deploy/crds/` (or the path given), or prints it with `-`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let yaml = match telemetry_manager::crd::crd_yaml() {
        Ok(y) => y,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = std::env::args().nth(1).unwrap_or_else(|| telemetry_manager::crd::CRD_PATH.to_string());
    if target == "-" {
        print!("{yaml}");
        return ExitCode::SUCCESS;
    }
    match std::fs::write(&target, yaml) {
        Ok(()) => {
            eprintln!("wrote {target}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {target}: {e}");
            ExitCode::FAILURE
        }
    }
}
