//! The Python the tests run (with `dataplane/tests/requirements.txt`: the OpenTelemetry SDK sender,
//! `kubernetes-validate`, ...), made on first use so that `cargo test` works on a fresh clone:
//!
//! 1. `OTLP_TEST_PYTHON`, when set, is used as it is;
//! 2. else the workspace's `.venv` (made by hand or by older CI runs), when it has every package of
//!    `dataplane/tests/requirements.txt` at its pinned version (`check_requirements.py` tells);
//! 3. else a virtual environment under the target directory (`target/test-venv`), created once with
//!    `python3 -m venv` and `pip install -r dataplane/tests/requirements.txt`, and reused afterwards.
//!
//! Test binaries run in parallel and each runs tests on several threads: creation holds an exclusive
//! lock on `target/test-venv.lock` (`flock`), and the environment counts as complete only once the
//! requirements it was installed from are copied into it (`.installed-requirements`, written last).
//! `.ci/run` prefetches the same environment the same way.
//!
//! Shared by the data plane's and the control plane's tests (`#[path]`-included); std only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Copied into the environment once everything is installed; its content names what was installed.
const MARKER: &str = ".installed-requirements";

fn workspace_root() -> PathBuf {
    // Both including crates sit one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The target directory (Cargo gives integration tests `<target>/tmp`), so `CARGO_TARGET_DIR` is
/// honoured.
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map_or_else(|| workspace_root().join("target"), Path::to_path_buf)
}

/// The Python to run the tests' scripts with; creates `target/test-venv` on first use. Panics with
/// what failed (pip's output included) when no such Python can be had.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_create) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn find_or_create() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("OTLP_TEST_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let requirements = workspace_root().join("dataplane/tests/requirements.txt");
    let dot_venv = workspace_root().join(".venv/bin/python");
    if dot_venv.exists() && satisfies(&dot_venv, &requirements).is_ok() {
        return Ok(dot_venv);
    }
    ensure_venv(&target_dir(), &requirements).map(|(python, _)| python)
}

/// Whether `python` has every package `requirements` pins, or which one it lacks.
fn satisfies(python: &Path, requirements: &Path) -> Result<(), String> {
    let script = workspace_root().join("dataplane/tests/check_requirements.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(requirements)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_string()) }
}

/// `<target>/test-venv/bin/python`, created from `requirements_file` under the lock unless a complete
/// one exists; with whether this call created it.
pub fn ensure_venv(target: &Path, requirements_file: &Path) -> Result<(PathBuf, bool), String> {
    let requirements = std::fs::read_to_string(requirements_file)
        .map_err(|e| format!("cannot read {}: {e}", requirements_file.display()))?;
    let venv = target.join("test-venv");
    let python = venv.join("bin/python");
    let complete =
        || std::fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m == requirements) && python.exists();
    if complete() {
        return Ok((python, false));
    }
    std::fs::create_dir_all(target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let lock_path = target.join("test-venv.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    // Blocks while another test (thread or process) creates it; released when `lock` is dropped,
    // also when that process dies.
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if complete() {
        return Ok((python, false));
    }
    eprintln!(
        "creating {} for the tests (python3 -m venv, pip install -r {}); once",
        venv.display(),
        requirements_file.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the incomplete {}: {e}", venv.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv")?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(requirements_file),
        "pip install",
    )?;
    satisfies(&python, requirements_file).map_err(|e| {
        format!(
            "{} was installed from {} but is incomplete: {e}",
            venv.display(),
            requirements_file.display()
        )
    })?;
    let marker = venv.join(MARKER);
    let staged = venv.join(format!("{MARKER}.tmp"));
    std::fs::write(&staged, &requirements)
        .and_then(|()| std::fs::rename(&staged, &marker))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    drop(lock);
    Ok((python, true))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let out = command.output().map_err(|e| {
        format!(
            "no Python for the tests: cannot run {what} ({e}); install python3 with venv and pip, or set \
             OTLP_TEST_PYTHON to a Python with dataplane/tests/requirements.txt installed"
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "no Python for the tests: {what} failed ({}); set OTLP_TEST_PYTHON to a Python with \
         dataplane/tests/requirements.txt installed to skip this\n--- {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        command,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
