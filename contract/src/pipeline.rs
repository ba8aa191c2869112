//! Kyma's `TracePipeline` (`telemetry.kyma-project.io`, v1beta1 and v1alpha1) and the core `v1` `Secret`,
//! as plain serde types. Field names follow the Kubernetes JSON exactly, so Kyma's manifests parse
//! unchanged; unknown fields inside `spec` are rejected so that a typo is reported instead of ignored.
//!
//! With the `schema` feature the spec types also derive their OpenAPI schema (schemars), carrying
//! Kyma's v1beta1 CEL rules (`x-kubernetes-validations`), enums, required fields and the `protocol`
//! default that Kyma's defaulting webhook applies. The control plane builds the CRD from it. Optional
//! fields are given their inner type's schema (`with = ...`) so the CRD stays free of `nullable`, as
//! Kyma's is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// API group of the pipeline resources.
pub const GROUP: &str = "telemetry.kyma-project.io";
/// The stored API version.
pub const API_VERSION_V1BETA1: &str = "telemetry.kyma-project.io/v1beta1";
/// The deprecated, still-served API version.
pub const API_VERSION_V1ALPHA1: &str = "telemetry.kyma-project.io/v1alpha1";

/// The subset of `metadata` the gateway uses. Everything else is accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Namespace; Secrets default to `default` when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Generation of the spec, when the object came from an API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Creation time (RFC 3339), used to order pipelines deterministically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
}

/// A `TracePipeline` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracePipeline {
    /// `telemetry.kyma-project.io/v1beta1` or `/v1alpha1`.
    pub api_version: String,
    /// Always `TracePipeline`.
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: TracePipelineSpec,
}

/// `spec` of a TracePipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["output"], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracePipelineSpec {
    /// Where the spans go. Required.
    pub output: TracePipelineOutput,
    /// OTTL transform statements, applied before `filter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform: Vec<TransformSpec>,
    /// OTTL filter conditions; a match drops the span.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<FilterSpec>,
}

/// The backend the pipeline sends spans to; exactly one output per pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["otlp"], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracePipelineOutput {
    /// An OTLP backend, reached over gRPC or HTTP.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "OtlpOutput"))]
    pub otlp: Option<OtlpOutput>,
}

/// An OTLP backend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["endpoint"], defaults: &[("protocol", "grpc")] }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "Path is only available with HTTP protocol",
     "rule": "(has(self.path) && size(self.path) > 0) ? self.protocol == 'http' : true"},
    {"message": "OAuth2 authentication requires TLS when using gRPC protocol",
     "rule": "(has(self.authentication) && has(self.authentication.oauth2) && self.protocol == 'grpc' && has(self.tls)) ? !(has(self.tls.insecure) && self.tls.insecure == true) : true"},
    {"message": "'endpoint' must have 'value' or 'valueFrom' set",
     "rule": "has(self.endpoint.value) || has(self.endpoint.valueFrom)"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtlpOutput {
    /// The OTLP transport: `grpc` (the default) or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("enum" = ["grpc", "http"])))]
    pub protocol: Option<String>,
    /// The backend: `host:port` for gRPC, a URL for HTTP (`https://` unless `http://` is written).
    #[serde(default)]
    pub endpoint: ValueType,
    /// HTTP only: the request path, used instead of the `/v1/traces` otherwise appended to the
    /// endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub path: Option<String>,
    /// How the gateway authenticates to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "AuthenticationOptions"))]
    pub authentication: Option<AuthenticationOptions>,
    /// Extra headers sent with every export request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// TLS towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "OutputTls"))]
    pub tls: Option<OutputTls>,
    /// Payload compression: `gzip` (the default when unset), `zstd`, `snappy` or `none`. v1beta1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("enum" = ["none", "gzip", "snappy", "zstd"])))]
    pub compression: Option<String>,
}

/// A value written inline or read from a key of a Secret; Kyma's `ValueType`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [ONLY_ONE_VALUE_RULE])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueType {
    /// The value itself, in plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub value: Option<String>,
    /// Where to read the value from instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ValueFromSource"))]
    pub value_from: Option<ValueFromSource>,
}

/// The source of a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["secretKeyRef"], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFromSource {
    /// A key of a Secret, named with its namespace (TracePipelines are cluster-scoped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "SecretKeyRef"))]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// One key of one Secret: the Secret is named with its namespace, since pipelines are cluster-scoped.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["key", "name", "namespace"], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// Namespace of the Secret.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub namespace: String,
    /// The key in the Secret's data that holds the value.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub key: String,
}

/// Credentials for the backend: basic or OAuth2, not both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "Only one authentication method can be specified",
     "rule": "!(has(self.basic) && has(self.oauth2))"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationOptions {
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "BasicAuthOptions"))]
    pub basic: Option<BasicAuthOptions>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "OAuth2Options"))]
    pub oauth2: Option<OAuth2Options>,
}

