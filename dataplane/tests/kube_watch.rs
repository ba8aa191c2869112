//! The pod watcher with the real kube-rs client against a Kubernetes API server **simulated** over HTTP on
//! 127.0.0.1 (no cluster can run on these machines): LIST and WATCH of pods and nodes with field
//! selectors, GET of the cluster objects, ADDED/MODIFIED/DELETED/BOOKMARK events, and `410 Gone`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_gateway::process::enrich::Enricher;
use otlp_gateway::process::enrich::index::IndexConfig;
use otlp_gateway::process::enrich::kube::{Settings, SyncState, run};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// What the simulated API server holds.
#[derive(Default)]
struct State {
    pods: Vec<Value>,
    resource_version: u64,
    pod_watchers: Vec<mpsc::UnboundedSender<Bytes>>,
    /// Answer the next pod watch with 410 Gone.
    expire_next_watch: bool,
    /// Query strings of pod requests, to check the field selector.
    pod_queries: Vec<String>,
    /// Every path requested.
    paths: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeApi(Arc<Mutex<State>>);

fn pod(name: &str, uid: &str, ip: &str, node: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "labels": labels, "resourceVersion": "1"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
        "status": {"podIP": ip, "startTime": "2026-11-25T08:00:00Z"}
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(|v| v.replace("%3D", "=").replace("%2F", "/"))
}

fn on_node(pod: &Value, selector: &Option<String>) -> bool {
    match selector.as_deref().and_then(|s| s.strip_prefix("spec.nodeName=")) {
        Some(node) => pod["spec"]["nodeName"] == node,
        None => true,
    }
}

impl FakeApi {
    fn json(status: u16, v: Value) -> hyper::Response<Body> {
        let mut r = hyper::Response::new(Full::new(Bytes::from(v.to_string())).boxed());
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        r
    }

    fn stream(rx: mpsc::UnboundedReceiver<Bytes>) -> hyper::Response<Body> {
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
        });
        let mut r = hyper::Response::new(BodyExt::boxed(StreamBody::new(frames)));
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        r
    }

    fn handle(&self, req: &hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let watch = query.contains("watch=true");
        let selector = query_param(&query, "fieldSelector");
        let mut state = self.0.lock().unwrap();
        state.paths.push(path.clone());
        match path.as_str() {
            "/api/v1/pods" => {
                state.pod_queries.push(query.clone());
                if watch {
                    let (tx, rx) = mpsc::unbounded_channel();
                    if state.expire_next_watch {
                        state.expire_next_watch = false;
                        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "too old resource version", "reason": "Expired", "code": 410}});
                        tx.send(Bytes::from(format!("{gone}\n"))).unwrap();
                        drop(tx);
                    } else {
                        state.pod_watchers.push(tx);
                    }
                    return Self::stream(rx);
                }
                let items: Vec<Value> =
                    state.pods.iter().filter(|p| on_node(p, &selector)).cloned().collect();
                Self::json(
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList",
                    "metadata": {"resourceVersion": state.resource_version.to_string()}, "items": items}),
                )
            }
            "/api/v1/nodes" => {
                let node = json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "node-1", "resourceVersion": "1", "labels": {"topology.kubernetes.io/region": "eu-1"}}});
                if watch {
                    // Held open without events: node labels do not change in this test.
                    let (tx, rx) = mpsc::unbounded_channel();
                    std::mem::forget(tx);
                    return Self::stream(rx);
                }
                Self::json(
                    200,
                    json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"}, "items": [node]}),
                )
            }
            "/api/v1/namespaces/kube-system" => Self::json(
                200,
                json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "kube-system", "uid": "cluster-uid-42"}}),
            ),
            "/api/v1/namespaces/kube-system/configmaps/shoot-info" => Self::json(
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shoot-info", "namespace": "kube-system"}, "data": {"provider": "openstack"}}),
            ),
            _ => Self::json(
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
            ),
        }
    }

    /// Applies a change and sends it to open watches.
    fn event(&self, kind: &str, object: Value) {
        let mut state = self.0.lock().unwrap();
        state.resource_version += 1;
        let uid = object["metadata"]["uid"].clone();
        match kind {
            "DELETED" => state.pods.retain(|p| p["metadata"]["uid"] != uid),
            "BOOKMARK" => {}
            _ => {
                state.pods.retain(|p| p["metadata"]["uid"] != uid);
                state.pods.push(object.clone());
            }
        }
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        let line = Bytes::from(format!("{}\n", json!({"type": kind, "object": object})));
        state.pod_watchers.retain(|w| w.send(line.clone()).is_ok());
    }

    /// Ends open watches; the next watch is answered 410 Gone, forcing a re-list.
    fn expire(&self, pods: Vec<Value>) {
        let mut state = self.0.lock().unwrap();
        state.pods = pods;
        state.resource_version += 10;
        state.expire_next_watch = true;
        state.pod_watchers.clear();
    }

    async fn serve(self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let api = self.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let r = api.handle(&req);
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }
}

