//! What `kubectl apply -k deploy/` installs, checked offline: every manifest and every object the
//! manager creates at runtime validates against Kubernetes' own schemas (`kubernetes-validate`
//! from PyPI, strict: unknown fields are errors), the shipped TracePipeline examples pass the CRD,
//! and the manager's RBAC allows every request the manager makes, found by running it against the
//! simulated API server and matching each request against `deploy/manager/rbac.yaml`. The admission
//! webhook's configuration in `deploy/` is the one the manager keeps, and its port is the one served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use apisim::{ApiSim, Recorded};
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig};
use telemetry_manager::flow::FlowSettings;
use telemetry_manager::gateway::{self, GatewaySettings};
use telemetry_manager::webhook_cert::{self, WebhookSettings};

/// The Kubernetes version manifests are checked against: the oldest the project supports
/// (k8s-openapi's `v1_33`).
const KUBERNETES_VERSION: &str = "1.33.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Python with `kubernetes-validate`: `OTLP_TEST_PYTHON`, else the workspace's `.venv`, else
/// `target/test-venv`, created on first use (shared with the data plane's end-to-end tests).
#[path = "../../dataplane/tests/common/python_env.rs"]
#[allow(dead_code)]
mod python_env;

fn python() -> PathBuf {
    python_env::python()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The files `deploy/kustomization.yaml` lists.
fn kustomized() -> Vec<PathBuf> {
    let k = &documents(&root().join("deploy/kustomization.yaml"))[0];
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| root().join("deploy").join(r.as_str().unwrap()))
        .collect()
}

/// Scenario: every file `kubectl apply -k deploy/` applies, and every object the manager renders at
/// runtime (the gateway's DaemonSet, Services, ServiceAccount, RBAC, Secret, NetworkPolicies; the
/// manager's NetworkPolicy; the webhook's CA Secret and ValidatingWebhookConfiguration with its
/// caBundle).
/// Guarantees: all validate strictly against Kubernetes 1.33's schemas.
#[test]
fn manifests_validate_against_kubernetes_schemas() {
    let files = kustomized();
    assert!(files.iter().all(|f| f.exists()), "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("rendered-gateway.yaml");
    let mut objects = gateway::gateway_objects(&GatewaySettings::default());
    objects.push(gateway::secret(&GatewaySettings::default(), "token", "{}", ""));
    let manager_ports = gateway::ManagerPorts { snapshots: 9090, webhook: Some(9443), admin: 8080 };
    objects.push(gateway::manager_network_policy(&GatewaySettings::default(), &manager_ports));
    let certs = webhook_cert::render(
        &webhook_cert::Current::default(),
        &webhook_cert::service_names("kyma-system"),
        1_800_000_000,
    )
    .unwrap();
    let mut rendered_objects: Vec<Value> = objects.iter().map(|o| o.object.clone()).collect();
    rendered_objects.push(webhook_cert::ca_secret("kyma-system", &certs.ca));
    rendered_objects.push(webhook_cert::webhook_configuration("kyma-system", &certs.ca.cert_pem));
    let yaml: String =
        rendered_objects.iter().map(|o| format!("---\n{}", serde_yaml_ng::to_string(o).unwrap())).collect();
    std::fs::write(&rendered, yaml).unwrap();
    let out = std::process::Command::new(python())
        .args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION])
        .args(&files)
        .arg(&rendered)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let passed = text.lines().filter(|l| l.contains("passed for resource")).count();
    assert_eq!(
        passed,
        files.iter().map(|f| documents(f).len()).sum::<usize>() + rendered_objects.len(),
        "{text}"
    );
}

/// Scenario: the TracePipelines shipped in deploy/examples.
/// Guarantees: each reads as the CRD's type; the cluster example's Secret reference resolves.
#[test]
fn shipped_pipelines_read_as_the_crd() {
    for file in ["deploy/examples/local-pipelines.yaml", "deploy/examples/tracepipeline-with-secret.yaml"] {
        for doc in documents(&root().join(file)) {
            if doc["kind"] == "TracePipeline" {
                let typed: Result<telemetry_manager::crd::TracePipeline, _> =
                    serde_json::from_value(doc.clone());
                assert!(typed.is_ok(), "{file}: {:?}", typed.err());
            }
        }
    }
    let resolution = tracegw_contract::resolve_path(
        &root().join("deploy/examples/tracepipeline-with-secret.yaml"),
        tracegw_contract::ResolveOptions::at_version(1),
    )
    .unwrap();
    assert!(resolution.statuses.iter().all(|s| s.result.is_ok()), "{:?}", resolution.statuses);
}

