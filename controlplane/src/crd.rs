//! The `TracePipeline` custom resource, with Kyma's schema: group `telemetry.kyma-project.io`,
//! cluster-scoped, `v1beta1` stored and `v1alpha1` still served (deprecated), the same printer columns,
//! categories, CEL rules and status, so Kyma's manifests and `kubectl get tracepipelines` work
//! unchanged.
//!
//! The spec's schema is derived (kube-rs + schemars) from the contract crate's types, which the control
//! plane and the data plane both resolve; [`crd`] adds `v1alpha1`, whose schema differs from
//! `v1beta1` only in a few CEL rules and the missing `compression` field. Kyma's defaulting webhook
//! (`protocol: grpc`) becomes a schema default, so no webhook has to run. Both versions share one
//! storage representation and the API server converts between them by changing `apiVersion` only,
//! as Kyma registers no conversion webhook for TracePipelines either.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracegw_contract::pipeline::{
    API_VERSION_V1BETA1, FilterSpec, ObjectMeta, TracePipelineOutput, TransformSpec,
};

/// A pipeline that sends the cluster's spans to one OTLP backend.
// Each printer column repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "telemetry.kyma-project.io",
    version = "v1beta1",
    kind = "TracePipeline",
    status = "TracePipelineStatus",
    category = "kyma-telemetry",
    category = "kyma-telemetry-pipelines",
    printcolumn(
        name = "Configuration Generated",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"ConfigurationGenerated\")].status"
    ),
    printcolumn(
        name = "Gateway Healthy",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"GatewayHealthy\")].status"
    ),
    printcolumn(
        name = "Flow Healthy",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    label("app.kubernetes.io/name", "telemetry-manager"),
    label("app.kubernetes.io/part-of", "telemetry"),
    doc = "A pipeline that sends the cluster's spans to one OTLP backend"
)]
#[serde(rename_all = "camelCase")]
pub struct TracePipelineSpec {
    /// Where the spans go.
    pub output: TracePipelineOutput,
    /// OTTL statements that change spans, run before `filter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform: Vec<TransformSpec>,
    /// OTTL conditions; spans matching any of them are dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<FilterSpec>,
}

/// What the control plane observed about the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracePipelineStatus {
    /// `ConfigurationGenerated`, `GatewayHealthy` and `TelemetryFlowHealthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A status condition, shaped as Kubernetes' `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When `status` last changed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// What is going on, for people.
    #[schemars(length(max = 32768))]
    pub message: String,
    /// The generation of the object this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "i64", extend("minimum" = 0))]
    pub observed_generation: Option<i64>,
    /// Why, as one CamelCase word for programs.
    #[schemars(length(min = 1, max = 1024), pattern(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"))]
    pub reason: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// The aspect this condition describes.
    #[serde(rename = "type")]
    #[schemars(
        length(max = 316),
        pattern(
            r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        )
    )]
    pub type_: String,
}

/// Why the v1alpha1 schema cannot be derived.
#[derive(Debug, thiserror::Error)]
#[error("cannot derive the CRD: {0}")]
pub struct CrdError(pub(crate) String);

/// The deprecation notice `kubectl` prints for v1alpha1.
pub const V1ALPHA1_DEPRECATION: &str = "telemetry.kyma-project.io/v1alpha1 TracePipeline is deprecated; use telemetry.kyma-project.io/v1beta1, which reads the same fields";

const ONLY_ONE_V1BETA1: &str = "!(has(self.value) && has(self.valueFrom))";
const ONLY_ONE_V1ALPHA1: &str = "!(has(self.value) && size(self.value) > 0 && has(self.valueFrom))";

// === impl TracePipeline ===

impl TracePipeline {
    /// The object as the contract crate resolves it.
    pub fn to_contract(&self) -> tracegw_contract::pipeline::TracePipeline {
        tracegw_contract::pipeline::TracePipeline {
            api_version: API_VERSION_V1BETA1.to_string(),
            kind: "TracePipeline".to_string(),
            metadata: ObjectMeta {
                name: self.metadata.name.clone().unwrap_or_default(),
                namespace: None,
                generation: self.metadata.generation,
                creation_timestamp: self.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
            },
            spec: tracegw_contract::pipeline::TracePipelineSpec {
                output: self.spec.output.clone(),
                transform: self.spec.transform.clone(),
                filter: self.spec.filter.clone(),
            },
        }
    }
}

// === free functions ===

