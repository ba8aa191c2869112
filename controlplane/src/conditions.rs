//! The three status conditions of a TracePipeline, with Kyma's types and reasons, computed as a pure
//! function of what the reconciler knows: the pipeline's verdict, the gateway's health and the flow
//! health. `lastTransitionTime` only moves when a condition's status changes, so writing the same
//! conditions twice changes nothing and the controller never re-triggers itself.

use tracegw_contract::tls::CertExpiry;
use tracegw_contract::{PipelineError, Reason};

use crate::crd::Condition;

/// `ConfigurationGenerated`.
pub const TYPE_CONFIGURATION_GENERATED: &str = "ConfigurationGenerated";
/// `GatewayHealthy`.
pub const TYPE_GATEWAY_HEALTHY: &str = "GatewayHealthy";
/// `TelemetryFlowHealthy`.
pub const TYPE_FLOW_HEALTHY: &str = "TelemetryFlowHealthy";

/// Message of `ConfigurationGenerated=True`.
pub const CONFIGURED_MESSAGE: &str =
    "TracePipeline specification is successfully applied to the configuration of OTLP Gateway";

/// What the reconciler decided about a pipeline's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In the snapshot; possibly with a certificate about to expire.
    Generated(Option<CertExpiry>),
    /// Not in the snapshot.
    Rejected(PipelineError),
    /// Reading a referenced Secret failed at the API server; the pipeline keeps its last verdict
    /// in the gateways and is retried.
    ValidationFailed(String),
}

/// Health of the gateway DaemonSet (Kyma's DaemonSet prober).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayHealth {
    /// Every desired pod is updated and ready.
    Ready,
    /// Pods are being started or updated, none of them failing.
    RolloutInProgress,
    /// The DaemonSet is missing or a pod fails; the text says which and why.
    NotReady(String),
}

/// Health of a pipeline's flow, from the gateways' counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowHealth {
    /// Spans are delivered and none are dropped.
    Healthy,
    /// Spans are dropped and none are delivered.
    AllDataDropped,
    /// Spans are dropped while others are delivered.
    SomeDataDropped,
    /// Clients are refused because the gateways cannot take more.
    Throttling,
    /// No gateway reported recently: the flow cannot be judged.
    ProbingFailed(String),
    /// Not enough is known yet (the manager just started): keep what the status says.
    Pending,
}

// === free functions ===

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        last_transition_time: String::new(),
        message: message.into(),
        observed_generation: generation,
        reason: reason.to_string(),
        status: status.to_string(),
        type_: type_.to_string(),
    }
}

