//! The resolved configuration a gateway runs: every secret reference replaced by its value, every default
//! applied, every rule checked. A gateway never sees a `TracePipeline`, only this.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pipeline::{FilterSpec, TransformSpec};

/// One immutable, versioned configuration for the data plane.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases with every change; lets a gateway tell a newer snapshot from a replay.
    pub version: u64,
    /// Valid pipelines, sorted by name.
    pub pipelines: Vec<PipelineConfig>,
    /// How resources are enriched, when the control plane decides it; `None` leaves the gateway's
    /// own flags in force (local files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<EnrichmentSettings>,
}

/// Cluster-wide enrichment settings: Kyma takes them from its Telemetry resource and the cluster
/// itself. The control plane reads those once for all gateways, so a gateway needs no access beyond
/// its own node's pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentSettings {
    /// Rules for `service.*`.
    #[serde(default)]
    pub service_mode: ServiceMode,
    /// Pod labels copied as `k8s.pod.label.<key>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_labels: Vec<PodLabelRule>,
    /// `k8s.cluster.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// `k8s.cluster.uid`: the UID of namespace `kube-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uid: Option<String>,
    /// `cloud.provider`, from Gardener's `kube-system/shoot-info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<String>,
}

/// Kyma's two ways of resolving `service.*` (annotation `telemetry.kyma-project.io/service-enrichment`
/// on the Telemetry resource).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMode {
    /// Kyma's default in code.
    #[default]
    KymaLegacy,
    /// The OpenTelemetry conventions.
    Otel,
}

/// Which pod labels are copied: Kyma's `extractPodLabels` entry, `key` or `keyPrefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PodLabelRule {
    /// Exactly this key.
    Key(String),
    /// Every key starting with this prefix.
    KeyPrefix(String),
}

/// One valid TracePipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// The TracePipeline's name.
    pub name: String,
    /// The backend.
    pub output: OtlpOutputConfig,
    /// OTTL statement groups run on the pipeline's copy of each request, before `filter`; validated
    /// by [`crate::processing::compile`], which the data plane runs again to get the compiled form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform: Vec<TransformSpec>,
    /// OTTL condition groups; a span (resource, scope) matching one is dropped for this pipeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<FilterSpec>,
}

/// Wire protocol towards the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC, `TraceService/Export`.
    #[default]
    Grpc,
    /// OTLP/HTTP protobuf, `POST <url>`.
    Http,
}

/// Payload compression towards the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip, Kyma's default.
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// Snappy: one raw block over HTTP, the framing format over gRPC, as the Collector sends it.
    Snappy,
}

/// A resolved OTLP output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtlpOutputConfig {
    /// Protocol.
    pub protocol: Protocol,
    /// Absolute URL. gRPC: `scheme://host:port` (the scheme says whether TLS is used); HTTP: the full
    /// request URL including `/v1/traces` or the configured path.
    pub url: String,
    /// Compression.
    pub compression: Compression,
    /// Request headers in order, `Authorization` from basic auth included.
    pub headers: Vec<(String, Sensitive)>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// OAuth2 client credentials: every request carries a token from this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
}

/// Resolved OAuth2 client-credentials settings, as Kyma hands them to the Collector's
/// `oauth2client` extension (which applies its defaults for everything else).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: Sensitive,
    /// The client secret.
    pub client_secret: Sensitive,
    /// Scopes to request, sent space-separated as `scope`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Extra form fields of the token request.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
}

/// Resolved TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// Plain text; true when the endpoint is `http://` or `tls.insecure` is set.
    pub insecure: bool,
    /// Skip server certificate verification.
    pub insecure_skip_verify: bool,
    /// CA bundle, PEM.
    pub ca_pem: Option<String>,
    /// Client certificate, PEM.
    pub cert_pem: Option<String>,
    /// Client key, PEM.
    pub key_pem: Option<Sensitive>,
}

/// A secret value: serialised as is (a snapshot carries credentials), but never printed by `Debug` or
/// `Display`, so it cannot leak into a log line by accident.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

// === impl Sensitive ===

impl Sensitive {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// === impl ServiceMode ===

impl ServiceMode {
    /// Kyma's annotation value; anything else means `kyma-legacy`, as in Kyma.
    pub fn from_annotation(value: Option<&str>) -> Self {
        match value {
            Some("otel") => Self::Otel,
            _ => Self::KymaLegacy,
        }
    }
}

/// `cloud.provider` from the `provider` key of Gardener's `shoot-info` ConfigMap; Kyma reports
/// OpenStack clusters as `sap`.
pub fn cloud_provider_from_shoot_info(provider: &str) -> Option<String> {
    match provider.trim() {
        "" => None,
        "openstack" => Some("sap".to_string()),
        other => Some(other.to_string()),
    }
}

// === impl Compression ===

impl Compression {
    /// The `grpc-encoding` / `Content-Encoding` token, if any.
    pub fn encoding(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
            Self::Snappy => Some("snappy"),
        }
    }
}

// === impl Protocol ===

impl Protocol {
    /// The exporter id prefix the OpenTelemetry Collector uses, kept so dashboards keep working.
    pub fn exporter_kind(self) -> &'static str {
        match self {
            Self::Grpc => "otlp_grpc",
            Self::Http => "otlp_http",
        }
    }
}

// === impl PipelineConfig ===

impl PipelineConfig {
    /// `otlp_grpc/tracepipeline-<name>`: the `exporter` label value of the Collector's metrics.
    pub fn exporter_id(&self) -> String {
        format!("{}/tracepipeline-{}", self.output.protocol.exporter_kind(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a header value and a client key are formatted for a log line.
    /// Guarantees: neither value appears; serialisation still carries them.
    #[test]
    fn sensitive_values_never_print() {
        let tls = TlsConfig { key_pem: Some(Sensitive::new("PRIVATE")), ..Default::default() };
        let header = ("Authorization".to_string(), Sensitive::new("Basic c2VjcmV0"));
        let printed = format!("{tls:?} {header:?} {}", header.1);
        assert!(!printed.contains("PRIVATE") && !printed.contains("c2VjcmV0"), "{printed}");
        assert!(serde_json::to_string(&tls).unwrap().contains("PRIVATE"));
    }
}