fn pod_at(enricher: &Enricher, ip: &str) -> Option<HashMap<String, String>> {
    let index = enricher.index();
    let attrs = index.by_ip(&ip.parse::<IpAddr>().unwrap())?;
    Some(attrs.attrs.iter().map(|a| (a.key.to_string(), a.value.to_string())).collect())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Scenario: the initial list (one pod here, one on another node), then ADDED, MODIFIED, BOOKMARK and
/// DELETED events, then the watch expires with 410 Gone while the world changed.
/// Guarantees: only this node's pods are indexed and only through a field selector; each event shows
/// up in the published index; a deleted pod stays resolvable for its grace period; after 410 the
/// watcher re-lists and the index matches the new list without having been emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_follows_the_api_server() {
    let api = FakeApi::default();
    api.0.lock().unwrap().pods = vec![
        pod("web-1", "uid-web", "10.0.0.1", "node-1", json!({"app": "web"})),
        pod("far-1", "uid-far", "10.0.0.9", "node-2", json!({})),
    ];
    let addr = api.clone().serve().await;
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let enricher = Arc::new(Enricher::default());
    let sync = Arc::new(SyncState::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(
        client,
        "node-1".into(),
        IndexConfig { cluster_name: Some("c1".into()), ..IndexConfig::default() },
        Arc::clone(&enricher),
        Arc::clone(&sync),
        Settings::Local(None),
        stop.clone(),
    ));

    eventually("the first list", || sync.is_synced()).await;
    let web = pod_at(&enricher, "10.0.0.1").expect("web indexed");
    assert_eq!(web["k8s.pod.name"], "web-1");
    assert!(pod_at(&enricher, "10.0.0.9").is_none(), "a pod of another node was indexed");
    let cluster: HashMap<String, String> =
        enricher.index().cluster.iter().map(|a| (a.key.to_string(), a.value.to_string())).collect();
    assert_eq!(cluster["k8s.cluster.uid"], "cluster-uid-42");
    assert_eq!(cluster["cloud.provider"], "sap");
    eventually("node labels", || {
        pod_at(&enricher, "10.0.0.1")
            .is_some_and(|p| p.get("cloud.region").map(String::as_str) == Some("eu-1"))
    })
    .await;

    api.event("ADDED", pod("cart-1", "uid-cart", "10.0.0.3", "node-1", json!({})));
    eventually("ADDED pod", || pod_at(&enricher, "10.0.0.3").is_some()).await;
    api.event(
        "MODIFIED",
        pod("web-1", "uid-web", "10.0.0.1", "node-1", json!({"app.kubernetes.io/name": "webshop"})),
    );
    eventually("MODIFIED pod", || {
        enricher
            .index()
            .by_ip(&"10.0.0.1".parse().unwrap())
            .is_some_and(|p| p.app_name_label.as_deref() == Some("webshop"))
    })
    .await;
    api.event("BOOKMARK", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}}));
    api.event("DELETED", pod("cart-1", "uid-cart", "10.0.0.3", "node-1", json!({})));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pod_at(&enricher, "10.0.0.3").is_some(),
        "a deleted pod must stay resolvable during its grace period"
    );

    // The watch expires and, meanwhile, web-1 was replaced by web-2 on a new IP.
    api.expire(vec![pod("web-2", "uid-web2", "10.0.0.2", "node-1", json!({}))]);
    eventually("re-list after 410", || pod_at(&enricher, "10.0.0.2").is_some()).await;
    assert!(
        pod_at(&enricher, "10.0.0.1").is_some(),
        "web-1 vanished from the list: it stays resolvable for its grace period"
    );

    let queries = api.0.lock().unwrap().pod_queries.clone();
    assert!(!api.0.lock().unwrap().expire_next_watch, "the 410 answer was never requested");
    let lists = queries.iter().filter(|q| !q.contains("watch=true")).count();
    assert!(lists >= 2, "no re-list after 410: {queries:?}");
    assert!(queries.iter().all(|q| q.contains("fieldSelector=spec.nodeName%3Dnode-1")), "{queries:?}");
    stop.cancel();
    task.await.unwrap();
}

