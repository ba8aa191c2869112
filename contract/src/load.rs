//! Reads Kubernetes objects from YAML (or JSON) files: one file, or every `*.yaml`, `*.yml` and `*.json`
//! in a directory, each possibly holding several `---`-separated documents. Kinds other than
//! TracePipeline and Secret are skipped, so a whole kustomize directory can be pointed at.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::pipeline::{GROUP, Secret, TracePipeline};

/// The objects found, plus what could not be read.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// Parsed pipelines.
    pub pipelines: Vec<TracePipeline>,
    /// Parsed Secrets.
    pub secrets: Vec<Secret>,
    /// Pipelines whose document did not match the schema; they are reported, not run.
    pub broken_pipelines: Vec<BrokenObject>,
    /// Any raw document of another kind, with its kind, for later stages (e.g. Pods).
    pub others: Vec<serde_json::Value>,
}

/// A document that could not be deserialised into its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenObject {
    /// `metadata.name` when it could be read.
    pub name: String,
    /// File it came from.
    pub source: PathBuf,
    /// Path of the offending field inside the object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Reading files failed as a whole (missing path, unreadable file, invalid YAML syntax).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// I/O error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML.
    #[error("{path}: document {index} is not valid YAML: {message}")]
    Syntax {
        /// File.
        path: PathBuf,
        /// Zero-based document index.
        index: usize,
        /// Parser message.
        message: String,
    },
}

// === impl Objects ===

impl Objects {
    /// Adds every document of one YAML/JSON text.
    pub fn add_text(&mut self, source: &Path, text: &str) -> Result<(), LoadError> {
        visit_text(source, text, |value| self.add_value(source, value))
    }

    fn add_value(&mut self, source: &Path, value: serde_json::Value) {
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let api_version = value.get("apiVersion").and_then(|k| k.as_str()).unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        match (kind, group, api_version) {
            ("TracePipeline", GROUP, _) => match typed::<TracePipeline>(source, value) {
                Ok(p) => self.pipelines.push(p),
                Err(broken) => self.broken_pipelines.push(broken),
            },
            ("Secret", _, "v1") => match typed::<Secret>(source, value) {
                Ok(s) => self.secrets.push(s),
                Err(broken) => {
                    // A broken Secret makes the pipelines that use it report a missing key; say why here.
                    self.others.push(serde_json::json!({
                        "kind": "BrokenSecret", "name": broken.name, "error": broken.message
                    }))
                }
            },
            _ => self.others.push(value),
        }
    }
}

fn typed<T: DeserializeOwned>(source: &Path, value: serde_json::Value) -> Result<T, BrokenObject> {
    let name = value.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
    serde_path_to_error::deserialize(value).map_err(|e| BrokenObject {
        name,
        source: source.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Reads a file or a directory (not recursive; files in name order).
pub fn load_path(path: &Path) -> Result<Objects, LoadError> {
    let mut objects = Objects::default();
    for file in files(path)? {
        let text =
            std::fs::read_to_string(&file).map_err(|source| LoadError::Io { path: file.clone(), source })?;
        objects.add_text(&file, &text)?;
    }
    Ok(objects)
}

/// Calls `visit` with each document under `path`, one at a time, so a caller that keeps only a few
/// fields of each (ten thousand Pods, say) never holds every document at once.
pub fn visit_path(path: &Path, mut visit: impl FnMut(serde_json::Value)) -> Result<(), LoadError> {
    for file in files(path)? {
        let text =
            std::fs::read_to_string(&file).map_err(|source| LoadError::Io { path: file.clone(), source })?;
        visit_text(&file, &text, &mut visit)?;
    }
    Ok(())
}

fn visit_text(source: &Path, text: &str, mut visit: impl FnMut(serde_json::Value)) -> Result<(), LoadError> {
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)
            .map_err(|e| LoadError::Syntax { path: source.to_path_buf(), index, message: e.to_string() })?;
        if !value.is_null() {
            visit(value);
        }
    }
    Ok(())
}

/// The files `load_path` would read, in order.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta =
        std::fs::metadata(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
        let p = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Kubernetes mounts ConfigMaps through `..data` symlinks; the visible names are what count.
        if name.starts_with('.') {
            continue;
        }
        let wanted = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        if wanted && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Tells when the files under a path changed and then stayed the same for one poll.
#[derive(Debug, Default)]
pub struct ChangeDetector {
    fingerprint: Option<u64>,
    candidate: Option<u64>,
}

/// What one poll of a path found.
#[derive(Debug)]
pub enum Change {
    /// Nothing new to apply.
    None,
    /// New, settled content to read and apply.
    Settled,
    /// The path cannot be read; reported once per outage.
    Unreadable(LoadError),
}

// === impl ChangeDetector ===

impl ChangeDetector {
    /// Polls `path`. The first successful read counts as settled at once (start-up); later changes
    /// must stay the same for one interval, because an editor or `kubectl cp` may be halfway through
    /// writing and a half-written file can still be valid YAML that lacks pipelines.
    pub fn poll(&mut self, path: &Path) -> Change {
        let fingerprint = match fingerprint(path) {
            Ok(f) => f,
            Err(e) => {
                if self.fingerprint == Some(0) {
                    return Change::None;
                }
                self.fingerprint = Some(0);
                return Change::Unreadable(e);
            }
        };
        if self.fingerprint == Some(fingerprint) {
            return Change::None;
        }
        if self.candidate != Some(fingerprint) && self.fingerprint.is_some() {
            self.candidate = Some(fingerprint);
            return Change::None;
        }
        self.candidate = None;
        self.fingerprint = Some(fingerprint);
        Change::Settled
    }
}

/// A hash of the names and contents of the files that would be read.
fn fingerprint(path: &Path) -> Result<u64, LoadError> {
    let mut hasher = DefaultHasher::new();
    for file in files(path)? {
        file.hash(&mut hasher);
        let content = std::fs::read(&file).map_err(|source| LoadError::Io { path: file.clone(), source })?;
        content.hash(&mut hasher);
    }
    // Zero marks "unreadable"; a real fingerprint is never zero.
    Ok(hasher.finish() | 1)
}
