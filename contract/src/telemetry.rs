//! Kyma's `Telemetry` resource (`operator.kyma-project.io`, `v1beta1` and `v1alpha1`): the module's
//! cluster-wide settings. Of its spec the trace path uses the enrichments (pod labels copied as
//! `k8s.pod.label.<key>`, the cluster name) and the annotation that picks the `service.*` rules; the
//! gateway and metric settings are deprecated or belong to other signals, and are accepted and
//! ignored as Kyma ignores them.
//!
//! Only the object named `default` counts, as in Kyma. Both planes read it from local files
//! ([`default_in`]); the control plane reads it from the API server and turns it into the
//! [`crate::EnrichmentSettings`] of its snapshots. With the `schema` feature the spec types derive
//! their OpenAPI schema with Kyma's CEL rules, for the control plane's CRD.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::load::{BrokenObject, LoadError};
use crate::snapshot::{PodLabelRule, ServiceMode};

/// API group of the module resource.
pub const GROUP: &str = "operator.kyma-project.io";
/// The stored API version.
pub const API_VERSION_V1BETA1: &str = "operator.kyma-project.io/v1beta1";
/// The deprecated, still-served API version.
pub const API_VERSION_V1ALPHA1: &str = "operator.kyma-project.io/v1alpha1";
/// The kind.
pub const KIND: &str = "Telemetry";
/// The one object whose settings are used.
pub const DEFAULT_NAME: &str = "default";
/// Where Kyma keeps it; also the namespace assumed for a file's object that names none.
pub const DEFAULT_NAMESPACE: &str = "kyma-system";
/// Annotation choosing the `service.*` rules: `otel` or `kyma-legacy`.
pub const SERVICE_ENRICHMENT_ANNOTATION: &str = "telemetry.kyma-project.io/service-enrichment";

/// `spec` of a Telemetry. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelemetrySpec {
    /// Settings of the trace gateway (deprecated: the gateway is a DaemonSet now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "SignalSpec"))]
    pub trace: Option<SignalSpec>,
    /// Settings of the log gateway (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "SignalSpec"))]
    pub log: Option<SignalSpec>,
    /// Metric settings: the deprecated gateway and the agents' collection intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "MetricSpec"))]
    pub metric: Option<MetricSpec>,
    /// Attributes added to every resource the pipelines carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "EnrichmentSpec"))]
    pub enrichments: Option<EnrichmentSpec>,
}

/// `spec.trace` and `spec.log`: only a gateway, which no longer has settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignalSpec {
    /// Deprecated and without effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "GatewaySpec"))]
    pub gateway: Option<GatewaySpec>,
}

/// The gateway's scaling, from when it was a Deployment. Deprecated and without effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// Deprecated: the gateway runs one pod per node, whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Scaling"))]
    pub scaling: Option<Scaling>,
}

/// A scaling strategy. Deprecated and without effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    /// The strategy; only `Static` was ever offered.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("enum" = ["Static"])))]
    pub type_: Option<String>,
    /// A fixed number of replicas.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "StaticScaling"))]
    pub static_: Option<StaticScaling>,
}

/// A fixed number of gateway replicas. Deprecated and without effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticScaling {
    /// At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "i32", range(min = 1)))]
    pub replicas: Option<i32>,
}

/// `spec.metric`: read by Kyma's metric agents, not by the trace path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    /// Deprecated and without effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "GatewaySpec"))]
    pub gateway: Option<GatewaySpec>,
    /// Default scrape interval of the pull-based inputs, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "duration", "x-kubernetes-validations" = [
        {"rule": "self > duration('0s')", "message": "'collectionInterval' must be greater than 0"}
    ])))]
    pub collection_interval: Option<String>,
    /// The runtime input's own interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "MetricInputSpec"))]
    pub runtime: Option<MetricInputSpec>,
    /// The Prometheus input's own interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "MetricInputSpec"))]
    pub prometheus: Option<MetricInputSpec>,
    /// The Istio input's own interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "MetricInputSpec"))]
    pub istio: Option<MetricInputSpec>,
}

/// One metric input's scrape interval, overriding `spec.metric.collectionInterval`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricInputSpec {
    /// A duration such as `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "duration", "x-kubernetes-validations" = [
        {"rule": "self > duration('0s')", "message": "'collectionInterval' must be greater than 0"}
    ])))]
    pub collection_interval: Option<String>,
}

/// `spec.enrichments`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichmentSpec {
    /// Pod labels copied to every resource as `k8s.pod.label.<key>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract_pod_labels: Vec<PodLabel>,
    /// Facts about the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ClusterSpec"))]
    pub cluster: Option<ClusterSpec>,
}

