//! A TracePipeline's OTTL processing per request of 100 spans (SDK-like: 10 string attributes of 16
//! bytes, one resource), for each kind of statement and Kyma's documented examples: the gateway's stage
//! on the received bytes (scan included, as the gateway pays it anyway only once for all pipelines,
//! but counted here so both sides start from bytes) beside the plain way, prost decode → the same
//! statements on owned structs → prost encode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::process::ottl::{Processed, apply, reference};
use otlp_gateway::testing::{encode_trace_data, kv, sample_request};
use otlp_gateway::wire::scan;
use ottl::eval::ErrorMode;
use prost::Message;
use tracegw_contract::pipeline::{FilterSpec, TransformSpec};
use tracegw_contract::processing::{Processing, compile};

/// Spans per request.
const SPANS: usize = 100;

/// One case: a name, transform statements, their group's conditions, and filter conditions.
type Case = (&'static str, Vec<&'static str>, Vec<&'static str>, Vec<&'static str>);

/// The cases.
fn cases() -> Vec<Case> {
    vec![
        ("set_attribute", vec![r#"set(span.attributes["env"], "prod")"#], vec![], vec![]),
        (
            "set_where_holds",
            vec![r#"set(span.attributes["env"], "prod") where span.kind == SPAN_KIND_SERVER"#],
            vec![],
            vec![],
        ),
        (
            "set_where_fails",
            vec![r#"set(span.attributes["env"], "prod") where span.attributes["loadtest.attr.0"] == "nope""#],
            vec![],
            vec![],
        ),
        ("set_name", vec![r#"set(span.name, "renamed")"#], vec![], vec![]),
        ("delete_key", vec![r#"delete_key(span.attributes, "loadtest.attr.3")"#], vec![], vec![]),
        ("resource_set", vec![r#"set(resource.attributes["k8s.cluster.name"], "c1")"#], vec![], vec![]),
        (
            "kyma_transform_with_where",
            vec![
                r#"set(span.attributes["system"], "false") where not IsMatch(resource.attributes["k8s.namespace.name"], ".*-system")"#,
            ],
            vec![],
            vec![],
        ),
        (
            "kyma_cond_and_stmts",
            vec![r#"set(span.attributes["FromProxy"], "true")"#],
            vec![r#"span.attributes["component"] == "proxy""#],
            vec![],
        ),
        ("filter_by_name_keeps_all", vec![], vec![], vec![r#"span.name == "GET /healthz""#]),
        ("filter_drops_all", vec![], vec![], vec![r#"span.name == "loadtest-span""#]),
        (
            "kyma_filter_health",
            vec![],
            vec![],
            vec![
                r#"span.name == "GET /healthz" or span.attributes["http.route"] == "/healthz""#,
                r#"IsMatch(span.attributes["url.path"], "^/(livez|readyz)$")"#,
            ],
        ),
    ]
}

fn processing(statements: &[&str], conditions: &[&str], filter: &[&str]) -> Processing {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let transform: Vec<TransformSpec> = if statements.is_empty() {
        vec![]
    } else {
        vec![TransformSpec { statements: strings(statements), conditions: strings(conditions) }]
    };
    let filters: Vec<FilterSpec> =
        if filter.is_empty() { vec![] } else { vec![FilterSpec { conditions: strings(filter) }] };
    compile(&transform, &filters).unwrap()
}

fn request() -> Bytes {
    let mut req = sample_request(1, SPANS, 10, 16);
    req.resource_spans[0].resource.as_mut().unwrap().attributes.push(kv("k8s.namespace.name", "shop"));
    Bytes::from(req.encode_to_vec())
}

/// The gateway's stage: scan, process, encode the pipeline's own copy.
fn ours(p: &Processing, body: &Bytes) -> usize {
    let data = scan(body.clone()).unwrap();
    match apply(p, &data, ErrorMode::Ignore).unwrap().processed {
        Processed::Unchanged => data.encoded_len,
        Processed::Changed(own) => encode_trace_data(&own).len(),
    }
}

/// The plain way: decode, process the structs, encode.
fn theirs(p: &Processing, body: &Bytes) -> usize {
    let mut req = ExportTraceServiceRequest::decode(body.clone()).unwrap();
    reference::apply(p, &mut req, ErrorMode::Ignore).unwrap();
    req.encode_to_vec().len()
}

fn bench(c: &mut Criterion) {
    let body = request();
    let mut group = c.benchmark_group("ottl");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, statements, conditions, filter) in cases() {
        let p = processing(&statements, &conditions, &filter);
        // Both ways must agree before their speed means anything.
        let ours_out = {
            let data = scan(body.clone()).unwrap();
            match apply(&p, &data, ErrorMode::Ignore).unwrap().processed {
                Processed::Unchanged => ExportTraceServiceRequest::decode(body.clone()).unwrap(),
                Processed::Changed(own) => {
                    ExportTraceServiceRequest::decode(&encode_trace_data(&own)[..]).unwrap()
                }
            }
        };
        let mut theirs_out = ExportTraceServiceRequest::decode(body.clone()).unwrap();
        reference::apply(&p, &mut theirs_out, ErrorMode::Ignore).unwrap();
        assert_eq!(
            ours_out.encode_to_vec().len(),
            theirs_out.encode_to_vec().len(),
            "{name}: both ways agree"
        );
        group.bench_with_input(BenchmarkId::new("bytes", name), &body, |b, body| b.iter(|| ours(&p, body)));
        group.bench_with_input(BenchmarkId::new("prost", name), &body, |b, body| b.iter(|| theirs(&p, body)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