/// The three conditions for one pipeline, without transition times (see [`with_transition_times`]).
/// `previous_flow` is the flow condition currently in the status, kept while the flow is
/// [`FlowHealth::Pending`].
pub fn conditions(
    verdict: &Verdict,
    gateway: &GatewayHealth,
    flow: &FlowHealth,
    generation: Option<i64>,
    now_unix: i64,
    previous_flow: Option<&Condition>,
) -> Vec<Condition> {
    let configured = match verdict {
        Verdict::Generated(expiry) => match expiry.filter(|e| e.about_to_expire(now_unix)) {
            Some(e) => condition(
                TYPE_CONFIGURATION_GENERATED,
                "True",
                "TLSCertificateAboutToExpire",
                e.warning(),
                generation,
            ),
            None => condition(
                TYPE_CONFIGURATION_GENERATED,
                "True",
                "GatewayConfigured",
                CONFIGURED_MESSAGE,
                generation,
            ),
        },
        Verdict::Rejected(e) => condition(
            TYPE_CONFIGURATION_GENERATED,
            "False",
            e.reason.as_str(),
            rejected_message(e),
            generation,
        ),
        Verdict::ValidationFailed(why) => condition(
            TYPE_CONFIGURATION_GENERATED,
            "False",
            "ValidationFailed",
            format!("Pipeline validation failed due to an error from the Kubernetes API server: {why}"),
            generation,
        ),
    };
    let generated = matches!(verdict, Verdict::Generated(_));
    let gateway = if !generated {
        condition(
            TYPE_GATEWAY_HEALTHY,
            "False",
            "GatewayConfigurationNotGenerated",
            "This TracePipeline is not part of the OTLP Gateway's configuration; see the ConfigurationGenerated condition",
            generation,
        )
    } else {
        match gateway {
            GatewayHealth::Ready => condition(
                TYPE_GATEWAY_HEALTHY,
                "True",
                "GatewayReady",
                "OTLP Gateway DaemonSet is ready",
                generation,
            ),
            GatewayHealth::RolloutInProgress => condition(
                TYPE_GATEWAY_HEALTHY,
                "True",
                "RolloutInProgress",
                "Pods are being started/updated",
                generation,
            ),
            GatewayHealth::NotReady(why) => {
                condition(TYPE_GATEWAY_HEALTHY, "False", "GatewayNotReady", why.clone(), generation)
            }
        }
    };
    let flow = if !generated {
        condition(
            TYPE_FLOW_HEALTHY,
            "False",
            "ConfigurationNotGenerated",
            "No spans flow: the TracePipeline is not part of the OTLP Gateway's configuration; see the ConfigurationGenerated condition",
            generation,
        )
    } else {
        match flow {
            FlowHealth::Healthy => condition(
                TYPE_FLOW_HEALTHY,
                "True",
                "FlowHealthy",
                "No problems detected in the telemetry flow",
                generation,
            ),
            FlowHealth::AllDataDropped => condition(
                TYPE_FLOW_HEALTHY,
                "False",
                "GatewayAllTelemetryDataDropped",
                "Backend is not reachable or rejecting spans. All spans are dropped in OTLP Gateway. Check the backend and the gateway's logs",
                generation,
            ),
            FlowHealth::SomeDataDropped => condition(
                TYPE_FLOW_HEALTHY,
                "False",
                "GatewaySomeTelemetryDataDropped",
                "Backend is reachable, but rejecting spans. Some spans are dropped in OTLP Gateway. Check the backend's limits and the gateway's logs",
                generation,
            ),
            FlowHealth::Throttling => condition(
                TYPE_FLOW_HEALTHY,
                "False",
                "GatewayThrottling",
                "OTLP Gateway is unable to receive spans at current rate: clients are told to retry. Reduce the volume or spread the workloads over more nodes",
                generation,
            ),
            FlowHealth::ProbingFailed(why) => {
                condition(TYPE_FLOW_HEALTHY, "Unknown", "GatewayProbingFailed", why.clone(), generation)
            }
            FlowHealth::Pending => match previous_flow {
                Some(previous) => Condition { observed_generation: generation, ..previous.clone() },
                None => condition(
                    TYPE_FLOW_HEALTHY,
                    "Unknown",
                    "GatewayProbingFailed",
                    "Waiting for the OTLP gateways' first counters",
                    generation,
                ),
            },
        }
    };
    vec![configured, gateway, flow]
}

fn rejected_message(e: &PipelineError) -> String {
    match e.reason {
        Reason::MaxPipelinesExceeded => "Maximum pipeline count limit exceeded".to_string(),
        _ => e.condition_message(),
    }
}

/// Fills in `lastTransitionTime`: kept from `previous` where type and status are unchanged, `now`
/// (RFC 3339) otherwise.
pub fn with_transition_times(
    mut conditions: Vec<Condition>,
    previous: &[Condition],
    now: &str,
) -> Vec<Condition> {
    for c in &mut conditions {
        c.last_transition_time = previous
            .iter()
            .find(|p| p.type_ == c.type_ && p.status == c.status && !p.last_transition_time.is_empty())
            .map_or_else(|| now.to_string(), |p| p.last_transition_time.clone());
    }
    conditions
}

/// Whether writing `next` would change what `current` says (transition times aside).
pub fn differ(current: &[Condition], next: &[Condition]) -> bool {
    current.len() != next.len()
        || current.iter().zip(next).any(|(a, b)| {
            a.type_ != b.type_
                || a.status != b.status
                || a.reason != b.reason
                || a.message != b.message
                || a.observed_generation != b.observed_generation
        })
}

