//! Everything the gateway needs in the cluster, rendered as plain objects from [`GatewaySettings`]: the
//! DaemonSet `telemetry-otlp-gateway`, the node-local Services `telemetry-otlp` (and Kyma's legacy
//! `telemetry-otlp-traces`), the metrics Service, the ServiceAccount, the least RBAC the gateway
//! needs (its node's pods and the node), Kyma's two NetworkPolicies for it, and the Secret holding
//! the snapshot channel's token and the last snapshot for cold starts; and the manager's own
//! NetworkPolicy ([`manager_network_policy`]).
//!
//! The pipelines themselves are not in any of these objects: they reach the gateways as pushed
//! snapshots. So a pipeline or Secret change never rolls the DaemonSet; only a new image or new
//! gateway settings do, one node at a time (maxUnavailable 0, maxSurge 1).

use serde_json::{Value, json};

/// Name of the DaemonSet, its ServiceAccount, ClusterRole(Binding) and Secret.
pub const GATEWAY_NAME: &str = "telemetry-otlp-gateway";
/// The node-local OTLP Service.
pub const OTLP_SERVICE: &str = "telemetry-otlp";
/// Kyma's older trace-only Service name, kept for clients configured with it.
pub const LEGACY_TRACES_SERVICE: &str = "telemetry-otlp-traces";
/// The Service exposing the gateway's metrics.
pub const METRICS_SERVICE: &str = "telemetry-otlp-gateway-metrics";
/// Kyma's NetworkPolicy admitting OTLP to the gateway from anywhere, on 4317 and 4318.
pub const OTLP_NETWORK_POLICY: &str = "kyma-project.io--telemetry-otlp-gateway";
/// Kyma's NetworkPolicy admitting scrapes of the gateway's metrics from labelled pods only.
pub const METRICS_NETWORK_POLICY: &str = "kyma-project.io--telemetry-otlp-gateway-metrics";
/// The manager's own NetworkPolicy: its snapshot port from gateway pods only, its webhook from the
/// API server (from anywhere: its addresses are unknown), its metrics from labelled pods.
pub const MANAGER_NETWORK_POLICY: &str = "kyma-project.io--telemetry-manager";
/// The `app.kubernetes.io/name` of the manager's pods (`deploy/manager/deployment.yaml`).
pub const MANAGER_NAME: &str = "telemetry-manager";
/// Kyma's label on pods allowed to scrape the module's metrics.
pub const METRICS_SCRAPING_LABEL: (&str, &str) = ("networking.kyma-project.io/metrics-scraping", "allowed");
/// The gateway's ports: OTLP/gRPC, OTLP/HTTP, metrics.
const OTLP_GRPC_PORT: u16 = 4317;
const OTLP_HTTP_PORT: u16 = 4318;
const METRICS_PORT: u16 = 8888;
/// Label on every object the manager owns; the manager watches by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "telemetry-manager");
/// The label selecting gateway pods.
pub const NAME_LABEL: (&str, &str) = ("app.kubernetes.io/name", GATEWAY_NAME);
/// Key of the token in the gateway Secret.
pub const TOKEN_KEY: &str = "token";
/// Key of the last snapshot in the gateway Secret.
pub const SNAPSHOT_KEY: &str = "snapshot.json";
/// Key of the manager's serving certificate in the gateway Secret: the one certificate gateways
/// trust for the snapshot channel.
pub const CA_KEY: &str = "ca.crt";
/// Where the gateway Secret is mounted in the gateway.
pub const SECRET_MOUNT: &str = "/etc/otlp-gateway/secret";

/// How the gateway is run. Each default is defined here once; the CLI reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Namespace of the gateway and the manager.
    pub namespace: String,
    /// The `otlp-gateway` image.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    /// PriorityClass of the gateway pods; empty for none.
    pub priority_class: String,
    /// The manager's snapshot URL as gateways reach it.
    pub manager_url: String,
    /// CPU request.
    pub cpu_request: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// `RUST_LOG`-style log filter of the gateway.
    pub log_level: String,
    /// Runtime worker threads per gateway; 0 leaves the gateway's default (one thread, the cheapest
    /// per span). More raise a gateway's ceiling on nodes with heavy traffic.
    pub worker_threads: usize,
}

/// The ports the manager's own pod listens on, as its NetworkPolicy admits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagerPorts {
    /// Snapshots and reports, from gateways.
    pub snapshots: u16,
    /// The admission webhook, from the API server; `None` when it is not served.
    pub webhook: Option<u16>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub admin: u16,
}