/// One RBAC rule.
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
    namespace: Option<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

fn rules() -> Vec<Rule> {
    documents(&root().join("deploy/manager/rbac.yaml"))
        .into_iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .flat_map(|d| {
            let namespace = d["metadata"]["namespace"].as_str().map(str::to_string);
            d["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Rule {
                    groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                    names: strings(&r["resourceNames"]),
                    namespace: namespace.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The name a list or watch is limited to by a `metadata.name` field selector, which Kubernetes
/// authorizes as a request for that name.
fn selected_name(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let selector = kv.strip_prefix("fieldSelector=")?.replace("%3D", "=").replace("%3d", "=");
        selector
            .strip_prefix("metadata.name=")
            .filter(|n| !n.contains("%2C") && !n.contains(','))
            .map(str::to_string)
    })
}

/// `(group, resource[/subresource], verb, namespace, name)` of a request.
fn attributes(r: &Recorded) -> (String, String, String, Option<String>, Option<String>) {
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => (String::new(), rest.to_vec()),
        ["apis", g, _v, rest @ ..] => (g.to_string(), rest.to_vec()),
        _ => panic!("unexpected path {}", r.path),
    };
    let (namespace, rest) = match rest.as_slice() {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), [&[*plural][..], tail].concat()),
        other => (None, other.to_vec()),
    };
    let (resource, name) = match rest.as_slice() {
        [plural] => (plural.to_string(), None),
        [plural, name] => (plural.to_string(), Some(name.to_string())),
        [plural, name, sub] => (format!("{plural}/{sub}"), Some(name.to_string())),
        _ => panic!("unexpected path {}", r.path),
    };
    let verb = match (r.method.as_str(), &name) {
        ("GET", None) if r.query.contains("watch=true") || r.query.contains("watch=1") => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (m, _) => panic!("unexpected method {m}"),
    };
    let name = match verb {
        "list" | "watch" => selected_name(&r.query),
        _ => name,
    };
    (group, resource, verb.to_string(), namespace, name)
}

fn allowed(
    rules: &[Rule],
    (group, resource, verb, namespace, name): &(String, String, String, Option<String>, Option<String>),
) -> bool {
    rules.iter().any(|r| {
        r.groups.contains(group)
            && r.resources.contains(resource)
            && r.verbs.contains(verb)
            && (r.names.is_empty() || name.as_ref().is_some_and(|n| r.names.contains(n)))
            && (r.namespace.is_none() || r.namespace == *namespace)
    })
}