/// Which pod labels to copy: one exact `key`, or every key starting with `keyPrefix`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.key) || has(self.keyPrefix))", "message": "Either 'key' or 'keyPrefix' must be specified"},
    {"rule": "!(has(self.key) && has(self.keyPrefix))", "message": "Either 'key' or 'keyPrefix' must be specified"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodLabel {
    /// An exact label key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub key: Option<String>,
    /// A label key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub key_prefix: Option<String>,
}

/// `spec.enrichments.cluster`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The value of `k8s.cluster.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Option<String>,
}

/// The parts of a Telemetry's `metadata` the planes use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryMeta {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Annotations; one of them picks the `service.*` rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Generation of the spec, when the object came from an API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// A `Telemetry` object as read from a file (or from an API server's JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Telemetry {
    /// `operator.kyma-project.io/v1beta1` or `/v1alpha1`.
    pub api_version: String,
    /// Always `Telemetry`.
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: TelemetryMeta,
    /// The settings; Kyma's default object has none.
    #[serde(default)]
    pub spec: TelemetrySpec,
}

/// What a Telemetry decides for enrichment. Kyma reads these for every gateway; the cluster's UID
/// and provider come from the cluster itself, not from here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// From the annotation; missing or unknown values mean `kyma-legacy`, as in Kyma.
    pub service_mode: ServiceMode,
    /// From `spec.enrichments.extractPodLabels`, in order.
    pub pod_labels: Vec<PodLabelRule>,
    /// From `spec.enrichments.cluster.name` when it is not empty.
    pub cluster_name: Option<String>,
}

// === impl TelemetrySettings ===

impl TelemetrySettings {
    /// As a snapshot's enrichment settings. The cluster's UID and provider are facts of the
    /// cluster, not settings: they stay unset here, for whoever reads the cluster to fill in.
    pub fn to_enrichment(&self) -> crate::EnrichmentSettings {
        crate::EnrichmentSettings {
            service_mode: self.service_mode,
            pod_labels: self.pod_labels.clone(),
            cluster_name: self.cluster_name.clone(),
            cluster_uid: None,
            cloud_provider: None,
        }
    }
}

// === impl Telemetry ===

impl Telemetry {
    /// Whether this is the object whose settings count: `default`, in `namespace` (a file's object
    /// may leave the namespace out, as Kyma's default CR does).
    pub fn is_default_in(&self, namespace: &str) -> bool {
        self.metadata.name == DEFAULT_NAME
            && self.metadata.namespace.as_deref().is_none_or(|n| n == namespace)
    }

    /// The enrichment settings this object decides.
    pub fn settings(&self) -> TelemetrySettings {
        settings(&self.spec, &self.metadata.annotations)
    }
}

// === impl TelemetrySpec ===

impl TelemetrySpec {
    /// The pod label rules, in order. An entry naming both (which the CRD refuses) counts as its
    /// `key`, as in Kyma; an entry naming neither or an empty string copies nothing.
    pub fn pod_label_rules(&self) -> Vec<PodLabelRule> {
        let Some(enrichments) = &self.enrichments else { return Vec::new() };
        enrichments
            .extract_pod_labels
            .iter()
            .filter_map(|l| match (l.key.as_deref(), l.key_prefix.as_deref()) {
                (Some(k), _) if !k.is_empty() => Some(PodLabelRule::Key(k.to_string())),
                (_, Some(p)) if !p.is_empty() => Some(PodLabelRule::KeyPrefix(p.to_string())),
                _ => None,
            })
            .collect()
    }

    /// `spec.enrichments.cluster.name`, unless empty.
    pub fn cluster_name(&self) -> Option<String> {
        self.enrichments
            .as_ref()
            .and_then(|e| e.cluster.as_ref())
            .and_then(|c| c.name.clone())
            .filter(|n| !n.is_empty())
    }
}

// === free functions ===

/// The enrichment settings of a Telemetry's spec and annotations.
pub fn settings(spec: &TelemetrySpec, annotations: &BTreeMap<String, String>) -> TelemetrySettings {
    TelemetrySettings {
        service_mode: ServiceMode::from_annotation(
            annotations.get(SERVICE_ENRICHMENT_ANNOTATION).map(String::as_str),
        ),
        pod_labels: spec.pod_label_rules(),
        cluster_name: spec.cluster_name(),
    }
}

/// Whether a raw document is a Telemetry (either API version).
pub fn is_telemetry(document: &serde_json::Value) -> bool {
    let kind = document.get("kind").and_then(serde_json::Value::as_str);
    let api_version = document.get("apiVersion").and_then(serde_json::Value::as_str).unwrap_or_default();
    kind == Some(KIND) && api_version.rsplit_once('/').is_some_and(|(g, _)| g == GROUP)
}

