//! The OTTL conformance tables (`ottl/tests/data/`: the Collector's and Kyma's own tests, ported as data)
//! run through the gateway's own path: each input is encoded with prost, scanned, processed by the
//! pipeline stage on its encoded bytes, rebuilt, and decoded again, then compared with what the
//! Collector produces.
//!
//! Every case is run or counted as skipped with the reason its table gives; the test fails when any case
//! disagrees, and prints a summary per table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlp_gateway::process::ottl::{Processed, apply, evaluate_conditions};
use otlp_gateway::testing::encode_trace_data;
use ottl::bind::{bind_conditions, bind_conditions_in, bind_transform, bind_transform_in};
use ottl::context::Context;
use ottl::eval::ErrorMode;
use ottl::funcs::registry::Use;
use prost::Message;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use tracegw_contract::pipeline::{FilterSpec, TransformSpec};
use tracegw_contract::processing::{Processing, compile};

/// One table file.
#[derive(Debug, Deserialize)]
struct Table {
    #[serde(default)]
    inputs: BTreeMap<String, Yaml>,
    #[serde(default)]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    kind: String,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    statements: Vec<String>,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    error_mode: Option<String>,
    #[serde(default)]
    input: Option<Yaml>,
    #[serde(default)]
    spec: Option<String>,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    skip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Expect {
    #[serde(default)]
    output: Option<Yaml>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    matches: Option<Vec<bool>>,
    #[serde(default)]
    valid: Option<bool>,
}

/// Per table: cases passed, failed, skipped.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ottl/tests/data")
}

// === YAML telemetry to prost ===

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

fn str_of(v: Option<&Yaml>) -> String {
    match v {
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Number(n)) => n.to_string(),
        Some(Yaml::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn u64_of(v: Option<&Yaml>) -> u64 {
    match v {
        Some(Yaml::Number(n)) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)).unwrap_or(0),
        _ => 0,
    }
}

fn any_value(v: &Yaml) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        Yaml::Null => None,
        Yaml::Bool(b) => Some(V::BoolValue(*b)),
        Yaml::Number(n) if n.is_f64() => Some(V::DoubleValue(n.as_f64().expect("float"))),
        Yaml::Number(n) => Some(V::IntValue(n.as_i64().unwrap_or_else(|| n.as_u64().expect("int") as i64))),
        Yaml::String(s) => Some(V::StringValue(s.clone())),
        Yaml::Sequence(items) => {
            Some(V::ArrayValue(ArrayValue { values: items.iter().map(any_value).collect() }))
        }
        Yaml::Mapping(m) => match m.get("$bytes") {
            Some(Yaml::String(h)) if m.len() == 1 => Some(V::BytesValue(hex(h))),
            _ => Some(V::KvlistValue(KeyValueList { values: attributes(Some(v)) })),
        },
        Yaml::Tagged(t) => return any_value(&t.value),
    };
    AnyValue { value }
}

fn attributes(v: Option<&Yaml>) -> Vec<KeyValue> {
    let Some(Yaml::Mapping(m)) = v else { return Vec::new() };
    m.iter()
        .map(|(k, v)| KeyValue { key: str_of(Some(k)), value: Some(any_value(v)), key_strindex: 0 })
        .collect()
}

/// The ids a span of a table gets when the table gives none (or empty ones): the Collector's fixtures often leave
/// them out, which its pdata allows, while the gateway's receiver refuses spans without ids (the OTLP
/// schema requires them). Input and expected output get the same, so the comparison is unchanged.
const FIXTURE_TRACE_ID: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
const FIXTURE_SPAN_ID: &str = "f1f1f1f1f1f1f1f1";

/// `f`'s hex string, or `default` when the table leaves the field out or empty.
fn id_or(f: Option<&Yaml>, default: &str) -> Vec<u8> {
    match str_of(f) {
        id if id.is_empty() => hex(default),
        id => hex(&id),
    }
}