/// `now` as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds.
pub fn rfc3339(unix_seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// One line per condition for people: `pipeline  Type=Status  Reason  message`.
pub fn lines(pipeline: &str, conditions: &[Condition]) -> Vec<String> {
    conditions
        .iter()
        .map(|c| format!("{pipeline}\t{}={}\t{}\t{}", c.type_, c.status, c.reason, c.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use tracegw_contract::tls::CertKind;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Scenario: a valid pipeline, a rejected one, and one whose certificate is about to expire.
    /// Guarantees: Kyma's types, statuses and reasons; a rejected pipeline gets the "not generated"
    /// reasons on the other two conditions; observedGeneration is on every condition.
    #[test]
    fn reasons_follow_kyma() {
        let ok = conditions(
            &Verdict::Generated(None),
            &GatewayHealth::Ready,
            &FlowHealth::Healthy,
            Some(3),
            NOW,
            None,
        );
        let summary: Vec<(&str, &str, &str)> =
            ok.iter().map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("ConfigurationGenerated", "True", "GatewayConfigured"),
                ("GatewayHealthy", "True", "GatewayReady"),
                ("TelemetryFlowHealthy", "True", "FlowHealthy")
            ]
        );
        assert!(ok.iter().all(|c| c.observed_generation == Some(3)));

        let missing = PipelineError::new(
            Reason::ReferencedSecretMissing,
            "spec.output.otlp.endpoint",
            "One or more referenced Secrets are missing: Secret 'b' of Namespace 'n'",
        );
        let bad = conditions(
            &Verdict::Rejected(missing),
            &GatewayHealth::Ready,
            &FlowHealth::Healthy,
            Some(1),
            NOW,
            None,
        );
        assert_eq!((bad[0].status.as_str(), bad[0].reason.as_str()), ("False", "ReferencedSecretMissing"));
        assert_eq!(bad[0].message, "One or more referenced Secrets are missing: Secret 'b' of Namespace 'n'");
        assert_eq!(bad[1].reason, "GatewayConfigurationNotGenerated");
        assert_eq!(bad[2].reason, "ConfigurationNotGenerated");

        let expiry = CertExpiry { kind: CertKind::Ca, not_after: NOW + 3 * 86_400 };
        let soon = conditions(
            &Verdict::Generated(Some(expiry)),
            &GatewayHealth::RolloutInProgress,
            &FlowHealth::Throttling,
            None,
            NOW,
            None,
        );
        assert_eq!(
            (soon[0].status.as_str(), soon[0].reason.as_str()),
            ("True", "TLSCertificateAboutToExpire")
        );
        assert_eq!(soon[1].reason, "RolloutInProgress");
        assert_eq!((soon[2].status.as_str(), soon[2].reason.as_str()), ("False", "GatewayThrottling"));
    }

    /// Scenario: the same conditions computed twice, then one status flips.
    /// Guarantees: transition times stay while nothing changes; only the flipped one moves; writing
    /// the same conditions is not a difference.
    #[test]
    fn transition_times_move_only_on_change() {
        let first = with_transition_times(
            conditions(
                &Verdict::Generated(None),
                &GatewayHealth::Ready,
                &FlowHealth::Healthy,
                Some(1),
                NOW,
                None,
            ),
            &[],
            "2026-11-26T10:00:00Z",
        );
        let again = with_transition_times(
            conditions(
                &Verdict::Generated(None),
                &GatewayHealth::Ready,
                &FlowHealth::Healthy,
                Some(1),
                NOW,
                None,
            ),
            &first,
            "2026-11-26T11:00:00Z",
        );
        assert_eq!(first, again);
        assert!(!differ(&first, &again));
        let dropped = with_transition_times(
            conditions(
                &Verdict::Generated(None),
                &GatewayHealth::Ready,
                &FlowHealth::AllDataDropped,
                Some(1),
                NOW,
                None,
            ),
            &first,
            "2026-11-26T12:00:00Z",
        );
        assert!(differ(&first, &dropped));
        assert_eq!(dropped[0].last_transition_time, "2026-11-26T10:00:00Z");
        assert_eq!(dropped[2].last_transition_time, "2026-11-26T12:00:00Z");
        assert_eq!(rfc3339(NOW), "2027-01-15T08:00:00Z");
    }
}
