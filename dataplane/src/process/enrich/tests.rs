use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;

use super::index::{IndexConfig, LabelRule, PodIndex, PodStore};
use super::pods::{ClusterMeta, Labels, NodeMeta, PodMeta};
use super::*;
use crate::batch::{BatchLimits, Batcher};
use crate::testing::span_with_ids;

fn pod(uid: &str, name: &str, ip: &str, started: &str) -> PodMeta {
    PodMeta {
        uid: uid.into(),
        name: name.into(),
        namespace: "shop".into(),
        node_name: "node-1".into(),
        ips: vec![ip.parse().unwrap()],
        started: started.into(),
        ..PodMeta::default()
    }
}

fn store() -> PodStore {
    let mut s = PodStore::new(IndexConfig {
        node_name: Some("node-1".into()),
        pod_labels: vec![LabelRule::Key("team".into()), LabelRule::Prefix("tier.".into())],
        cluster_name: Some("prod-eu".into()),
        ..IndexConfig::default()
    });
    s.set_node(Some(NodeMeta {
        name: "node-1".into(),
        labels: [("topology.kubernetes.io/region", "eu-1"), ("kubernetes.io/arch", "amd64")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }));
    s.set_cluster(ClusterMeta { name: None, uid: Some("cluster-uid".into()), provider: Some("sap".into()) });
    let mut web = pod("uid-1", "web-7d4b9c8f5d-x2x", "10.0.0.1", "2026-01-01T00:00:00Z");
    web.labels = Labels::from_iter([
        ("pod-template-hash", "7d4b9c8f5d"),
        ("app.kubernetes.io/name", "webshop"),
        ("team", "checkout"),
        ("tier.level", "front"),
        ("other", "x"),
        ("app.kubernetes.io/version", "2.4.1"),
    ]);
    web.annotations = Labels::from_iter([("resource.opentelemetry.io/service.name", "web-annotated")]);
    web.owner = Some(("ReplicaSet".into(), "web-7d4b9c8f5d".into()));
    s.upsert(web);
    let mut db = pod("uid-2", "db-0", "10.0.0.2", "2026-01-01T00:00:00Z");
    db.owner = Some(("StatefulSet".into(), "db".into()));
    s.upsert(db);
    let mut host = pod("uid-3", "node-agent-abc", "10.0.0.3", "2026-01-01T00:00:00Z");
    host.host_network = true;
    host.owner = Some(("DaemonSet".into(), "node-agent".into()));
    s.upsert(host);
    let mut elsewhere = pod("uid-4", "far", "10.0.0.4", "2026-01-01T00:00:00Z");
    elsewhere.node_name = "node-2".into();
    s.upsert(elsewhere);
    s
}

fn string(v: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue { key: key.into(), value, key_strindex: 0 }
}

/// The plain path: decode, change the owned `Resource` with Kyma's rules, encode. Written
/// independently of the byte-level code it checks.
fn reference(
    resource: &mut Resource,
    index: &PodIndex,
    peer: Option<IpAddr>,
    mode: ServiceMode,
    proxy: bool,
) {
    fn text(kv: &KeyValue) -> Option<&str> {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }
    fn empty(kv: &KeyValue) -> bool {
        kv.value.as_ref().and_then(|v| v.value.as_ref()).is_none() || text(kv) == Some("")
    }
    let otel = mode == ServiceMode::Otel;
    // `otel` mode drops Istio's service.* and SDK defaults before anything else looks.
    let dropped = |kv: &KeyValue| {
        otel && ((proxy && kv.key.starts_with("service."))
            || (kv.key == "service.name" && text(kv).is_some_and(|s| s.starts_with("unknown_service"))))
    };
    let last_nonempty =
        |key: &str| resource.attributes.iter().rev().find(|kv| kv.key == key && !empty(kv)).cloned();
    let pod = if let Some(ip) = last_nonempty("k8s.pod.ip") {
        text(&ip).and_then(|s| s.parse::<IpAddr>().ok()).and_then(|ip| index.by_ip(&ip).cloned())
    } else if let Some(uid) = last_nonempty("k8s.pod.uid") {
        text(&uid).and_then(|u| index.by_uid(u).cloned())
    } else {
        peer.and_then(|ip| index.by_ip(&ip).cloned())
    };
    let mut added: Vec<(String, String)> = Vec::new();
    let pod_attrs = pod.as_ref().map(|p| p.attrs.clone()).unwrap_or_default();
    for a in pod_attrs.iter().chain(index.cluster.iter()) {
        let present = resource
            .attributes
            .iter()
            .any(|kv| kv.key == a.key && !empty(kv) && !kv.key.starts_with("kyma."));
        if !present && !added.iter().any(|(k, _)| *k == a.key) {
            added.push((a.key.to_string(), a.value.to_string()));
        }
    }
    let effective = |key: &str| -> Option<String> {
        resource
            .attributes
            .iter()
            .rev()
            .find(|kv| kv.key == key && !empty(kv) && !kv.key.starts_with("kyma.") && !dropped(kv))
            .and_then(|kv| text(kv).map(str::to_string))
            .or_else(|| added.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    };
    let mut services: Vec<(String, String)> = Vec::new();
    if otel {
        if let Some(p) = &pod {
            let has = |key: &str| {
                resource
                    .attributes
                    .iter()
                    .any(|kv| kv.key == key && !empty(kv) && !kv.key.starts_with("kyma.") && !dropped(kv))
            };
            let o = &p.otel;
            let mut set = |key: &str, forced: Option<&str>, derived: Option<String>| match (forced, derived) {
                (Some(v), _) => services.push((key.to_string(), v.to_string())),
                (None, Some(v)) if !has(key) => services.push((key.to_string(), v)),
                _ => {}
            };
            set("service.name", o.name_annotation.as_deref(), o.name.as_deref().map(str::to_string));
            set(
                "service.version",
                o.version_annotation.as_deref(),
                o.version_label.as_deref().map(str::to_string),
            );
            set("service.namespace", None, o.namespace.as_deref().map(str::to_string));
            let instance = o.instance_annotation.as_deref().map(str::to_string).or_else(|| {
                effective("k8s.container.name")
                    .and_then(|c| o.instance_prefix.as_deref().map(|p| format!("{p}.{c}")))
            });
            set("service.instance.id", None, instance);
        }
    } else {
        let current = resource.attributes.iter().rev().find(|kv| kv.key == "service.name").cloned();
        let unknown = |s: &str| {
            s == "unknown_service"
                || (s.starts_with("unknown_service:") && s.len() > "unknown_service:".len())
        };
        let keep = current.as_ref().is_some_and(|kv| match text(kv) {
            Some(s) => !s.is_empty() && !unknown(s),
            None => !empty(kv),
        });
        let mut service = None;
        if !keep {
            let candidate = pod
                .as_ref()
                .and_then(|p| p.app_name_label.as_deref().or(p.app_label.as_deref()).map(str::to_string))
                .or_else(|| {
                    [
                        "k8s.deployment.name",
                        "k8s.daemonset.name",
                        "k8s.statefulset.name",
                        "k8s.job.name",
                        "k8s.pod.name",
                    ]
                    .iter()
                    .find_map(|k| effective(k).filter(|v| !v.is_empty()))
                });
            let name = match candidate {
                Some(c) => Some(c),
                None => match current.as_ref().and_then(text) {
                    Some(s) if unknown(s) && s != "unknown_service" => None,
                    _ => Some("unknown_service".to_string()),
                },
            };
            if let Some(name) = name
                && current.as_ref().and_then(text) != Some(name.as_str())
            {
                service = Some(name);
            }
        }
        if let Some(s) = service {
            services.push(("service.name".to_string(), s));
        }
    }
    resource.attributes.retain(|kv| {
        !(kv.key.starts_with("kyma.")
            || dropped(kv)
            || (empty(kv) && added.iter().any(|(k, _)| *k == kv.key))
            || services.iter().any(|(k, _)| *k == kv.key))
    });
    for (k, v) in added {
        resource.attributes.push(kv(&k, string(&v)));
    }
    for (k, v) in services {
        resource.attributes.push(kv(&k, string(&v)));
    }
}

/// Runs the gateway's path: scan, enrich, batch, and decodes what would be exported.
fn gateway_path(
    resource: Option<Resource>,
    index: PodIndex,
    peer: Option<IpAddr>,
    mode: ServiceMode,
    proxy: bool,
) -> Option<Resource> {
    let attributes = if proxy { vec![kv("component", string("proxy"))] } else { Vec::new() };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![Span { name: "s".into(), attributes, ..span_with_ids() }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let mut data = crate::wire::scan(Bytes::from(req.encode_to_vec())).unwrap();
    let enricher = Enricher::new(mode);
    enricher.publish(index);
    enricher.enrich(&mut data, peer);
    let mut batcher = Batcher::new(BatchLimits::default());
    let mut out = Vec::new();
    batcher.push(&data, &mut out);
    out.extend(batcher.take());
    let decoded = ExportTraceServiceRequest::decode(out[0].to_bytes()).unwrap();
    decoded.resource_spans[0].resource.clone()
}

fn attr_strategy() -> impl Strategy<Value = KeyValue> {
    let keys = prop::sample::select(vec![
        "service.name",
        "k8s.pod.ip",
        "k8s.pod.uid",
        "k8s.pod.name",
        "k8s.deployment.name",
        "k8s.namespace.name",
        "k8s.cluster.name",
        "cloud.region",
        "kyma.app_name",
        "custom",
    ]);
    let values = prop_oneof![
        Just(None),
        Just(Some(AnyValue { value: None })),
        prop::sample::select(vec![
            "",
            "unknown_service",
            "unknown_service:java",
            "unknown_service:",
            "svc",
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.9",
            "uid-1",
            "uid-3",
            "bogus"
        ])
        .prop_map(string),
        any::<i64>().prop_map(|i| Some(AnyValue { value: Some(any_value::Value::IntValue(i)) })),
    ];
    (keys, values).prop_map(|(k, v)| kv(k, v))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Scenario: random resources (existing, empty, kyma.* and unknown_service values; pod IP and UID
    /// attributes that match, miss or are malformed) from random peers.
    /// Guarantees: what the gateway exports decodes to exactly what the prost reference produces.
    #[test]
    fn byte_enrichment_matches_prost(
        attrs in proptest::collection::vec(attr_strategy(), 0..8),
        has_resource in any::<bool>(),
        peer in prop::sample::select(vec![None, Some("10.0.0.1"), Some("10.0.0.2"), Some("10.0.0.3"), Some("10.0.0.4"), Some("10.0.0.99")]),
        otel in any::<bool>(),
        proxy in any::<bool>(),
    ) {
        let mode = if otel { ServiceMode::Otel } else { ServiceMode::KymaLegacy };
        let peer: Option<IpAddr> = peer.map(|p| p.parse().unwrap());
        let resource = has_resource.then(|| Resource { attributes: attrs, ..Default::default() });
        let index = store().snapshot();
        let mut expected = resource.clone().unwrap_or_default();
        reference(&mut expected, &index, peer, mode, proxy);
        let got = gateway_path(resource, index, peer, mode, proxy).unwrap_or_default();
        prop_assert_eq!(got, expected);
    }
}

fn enriched(attrs: Vec<KeyValue>, peer: Option<&str>) -> BTreeMap<String, String> {
    enriched_in(ServiceMode::KymaLegacy, false, attrs, peer)
}

fn enriched_in(
    mode: ServiceMode,
    proxy: bool,
    attrs: Vec<KeyValue>,
    peer: Option<&str>,
) -> BTreeMap<String, String> {
    let r = gateway_path(
        Some(Resource { attributes: attrs, ..Default::default() }),
        store().snapshot(),
        peer.map(|p| p.parse().unwrap()),
        mode,
        proxy,
    )
    .unwrap();
    r.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// Scenario: a span from the web pod's address, with an SDK's default service name.
/// Guarantees: every pod, workload, node, label and cluster attribute is added; service.name comes from
/// the `app.kubernetes.io/name` label.
#[test]
fn connection_association_adds_everything() {
    let got = enriched(vec![kv("service.name", string("unknown_service:python"))], Some("10.0.0.1"));
    let want: BTreeMap<String, String> = [
        ("k8s.namespace.name", "shop"),
        ("k8s.pod.name", "web-7d4b9c8f5d-x2x"),
        ("k8s.pod.uid", "uid-1"),
        ("k8s.node.name", "node-1"),
        ("k8s.deployment.name", "web"),
        ("cloud.region", "eu-1"),
        ("host.arch", "amd64"),
        ("k8s.pod.label.team", "checkout"),
        ("k8s.pod.label.tier.level", "front"),
        ("k8s.cluster.name", "prod-eu"),
        ("k8s.cluster.uid", "cluster-uid"),
        ("cloud.provider", "sap"),
        ("service.name", "webshop"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

/// Scenario: association sources in Kyma's order.
/// Guarantees: k8s.pod.ip beats k8s.pod.uid beats the connection; an unknown k8s.pod.ip does not fall
/// back; hostNetwork pods and other nodes' pods are never matched by IP.
#[test]
fn association_order() {
    let by_ip = enriched(
        vec![kv("k8s.pod.ip", string("10.0.0.2")), kv("k8s.pod.uid", string("uid-1"))],
        Some("10.0.0.1"),
    );
    assert_eq!(by_ip["k8s.pod.name"], "db-0");
    let by_uid = enriched(vec![kv("k8s.pod.uid", string("uid-1"))], Some("10.0.0.2"));
    assert_eq!(by_uid["k8s.pod.name"], "web-7d4b9c8f5d-x2x");
    let unknown_ip = enriched(vec![kv("k8s.pod.ip", string("10.9.9.9"))], Some("10.0.0.1"));
    assert!(!unknown_ip.contains_key("k8s.pod.name"));
    assert!(
        !enriched(vec![], Some("10.0.0.3")).contains_key("k8s.pod.name"),
        "hostNetwork pod matched by IP"
    );
    assert_eq!(enriched(vec![kv("k8s.pod.uid", string("uid-3"))], None)["k8s.daemonset.name"], "node-agent");
    assert!(!enriched(vec![], Some("10.0.0.4")).contains_key("k8s.pod.name"), "another node's pod");
}

/// Scenario: the resource already carries values, some empty, and temporary kyma.* attributes.
/// Guarantees: non-empty values are kept, empty ones filled, kyma.* dropped (Kyma's e2e expectations).
#[test]
fn predefined_values_win_and_empty_ones_are_filled() {
    let got = enriched(
        vec![
            kv("k8s.namespace.name", string("mine")),
            kv("cloud.region", string("")),
            kv("kyma.app_name", string("tmp")),
            kv("service.name", string("checkout-api")),
        ],
        Some("10.0.0.1"),
    );
    assert_eq!(got["k8s.namespace.name"], "mine");
    assert_eq!(got["cloud.region"], "eu-1");
    assert_eq!(got["service.name"], "checkout-api");
    assert!(!got.contains_key("kyma.app_name"));
}

/// Scenario: each legacy service.name rule.
/// Guarantees: label app.kubernetes.io/name, then workload names, then the pod name; unknown_service:x
/// kept when nothing is known; unknown_service set when nothing at all is.
#[test]
fn legacy_service_name_rules() {
    assert_eq!(enriched(vec![], Some("10.0.0.2"))["service.name"], "db");
    assert_eq!(
        enriched(vec![kv("service.name", string("unknown_service"))], Some("10.0.0.2"))["service.name"],
        "db"
    );
    assert_eq!(
        enriched(vec![kv("service.name", string("unknown_service:java"))], None)["service.name"],
        "unknown_service:java"
    );
    assert_eq!(enriched(vec![], None)["service.name"], "unknown_service");
    assert_eq!(enriched(vec![kv("k8s.job.name", string("import"))], None)["service.name"], "import");
}

/// Scenario: a pod is deleted and, later, its IP goes to a new pod.
/// Guarantees: the deleted pod stays resolvable during the grace period, loses its IP to a newer live
/// pod at once, and is forgotten after the grace period.
#[test]
fn ip_reuse_and_delete_grace() {
    let mut s = store();
    let t0 = Instant::now();
    s.delete("uid-1", t0);
    s.sweep(t0 + Duration::from_secs(60));
    let idx = s.snapshot();
    assert!(idx.by_ip(&"10.0.0.1".parse().unwrap()).is_some(), "deleted pod resolvable during grace");
    s.upsert(pod("uid-9", "web-new", "10.0.0.1", "2026-02-01T00:00:00Z"));
    let idx = s.snapshot();
    assert_eq!(idx.by_ip(&"10.0.0.1".parse().unwrap()).unwrap().attrs.get(1).unwrap().value, "web-new");
    assert!(idx.by_uid("uid-1").is_some(), "still resolvable by UID");
    s.upsert(pod("uid-8", "older-but-live", "10.0.0.2", "2025-01-01T00:00:00Z"));
    assert_eq!(
        s.snapshot().by_ip(&"10.0.0.2".parse().unwrap()).unwrap().attrs.get(1).unwrap().value,
        "db-0",
        "newest start wins"
    );
    assert_eq!(s.sweep(t0 + Duration::from_secs(121)), 1);
    assert!(s.snapshot().by_uid("uid-1").is_none());
}

/// Scenario: `otel` mode with a pod annotated with its service name, a pod with only a workload, a
/// resource holding Istio's service.* next to a proxy span, and an SDK default name.
/// Guarantees: the annotation overwrites; workload names follow the conventions; Istio's service.* and
/// unknown_service are dropped first; namespace, version and instance id are derived.
#[test]
fn otel_service_rules() {
    let web = enriched_in(
        ServiceMode::Otel,
        false,
        vec![kv("service.name", string("app-set")), kv("k8s.container.name", string("main"))],
        Some("10.0.0.1"),
    );
    assert_eq!(web["service.name"], "web-annotated");
    assert_eq!(web["service.version"], "2.4.1");
    assert_eq!(web["service.namespace"], "shop");
    assert_eq!(web["service.instance.id"], "shop.web-7d4b9c8f5d-x2x.main");
    let db = enriched_in(
        ServiceMode::Otel,
        false,
        vec![kv("service.name", string("unknown_service:java"))],
        Some("10.0.0.2"),
    );
    assert_eq!(db["service.name"], "db");
    assert!(!db.contains_key("service.instance.id"), "no container, no instance id");
    let kept = enriched_in(
        ServiceMode::Otel,
        false,
        vec![kv("service.name", string("ledger-api"))],
        Some("10.0.0.2"),
    );
    assert_eq!(kept["service.name"], "ledger-api");
    let istio = enriched_in(
        ServiceMode::Otel,
        true,
        vec![kv("service.name", string("istio-ingress.istio-system")), kv("service.version", string("1.0"))],
        Some("10.0.0.2"),
    );
    assert_eq!(istio["service.name"], "db");
    assert!(!istio.contains_key("service.version"), "Istio's service.version must go: {istio:?}");
    let unknown =
        enriched_in(ServiceMode::Otel, false, vec![kv("service.name", string("unknown_service"))], None);
    assert!(
        !unknown.contains_key("service.name"),
        "otel mode drops unknown_service and sets nothing for an unknown pod"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Scenario: attribute sets built from any keys and values, short and long (lengths of one and
    /// two varint bytes), ASCII and not, some values empty.
    /// Guarantees: walking the set yields exactly the non-empty pairs pushed, in order, each with its
    /// own encoding, and the whole buffer decodes with prost as those `Resource.attributes`.
    #[test]
    fn attribute_sets_read_back_what_was_pushed(
        pairs in proptest::collection::vec(("[a-z.]{1,20}|ä{60,70}", "|[ -~]{1,20}|x{130,200}|ö{1,5}"), 0..12),
    ) {
        let mut builder = super::index::AttrSetBuilder::default();
        for (k, v) in &pairs {
            builder.push(k, v);
        }
        let set = builder.build();
        let expected: Vec<(&str, &str)> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let read: Vec<(&str, &str)> = set.iter().map(|a| (a.key, a.value)).collect();
        prop_assert_eq!(&read, &expected);
        prop_assert_eq!(set.len(), expected.len());
        prop_assert_eq!(set.is_empty(), expected.is_empty());
        let mut whole = Vec::new();
        for a in set.iter() {
            prop_assert_eq!(a.encoded, &super::index::encode_string_attribute(a.key, a.value)[..]);
            whole.extend_from_slice(a.encoded);
        }
        let decoded = Resource::decode(&whole[..]).unwrap();
        let decoded: Vec<(String, String)> = decoded
            .attributes
            .into_iter()
            .map(|kv| match kv.value.and_then(|v| v.value) {
                Some(any_value::Value::StringValue(s)) => (kv.key, s),
                other => (kv.key, format!("{other:?}")),
            })
            .collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(decoded, expected);
    }
}