/// Reads a Telemetry document; a document that does not match the schema says where and why.
pub fn parse(source: &Path, document: serde_json::Value) -> Result<Telemetry, BrokenObject> {
    let name = document
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    serde_path_to_error::deserialize(document).map_err(|e| BrokenObject {
        name,
        source: source.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// The `default` Telemetry among the documents under `path` (the same files the pipelines are read
/// from), if there is one: `Ok(None)` without one, the broken object when it does not read.
pub fn default_in(path: &Path) -> Result<Option<Result<Telemetry, BrokenObject>>, LoadError> {
    let mut found = None;
    let mut source = path.to_path_buf();
    for file in crate::load::files(path)? {
        let text =
            std::fs::read_to_string(&file).map_err(|source| LoadError::Io { path: file.clone(), source })?;
        let mut objects = crate::load::Objects::default();
        objects.add_text(&file, &text)?;
        for document in objects.others {
            let name = document.pointer("/metadata/name").and_then(serde_json::Value::as_str);
            let namespace = document.pointer("/metadata/namespace").and_then(serde_json::Value::as_str);
            if is_telemetry(&document)
                && name == Some(DEFAULT_NAME)
                && namespace.is_none_or(|n| n == DEFAULT_NAMESPACE)
            {
                source = file.clone();
                found = Some(document);
            }
        }
    }
    Ok(found.map(|d| parse(&source, d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: Kyma's default CR (only the `otel` annotation), a CR with every enrichment and the
    /// deprecated gateway settings, and one with an unknown annotation value.
    /// Guarantees: the annotation picks the mode (anything else is `kyma-legacy`); keys and prefixes
    /// keep their order; an empty cluster name counts as none; deprecated fields read and change nothing.
    #[test]
    fn settings_follow_kyma() {
        let default_cr: Telemetry = serde_yaml_ng::from_str(
            "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata:\n  name: default\n  annotations:\n    telemetry.kyma-project.io/service-enrichment: otel\n",
        )
        .unwrap();
        assert!(default_cr.is_default_in(DEFAULT_NAMESPACE));
        assert_eq!(
            default_cr.settings(),
            TelemetrySettings { service_mode: ServiceMode::Otel, pod_labels: vec![], cluster_name: None }
        );
        let full: Telemetry = serde_yaml_ng::from_str(
            "apiVersion: operator.kyma-project.io/v1alpha1\nkind: Telemetry\nmetadata: {name: default, namespace: kyma-system, annotations: {telemetry.kyma-project.io/service-enrichment: fancy}}\nspec:\n  trace: {gateway: {scaling: {type: Static, static: {replicas: 3}}}}\n  metric: {collectionInterval: 30s, istio: {collectionInterval: 1m}}\n  enrichments:\n    extractPodLabels: [{keyPrefix: app.kubernetes.io/}, {key: team}]\n    cluster: {name: ''}\n",
        )
        .unwrap();
        assert_eq!(
            full.settings(),
            TelemetrySettings {
                service_mode: ServiceMode::KymaLegacy,
                pod_labels: vec![
                    PodLabelRule::KeyPrefix("app.kubernetes.io/".into()),
                    PodLabelRule::Key("team".into())
                ],
                cluster_name: None,
            }
        );
        let other: Telemetry = serde_yaml_ng::from_str(
            "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata: {name: default, namespace: other}\n",
        )
        .unwrap();
        assert!(!other.is_default_in(DEFAULT_NAMESPACE));
    }

    /// Scenario: a pipelines directory holding a TracePipeline, a Telemetry named `custom` and the
    /// `default` one; then the default one with a misspelled field.
    /// Guarantees: only `default` is read; a misspelled field is reported with its path.
    #[test]
    fn default_is_found_among_the_pipelines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata: {name: custom}\nspec: {enrichments: {cluster: {name: wrong}}}\n---\napiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: p}\nspec: {output: {otlp: {endpoint: {value: 'http://b:4317'}}}}\n",
        )
        .unwrap();
        assert!(default_in(dir.path()).unwrap().is_none());
        std::fs::write(
            dir.path().join("b.yaml"),
            "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata: {name: default}\nspec: {enrichments: {cluster: {name: prod}}}\n",
        )
        .unwrap();
        let found = default_in(dir.path()).unwrap().unwrap().unwrap();
        assert_eq!(found.settings().cluster_name.as_deref(), Some("prod"));
        std::fs::write(
            dir.path().join("b.yaml"),
            "apiVersion: operator.kyma-project.io/v1beta1\nkind: Telemetry\nmetadata: {name: default}\nspec: {enrichments: {extractPodLabel: []}}\n",
        )
        .unwrap();
        let broken = default_in(dir.path()).unwrap().unwrap().unwrap_err();
        assert_eq!(broken.field, "spec.enrichments.extractPodLabel");
        assert!(broken.message.contains("extractPodLabel"), "{}", broken.message);
    }
}