fn span_of(v: &Yaml) -> Span {
    let f = |k: &str| v.get(k);
    Span {
        trace_id: id_or(f("trace_id"), FIXTURE_TRACE_ID),
        span_id: id_or(f("span_id"), FIXTURE_SPAN_ID),
        parent_span_id: hex(&str_of(f("parent_span_id"))),
        trace_state: str_of(f("trace_state")),
        name: str_of(f("name")),
        kind: u64_of(f("kind")) as i32,
        start_time_unix_nano: u64_of(f("start_time_unix_nano")),
        end_time_unix_nano: u64_of(f("end_time_unix_nano")),
        attributes: attributes(f("attributes")),
        dropped_attributes_count: u64_of(f("dropped_attributes_count")) as u32,
        events: seq(f("events"))
            .iter()
            .map(|e| span::Event {
                time_unix_nano: u64_of(e.get("time_unix_nano")),
                name: str_of(e.get("name")),
                attributes: attributes(e.get("attributes")),
                dropped_attributes_count: u64_of(e.get("dropped_attributes_count")) as u32,
            })
            .collect(),
        dropped_events_count: u64_of(f("dropped_events_count")) as u32,
        links: seq(f("links"))
            .iter()
            .map(|l| span::Link {
                trace_id: id_or(l.get("trace_id"), FIXTURE_TRACE_ID),
                span_id: id_or(l.get("span_id"), FIXTURE_SPAN_ID),
                trace_state: str_of(l.get("trace_state")),
                attributes: attributes(l.get("attributes")),
                dropped_attributes_count: u64_of(l.get("dropped_attributes_count")) as u32,
                flags: u64_of(l.get("flags")) as u32,
            })
            .collect(),
        dropped_links_count: u64_of(f("dropped_links_count")) as u32,
        status: f("status")
            .map(|s| Status { message: str_of(s.get("message")), code: u64_of(s.get("code")) as i32 }),
        flags: u64_of(f("flags")) as u32,
    }
}