/// HTTP basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["password", "user"], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "'user' must have 'value' or 'valueFrom' set",
     "rule": "has(self.user.value) || has(self.user.valueFrom)"},
    {"message": "'password' must have 'value' or 'valueFrom' set",
     "rule": "has(self.password.value) || has(self.password.valueFrom)"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthOptions {
    /// The user name.
    #[serde(default)]
    pub user: ValueType,
    /// The password.
    #[serde(default)]
    pub password: ValueType,
}

/// OAuth2 client-credentials authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["clientID", "clientSecret", "tokenURL"], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "'tokenURL' must have 'value' or 'valueFrom' set",
     "rule": "has(self.tokenURL.value) || has(self.tokenURL.valueFrom)"},
    {"message": "'clientID' must have 'value' or 'valueFrom' set",
     "rule": "has(self.clientID.value) || has(self.clientID.valueFrom)"},
    {"message": "'clientSecret' must have 'value' or 'valueFrom' set",
     "rule": "has(self.clientSecret.value) || has(self.clientSecret.valueFrom)"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Options {
    // Kyma's user guide spells it `tokenUrl`; that spelling is read too.
    /// The token endpoint.
    #[serde(default, rename = "tokenURL", alias = "tokenUrl")]
    #[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
        {"message": "'tokenURL' must be a valid URL", "rule": "has(self.value) ? isURL(self.value) : true"},
        ONLY_ONE_VALUE_RULE,
    ])))]
    pub token_url: ValueType,
    // Kyma's user guide spells it `clientId`; that spelling is read too.
    /// The client id.
    #[serde(default, rename = "clientID", alias = "clientId")]
    pub client_id: ValueType,
    /// The client secret.
    #[serde(default)]
    pub client_secret: ValueType,
    /// Scopes to request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Extra parameters for the token request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// A header sent with every export request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &["name"], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "Header must have 'value' or 'valueFrom' set", "rule": "has(self.value) || has(self.valueFrom)"},
    ONLY_ONE_VALUE_RULE,
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// The header name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// Written before the value, separated by one space (e.g. `Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub prefix: Option<String>,
    /// The value in plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub value: Option<String>,
    /// Where to read the value from instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ValueFromSource"))]
    pub value_from: Option<ValueFromSource>,
}

/// TLS towards the backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {"message": "Can define either both 'cert' and 'key', or neither", "rule": "has(self.cert) == has(self.key)"},
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputTls {
    /// Send in plain text, without TLS.
    #[serde(default)]
    pub insecure: bool,
    /// Use TLS but do not verify the backend's certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The CA bundle (PEM) that verifies the backend's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ValueType"))]
    pub ca: Option<ValueType>,
    /// The client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ValueType"))]
    pub cert: Option<ValueType>,
    /// The client key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ValueType"))]
    pub key: Option<ValueType>,
}

/// OTTL statements that change spans, run before `filter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformSpec {
    /// OTTL conditions, any of which selects the spans the statements apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// OTTL statements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
}

/// OTTL conditions that drop spans.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::Object { required: &[], ..Default::default() }))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterSpec {
    /// OTTL conditions; a span matching any of them is dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

/// One `x-kubernetes-validations` entry.
#[cfg(feature = "schema")]
#[derive(Serialize)]
struct CelRule {
    message: &'static str,
    rule: &'static str,
}

/// The CEL rule every `ValueType` carries in v1beta1.
#[cfg(feature = "schema")]
const ONLY_ONE_VALUE_RULE: CelRule = CelRule {
    message: "Only one of 'value' or 'valueFrom' can be set",
    rule: "!(has(self.value) && has(self.valueFrom))",
};

/// A core `v1` `Secret`: `data` is base64, `stringData` is plain and wins on conflicts, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Base64-encoded values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Plain values.
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

// === impl TracePipelineSpec ===

impl TracePipelineSpec {
    /// Every Secret key the pipeline reads, in spec order, duplicates removed.
    pub fn secret_refs(&self) -> Vec<SecretKeyRef> {
        let mut refs: Vec<SecretKeyRef> = Vec::new();
        let mut add = |v: Option<&ValueFromSource>| {
            if let Some(r) = v.and_then(|f| f.secret_key_ref.as_ref())
                && !refs.contains(r)
            {
                refs.push(r.clone());
            }
        };
        let Some(otlp) = &self.output.otlp else { return refs };
        add(otlp.endpoint.value_from.as_ref());
        if let Some(auth) = &otlp.authentication {
            if let Some(b) = &auth.basic {
                add(b.user.value_from.as_ref());
                add(b.password.value_from.as_ref());
            }
            if let Some(o) = &auth.oauth2 {
                for v in [&o.token_url, &o.client_id, &o.client_secret] {
                    add(v.value_from.as_ref());
                }
            }
        }
        for h in &otlp.headers {
            add(h.value_from.as_ref());
        }
        if let Some(tls) = &otlp.tls {
            for v in [&tls.ca, &tls.cert, &tls.key].into_iter().flatten() {
                add(v.value_from.as_ref());
            }
        }
        refs
    }
}

// === impl ValueType ===

impl ValueType {
    /// An inline value.
    pub fn inline(value: impl Into<String>) -> Self {
        Self { value: Some(value.into()), value_from: None }
    }
}

// === impl Secret ===

impl Secret {
    /// The namespace, with Kubernetes' default.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }
}
