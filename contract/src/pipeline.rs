//! Kyma's `TracePipeline` (`telemetry.kyma-project.io`, v1beta1 and v1alpha1) and the core `v1` `Secret`,
//! as plain serde types. Field names follow the Kubernetes JSON exactly, so Kyma's manifests parse
//! unchanged; unknown fields inside `spec` are rejected so that a typo is reported instead of ignored.

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

/// `spec.output`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracePipelineOutput {
    /// The OTLP backend. Required by the schema.
    #[serde(default)]
    pub otlp: Option<OtlpOutput>,
}

/// `spec.output.otlp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtlpOutput {
    /// `grpc` (the default) or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `host:port` or a URL.
    #[serde(default)]
    pub endpoint: ValueType,
    /// HTTP only: replaces the `/v1/traces` that is otherwise appended to the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Basic or OAuth2 authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationOptions>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// TLS settings towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<OutputTls>,
    /// `none`, `gzip` (the default when empty), `snappy` or `zstd`. v1beta1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
}

/// A value given inline or taken from a Secret key; Kyma's `ValueType`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueType {
    /// Inline value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Reference to a Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFromSource>,
}

/// `valueFrom`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFromSource {
    /// Required by the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// `valueFrom.secretKeyRef`: the Secret is named with its namespace, since pipelines are cluster-scoped.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Secret namespace.
    #[serde(default)]
    pub namespace: String,
    /// Key inside the Secret's data.
    #[serde(default)]
    pub key: String,
}

/// `authentication`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationOptions {
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuthOptions>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Options>,
}

/// `authentication.basic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthOptions {
    /// User name.
    #[serde(default)]
    pub user: ValueType,
    /// Password.
    #[serde(default)]
    pub password: ValueType,
}

/// `authentication.oauth2`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Options {
    /// Token endpoint URL.
    #[serde(default, rename = "tokenURL")]
    pub token_url: ValueType,
    /// Client id.
    #[serde(default, rename = "clientID")]
    pub client_id: ValueType,
    /// Client secret.
    #[serde(default)]
    pub client_secret: ValueType,
    /// Requested scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Extra token request parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// One entry of `headers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// Joined to the value with one space, e.g. `Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Inline value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFromSource>,
}

/// `tls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputTls {
    /// Plain-text connection.
    #[serde(default)]
    pub insecure: bool,
    /// TLS without verifying the server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// CA bundle (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<ValueType>,
    /// Client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<ValueType>,
    /// Client key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ValueType>,
}

/// One entry of `transform`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformSpec {
    /// OTTL conditions, ORed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// OTTL statements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
}

/// One entry of `filter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterSpec {
    /// OTTL conditions, ORed; a match drops the span.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

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