fn seq(v: Option<&Yaml>) -> Vec<Yaml> {
    match v {
        Some(Yaml::Sequence(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn request_of(v: &Yaml) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: seq(Some(v))
            .iter()
            .map(|rs| ResourceSpans {
                resource: rs.get("resource").map(|r| Resource {
                    attributes: attributes(r.get("attributes")),
                    dropped_attributes_count: u64_of(r.get("dropped_attributes_count")) as u32,
                    entity_refs: Vec::new(),
                }),
                schema_url: str_of(rs.get("schema_url")),
                scope_spans: seq(rs.get("scopes"))
                    .iter()
                    .map(|ss| ScopeSpans {
                        scope: ss.get("scope").map(|s| InstrumentationScope {
                            name: str_of(s.get("name")),
                            version: str_of(s.get("version")),
                            attributes: attributes(s.get("attributes")),
                            dropped_attributes_count: u64_of(s.get("dropped_attributes_count")) as u32,
                        }),
                        schema_url: str_of(ss.get("schema_url")),
                        spans: seq(ss.get("spans")).iter().map(span_of).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// === normalisation: what a decoder cannot tell apart ===

fn norm_kvs(kvs: &mut [KeyValue]) {
    for kv in kvs.iter_mut() {
        let value = kv.value.get_or_insert_with(AnyValue::default);
        norm_value(value);
    }
    // Map order is not part of a map's meaning (pcommon.Map.Equal ignores it).
    kvs.sort_by(|a, b| a.key.cmp(&b.key));
}

fn norm_value(v: &mut AnyValue) {
    match &mut v.value {
        Some(any_value::Value::KvlistValue(list)) => norm_kvs(&mut list.values),
        Some(any_value::Value::ArrayValue(array)) => array.values.iter_mut().for_each(norm_value),
        _ => {}
    }
}

fn normalize(mut req: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    for rs in &mut req.resource_spans {
        let resource = rs.resource.get_or_insert_with(Resource::default);
        norm_kvs(&mut resource.attributes);
        for ss in &mut rs.scope_spans {
            let scope = ss.scope.get_or_insert_with(InstrumentationScope::default);
            norm_kvs(&mut scope.attributes);
            for s in &mut ss.spans {
                // A statement that sets an id to zero writes it as absent, as pdata does; the
                // table's "no id" is the fixture's ([`FIXTURE_TRACE_ID`]).
                if s.trace_id.is_empty() {
                    s.trace_id = hex(FIXTURE_TRACE_ID);
                }
                if s.span_id.is_empty() {
                    s.span_id = hex(FIXTURE_SPAN_ID);
                }
                s.status.get_or_insert_with(Status::default);
                norm_kvs(&mut s.attributes);
                s.events.iter_mut().for_each(|e| norm_kvs(&mut e.attributes));
                s.links.iter_mut().for_each(|l| norm_kvs(&mut l.attributes));
            }
        }
    }
    req
}

// === running a case ===

fn context_of(name: &str) -> Context {
    Context::from_prefix(name).unwrap_or_else(|| panic!("unknown context {name}"))
}

fn mode_of(case: &Case) -> ErrorMode {
    match case.error_mode.as_deref() {
        Some("propagate") => ErrorMode::Propagate,
        Some("silent") => ErrorMode::Silent,
        _ => ErrorMode::Ignore,
    }
}

/// The processing a case describes, or the binding error.
fn processing(case: &Case) -> Result<Processing, String> {
    let context = case.context.as_deref().map(context_of);
    let mut p = Processing::default();
    match case.kind.as_str() {
        "transform" => p.transforms.push(
            match context {
                Some(c) => bind_transform_in(c, &case.statements, &case.conditions, Use::Transform),
                None => bind_transform(&case.statements, &case.conditions),
            }
            .map_err(|e| e.to_string())?,
        ),
        // The Collector's filter processor also filters span events (Kyma's cases go through
        // `validate`), and in its flat style each condition gets a context of its own.
        "filter" => match context {
            Some(c) => p.filters.push(
                bind_conditions_in(c, &case.conditions, Use::CollectorFilter).map_err(|e| e.to_string())?,
            ),
            None => {
                for condition in &case.conditions {
                    p.filters.push(
                        bind_conditions(std::slice::from_ref(condition), Use::CollectorFilter)
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
        },
        other => panic!("processing for kind {other}"),
    }
    Ok(p)
}

/// Runs one case; `Err` says how it disagrees.
fn run(case: &Case, inputs: &BTreeMap<String, Yaml>) -> Result<(), String> {
    let expect = case.expect.as_ref().ok_or("the case has no expectation")?;
    if case.kind == "validate" {
        let result = match case.spec.as_deref() {
            Some("filter") => compile(&[], &[FilterSpec { conditions: case.conditions.clone() }]),
            _ => compile(
                &[TransformSpec { conditions: case.conditions.clone(), statements: case.statements.clone() }],
                &[],
            ),
        };
        return match (expect.valid, result) {
            (Some(true), Ok(_)) => Ok(()),
            (Some(false), Err(e)) => match &expect.error {
                Some(want) if !e.message.contains(want.as_str()) => {
                    Err(format!("wrong message: {:?}, want it to contain {want:?}", e.message))
                }
                _ => Ok(()),
            },
            (Some(true), Err(e)) => Err(format!("refused a valid spec: {}", e.message)),
            (_, Ok(_)) => Err("accepted an invalid spec".into()),
            (None, _) => Err("validate case without expect.valid".into()),
        };
    }
    let input = match &case.input {
        Some(Yaml::String(name)) => inputs.get(name).ok_or_else(|| format!("no input named {name}"))?.clone(),
        Some(inline) => inline.clone(),
        None => return Err("the case has no input".into()),
    };
    let request = request_of(&input);
    let data = otlp_gateway::wire::scan(Bytes::from(request.encode_to_vec())).map_err(|e| e.to_string())?;
    if case.kind == "condition" {
        let context = case.context.as_deref().map(context_of);
        let group = match context {
            Some(c) => bind_conditions_in(c, &case.conditions, Use::Transform),
            None => bind_conditions(&case.conditions, Use::Transform),
        };
        let group = match (group, &expect.error) {
            (Ok(g), _) => g,
            (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => return Ok(()),
            (Err(e), _) => return Err(format!("does not bind: {e}")),
        };
        let verdicts = evaluate_conditions(&group, &data, mode_of(case));
        return match (verdicts, &expect.matches, &expect.error) {
            (Ok(got), Some(want), _) if &got == want => Ok(()),
            (Ok(got), Some(want), _) => Err(format!("matches {got:?}, want {want:?}")),
            (Err(e), _, Some(want)) if e.to_string().contains(want.as_str()) => Ok(()),
            (Err(e), _, _) => Err(format!("failed: {e}")),
            (Ok(got), None, _) => Err(format!("matched {got:?} where an error was expected")),
        };
    }
    let processing = match (processing(case), &expect.error) {
        (Ok(p), _) => p,
        (Err(e), Some(want)) if e.contains(want.as_str()) => return Ok(()),
        (Err(e), _) => return Err(format!("does not bind: {e}")),
    };
    let applied = match (apply(&processing, &data, mode_of(case)), &expect.error) {
        (Ok(a), None) => a,
        (Ok(_), Some(want)) => return Err(format!("ran where an error containing {want:?} was expected")),
        (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => return Ok(()),
        (Err(e), _) => return Err(format!("failed: {e}")),
    };
    let got = match applied.processed {
        Processed::Unchanged => request.clone(),
        Processed::Changed(own) => {
            ExportTraceServiceRequest::decode(&encode_trace_data(&own)[..]).map_err(|e| e.to_string())?
        }
    };
    let want = request_of(expect.output.as_ref().ok_or("no expected output")?);
    let (got, want) = (normalize(got), normalize(want));
    if got == want {
        return Ok(());
    }
    let (got, want) = (format!("{got:#?}"), format!("{want:#?}"));
    let (got_lines, want_lines): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let at = got_lines
        .iter()
        .zip(&want_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(got_lines.len().min(want_lines.len()));
    let window = |lines: &[&str]| lines[at.saturating_sub(6)..(at + 3).min(lines.len())].join("\n");
    Err(format!(
        "output differs at line {at}:\n--- got\n{}\n--- want\n{}",
        window(&got_lines),
        window(&want_lines)
    ))
}

/// Scenario: every case of every conformance table (the Collector's OTTL e2e, context, transform and
/// filter processor tests; Kyma's validator, webhook, doc and e2e cases), through the gateway's
/// encoded-bytes path. Guarantees: each case's output, verdicts or error matches the reference's;
/// skipped cases are only those whose table says why.
#[test]
fn conformance_tables() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tables")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("functions.yaml"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut totals: BTreeMap<String, Tally> = BTreeMap::new();
    for path in files {
        let table: Table =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("read")).expect("a valid table");
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let tally = totals.entry(file.clone()).or_default();
        for case in &table.cases {
            if case.skip.is_some() {
                tally.skipped += 1;
                continue;
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case, &table.inputs)))
                .unwrap_or_else(|_| Err("panicked".into()));
            match outcome {
                Ok(()) => tally.passed += 1,
                Err(why) => {
                    tally.failed += 1;
                    failures.push(format!("{file} / {}: {why}", case.name));
                }
            }
        }
    }
    for (file, t) in &totals {
        println!("{file}: {} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    }
    let failed: usize = totals.values().map(|t| t.failed).sum();
    let passed: usize = totals.values().map(|t| t.passed).sum();
    assert!(passed > 0, "no case ran");
    if std::env::var_os("OTTL_TABLES_REPORT").is_some() {
        std::fs::write("/tmp/ottl-failures.txt", failures.join("\n\n")).expect("report");
    }
    assert!(failed == 0, "{failed} cases disagree with the reference:\n{}", failures.join("\n"));
}
