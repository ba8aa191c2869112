//! The conformance tables in `tests/data/` (the Collector's and Kyma's own OTTL tests, ported as data; the
//! format is in `tests/data/README.md`), run against what this crate implements so far: the parser.
//!
//! Every statement and condition of a case that the reference accepts must parse. Cases that expect an
//! error are counted here and checked where the error is decided: the syntax errors by the parser's own
//! tables, the rest by the binder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One file of cases.
#[derive(Debug, Deserialize)]
struct Table {
    source: String,
    #[serde(default)]
    cases: Vec<Case>,
}

/// One case; the telemetry is left as YAML until the evaluator reads it.
#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    kind: Kind,
    #[serde(default)]
    statements: Vec<String>,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    skip: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Transform,
    Filter,
    Condition,
    Validate,
}

#[derive(Debug, Default, Deserialize)]
struct Expect {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    valid: Option<bool>,
}

// === impl Case ===

impl Case {
    /// Whether the reference accepts the case's statements and conditions.
    fn accepted(&self) -> bool {
        match &self.expect {
            Some(expect) => expect.error.is_none() && expect.valid != Some(false),
            None => true,
        }
    }
}

fn tables() -> Vec<(PathBuf, Table)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("functions.yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let table: Table =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, table)
        })
        .collect()
}

/// Scenario: every case of every conformance table that the reference accepts. Guarantees: each of its
/// statements and conditions parses, so the grammar accepts all that the Collector and Kyma accept.
#[test]
fn accepted_statements_and_conditions_parse() {
    let mut failures = Vec::new();
    let mut counts: BTreeMap<Kind, (usize, usize, usize)> = BTreeMap::new();
    for (path, table) in tables() {
        assert!(!table.source.is_empty(), "{}: a table names its source", path.display());
        for case in &table.cases {
            let count = counts.entry(case.kind).or_default();
            if case.skip.is_some() {
                count.2 += 1;
                continue;
            }
            if !case.accepted() {
                count.1 += 1;
                continue;
            }
            count.0 += 1;
            for statement in &case.statements {
                if let Err(e) = ottl::parser::parse_statement(statement) {
                    failures.push(format!("{} / {}: {statement}: {e}", path.display(), case.name));
                }
            }
            for condition in &case.conditions {
                if let Err(e) = ottl::parser::parse_condition(condition) {
                    failures.push(format!("{} / {}: {condition}: {e}", path.display(), case.name));
                }
            }
        }
    }
    for (kind, (parsed, errors, skipped)) in &counts {
        println!(
            "{kind:?}: {parsed} accepted cases parsed, {errors} error cases left to the binder, {skipped} skipped"
        );
    }
    assert!(counts.values().map(|c| c.0).sum::<usize>() > 0, "the tables hold accepted cases");
    assert!(
        failures.is_empty(),
        "{} statements or conditions failed to parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
