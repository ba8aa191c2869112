//! The NetworkPolicies the manager keeps, run for real against the simulated API server (`apisim`):
//! Kyma's two for the gateway while a pipeline runs, and the manager's own always.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use apisim::ApiSim;
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig, ClusterManager};
use telemetry_manager::gateway::{MANAGER_NETWORK_POLICY, METRICS_NETWORK_POLICY, OTLP_NETWORK_POLICY};

const NS: &str = "kyma-system";
const NP: &str = "networking.k8s.io/v1";
const TP: &str = "telemetry.kyma-project.io/v1beta1";
/// How often and how long a condition is polled for.
const POLL: Duration = Duration::from_millis(25);
const WAIT: Duration = Duration::from_secs(10);

async fn start() -> (ApiSim, ClusterManager) {
    let sim = ApiSim::start().await.unwrap();
    sim.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "u"}}),
    );
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        ..ClusterConfig::default()
    };
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let manager = cluster::start(client, config).await.unwrap();
    (sim, manager)
}

fn policy(sim: &ApiSim, name: &str) -> Option<Value> {
    sim.get(NP, "NetworkPolicy", Some(NS), name)
}

/// Polls `check` until it holds, for at most [`WAIT`].
async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

fn ingress_ports(p: &Value) -> Vec<u64> {
    p["spec"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|port| port["port"].as_u64())
        .collect()
}

/// Scenario: the manager starts with no pipeline, a pipeline appears, then someone deletes and edits
/// each policy, then the pipeline is deleted.
/// Guarantees: the manager's policy exists from the start and admits exactly its bound snapshot and
/// admin ports; Kyma's two gateway policies appear with the gateway; a deleted policy is created
/// again and an edited one repaired; without a pipeline the gateway's policies go and the manager's
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_created_repaired_and_removed() {
    let (sim, manager) = start().await;
    wait_for("the manager's policy", || policy(&sim, MANAGER_NETWORK_POLICY).is_some()).await;
    let own = policy(&sim, MANAGER_NETWORK_POLICY).unwrap();
    assert_eq!(
        ingress_ports(&own),
        vec![u64::from(manager.snapshot_addr.port()), u64::from(manager.admin_addr.port())]
    );
    assert_eq!(own["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "telemetry-manager");
    assert!(policy(&sim, OTLP_NETWORK_POLICY).is_none(), "no gateway policy without a pipeline");

    sim.put(json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": "p"},
        "spec": {"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}}}}));
    wait_for("the gateway's policies", || {
        policy(&sim, OTLP_NETWORK_POLICY).is_some() && policy(&sim, METRICS_NETWORK_POLICY).is_some()
    })
    .await;
    assert_eq!(ingress_ports(&policy(&sim, OTLP_NETWORK_POLICY).unwrap()), vec![4317, 4318]);
    let metrics = policy(&sim, METRICS_NETWORK_POLICY).unwrap();
    assert_eq!(ingress_ports(&metrics), vec![8888]);
    assert_eq!(
        metrics["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["networking.kyma-project.io/metrics-scraping"],
        "allowed"
    );

    for name in [OTLP_NETWORK_POLICY, MANAGER_NETWORK_POLICY] {
        let before = policy(&sim, name).unwrap();
        assert!(sim.delete(NP, "NetworkPolicy", Some(NS), name));
        wait_for(&format!("{name} created again"), || {
            policy(&sim, name).is_some_and(|p| p["metadata"]["uid"] != before["metadata"]["uid"])
        })
        .await;
    }
    for name in [METRICS_NETWORK_POLICY, MANAGER_NETWORK_POLICY] {
        sim.update(NP, "NetworkPolicy", Some(NS), name, |p| {
            p["spec"]["ingress"] = json!([{"ports": [{"protocol": "TCP", "port": 1}]}]);
        });
        wait_for(&format!("{name} repaired"), || {
            policy(&sim, name).is_some_and(|p| {
                !ingress_ports(&p).contains(&1) && p["spec"]["ingress"][0].get("from").is_some()
            })
        })
        .await;
    }

    sim.delete(TP, "TracePipeline", None, "p");
    wait_for("the gateway's policies removed", || {
        policy(&sim, OTLP_NETWORK_POLICY).is_none() && policy(&sim, METRICS_NETWORK_POLICY).is_none()
    })
    .await;
    assert!(policy(&sim, MANAGER_NETWORK_POLICY).is_some());
    manager.stop.cancel();
}