/// One object to keep in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// `apps/v1`.
    pub api_version: &'static str,
    /// `DaemonSet`.
    pub kind: &'static str,
    /// Name.
    pub name: String,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// The whole object as it is applied.
    pub object: Value,
}

// === impl GatewaySettings ===

impl Default for GatewaySettings {
    fn default() -> Self {
        let namespace = "kyma-system".to_string();
        Self {
            manager_url: manager_url(&namespace),
            namespace,
            image: format!("otlp-gateway:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".into(),
            priority_class: "telemetry-priority-class-high".into(),
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            memory_limit: "1Gi".into(),
            log_level: "info".into(),
            worker_threads: 0,
        }
    }
}

/// The URL gateways use to reach the manager's Service in `namespace`.
pub fn manager_url(namespace: &str) -> String {
    format!("https://telemetry-manager.{namespace}.svc:9090")
}

// === impl Desired ===

impl Desired {
    fn new(api_version: &'static str, kind: &'static str, namespace: Option<&str>, object: Value) -> Self {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        Self { api_version, kind, name, namespace: namespace.map(str::to_string), object }
    }

    /// `DaemonSet kyma-system/telemetry-otlp-gateway`, for logs.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

// === free functions ===

fn labels(component: &str) -> Value {
    json!({
        NAME_LABEL.0: GATEWAY_NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "telemetry",
        MANAGED_BY.0: MANAGED_BY.1,
        "kyma-project.io/module": "telemetry",
    })
}

fn metadata(name: &str, namespace: Option<&str>, component: &str) -> Value {
    let mut m = json!({"name": name, "labels": labels(component)});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// The gateway's objects other than its Secret, in the order they are applied (identity and
/// permissions before the pods that use them).
pub fn gateway_objects(s: &GatewaySettings) -> Vec<Desired> {
    let ns = Some(s.namespace.as_str());
    let service_account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": metadata(GATEWAY_NAME, ns, "gateway"),
    });
    // The gateway reads only pods (its own node's, by field selector) and its node; cluster facts
    // come in the snapshot, so it needs no access to namespaces, ConfigMaps or Secrets.
    let cluster_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": metadata(GATEWAY_NAME, None, "gateway"),
        "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": metadata(GATEWAY_NAME, None, "gateway"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": GATEWAY_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": GATEWAY_NAME, "namespace": s.namespace}],
    });
    let otlp_service = |name: &str| {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata(name, ns, "gateway"),
            "spec": {
                "type": "ClusterIP",
                // Spans never leave the node they were sent on: each node's gateway enriches from
                // its own node's pods.
                "internalTrafficPolicy": "Local",
                "selector": {NAME_LABEL.0: NAME_LABEL.1},
                "ports": [
                    {"name": "grpc-collector", "protocol": "TCP", "port": 4317, "targetPort": 4317},
                    {"name": "http-collector", "protocol": "TCP", "port": 4318, "targetPort": 4318},
                ],
            },
        })
    };
    let mut metrics_meta = metadata(METRICS_SERVICE, ns, "gateway");
    metrics_meta["labels"]["telemetry.kyma-project.io/self-monitor"] = json!("enabled");
    metrics_meta["annotations"] =
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": "8888", "prometheus.io/scheme": "http"});
    let metrics_service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": metrics_meta,
        "spec": {
            "type": "ClusterIP",
            "selector": {NAME_LABEL.0: NAME_LABEL.1},
            "ports": [{"name": "http-metrics", "protocol": "TCP", "port": 8888, "targetPort": 8888}],
        },
    });
    // Kyma's two gateway policies (`makeGatewayNetworkPolicies`). A rule without `from` admits every
    // source, pods included (an `ipBlock` of 0.0.0.0/0 may not cover pod addresses in every CNI).
    let otlp_policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(OTLP_NETWORK_POLICY, ns, "gateway"),
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": tcp_ports(&[OTLP_GRPC_PORT, OTLP_HTTP_PORT])}],
            "egress": [{}],
        },
    });
    let metrics_policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(METRICS_NETWORK_POLICY, ns, "gateway"),
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [scrapers()], "ports": tcp_ports(&[METRICS_PORT])}],
        },
    });
    vec![
        Desired::new("v1", "ServiceAccount", ns, service_account),
        Desired::new("rbac.authorization.k8s.io/v1", "ClusterRole", None, cluster_role),
        Desired::new("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, binding),
        Desired::new("v1", "Service", ns, metrics_service),
        Desired::new("networking.k8s.io/v1", "NetworkPolicy", ns, otlp_policy),
        Desired::new("networking.k8s.io/v1", "NetworkPolicy", ns, metrics_policy),
        Desired::new("apps/v1", "DaemonSet", ns, daemonset(s)),
        Desired::new("v1", "Service", ns, otlp_service(OTLP_SERVICE)),
        Desired::new("v1", "Service", ns, otlp_service(LEGACY_TRACES_SERVICE)),
    ]
}

