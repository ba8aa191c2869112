//! Against a real Kubernetes cluster, for developers who have one (none runs on the CI machines):
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo test -p telemetry-manager --test real_cluster -- --ignored
//! ```
//!
//! The tests install the CRDs, work in a namespace of their own, and clean up after themselves. The
//! manager runs in the test process with the kubeconfig's credentials. Use a cluster where no other
//! telemetry-manager runs: the gateway's ClusterRole and ClusterRoleBinding are cluster-wide names,
//! and the test's manager reconciles every TracePipeline it finds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use telemetry_manager::cluster::{self, ClusterConfig};
use telemetry_manager::crd::{self, TracePipeline};
use telemetry_manager::gateway::GatewaySettings;

const MANAGER: &str = "telemetry-manager-test";

async fn client() -> Client {
    assert!(std::env::var_os("KUBECONFIG").is_some(), "set KUBECONFIG to the cluster to test against");
    Client::try_default().await.unwrap()
}

/// Installs the TracePipeline and Telemetry CRDs and waits until both are established.
async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [crd::crd().unwrap(), telemetry_manager::telemetry::crd().unwrap()] {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd)).await.unwrap();
        let mut established = false;
        for _ in 0..60 {
            established = crds
                .get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(established, "the CRD {name} never became established");
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Scenario: the generated CRD on a real API server; a valid pipeline and ones Kyma's API refuses.
/// Guarantees: the server accepts the CRD, applies the protocol default, and refuses with Kyma's
/// CEL messages.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster: KUBECONFIG=... cargo test -p telemetry-manager --test real_cluster -- --ignored"]
async fn crd_admission_on_a_real_api_server() {
    let client = client().await;
    install_crd(&client).await;
    let pipelines: Api<TracePipeline> = Api::all(client.clone());
    let name = format!("crd-test-{}", fastrand_suffix());
    let ok: TracePipeline = serde_json::from_value(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
        "metadata": {"name": name}, "spec": {"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}}}}))
    .unwrap();
    let created = pipelines.create(&PostParams::default(), &ok).await.unwrap();
    let stored = serde_json::to_value(&created).unwrap();
    assert_eq!(stored["spec"]["output"]["otlp"]["protocol"], "grpc");
    let bad: TracePipeline = serde_json::from_value(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
        "metadata": {"name": format!("{name}-bad")}, "spec": {"output": {"otlp": {"endpoint": {"value": "backend:4317"}, "path": "/x"}}}}))
    .unwrap();
    let err = pipelines.create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(err.to_string().contains("Path is only available with HTTP protocol"), "{err}");
    pipelines.delete(&name, &DeleteParams::default()).await.unwrap();
}

/// Scenario: the manager on a real cluster, in a namespace of its own: a pipeline with its endpoint
/// in a Secret, then the pipeline deleted.
/// Guarantees: status ConfigurationGenerated=True with Kyma's reason, the gateway DaemonSet and
/// Services created, and removed again once no pipeline is left.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster: KUBECONFIG=... cargo test -p telemetry-manager --test real_cluster -- --ignored"]
async fn manager_reconciles_on_a_real_cluster() {
    let client = client().await;
    install_crd(&client).await;
    let namespace = format!("telemetry-test-{}", fastrand_suffix());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "backend"}, "stringData": {"endpoint": "http://backend:4317"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let name = format!("{namespace}-p");
    let pipelines: Api<TracePipeline> = Api::all(client.clone());
    pipelines
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
                "metadata": {"name": name}, "spec": {"output": {"otlp": {"endpoint": {"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": namespace, "key": "endpoint"}}}}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let config = ClusterConfig {
        gateway: GatewaySettings {
            namespace: namespace.clone(),
            priority_class: String::new(),
            ..GatewaySettings::default()
        },
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        max_pipelines: None,
        ..ClusterConfig::default()
    };
    let manager = cluster::start(client.clone(), config).await.unwrap();
    eventually("ConfigurationGenerated=True", || {
        let pipelines = pipelines.clone();
        let name = name.clone();
        async move {
            let p = pipelines.get(&name).await.unwrap();
            p.status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "ConfigurationGenerated" && c.reason == "GatewayConfigured")
            })
        }
    })
    .await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &namespace);
    assert!(daemonsets.get_opt("telemetry-otlp-gateway").await.unwrap().is_some());
    pipelines.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually("the gateway removed", || {
        let daemonsets = daemonsets.clone();
        async move { daemonsets.get_opt("telemetry-otlp-gateway").await.unwrap().is_none() }
    })
    .await;
    manager.stop.cancel();
    let _ = Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .delete("telemetry-otlp-gateway", &DeleteParams::default())
        .await;
    namespaces.delete(&namespace, &DeleteParams::default()).await.unwrap();
}

fn fastrand_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:x}", nanos)
}