/// Scenario: the real binary with `--kubernetes`, its kube-rs client pointed by KUBECONFIG at the
/// simulated API server; a client sends spans from 127.0.0.5, the address of a pod on this node.
/// Guarantees: the gateway becomes ready after the pod list, and the spans arrive carrying the pod's,
/// node's and cluster's attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_binary_enriches_from_the_api_server() {
    use common::*;
    let api = FakeApi::default();
    api.0.lock().unwrap().pods =
        vec![pod("ledger-0", "uid-ledger", "127.0.0.5", "node-1", json!({"app": "ledger"}))];
    let addr = api.clone().serve().await;
    let dir = tempdir();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: 'http://{addr}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: sim, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let sink = Sink::start(dir.path(), "sink", &[]).await;
    let gw = Gateway::start_with_env(
        dir.path(),
        &pipeline("p", "grpc", &format!("http://{}", sink.grpc)),
        &["--batch-timeout", "50ms", "--kubernetes", "--node-name", "node-1"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
    .await;
    let ready = format!("http://{}/readyz", gw.health);
    wait_until_async("readiness", || async { get(&ready).await.map(|(s, _)| s == 200).unwrap_or(false) })
        .await;
    assert_eq!(gw.metric("otlp_gateway_pod_index_synced"), 1.0, "{}", gw.metrics_text());
    let body = Bytes::from(prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 5, 1, 4)));
    let mut req = <opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as prost::Message>::decode(body).unwrap();
    req.resource_spans[0].resource.as_mut().unwrap().attributes =
        vec![otlp_gateway::testing::kv("service.name", "unknown_service:go")];
    let body = Bytes::from(prost::Message::encode_to_vec(&req));
    let client =
        grpc_client(gw.grpc, tracegw_contract::Compression::Gzip, Some("127.0.0.5".parse().unwrap()));
    send_raw(&client, body, 5).await.unwrap();
    wait_until("delivery", Duration::from_secs(20), || sink.spans_received() >= 5).await;
    let resource = sink.spans()[0]["resource"].clone();
    assert_eq!(resource["k8s.pod.name"], "ledger-0", "{resource}");
    assert_eq!(resource["service.name"], "ledger");
    assert_eq!(resource["k8s.node.name"], "node-1");
    assert_eq!(resource["cloud.region"], "eu-1");
    assert_eq!(resource["k8s.cluster.uid"], "cluster-uid-42");
    assert_eq!(resource["cloud.provider"], "sap");
}

async fn wait_until_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Scenario: a gateway under a control plane: the cluster facts and pod-label rules arrive in pushed
/// settings, and later the rules change while the pods stay the same.
/// Guarantees: the gateway never reads kube-system (its RBAC would not allow it); the pushed facts
/// are in the index; a new label rule takes effect by listing the pods again, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_settings_reconfigure_the_index() {
    let api = FakeApi::default();
    api.0.lock().unwrap().pods =
        vec![pod("web-1", "uid-web", "10.0.0.1", "node-1", json!({"team": "shop", "tier": "front"}))];
    let addr = api.clone().serve().await;
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap())).unwrap();
    let enricher = Arc::new(Enricher::default());
    let sync = Arc::new(SyncState::default());
    let stop = CancellationToken::new();
    let settings = |labels: Vec<tracegw_contract::PodLabelRule>| tracegw_contract::EnrichmentSettings {
        service_mode: tracegw_contract::ServiceMode::Otel,
        pod_labels: labels,
        cluster_name: Some("pushed-cluster".into()),
        cluster_uid: Some("uid-from-manager".into()),
        cloud_provider: Some("aws".into()),
    };
    let (tx, rx) =
        tokio::sync::watch::channel(Some(settings(vec![tracegw_contract::PodLabelRule::Key("team".into())])));
    let task = tokio::spawn(run(
        client,
        "node-1".into(),
        IndexConfig::default(),
        Arc::clone(&enricher),
        Arc::clone(&sync),
        Settings::Pushed(rx),
        stop.clone(),
    ));
    eventually("the first list", || sync.is_synced()).await;
    let web = pod_at(&enricher, "10.0.0.1").unwrap();
    assert_eq!(web.get("k8s.pod.label.team").map(String::as_str), Some("shop"));
    assert!(!web.contains_key("k8s.pod.label.tier"));
    let cluster: HashMap<String, String> =
        enricher.index().cluster.iter().map(|a| (a.key.to_string(), a.value.to_string())).collect();
    assert_eq!(
        (cluster["k8s.cluster.uid"].as_str(), cluster["cloud.provider"].as_str()),
        ("uid-from-manager", "aws")
    );
    assert_eq!(cluster["k8s.cluster.name"], "pushed-cluster");
    assert_eq!(enricher.mode(), otlp_gateway::process::enrich::ServiceMode::Otel);

    let lists_before = api.0.lock().unwrap().pod_queries.iter().filter(|q| !q.contains("watch=true")).count();
    tx.send_replace(Some(settings(vec![tracegw_contract::PodLabelRule::KeyPrefix("ti".into())])));
    eventually("the new label rule", || {
        pod_at(&enricher, "10.0.0.1")
            .is_some_and(|p| p.get("k8s.pod.label.tier").map(String::as_str) == Some("front"))
    })
    .await;
    let lists_after = api.0.lock().unwrap().pod_queries.iter().filter(|q| !q.contains("watch=true")).count();
    assert!(lists_after > lists_before, "no re-list after the label rules changed");
    assert!(!pod_at(&enricher, "10.0.0.1").unwrap().contains_key("k8s.pod.label.team"));
    let paths = api.0.lock().unwrap().paths.clone();
    assert!(paths.iter().all(|p| !p.contains("kube-system")), "the gateway read cluster objects: {paths:?}");
    stop.cancel();
    task.await.unwrap();
}