/// The complete CRD: `v1alpha1` (served, deprecated) and `v1beta1` (served, stored).
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = TracePipeline::crd();
    crd.spec.names.list_kind = Some("TracePipelineList".into());
    let mut beta = crd.spec.versions.first().cloned().ok_or_else(|| CrdError("no version derived".into()))?;
    if let Some(root) = beta.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
        // kube-rs marks `spec` required and `status` nullable and titles the root; Kyma's schema does
        // none of that. Objects that lack a spec still reach the reconciler, which reports them.
        root.required = None;
        root.title = None;
        if let Some(status) = root.properties.as_mut().and_then(|p| p.get_mut("status")) {
            status.nullable = None;
        }
    }
    let schema = beta
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or_else(|| CrdError("v1beta1 has no schema".into()))?;
    let mut alpha_schema = serde_json::to_value(schema).map_err(|e| CrdError(e.to_string()))?;
    v1alpha1_rules(&mut alpha_schema)?;
    let alpha_schema: JSONSchemaProps =
        serde_json::from_value(alpha_schema).map_err(|e| CrdError(e.to_string()))?;
    let mut alpha = CustomResourceDefinitionVersion {
        name: "v1alpha1".into(),
        storage: false,
        deprecated: Some(true),
        deprecation_warning: Some(V1ALPHA1_DEPRECATION.into()),
        ..beta.clone()
    };
    if let Some(s) = alpha.schema.as_mut() {
        s.open_api_v3_schema = Some(alpha_schema);
    }
    crd.spec.versions = vec![alpha, beta];
    Ok(crd)
}

/// Rewrites a copy of the v1beta1 schema into v1alpha1's: no `compression`; the older form of the
/// value/valueFrom rule; no object-level "must have a value" rules for endpoint, basic auth and
/// headers; OAuth2's presence checks on each field instead of on the object.
fn v1alpha1_rules(schema: &mut Value) -> Result<(), CrdError> {
    let otlp = schema
        .pointer_mut("/properties/spec/properties/output/properties/otlp")
        .ok_or_else(|| CrdError("no spec.output.otlp".into()))?;
    if let Some(props) = otlp.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("compression");
    }
    retain_rules(otlp, |rule| !rule.contains("self.endpoint"));
    for path in
        ["/properties/authentication/properties/basic", "/properties/authentication/properties/oauth2"]
    {
        if let Some(node) = otlp.pointer_mut(path).and_then(Value::as_object_mut) {
            node.remove("x-kubernetes-validations");
        }
    }
    if let Some(headers) = otlp.pointer_mut("/properties/headers/items") {
        retain_rules(headers, |rule| rule != "has(self.value) || has(self.valueFrom)");
    }
    rewrite_only_one(otlp);
    for (field, label) in [
        ("clientID", "'clientID' missing"),
        ("clientSecret", "'clientSecret' missing"),
        ("tokenURL", "'tokenURL' missing"),
    ] {
        let path = format!(
            "/properties/authentication/properties/oauth2/properties/{field}/x-kubernetes-validations"
        );
        if let Some(rules) = otlp.pointer_mut(&path).and_then(Value::as_array_mut) {
            rules
                .insert(0, json!({"message": label, "rule": "(self.value != '' ) || (has(self.valueFrom))"}));
        }
    }
    Ok(())
}

fn retain_rules(node: &mut Value, keep: impl Fn(&str) -> bool) {
    if let Some(rules) = node.get_mut("x-kubernetes-validations").and_then(Value::as_array_mut) {
        rules.retain(|r| r.get("rule").and_then(Value::as_str).is_some_and(&keep));
    }
}

fn rewrite_only_one(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get_mut("x-kubernetes-validations") {
                for rule in rules.iter_mut() {
                    if rule.get("rule").and_then(Value::as_str) == Some(ONLY_ONE_V1BETA1) {
                        rule["rule"] = Value::String(ONLY_ONE_V1ALPHA1.into());
                    }
                }
            }
            map.values_mut().for_each(rewrite_only_one);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_only_one),
        _ => {}
    }
}

/// Where `crdgen` writes the CRD, relative to the workspace root.
pub const CRD_PATH: &str = "deploy/crds/telemetry.kyma-project.io_tracepipelines.yaml";

/// The CRD as the YAML `crdgen` writes to [`CRD_PATH`].
pub fn crd_yaml() -> Result<String, CrdError> {
    let crd = crd()?;
    let yaml = serde_yaml_ng::to_string(&crd).map_err(|e| CrdError(e.to_string()))?;
    Ok(format!("# Generated by `cargo run -p telemetry-manager --bin crdgen`; do not edit.\n---\n{yaml}"))
}
