//! `GatewayHealthy` from the gateway DaemonSet and its pods, following Kyma's DaemonSet prober: ready
//! when every scheduled pod is updated and ready; otherwise the first pod in trouble explains why
//! (unschedulable, a container waiting on a crash loop or an image pull, a failed pod); otherwise a
//! rollout is in progress.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

use crate::conditions::GatewayHealth;

/// Waiting reasons that are part of a normal start, not a problem.
const STARTING_REASONS: [&str; 2] = ["ContainerCreating", "PodInitializing"];

/// Health of the DaemonSet `ds` (absent: not created yet) given its pods.
pub fn gateway_health(ds: Option<&DaemonSet>, pods: &[&Pod]) -> GatewayHealth {
    let Some(ds) = ds else { return GatewayHealth::NotReady("DaemonSet is not yet created".into()) };
    let status = ds.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    // Until the DaemonSet controller has seen the current spec, its counts describe the old one.
    let observed = status.observed_generation.unwrap_or(0) >= ds.metadata.generation.unwrap_or(0);
    if observed && updated == desired && status.number_ready >= desired {
        return GatewayHealth::Ready;
    }
    let mut pods: Vec<&&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| p.metadata.name.clone());
    for pod in pods {
        if let Some(problem) = pod_problem(pod) {
            return GatewayHealth::NotReady(problem);
        }
    }
    GatewayHealth::RolloutInProgress
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// What is wrong with one pod, if anything.
fn pod_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Running" && condition(pod, "Ready").is_some_and(|c| c.status == "True") {
        return None;
    }
    let containers: &[ContainerStatus] = status.container_statuses.as_deref().unwrap_or_default();
    match phase {
        "Pending" => {
            if let Some(c) = condition(pod, "PodScheduled").filter(|c| c.status == "False") {
                return Some(format!("Pod is not scheduled: {}", c.message.clone().unwrap_or_default()));
            }
            containers.iter().find_map(|c| {
                let waiting = c.state.as_ref()?.waiting.as_ref()?;
                let reason = waiting.reason.clone().unwrap_or_default();
                if STARTING_REASONS.contains(&reason.as_str()) {
                    return None;
                }
                Some(waiting_message(&c.name, &reason, waiting.message.as_deref()))
            })
        }
        "Failed" => {
            Some(format!("Pod is in the failed state due to: {}", status.message.clone().unwrap_or_default()))
        }
        "Running" => containers.iter().find_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            // A container restarting after it ended says more through how it ended.
            let reason = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.clone())
                .or_else(|| waiting.reason.clone())
                .unwrap_or_default();
            Some(waiting_message(&c.name, &reason, waiting.message.as_deref()))
        }),
        _ => None,
    }
}

fn waiting_message(container: &str, reason: &str, detail: Option<&str>) -> String {
    let mut message = format!(
        "Pod is in the pending state because container: {container} is not running due to: {reason}. Please check the container: {container} logs."
    );
    if let Some(detail) = detail.filter(|d| !d.is_empty()) {
        message.push_str(&format!(" ({detail})"));
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ds(desired: i32, updated: i32, ready: i32) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": "telemetry-otlp-gateway"},
            "status": {"desiredNumberScheduled": desired, "updatedNumberScheduled": updated, "numberReady": ready,
                       "currentNumberScheduled": desired, "numberMisscheduled": 0}}))
        .unwrap()
    }

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    /// Scenario: Kyma's prober table: missing, ready, rolling out, crash loop, image pull, OOM,
    /// unschedulable, evicted.
    /// Guarantees: each case gives Kyma's outcome and names the container and reason.
    #[test]
    fn kyma_prober_table() {
        assert_eq!(gateway_health(None, &[]), GatewayHealth::NotReady("DaemonSet is not yet created".into()));
        assert_eq!(gateway_health(Some(&ds(2, 2, 2)), &[]), GatewayHealth::Ready);
        let starting = pod(
            "a",
            json!({"phase": "Pending", "containerStatuses": [{"name": "gateway", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(gateway_health(Some(&ds(2, 1, 1)), &[&starting]), GatewayHealth::RolloutInProgress);

        let crash = pod(
            "b",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "gateway", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
              "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
              "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        );
        let GatewayHealth::NotReady(why) = gateway_health(Some(&ds(2, 2, 1)), &[&starting, &crash]) else {
            panic!()
        };
        assert!(why.contains("container: gateway is not running due to: Error"), "{why}");

        let oom = pod(
            "c",
            json!({"phase": "Running", "containerStatuses": [{"name": "gateway", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        let GatewayHealth::NotReady(why) = gateway_health(Some(&ds(1, 1, 0)), &[&oom]) else { panic!() };
        assert!(why.contains("due to: OOMKilled"), "{why}");

        let pull = pod(
            "d",
            json!({"phase": "Pending", "containerStatuses": [{"name": "gateway", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}),
        );
        let GatewayHealth::NotReady(why) = gateway_health(Some(&ds(1, 1, 0)), &[&pull]) else { panic!() };
        assert!(why.contains("due to: ErrImagePull") && why.contains("not found"), "{why}");

        let unscheduled = pod(
            "e",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available"}]}),
        );
        assert_eq!(
            gateway_health(Some(&ds(1, 0, 0)), &[&unscheduled]),
            GatewayHealth::NotReady("Pod is not scheduled: 0/3 nodes are available".into())
        );
        let evicted =
            pod("f", json!({"phase": "Failed", "message": "The node was low on resource: memory."}));
        assert_eq!(
            gateway_health(Some(&ds(1, 1, 0)), &[&evicted]),
            GatewayHealth::NotReady(
                "Pod is in the failed state due to: The node was low on resource: memory.".into()
            )
        );
    }
}