/// Scenario: a gateway reading its pipelines from files (no control plane) while watching the API,
/// with a `Telemetry` among those files: its label rules, cluster name and service mode arrive as
/// settings without cluster facts, then the Telemetry's label rule changes.
/// Guarantees: the Telemetry's rules and name are in force, the cluster facts still come from the
/// API (kube-system), and a changed rule takes effect without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telemetry_in_local_files_reconfigures_the_watched_index() {
    let api = FakeApi::default();
    api.0.lock().unwrap().pods =
        vec![pod("web-1", "uid-web", "10.0.0.1", "node-1", json!({"team": "shop", "tier": "front"}))];
    let addr = api.clone().serve().await;
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap())).unwrap();
    let enricher = Arc::new(Enricher::default());
    let sync = Arc::new(SyncState::default());
    let stop = CancellationToken::new();
    // What reload::FileSource sends for a Telemetry: no cluster uid or provider.
    let settings = |labels: Vec<tracegw_contract::PodLabelRule>| tracegw_contract::EnrichmentSettings {
        service_mode: tracegw_contract::ServiceMode::Otel,
        pod_labels: labels,
        cluster_name: Some("from-telemetry".into()),
        cluster_uid: None,
        cloud_provider: None,
    };
    let (tx, rx) =
        tokio::sync::watch::channel(Some(settings(vec![tracegw_contract::PodLabelRule::Key("team".into())])));
    let task = tokio::spawn(run(
        client,
        "node-1".into(),
        IndexConfig { cluster_name: Some("from-flag".into()), ..IndexConfig::default() },
        Arc::clone(&enricher),
        Arc::clone(&sync),
        Settings::Local(Some(rx)),
        stop.clone(),
    ));
    eventually("the first list", || sync.is_synced()).await;
    let web = pod_at(&enricher, "10.0.0.1").unwrap();
    assert_eq!(web.get("k8s.pod.label.team").map(String::as_str), Some("shop"));
    assert!(!web.contains_key("k8s.pod.label.tier"));
    let cluster: HashMap<String, String> =
        enricher.index().cluster.iter().map(|a| (a.key.to_string(), a.value.to_string())).collect();
    assert_eq!(cluster["k8s.cluster.name"], "from-telemetry");
    assert_eq!(cluster["k8s.cluster.uid"], "cluster-uid-42", "the API's cluster facts stay");
    assert_eq!(enricher.mode(), otlp_gateway::process::enrich::ServiceMode::Otel);

    tx.send_replace(Some(settings(vec![tracegw_contract::PodLabelRule::KeyPrefix("ti".into())])));
    eventually("the new label rule", || {
        pod_at(&enricher, "10.0.0.1")
            .is_some_and(|p| p.get("k8s.pod.label.tier").map(String::as_str) == Some("front"))
    })
    .await;
    assert!(!pod_at(&enricher, "10.0.0.1").unwrap().contains_key("k8s.pod.label.team"));
    stop.cancel();
    task.await.unwrap();
}