fn daemonset(s: &GatewaySettings) -> Value {
    let mut pod_labels = labels("gateway");
    pod_labels["sidecar.istio.io/inject"] = json!("true");
    pod_labels["telemetry.kyma-project.io/trace-ingest"] = json!("true");
    pod_labels["telemetry.kyma-project.io/trace-export"] = json!("true");
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 13133}, "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 2});
    let mut args = vec![
        "--snapshot-url".to_string(),
        s.manager_url.clone(),
        "--token-file".into(),
        format!("{SECRET_MOUNT}/{TOKEN_KEY}"),
        "--snapshot-file".into(),
        format!("{SECRET_MOUNT}/{SNAPSHOT_KEY}"),
        "--snapshot-ca".into(),
        format!("{SECRET_MOUNT}/{CA_KEY}"),
        "--kubernetes".into(),
        "--log-format".into(),
        "json".into(),
    ];
    if s.worker_threads > 0 {
        args.extend(["--worker-threads".to_string(), s.worker_threads.to_string()]);
    }
    let mut pod_spec = json!({
        "serviceAccountName": GATEWAY_NAME,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "tolerations": [
            {"effect": "NoExecute", "operator": "Exists"},
            {"effect": "NoSchedule", "operator": "Exists"},
        ],
        "containers": [{
            "name": "gateway",
            "image": s.image,
            "imagePullPolicy": s.image_pull_policy,
            "args": args,
            "env": [
                {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "RUST_LOG", "value": s.log_level},
            ],
            "ports": [
                {"name": "grpc-otlp", "containerPort": 4317, "protocol": "TCP"},
                {"name": "http-otlp", "containerPort": 4318, "protocol": "TCP"},
                {"name": "http-health", "containerPort": 13133, "protocol": "TCP"},
                {"name": "http-metrics", "containerPort": 8888, "protocol": "TCP"},
            ],
            "livenessProbe": probe("/healthz"),
            "readinessProbe": probe("/readyz"),
            "resources": {
                "requests": {"cpu": s.cpu_request, "memory": s.memory_request},
                "limits": {"memory": s.memory_limit},
            },
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "privileged": false,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [{"name": "config", "mountPath": SECRET_MOUNT, "readOnly": true}],
        }],
        "volumes": [{"name": "config", "secret": {"secretName": GATEWAY_NAME, "defaultMode": 0o440}}],
    });
    if !s.priority_class.is_empty() {
        pod_spec["priorityClassName"] = json!(s.priority_class);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": metadata(GATEWAY_NAME, Some(&s.namespace), "gateway"),
        "spec": {
            "selector": {"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        // Ingest bypasses the sidecar: plain, node-local, with the sender's address
                        // kept for enrichment by connection.
                        "traffic.sidecar.istio.io/includeInboundPorts": "",
                        "sidecar.istio.io/interceptionMode": "TPROXY",
                    },
                },
                "spec": pod_spec,
            },
        },
    })
}

/// `[{protocol: TCP, port: p}, ...]`.
fn tcp_ports(ports: &[u16]) -> Value {
    Value::Array(ports.iter().map(|p| json!({"protocol": "TCP", "port": p})).collect())
}

/// Pods labelled for metrics scraping, in any namespace.
fn scrapers() -> Value {
    json!({"namespaceSelector": {}, "podSelector": {"matchLabels": {METRICS_SCRAPING_LABEL.0: METRICS_SCRAPING_LABEL.1}}})
}

