use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::batch::{BatchLimits, Batcher};
use crate::testing::{flatten, kv, span_with_ids};

fn span(name: &str, attrs: &[(&str, &str)]) -> Span {
    Span { name: name.into(), attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(), ..span_with_ids() }
}

fn request(namespace: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: namespace.map(|n| vec![kv("k8s.namespace.name", n)]).unwrap_or_default(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { scope: None, spans, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}

/// The gateway's path: scan, filter, batch, decode.
fn filtered(req: &ExportTraceServiceRequest) -> Vec<ExportTraceServiceRequest> {
    filtered_bytes(req.encode_to_vec())
}

/// [`filtered`] on an encoded request.
fn filtered_bytes(encoded: Vec<u8>) -> Vec<ExportTraceServiceRequest> {
    let mut data = crate::wire::scan(Bytes::from(encoded)).unwrap();
    drop_noise(&mut data);
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    batcher.push(&data, &mut out);
    out.extend(batcher.take());
    out.iter().map(|b| ExportTraceServiceRequest::decode(b.to_bytes()).unwrap()).collect()
}

fn names(reqs: &[ExportTraceServiceRequest]) -> Vec<String> {
    flatten(reqs).into_iter().map(|(_, _, _, _, s)| s.name).collect()
}

/// The plain path on owned structs, written from Kyma's rule table.
fn reference(req: &ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    }
    let mut out = req.clone();
    for rs in &mut out.resource_spans {
        let ns =
            rs.resource.as_ref().and_then(|r| attr(&r.attributes, "k8s.namespace.name")).map(str::to_string);
        for ss in &mut rs.scope_spans {
            ss.spans.retain(|s| {
                let a = |k| attr(&s.attributes, k);
                if a("component") != Some("proxy") {
                    return true;
                }
                let services = [
                    "telemetry-log-gateway",
                    "telemetry-metric-gateway",
                    "telemetry-trace-gateway",
                    "telemetry-otlp-gateway",
                    "telemetry-log-agent",
                    "telemetry-metric-agent",
                    "telemetry-fluent-bit",
                ];
                let r1 = ns.as_deref() == Some("kyma-system")
                    && a("istio.canonical_service").is_some_and(|c| services.contains(&c));
                let out_ = a("upstream_cluster.name").is_some_and(|c| c.starts_with("outbound|"));
                let in_ = a("upstream_cluster.name").is_some_and(|c| c.starts_with("inbound|"));
                let r2 = a("http.method") == Some("POST")
                    && out_
                    && a("http.url").is_some_and(is_telemetry_gateway_url);
                let r3 = a("http.method") == Some("GET")
                    && in_
                    && a("user_agent")
                        .is_some_and(|u| u.starts_with("kyma-otelcol/") || u.starts_with("vm_promscrape"));
                let r4 = ns.as_deref() == Some("istio-system")
                    && a("istio.canonical_service") == Some("istio-ingressgateway")
                    && a("http.method") == Some("GET")
                    && out_
                    && a("http.url").is_some_and(is_healthz_probe_url);
                !(r1 || r2 || r3 || r4)
            });
        }
    }
    out
}

/// Scenario: each of Kyma's four rules, a near miss for each, and an application span.
/// Guarantees: exactly the noise spans are dropped.
#[test]
fn each_rule_drops_its_spans() {
    let proxy = |extra: &[(&'static str, &'static str)]| {
        let mut a = vec![("component", "proxy")];
        a.extend_from_slice(extra);
        a
    };
    let kyma = request(
        Some("kyma-system"),
        vec![
            span("gateway-self", &proxy(&[("istio.canonical_service", "telemetry-otlp-gateway")])),
            span("other-kyma", &proxy(&[("istio.canonical_service", "eventing")])),
        ],
    );
    assert_eq!(names(&filtered(&kyma)), vec!["other-kyma"]);

    let app = request(
        Some("shop"),
        vec![
            span(
                "to-gateway",
                &proxy(&[
                    ("http.method", "POST"),
                    ("upstream_cluster.name", "outbound|4318||telemetry-otlp.kyma-system.svc.cluster.local"),
                    ("http.url", "http://telemetry-otlp-traces.kyma-system.svc.cluster.local:4318/v1/traces"),
                ]),
            ),
            span(
                "to-other-port",
                &proxy(&[
                    ("http.method", "POST"),
                    ("upstream_cluster.name", "outbound|80||x"),
                    ("http.url", "http://telemetry-otlp.kyma-system:8080/"),
                ]),
            ),
            span(
                "scrape",
                &proxy(&[
                    ("http.method", "GET"),
                    ("upstream_cluster.name", "inbound|8080||"),
                    ("user_agent", "vm_promscrape"),
                ]),
            ),
            span(
                "browser",
                &proxy(&[
                    ("http.method", "GET"),
                    ("upstream_cluster.name", "inbound|8080||"),
                    ("user_agent", "Mozilla/5.0"),
                ]),
            ),
            span(
                "app-span",
                &[("http.method", "POST"), ("http.url", "http://telemetry-otlp.kyma-system:4317")],
            ),
        ],
    );
    assert_eq!(names(&filtered(&app)), vec!["to-other-port", "browser", "app-span"]);

    let istio = request(
        Some("istio-system"),
        vec![
            span(
                "probe",
                &proxy(&[
                    ("istio.canonical_service", "istio-ingressgateway"),
                    ("http.method", "GET"),
                    ("upstream_cluster.name", "outbound|443||healthz"),
                    ("http.url", "https://healthz.local.kyma.dev/healthz/ready"),
                ]),
            ),
            span(
                "real",
                &proxy(&[
                    ("istio.canonical_service", "istio-ingressgateway"),
                    ("http.method", "GET"),
                    ("upstream_cluster.name", "outbound|443||shop"),
                    ("http.url", "https://shop.kyma.dev/cart"),
                ]),
            ),
        ],
    );
    assert_eq!(names(&filtered(&istio)), vec!["real"]);
}

#[test]
fn url_patterns() {
    for ok in [
        "http://telemetry-otlp.kyma-system:4317",
        "https://telemetry-otlp-logs.kyma-system.svc:4318/v1/logs",
        "http://telemetry-otlp-traces.kyma-system.svc.cluster.local:4318",
    ] {
        assert!(is_telemetry_gateway_url(ok), "{ok}");
    }
    for no in [
        "http://telemetry-otlp.kyma-system:80",
        "http://telemetry-otlp-foo.kyma-system:4317",
        "ftp://telemetry-otlp.kyma-system:4317",
        "http://telemetry-otlp.default:4317",
    ] {
        assert!(!is_telemetry_gateway_url(no), "{no}");
    }
    assert!(is_healthz_probe_url("https://healthz.x/healthz/ready"));
    assert!(!is_healthz_probe_url("https://healthz./healthz/ready"));
    assert!(!is_healthz_probe_url("http://healthz.x/healthz/ready"));
}

fn noisy_span() -> impl Strategy<Value = Span> {
    let values = |v: Vec<&'static str>| prop::sample::select(v);
    (
        prop::option::of(values(vec!["proxy", "grpc", ""])),
        prop::option::of(values(vec!["telemetry-otlp-gateway", "istio-ingressgateway", "shop"])),
        prop::option::of(values(vec!["GET", "POST"])),
        prop::option::of(values(vec!["outbound|4317||x", "inbound|8080||", "other"])),
        prop::option::of(values(vec![
            "http://telemetry-otlp.kyma-system:4317/x",
            "https://healthz.a/healthz/ready",
            "http://shop/cart",
        ])),
        prop::option::of(values(vec!["kyma-otelcol/1.0", "vm_promscrape", "curl"])),
        "[a-z]{1,6}",
    )
        .prop_map(|(c, svc, m, up, url, ua, name)| {
            let mut attrs = Vec::new();
            for (k, v) in [
                ("component", c),
                ("istio.canonical_service", svc),
                ("http.method", m),
                ("upstream_cluster.name", up),
                ("http.url", url),
                ("user_agent", ua),
            ] {
                if let Some(v) = v {
                    attrs.push(kv(k, v));
                }
            }
            Span { name, attributes: attrs, ..span_with_ids() }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Scenario: random mixes of proxy and application spans across namespaces and scopes.
    /// Guarantees: the byte-level filter keeps exactly the spans the prost reference keeps, in order,
    /// with their resources and scopes.
    #[test]
    fn filter_matches_prost(
        groups in proptest::collection::vec(
            (prop::option::of(prop::sample::select(vec!["kyma-system", "istio-system", "shop"])), proptest::collection::vec(proptest::collection::vec(noisy_span(), 0..5), 1..3)),
            1..3,
        ),
        reorder in any::<bool>(),
    ) {
        let req = ExportTraceServiceRequest {
            resource_spans: groups.into_iter().map(|(ns, scopes)| ResourceSpans {
                resource: Some(Resource { attributes: ns.map(|n| vec![kv("k8s.namespace.name", n)]).unwrap_or_default(), ..Default::default() }),
                scope_spans: scopes.into_iter().map(|spans| ScopeSpans { scope: None, spans, schema_url: String::new() }).collect(),
                schema_url: String::new(),
            }).collect(),
        };
        let mut encoded = req.encode_to_vec();
        if reorder {
            // `component = proxy` with its value before its key: the same attribute to prost, in a shape
            // the scan's attribute fast path does not take, and of the same length, so every
            // enclosing length stays right.
            let plain = b"\x0a\x09component\x12\x07\x0a\x05proxy";
            let swapped = b"\x12\x07\x0a\x05proxy\x0a\x09component";
            let mut at = 0;
            while let Some(i) = encoded[at..].windows(plain.len()).position(|w| w == plain) {
                encoded[at + i..at + i + plain.len()].copy_from_slice(swapped);
                at += i + plain.len();
            }
            prop_assert_eq!(&ExportTraceServiceRequest::decode(&encoded[..]).unwrap(), &req);
        }
        prop_assert_eq!(flatten(&filtered_bytes(encoded)), flatten([&reference(&req)]));
    }
}
