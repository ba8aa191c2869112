//! Writes the TracePipeline and Telemetry CRDs to `deploy/crds/` (or into the directory given), or
//! prints both with `-`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let generated = [
        (telemetry_manager::crd::CRD_PATH, telemetry_manager::crd::crd_yaml()),
        (telemetry_manager::telemetry::CRD_PATH, telemetry_manager::telemetry::crd_yaml()),
    ];
    let target = std::env::args().nth(1);
    let mut documents = Vec::new();
    for (path, yaml) in generated {
        match yaml {
            Ok(y) => documents.push((path, y)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if target.as_deref() == Some("-") {
        for (_, yaml) in &documents {
            print!("{yaml}");
        }
        return ExitCode::SUCCESS;
    }
    for (path, yaml) in documents {
        let file = match &target {
            Some(dir) => PathBuf::from(dir).join(Path::new(path).file_name().unwrap_or_default()),
            None => PathBuf::from(path),
        };
        if let Err(e) = std::fs::write(&file, yaml) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", file.display());
    }
    ExitCode::SUCCESS
}