/// The manager's own NetworkPolicy, kept whether or not a pipeline runs: the snapshot port only from
/// gateway pods (of its namespace), the webhook port from anywhere (the API server's addresses are
/// not known, as in Kyma), the metrics port from pods labelled for scraping. Egress stays open (the
/// API server, backends are not its business).
pub fn manager_network_policy(s: &GatewaySettings, ports: &ManagerPorts) -> Desired {
    let mut ingress = vec![json!({
        "from": [{"podSelector": {"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}}}],
        "ports": tcp_ports(&[ports.snapshots]),
    })];
    if let Some(webhook) = ports.webhook {
        ingress.push(json!({"ports": tcp_ports(&[webhook])}));
    }
    ingress.push(json!({"from": [scrapers()], "ports": tcp_ports(&[ports.admin])}));
    let object = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {
            "name": MANAGER_NETWORK_POLICY,
            "namespace": s.namespace,
            "labels": {
                "app.kubernetes.io/name": MANAGER_NAME,
                "app.kubernetes.io/component": "manager",
                "app.kubernetes.io/part-of": "telemetry",
                MANAGED_BY.0: MANAGED_BY.1,
                "kyma-project.io/module": "telemetry",
            },
        },
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": MANAGER_NAME}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    });
    Desired::new("networking.k8s.io/v1", "NetworkPolicy", Some(&s.namespace), object)
}

/// The Secret mounted into every gateway: the snapshot channel's token and the certificate it
/// trusts for the channel (empty when the channel is plain), and the last snapshot, read at start
/// when the manager cannot be reached.
pub fn secret(s: &GatewaySettings, token: &str, snapshot_json: &str, ca_pem: &str) -> Desired {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let object = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": metadata(GATEWAY_NAME, Some(&s.namespace), "gateway"),
        "type": "Opaque",
        "data": {TOKEN_KEY: b64(token), SNAPSHOT_KEY: b64(snapshot_json), CA_KEY: b64(ca_pem)},
    });
    Desired::new("v1", "Secret", Some(&s.namespace), object)
}

/// Whether every field `desired` sets has the same value in `live`. Lists must have the same length
/// and match element by element. Fields the API server adds (defaults, status, metadata) are
/// ignored, so a live object that still says everything the manager wants needs no write.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            d.iter().all(|(k, dv)| l.get(k).is_some_and(|lv| is_subset(dv, lv)))
        }
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        // Kubernetes returns quantities and int-or-strings as they were written, but numbers may
        // come back as floats from some encoders.
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a == b,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DaemonSet;

    use super::*;

    /// Scenario: the default gateway objects.
    /// Guarantees: Kyma's update strategy, tolerations, probes on 13133, non-root read-only pods,
    /// node-local Services, least RBAC; the DaemonSet reads back as a typed DaemonSet.
    #[test]
    fn gateway_objects_follow_kyma() {
        let objects = gateway_objects(&GatewaySettings::default());
        let find =
            |kind: &str, name: &str| objects.iter().find(|o| o.kind == kind && o.name == name).unwrap();
        let ds = &find("DaemonSet", GATEWAY_NAME).object;
        let typed: DaemonSet = serde_json::from_value(ds.clone()).unwrap();
        let spec = typed.spec.unwrap();
        let rolling = spec.update_strategy.unwrap().rolling_update.unwrap();
        assert_eq!(serde_json::to_value(rolling.max_unavailable).unwrap(), json!(0));
        assert_eq!(serde_json::to_value(rolling.max_surge).unwrap(), json!(1));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.priority_class_name.as_deref(), Some("telemetry-priority-class-high"));
        assert_eq!(pod.tolerations.unwrap().len(), 2);
        let c = &pod.containers[0];
        let sc = c.security_context.clone().unwrap();
        assert_eq!((sc.read_only_root_filesystem, sc.allow_privilege_escalation), (Some(true), Some(false)));
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        let readiness = c.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(serde_json::to_value(readiness.port).unwrap(), json!(13133));
        for service in [OTLP_SERVICE, LEGACY_TRACES_SERVICE] {
            assert_eq!(find("Service", service).object["spec"]["internalTrafficPolicy"], "Local");
        }
        let rules = &find("ClusterRole", GATEWAY_NAME).object["rules"];
        assert_eq!(
            rules,
            &json!([{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}])
        );
        assert!(objects.iter().all(|o| o.object["metadata"]["labels"][MANAGED_BY.0] == MANAGED_BY.1));
        let args = |s: &GatewaySettings| {
            let o = gateway_objects(s);
            let ds = o.iter().find(|d| d.kind == "DaemonSet").unwrap();
            ds.object["spec"]["template"]["spec"]["containers"][0]["args"].clone()
        };
        assert!(!args(&GatewaySettings::default()).as_array().unwrap().contains(&json!("--worker-threads")));
        let two = args(&GatewaySettings { worker_threads: 2, ..GatewaySettings::default() });
        assert!(
            two.as_array().unwrap().windows(2).any(|w| w[0] == "--worker-threads" && w[1] == "2"),
            "{two}"
        );
    }

    /// Scenario: the gateway's objects and the manager's NetworkPolicy, rendered for a manager with
    /// and without its webhook.
    /// Guarantees: Kyma's two gateway policies (OTLP from any source, metrics only from pods labelled
    /// `networking.kyma-project.io/metrics-scraping: allowed` in any namespace), applied before the
    /// DaemonSet; the manager's snapshot port admits only gateway pods, its webhook port everyone,
    /// its metrics port only scrapers; all read back as typed NetworkPolicies.
    #[test]
    fn network_policies_follow_kyma() {
        use k8s_openapi::api::networking::v1::NetworkPolicy;
        let objects = gateway_objects(&GatewaySettings::default());
        let index = |name: &str| objects.iter().position(|o| o.name == name).unwrap();
        let ds = objects.iter().position(|o| o.kind == "DaemonSet").unwrap();
        assert!(index(OTLP_NETWORK_POLICY) < ds && index(METRICS_NETWORK_POLICY) < ds);
        let spec = |o: &Desired| o.object["spec"].clone();
        let otlp = spec(&objects[index(OTLP_NETWORK_POLICY)]);
        assert_eq!(otlp["podSelector"], json!({"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}}));
        assert_eq!(
            otlp["ingress"],
            json!([{"ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}]}])
        );
        assert_eq!(otlp["egress"], json!([{}]));
        let scrapers = json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"networking.kyma-project.io/metrics-scraping": "allowed"}}}]);
        let metrics = spec(&objects[index(METRICS_NETWORK_POLICY)]);
        assert_eq!(
            metrics["ingress"],
            json!([{"from": scrapers, "ports": [{"protocol": "TCP", "port": 8888}]}])
        );
        assert_eq!(metrics["policyTypes"], json!(["Ingress"]));

        let ports = ManagerPorts { snapshots: 9090, webhook: Some(9443), admin: 8080 };
        let manager = manager_network_policy(&GatewaySettings::default(), &ports);
        assert_eq!((manager.kind, manager.name.as_str()), ("NetworkPolicy", MANAGER_NETWORK_POLICY));
        assert_eq!(manager.object["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        let m = spec(&manager);
        assert_eq!(m["podSelector"], json!({"matchLabels": {"app.kubernetes.io/name": "telemetry-manager"}}));
        assert_eq!(
            m["ingress"],
            json!([
                {"from": [{"podSelector": {"matchLabels": {NAME_LABEL.0: NAME_LABEL.1}}}], "ports": [{"protocol": "TCP", "port": 9090}]},
                {"ports": [{"protocol": "TCP", "port": 9443}]},
                {"from": scrapers, "ports": [{"protocol": "TCP", "port": 8080}]},
            ])
        );
        let without =
            manager_network_policy(&GatewaySettings::default(), &ManagerPorts { webhook: None, ..ports });
        assert_eq!(without.object["spec"]["ingress"].as_array().unwrap().len(), 2);
        for o in objects.iter().filter(|o| o.kind == "NetworkPolicy").chain([&manager]) {
            let typed: NetworkPolicy = serde_json::from_value(o.object.clone()).unwrap();
            assert!(typed.spec.unwrap().ingress.is_some());
        }
    }

    /// Scenario: live objects as the API server returns them: with defaults and status added, with
    /// a field changed, with a list element missing.
    /// Guarantees: only real drift counts.
    #[test]
    fn subset_finds_drift_only() {
        let desired = json!({"spec": {"ports": [{"port": 4317}], "type": "ClusterIP"}});
        let live = json!({"spec": {"ports": [{"port": 4317, "protocol": "TCP"}], "type": "ClusterIP", "clusterIP": "10.0.0.1"}, "status": {}});
        assert!(is_subset(&desired, &live));
        assert!(!is_subset(&desired, &json!({"spec": {"ports": [{"port": 4318}], "type": "ClusterIP"}})));
        assert!(!is_subset(&desired, &json!({"spec": {"ports": [], "type": "ClusterIP"}})));
        assert!(is_subset(&json!({"n": 1}), &json!({"n": 1.0})));
    }
}
