//! The function library against the catalogue of the Collector's functions (`tests/data/functions.yaml`,
//! read from the Collector's sources at the version Kyma pins).

use ottl::context::Context;
use ottl::funcs::registry::{self, Use};
use ottl::funcs::{FnKind, ParamType};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Catalogue {
    functions: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    kind: String,
    #[serde(default)]
    params: Vec<Param>,
    available: Available,
}

#[derive(Debug, Deserialize)]
struct Param {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    optional: bool,
}

#[derive(Debug, Deserialize)]
struct Available {
    #[serde(default)]
    transform: Vec<String>,
    #[serde(default)]
    filter: Vec<String>,
}

/// The parameter type a catalogue type names.
fn param_type(ty: &str) -> Option<ParamType> {
    Some(match ty {
        "Getter" => ParamType::Getter,
        "StringGetter" => ParamType::StringGetter,
        "StringLikeGetter" => ParamType::StringLikeGetter,
        "IntGetter" => ParamType::IntGetter,
        "IntLikeGetter" => ParamType::IntLikeGetter,
        "FloatGetter" => ParamType::FloatGetter,
        "FloatLikeGetter" => ParamType::FloatLikeGetter,
        "BoolGetter" => ParamType::BoolGetter,
        "BoolLikeGetter" => ParamType::BoolLikeGetter,
        "PMapGetter" => ParamType::PMapGetter,
        "PSliceGetter" => ParamType::PSliceGetter,
        "ByteSliceLikeGetter" => ParamType::ByteSliceLikeGetter,
        "DurationGetter" => ParamType::DurationGetter,
        "TimeGetter" => ParamType::TimeGetter,
        "GetSetter" => ParamType::GetSetter,
        "PMapGetSetter" => ParamType::PMapGetSetter,
        "PSliceGetSetter" => ParamType::PSliceGetSetter,
        "Setter" => ParamType::Setter,
        "FunctionGetter" => ParamType::FunctionGetter,
        "string" => ParamType::String,
        "bool" => ParamType::Bool,
        "int64" => ParamType::Int,
        "float64" => ParamType::Float,
        "[]string" => ParamType::StringList,
        "[]Getter" => ParamType::GetterList,
        "[]StringGetter" => ParamType::StringGetterList,
        "[]StringLikeGetter" => ParamType::StringLikeGetterList,
        "LambdaExpression" => ParamType::Lambda,
        _ => return None,
    })
}

fn context(name: &str) -> Context {
    Context::from_prefix(name).unwrap_or_else(|| panic!("unknown context {name}"))
}

/// Scenario: every function of the Collector's catalogue for traces, and every function registered
/// here. Guarantees: the two sets are the same; each function has the catalogue's kind, parameter
/// names, order, types and optionality; it is offered exactly in the contexts Kyma's transform and
/// filter offer it.
#[test]
fn the_library_is_the_collectors() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/functions.yaml");
    let catalogue: Catalogue = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("catalogue"))
        .expect("a valid catalogue");
    let mut problems = Vec::new();
    for entry in &catalogue.functions {
        let Some(def) = registry::lookup(&entry.name) else {
            problems.push(format!("{}: not registered", entry.name));
            continue;
        };
        let kind = if def.kind() == FnKind::Editor { "editor" } else { "converter" };
        if kind != entry.kind {
            problems.push(format!("{}: a {kind}, the catalogue says {}", entry.name, entry.kind));
        }
        let got: Vec<(&str, Option<ParamType>, bool)> =
            def.params.iter().map(|p| (p.name, Some(p.ty), p.optional)).collect();
        let want: Vec<(&str, Option<ParamType>, bool)> =
            entry.params.iter().map(|p| (p.name.as_str(), param_type(&p.ty), p.optional)).collect();
        if got != want {
            problems.push(format!("{}: parameters {got:?}, the catalogue says {want:?}", entry.name));
        }
        for (usage, listed) in
            [(Use::Transform, &entry.available.transform), (Use::Filter, &entry.available.filter)]
        {
            for c in Context::TRACE_PRIORITY {
                // Kyma's filter has no span event context at all.
                if usage == Use::Filter && c == Context::SpanEvent {
                    continue;
                }
                let offered = registry::available(&entry.name, usage, c).is_some()
                    && (usage == Use::Transform || def.kind() == FnKind::Converter);
                let want = listed.iter().any(|l| context(l) == c);
                if offered != want {
                    problems.push(format!(
                        "{} in {usage:?} {c}: offered {offered}, the catalogue says {want}",
                        entry.name
                    ));
                }
            }
        }
    }
    for name in registry::names() {
        if !catalogue.functions.iter().any(|e| e.name == name) {
            problems.push(format!("{name}: registered but not in the catalogue"));
        }
    }
    assert!(catalogue.functions.len() > 100, "the catalogue is whole");
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}