/// Scenario: the manager runs through a pipeline's life against the simulated API server, next to
/// the default Telemetry: it provisions its admission webhook, a pipeline with a Secret in another
/// namespace appears, the gateway is created, its status written, the Secret rotated, the DaemonSet
/// and the webhook's caBundle edited by someone, and the pipeline deleted.
/// Guarantees: every request it made is allowed by the ClusterRole and Role it ships with; the
/// server-side applies that create objects are also allowed to create them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rbac_allows_every_request() {
    let sim = ApiSim::start().await.unwrap();
    sim.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "u"}}),
    );
    sim.put(json!({"apiVersion": "operator.kyma-project.io/v1beta1", "kind": "Telemetry",
        "metadata": {"name": "default", "namespace": "kyma-system"}}));
    sim.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend", "namespace": "tracing"}, "stringData": {"endpoint": "http://b:4317"}}));
    sim.put(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline", "metadata": {"name": "p"},
        "spec": {"output": {"otlp": {"endpoint": {"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "tracing", "key": "endpoint"}}}}}}}));
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        flow: FlowSettings { evaluate_every: Duration::from_millis(100), ..FlowSettings::default() },
        webhook: Some(WebhookSettings { addr: "127.0.0.1:0".parse().unwrap(), ..WebhookSettings::default() }),
        ..ClusterConfig::default()
    };
    let m = cluster::start(client, config).await.unwrap();
    let wait = |what: &'static str, check: Box<dyn Fn() -> bool>| async move {
        for _ in 0..400 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for {what}");
    };
    let s = sim.clone();
    wait(
        "gateway",
        Box::new(move || {
            s.get("apps/v1", "DaemonSet", Some("kyma-system"), "telemetry-otlp-gateway").is_some()
        }),
    )
    .await;
    sim.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend", "namespace": "tracing"}, "stringData": {"endpoint": "http://c:4317"}}));
    sim.update("apps/v1", "DaemonSet", Some("kyma-system"), "telemetry-otlp-gateway", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("x")
    });
    let vwc = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration");
    sim.update(vwc.0, vwc.1, None, webhook_cert::WEBHOOK_CONFIGURATION, |c| {
        c["webhooks"][0]["clientConfig"]["caBundle"] = json!("")
    });
    let s = sim.clone();
    wait(
        "caBundle repaired",
        Box::new(move || {
            s.get(vwc.0, vwc.1, None, webhook_cert::WEBHOOK_CONFIGURATION)
                .is_some_and(|c| c["webhooks"][0]["clientConfig"]["caBundle"] != "")
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.delete("telemetry.kyma-project.io/v1beta1", "TracePipeline", None, "p");
    let s = sim.clone();
    wait(
        "gateway removed",
        Box::new(move || {
            s.get("apps/v1", "DaemonSet", Some("kyma-system"), "telemetry-otlp-gateway").is_none()
        }),
    )
    .await;
    m.stop.cancel();

    let rules = rules();
    let requests = sim.requests();
    assert!(requests.len() > 20, "too few requests to judge: {}", requests.len());
    for (resource, verb) in [
        ("validatingwebhookconfigurations", "get"),
        ("validatingwebhookconfigurations", "watch"),
        ("validatingwebhookconfigurations", "patch"),
        ("secrets", "patch"),
        ("telemetries", "watch"),
        ("telemetries", "patch"),
        ("telemetries/status", "patch"),
        ("configmaps", "watch"),
        ("networkpolicies", "watch"),
        ("networkpolicies", "patch"),
    ] {
        assert!(
            requests.iter().map(attributes).any(|a| a.1 == resource && a.2 == verb),
            "the run made no {verb} of {resource}: the audit would prove nothing about it"
        );
    }
    let mut denied: Vec<String> = Vec::new();
    for r in &requests {
        let attrs = attributes(r);
        if !allowed(&rules, &attrs) {
            denied.push(format!("{} {}?{}", r.method, r.path, r.query));
        }
        // A server-side apply that creates an object needs `create` as well.
        if attrs.2 == "patch" && r.content_type.starts_with("application/apply-patch") {
            let create = (attrs.0.clone(), attrs.1.clone(), "create".to_string(), attrs.3.clone(), None);
            if !attrs.1.ends_with("/status") && !allowed(&rules, &create) {
                denied.push(format!("create (by apply) {}", r.path));
            }
        }
    }
    assert!(denied.is_empty(), "requests the shipped RBAC would deny:\n{}", denied.join("\n"));
}

/// Scenario: the webhook objects `deploy/` ships, next to what the manager applies and serves.
/// Guarantees: the shipped ValidatingWebhookConfiguration is the manager's own without caBundle (so
/// neither undoes the other); the Service sends port 443 to the manager's container port named
/// `webhook`, which is the port the manager listens on by default.
#[test]
fn shipped_webhook_matches_the_manager() {
    let docs = documents(&root().join("deploy/manager/webhook.yaml"));
    let shipped = docs.iter().find(|d| d["kind"] == "ValidatingWebhookConfiguration").unwrap();
    assert_eq!(*shipped, webhook_cert::webhook_configuration("kyma-system", ""));
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(service["metadata"]["name"], webhook_cert::WEBHOOK_SERVICE);
    assert_eq!(service["spec"]["ports"][0]["port"], webhook_cert::WEBHOOK_SERVICE_PORT);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
    let deployment = &documents(&root().join("deploy/manager/deployment.yaml"))[0];
    let ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"].as_array().unwrap();
    let port = ports.iter().find(|p| p["name"] == "webhook").unwrap();
    assert_eq!(port["containerPort"], telemetry_manager::webhook::DEFAULT_ADDR.port());
}
