//! Turns TracePipelines plus the Secrets they reference into a [`Snapshot`], checking Kyma's rules in
//! Kyma's order: the schema and its CEL rules (which Kyma enforces at admission), referenced Secrets and
//! keys, the endpoint, the TLS material, features this gateway does not run, and last the pipeline
//! limit, so that only pipelines that could run take one of the slots. Every rejected pipeline gets a
//! [`PipelineError`] naming the field at fault; the valid pipelines still make it into the snapshot.
//!
//! The outcome depends on the clock only through certificate expiry, so `now` is an input and the
//! whole function is pure: the control plane and the data plane reach the same verdict on the same
//! objects.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine as _;

use crate::pipeline::{
    API_VERSION_V1ALPHA1, API_VERSION_V1BETA1, Header, OAuth2Options, OtlpOutput, OutputTls, Secret,
    SecretKeyRef, TracePipeline, ValueType,
};
use crate::snapshot::{
    Compression, OAuth2Config, OtlpOutputConfig, PipelineConfig, Protocol, Sensitive, Snapshot, TlsConfig,
};
use crate::tls::{self, ABOUT_TO_EXPIRE_WINDOW, CertExpiry, TlsMaterial, TlsProblem};

/// One pipeline's configuration and what it tells about its certificates, or why it cannot run.
type Resolved = Result<(PipelineConfig, Generated), PipelineError>;

/// Kyma's limit on TracePipelines per cluster.
pub const DEFAULT_MAX_PIPELINES: usize = 5;

/// Why a pipeline is not part of the snapshot. The names are the condition reasons Kyma reports in
/// `ConfigurationGenerated`, plus two for what Kyma's API server would refuse and what we do not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The object violates the CRD schema or one of its CEL rules.
    SpecInvalid,
    /// A referenced Secret or key does not exist.
    ReferencedSecretMissing,
    /// The endpoint does not follow the protocol's rules.
    EndpointInvalid,
    /// A header value (inline or from a Secret) cannot be sent in HTTP: it holds a line break or
    /// another control character. Kyma has no reason for it (the Collector fails every export); the
    /// message names the header, never its value.
    HeaderInvalid,
    /// TLS material does not parse or does not match.
    TlsConfigurationInvalid,
    /// A certificate has expired.
    TlsCertificateExpired,
    /// A feature of the schema this gateway does not implement yet.
    Unsupported,
    /// A `transform` or `filter` OTTL statement or condition does not parse or bind.
    OttlSpecInvalid,
    /// More pipelines than allowed; the oldest win.
    MaxPipelinesExceeded,
}

/// What to resolve against besides the objects themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Stamped on the snapshot.
    pub version: u64,
    /// The current time in Unix seconds, for certificate expiry.
    pub now: i64,
    /// At most this many pipelines run, the oldest first; `None` is unlimited.
    pub max_pipelines: Option<usize>,
}

/// A pipeline that made it into the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    /// Its certificate that expires first, if it has any.
    pub cert_expiry: Option<CertExpiry>,
}

/// A pipeline that cannot run, with the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PipelineError {
    /// Condition reason.
    pub reason: Reason,
    /// JSON path of the field at fault, e.g. `spec.output.otlp.endpoint`.
    pub field: String,
    /// Human-readable explanation; never contains a secret value.
    pub message: String,
}

/// Outcome for one pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineStatus {
    /// Pipeline name.
    pub name: String,
    /// `Ok` when the pipeline is in the snapshot.
    pub result: Result<Generated, PipelineError>,
}

/// A snapshot and the verdict on every pipeline that was considered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The valid pipelines.
    pub snapshot: Snapshot,
    /// One entry per pipeline, sorted by name.
    pub statuses: Vec<PipelineStatus>,
    /// The earliest time (Unix seconds) at which a certificate starts to be about to expire, or
    /// expires: resolve again then, even if nothing else changed.
    pub next_check: Option<i64>,
}

/// Secrets indexed by namespace and name, values decoded.
#[derive(Clone, Debug, Default)]
pub struct SecretStore {
    secrets: HashMap<(String, String), BTreeMap<String, Result<String, String>>>,
}

/// Collects the first problem found while walking a pipeline, in Kyma's precedence order.
struct Checker<'a> {
    secrets: &'a SecretStore,
    schema: Vec<PipelineError>,
    missing: Vec<PipelineError>,
    /// Header values that cannot be sent, reported after the endpoint (Kyma has no such check).
    headers: Vec<PipelineError>,
}

const GRPC: &str = "grpc";
const HTTP: &str = "http";
const DEFAULT_TRACES_PATH: &str = "/v1/traces";
/// Stands in for a missing scheme so that `host:port` parses as an authority, as Kyma does.
const PLACEHOLDER_SCHEME: &str = "placeholder";

// === impl Reason ===

impl Reason {
    /// The reason string written to the `ConfigurationGenerated` condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpecInvalid => "SpecInvalid",
            Self::ReferencedSecretMissing => "ReferencedSecretMissing",
            Self::EndpointInvalid => "EndpointInvalid",
            Self::HeaderInvalid => "HeaderInvalid",
            Self::TlsConfigurationInvalid => "TLSConfigurationInvalid",
            Self::TlsCertificateExpired => "TLSCertificateExpired",
            Self::Unsupported => "UnsupportedFeature",
            Self::OttlSpecInvalid => "OTTLSpecInvalid",
            Self::MaxPipelinesExceeded => "MaxPipelinesExceeded",
        }
    }
}

// === impl ResolveOptions ===

impl ResolveOptions {
    /// Version `version`, the system clock, and Kyma's limit.
    pub fn at_version(version: u64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self { version, now, max_pipelines: Some(DEFAULT_MAX_PIPELINES) }
    }
}

// === impl Generated ===

impl Generated {
    /// The expiry to warn about at `now`, if a certificate is about to expire.
    pub fn expiry_warning(&self, now: i64) -> Option<CertExpiry> {
        self.cert_expiry.filter(|e| e.about_to_expire(now))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl PipelineError ===

impl PipelineError {
    /// A new error.
    pub fn new(reason: Reason, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { reason, field: field.into(), message: message.into() }
    }

    /// The text for a status condition: the field is named where the user must find it (schema
    /// problems, unsupported features); Kyma's reasons carry self-explanatory messages.
    pub fn condition_message(&self) -> String {
        match self.reason {
            Reason::SpecInvalid | Reason::Unsupported => self.to_string(),
            _ => self.message.clone(),
        }
    }
}

// === impl SecretStore ===

impl SecretStore {
    /// Indexes Secrets; `stringData` wins over `data`, as the API server merges them.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut store = Self::default();
        for secret in secrets {
            let mut values = BTreeMap::new();
            for (key, encoded) in &secret.data {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    // The decoder's error quotes a byte of the value: not repeated.
                    .map_err(|_| "is not valid base64".to_string())
                    .and_then(|raw| String::from_utf8(raw).map_err(|_| "is not UTF-8 text".to_string()));
                values.insert(key.clone(), decoded);
            }
            for (key, plain) in &secret.string_data {
                values.insert(key.clone(), Ok(plain.clone()));
            }
            store.secrets.insert((secret.namespace().to_string(), secret.metadata.name.clone()), values);
        }
        store
    }

    /// Adds one Secret from raw values, as the API server returns them; values that are not UTF-8
    /// text are reported when referenced.
    pub fn insert_raw<'a>(
        &mut self,
        namespace: &str,
        name: &str,
        values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) {
        let values = values
            .into_iter()
            .map(|(k, v)| {
                let text =
                    std::str::from_utf8(v).map(str::to_string).map_err(|_| "is not UTF-8 text".to_string());
                (k.to_string(), text)
            })
            .collect();
        self.secrets.insert((namespace.to_string(), name.to_string()), values);
    }

    fn lookup(&self, r: &SecretKeyRef) -> Result<&str, (Reason, String)> {
        let Some(secret) = self.secrets.get(&(r.namespace.clone(), r.name.clone())) else {
            return Err((
                Reason::ReferencedSecretMissing,
                format!(
                    "One or more referenced Secrets are missing: Secret '{}' of Namespace '{}'",
                    r.name, r.namespace
                ),
            ));
        };
        match secret.get(&r.key) {
            None => Err((
                Reason::ReferencedSecretMissing,
                format!(
                    "One or more keys in a referenced Secret are missing: Key '{}' in Secret '{}' of Namespace '{}'",
                    r.key, r.name, r.namespace
                ),
            )),
            Some(Err(why)) => Err((
                Reason::ReferencedSecretMissing,
                format!("Key '{}' in Secret '{}' of Namespace '{}' {why}", r.key, r.name, r.namespace),
            )),
            Some(Ok(value)) => Ok(value),
        }
    }
}

// === impl Checker ===

impl<'a> Checker<'a> {
    fn schema_error(&mut self, field: &str, message: impl Into<String>) {
        self.schema.push(PipelineError::new(Reason::SpecInvalid, field, message));
    }

    /// Checks a ValueType's CEL rules and resolves it; `None` when it is unset or broken.
    fn value(&mut self, field: &str, v: &ValueType) -> Option<String> {
        self.value_parts(field, v.value.as_deref(), v.value_from.as_ref().map(|f| f.secret_key_ref.as_ref()))
    }

    fn value_parts(
        &mut self,
        field: &str,
        value: Option<&str>,
        value_from: Option<Option<&SecretKeyRef>>,
    ) -> Option<String> {
        match (value, value_from) {
            (Some(_), Some(_)) => {
                self.schema_error(field, "Only one of 'value' or 'valueFrom' can be set");
                None
            }
            (Some(v), None) => Some(v.to_string()),
            (None, Some(None)) => {
                self.schema_error(&format!("{field}.valueFrom"), "'secretKeyRef' is required");
                None
            }
            (None, Some(Some(r))) => {
                let mut empty = Vec::new();
                for (name, v) in [("name", &r.name), ("namespace", &r.namespace), ("key", &r.key)] {
                    if v.is_empty() {
                        empty.push(name);
                    }
                }
                if !empty.is_empty() {
                    self.schema_error(
                        &format!("{field}.valueFrom.secretKeyRef"),
                        format!("Secret reference is missing field/s: {}", empty.join(", ")),
                    );
                    return None;
                }
                match self.secrets.lookup(r) {
                    Ok(v) => Some(v.to_string()),
                    Err((reason, message)) => {
                        self.missing.push(PipelineError::new(reason, field, message));
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    fn header(&mut self, field: &str, h: &Header) -> Option<(String, Sensitive)> {
        if h.name.is_empty() {
            self.schema_error(&format!("{field}.name"), "Header name must not be empty");
        }
        if h.value.is_none() && h.value_from.is_none() {
            self.schema_error(field, "Header must have 'value' or 'valueFrom' set");
            return None;
        }
        if !h.name.is_empty() && http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            self.schema_error(
                &format!("{field}.name"),
                format!("Header name '{}' is not a valid HTTP header name", h.name.escape_debug()),
            );
        }
        let source = h.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref());
        let value = self.value_parts(field, h.value.as_deref(), h.value_from.as_ref().map(|_| source))?;
        // Kyma's `prefixHeaderValue`: the prefix trimmed, then one space, then the value as it is.
        let value = match h.prefix.as_deref().map(str::trim) {
            Some(prefix) if !prefix.is_empty() => format!("{prefix} {value}"),
            _ => value,
        };
        if let Some(problem) = header_value_problem(&value) {
            let origin = match source {
                Some(r) => format!("the value of {}", describe_key(r)),
                None => "its value".to_string(),
            };
            self.headers.push(PipelineError::new(
                Reason::HeaderInvalid,
                field,
                format!(
                    "Header '{}' invalid: {origin} (with its prefix) contains {problem}, which HTTP does not allow in a header value",
                    h.name.escape_debug()
                ),
            ));
            return None;
        }
        Some((h.name.clone(), Sensitive::new(value)))
    }

    fn first_error(&mut self) -> Option<PipelineError> {
        if !self.schema.is_empty() {
            return Some(self.schema.remove(0));
        }
        if !self.missing.is_empty() {
            return Some(self.missing.remove(0));
        }
        None
    }
}

// === free functions ===

/// Resolves every pipeline against the Secrets. A second pipeline with a name already seen is
/// rejected. When more pipelines could run than `options.max_pipelines` allows, the oldest win
/// (creation time, then name), so the outcome does not depend on the order of events.
pub fn resolve(pipelines: &[TracePipeline], secrets: &SecretStore, options: ResolveOptions) -> Resolution {
    let mut sorted: Vec<&TracePipeline> = pipelines.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut results: Vec<(&TracePipeline, Resolved)> = Vec::new();
    let mut previous: Option<&str> = None;
    for pipeline in sorted {
        let result = if previous == Some(pipeline.metadata.name.as_str()) {
            Err(PipelineError::new(
                Reason::SpecInvalid,
                "metadata.name",
                "a TracePipeline with this name already exists",
            ))
        } else {
            resolve_pipeline(pipeline, secrets, options.now)
        };
        previous = Some(pipeline.metadata.name.as_str());
        results.push((pipeline, result));
    }
    if let Some(max) = options.max_pipelines {
        let mut runnable: Vec<usize> = (0..results.len()).filter(|i| results[*i].1.is_ok()).collect();
        runnable.sort_by(|a, b| {
            let (pa, pb) = (results[*a].0, results[*b].0);
            let created = |p: &TracePipeline| p.metadata.creation_timestamp.clone().unwrap_or_default();
            created(pa).cmp(&created(pb)).then_with(|| pa.metadata.name.cmp(&pb.metadata.name))
        });
        for i in runnable.into_iter().skip(max) {
            results[i].1 = Err(PipelineError::new(
                Reason::MaxPipelinesExceeded,
                "metadata.creationTimestamp",
                format!("Maximum pipeline count limit exceeded: only the {max} oldest TracePipelines run"),
            ));
        }
    }
    // Kyma validates OTTL last, after the pipeline lock: an invalid spec keeps its slot.
    for (_, result) in &mut results {
        if let Ok((config, _)) = result
            && let Err(e) = crate::processing::compile(&config.transform, &config.filter)
        {
            *result = Err(e);
        }
    }
    let mut resolution = Resolution {
        snapshot: Snapshot { version: options.version, ..Snapshot::default() },
        ..Resolution::default()
    };
    for (pipeline, result) in results {
        let result = result.map(|(config, generated)| {
            resolution.snapshot.pipelines.push(config);
            if let Some(at) = generated.cert_expiry.and_then(|e| next_threshold(e, options.now)) {
                resolution.next_check = Some(resolution.next_check.map_or(at, |n| n.min(at)));
            }
            generated
        });
        resolution.statuses.push(PipelineStatus { name: pipeline.metadata.name.clone(), result });
    }
    resolution
}

/// When the status of a pipeline with this certificate changes next because time passes.
fn next_threshold(expiry: CertExpiry, now: i64) -> Option<i64> {
    let warn_from = expiry.not_after - ABOUT_TO_EXPIRE_WINDOW.as_secs() as i64;
    if now < warn_from {
        Some(warn_from)
    } else if now <= expiry.not_after {
        Some(expiry.not_after + 1)
    } else {
        None
    }
}

/// Resolves one pipeline at `now` (Unix seconds), or explains why it cannot run.
pub fn resolve_pipeline(
    pipeline: &TracePipeline,
    secrets: &SecretStore,
    now: i64,
) -> Result<(PipelineConfig, Generated), PipelineError> {
    let name = &pipeline.metadata.name;
    if name.is_empty() {
        return Err(PipelineError::new(Reason::SpecInvalid, "metadata.name", "name must not be empty"));
    }
    let v1alpha1 = match pipeline.api_version.as_str() {
        API_VERSION_V1BETA1 => false,
        API_VERSION_V1ALPHA1 => true,
        other => {
            return Err(PipelineError::new(
                Reason::SpecInvalid,
                "apiVersion",
                format!(
                    "unsupported apiVersion '{other}', expected {API_VERSION_V1BETA1} or {API_VERSION_V1ALPHA1}"
                ),
            ));
        }
    };
    let Some(otlp) = pipeline.spec.output.otlp.as_ref() else {
        return Err(PipelineError::new(Reason::SpecInvalid, "spec.output.otlp", "'otlp' output is required"));
    };
    let mut checker = Checker { secrets, schema: Vec::new(), missing: Vec::new(), headers: Vec::new() };
    let resolved = resolve_output(otlp, v1alpha1, &mut checker);
    if let Some(e) = checker.first_error() {
        return Err(e);
    }
    let output = resolved?;
    let cert_expiry = check_tls(&output.tls, now)?;
    // OTTL is checked after the pipeline limit (in `resolve`), as Kyma orders its validators.
    let config = PipelineConfig {
        name: name.clone(),
        output,
        transform: pipeline.spec.transform.clone(),
        filter: pipeline.spec.filter.clone(),
    };
    Ok((config, Generated { cert_expiry }))
}

fn check_tls(t: &TlsConfig, now: i64) -> Result<Option<CertExpiry>, PipelineError> {
    let material = TlsMaterial {
        ca: t.ca_pem.as_deref(),
        cert: t.cert_pem.as_deref(),
        key: t.key_pem.as_ref().map(Sensitive::expose),
    };
    if material.ca.is_none() && material.cert.is_none() && material.key.is_none() {
        return Ok(None);
    }
    tls::check(material, now).map_err(|problem| {
        let reason = match problem {
            TlsProblem::Invalid(_) => Reason::TlsConfigurationInvalid,
            TlsProblem::Expired(_) => Reason::TlsCertificateExpired,
        };
        PipelineError::new(reason, "spec.output.otlp.tls", problem.to_string())
    })
}

fn resolve_output(
    otlp: &OtlpOutput,
    v1alpha1: bool,
    c: &mut Checker<'_>,
) -> Result<OtlpOutputConfig, PipelineError> {
    const OTLP: &str = "spec.output.otlp";
    let protocol = match otlp.protocol.as_deref() {
        None | Some("") | Some(GRPC) => Protocol::Grpc,
        Some(HTTP) => Protocol::Http,
        Some(other) => {
            c.schema_error(
                &format!("{OTLP}.protocol"),
                format!("Unsupported value: \"{other}\": supported values: \"grpc\", \"http\""),
            );
            Protocol::Grpc
        }
    };
    let path = otlp.path.as_deref().filter(|p| !p.is_empty());
    if path.is_some() && protocol != Protocol::Http {
        c.schema_error(&format!("{OTLP}.path"), "Path is only available with HTTP protocol");
    }
    if otlp.endpoint.value.is_none() && otlp.endpoint.value_from.is_none() {
        c.schema_error(&format!("{OTLP}.endpoint"), "'endpoint' must have 'value' or 'valueFrom' set");
    }
    let endpoint = c.value(&format!("{OTLP}.endpoint"), &otlp.endpoint);

    let mut headers = Vec::new();
    let mut oauth2 = None;
    if let Some(auth) = &otlp.authentication {
        if auth.basic.is_some() && auth.oauth2.is_some() {
            c.schema_error(
                &format!("{OTLP}.authentication"),
                "Only one authentication method can be specified",
            );
        }
        if let Some(basic) = &auth.basic {
            let field = format!("{OTLP}.authentication.basic");
            for (what, v) in [("user", &basic.user), ("password", &basic.password)] {
                if v.value.is_none() && v.value_from.is_none() {
                    c.schema_error(
                        &format!("{field}.{what}"),
                        format!("'{what}' must have 'value' or 'valueFrom' set"),
                    );
                }
            }
            let user = c.value(&format!("{field}.user"), &basic.user);
            let password = c.value(&format!("{field}.password"), &basic.password);
            if let (Some(user), Some(password)) = (user, password) {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.push(("Authorization".to_string(), Sensitive::new(format!("Basic {token}"))));
            }
        }
        if let Some(o) = &auth.oauth2 {
            oauth2 = resolve_oauth2(o, protocol, otlp.tls.as_ref(), c);
        }
    }
    for (i, h) in otlp.headers.iter().enumerate() {
        if let Some(header) = c.header(&format!("{OTLP}.headers[{i}]"), h) {
            set_header(&mut headers, header);
        }
    }

    let mut tls = TlsConfig::default();
    if let Some(t) = &otlp.tls {
        let field = format!("{OTLP}.tls");
        if t.cert.is_some() != t.key.is_some() {
            c.schema_error(&field, "Can define either both 'cert' and 'key', or neither");
        }
        tls.insecure = t.insecure;
        tls.insecure_skip_verify = t.insecure_skip_verify;
        let mut pem = |what: &str, v: &Option<ValueType>| {
            v.as_ref().and_then(|v| c.value(&format!("{field}.{what}"), v)).map(|s| s.replace("\\n", "\n"))
        };
        tls.ca_pem = pem("ca", &t.ca);
        tls.cert_pem = pem("cert", &t.cert);
        tls.key_pem = pem("key", &t.key).map(Sensitive::new);
    }

    let compression = match otlp.compression.as_deref() {
        _ if v1alpha1 && otlp.compression.is_some() => {
            c.schema_error(&format!("{OTLP}.compression"), "unknown field \"compression\" in v1alpha1");
            Compression::Gzip
        }
        None | Some("") | Some("gzip") => Compression::Gzip,
        Some("none") => Compression::None,
        Some("zstd") => Compression::Zstd,
        Some("snappy") => Compression::Snappy,
        Some(other) => {
            c.schema_error(
                &format!("{OTLP}.compression"),
                format!("Unsupported value: \"{other}\": supported values: \"none\", \"gzip\", \"snappy\", \"zstd\""),
            );
            Compression::Gzip
        }
    };

    if let Some(e) = c.first_error() {
        return Err(e);
    }
    let Some(endpoint) = endpoint else {
        return Err(PipelineError::new(Reason::SpecInvalid, format!("{OTLP}.endpoint"), "endpoint is empty"));
    };
    let spec_tls = otlp.tls.as_ref();
    // A value from a Secret is never quoted: it is named by where it comes from.
    let shown = match otlp.endpoint.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
        Some(r) => Shown::Secret(format!("the value of {}", describe_key(r))),
        None => Shown::Inline,
    };
    let url = endpoint_url(protocol, endpoint.trim(), path, &mut tls, &shown)
        .and_then(|url| match &oauth2 {
            Some(_) => oauth2_endpoint_rule(protocol, endpoint.trim(), spec_tls).map(|()| url),
            None => Ok(url),
        })
        .map_err(|why| {
            PipelineError::new(
                Reason::EndpointInvalid,
                format!("{OTLP}.endpoint"),
                format!("OTLP output endpoint invalid: {why}"),
            )
        })?;
    if let Some(o) = &oauth2 {
        let source = otlp
            .authentication
            .as_ref()
            .and_then(|a| a.oauth2.as_ref())
            .and_then(|a| a.token_url.value_from.as_ref())
            .and_then(|f| f.secret_key_ref.as_ref());
        check_token_url(&o.token_url, source)?;
    }
    if !c.headers.is_empty() {
        return Err(c.headers.remove(0));
    }
    Ok(OtlpOutputConfig { protocol, url, compression, headers, tls, oauth2 })
}

/// How an endpoint is named in messages: quoted when it is written in the spec, by its Secret key
/// when it comes from a Secret.
enum Shown {
    Inline,
    Secret(String),
}

impl Shown {
    fn name(&self, raw: &str) -> String {
        match self {
            Self::Inline => format!("'{raw}'"),
            Self::Secret(described) => described.clone(),
        }
    }
}

/// `Key 'k' in Secret 'n' of Namespace 'ns'`, as Kyma names a key.
fn describe_key(r: &SecretKeyRef) -> String {
    format!("Key '{}' in Secret '{}' of Namespace '{}'", r.key, r.name, r.namespace)
}

/// What in a header value HTTP refuses (the gateway sends it with `http::HeaderValue`, as Go's
/// `httpguts.ValidHeaderFieldValue` checks it): `None` when it can be sent.
fn header_value_problem(value: &str) -> Option<String> {
    if http::HeaderValue::from_str(value).is_ok() {
        return None;
    }
    let bad = value.bytes().find(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f);
    Some(match bad {
        Some(b'\r' | b'\n') => "a line break (CR or LF)".to_string(),
        Some(b) => format!("the control character 0x{b:02X}"),
        None => "a character that is not allowed".to_string(),
    })
}

/// The OAuth2 token URL as the gateway requests it: an `http` or `https` URL with a host that
/// `http::Uri` accepts. Inline values were checked as URLs already (Kyma's CEL rule); a value from a
/// Secret is checked here and named by its key, not quoted.
fn check_token_url(token_url: &str, source: Option<&SecretKeyRef>) -> Result<(), PipelineError> {
    const FIELD: &str = "spec.output.otlp.authentication.oauth2.tokenURL";
    let shown = match source {
        Some(r) => format!("the value of {}", describe_key(r)),
        None => format!("'{token_url}'"),
    };
    let why = match url::Url::parse(token_url) {
        Err(e) => Some(format!("not a valid URL: {e}")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some("the scheme must be http or https".to_string())
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("missing host".to_string()),
        Ok(_) => http::Uri::try_from(token_url).err().map(|e| format!("not a valid HTTP URI: {e}")),
    };
    match why {
        None => Ok(()),
        Some(why) => Err(PipelineError::new(
            Reason::EndpointInvalid,
            FIELD,
            format!("OAuth2 token URL invalid: {shown} is {why}"),
        )),
    }
}

/// Kyma's `authentication.oauth2`: the CEL rules of `OAuth2Options` and of `OTLPOutput` (gRPC needs
/// TLS), then its three values; `None` when one is missing (the error is recorded in `c`).
fn resolve_oauth2(
    o: &OAuth2Options,
    protocol: Protocol,
    spec_tls: Option<&OutputTls>,
    c: &mut Checker<'_>,
) -> Option<OAuth2Config> {
    const FIELD: &str = "spec.output.otlp.authentication.oauth2";
    let mut complete = true;
    for (name, v) in
        [("tokenURL", &o.token_url), ("clientID", &o.client_id), ("clientSecret", &o.client_secret)]
    {
        if v.value.is_none() && v.value_from.is_none() {
            c.schema_error(FIELD, format!("'{name}' must have 'value' or 'valueFrom' set"));
            complete = false;
        }
    }
    if let Some(inline) = &o.token_url.value
        && url::Url::parse(inline).is_err()
    {
        c.schema_error(&format!("{FIELD}.tokenURL"), "'tokenURL' must be a valid URL");
    }
    if protocol == Protocol::Grpc && spec_tls.is_some_and(|t| t.insecure) {
        c.schema_error("spec.output.otlp", "OAuth2 authentication requires TLS when using gRPC protocol");
    }
    if !complete {
        return None;
    }
    let token_url = c.value(&format!("{FIELD}.tokenURL"), &o.token_url);
    let client_id = c.value(&format!("{FIELD}.clientID"), &o.client_id);
    let client_secret = c.value(&format!("{FIELD}.clientSecret"), &o.client_secret);
    Some(OAuth2Config {
        token_url: token_url?,
        client_id: Sensitive::new(client_id?),
        client_secret: Sensitive::new(client_secret?),
        scopes: o.scopes.clone(),
        params: o.params.clone(),
    })
}

/// Kyma's endpoint validator for OAuth2: gRPC needs TLS (neither `tls.insecure` nor `http://`), and
/// HTTP refuses an `http://` endpoint that also carries TLS material.
fn oauth2_endpoint_rule(protocol: Protocol, raw: &str, spec_tls: Option<&OutputTls>) -> Result<(), String> {
    let http_scheme = raw.split_once("://").is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("http"));
    match protocol {
        Protocol::Grpc if spec_tls.is_some_and(|t| t.insecure) => {
            Err("OAuth2 requires TLS when using gRPC protocol".into())
        }
        Protocol::Grpc if http_scheme => {
            Err("OAuth2 requires TLS when using gRPC protocol: HTTP scheme not allowed".into())
        }
        Protocol::Http
            if http_scheme
                && spec_tls.is_some_and(|t| {
                    !t.insecure && (t.ca.is_some() || t.cert.is_some() || t.key.is_some())
                }) =>
        {
            Err("HTTP scheme with TLS not allowed".into())
        }
        _ => Ok(()),
    }
}

/// Applies Kyma's endpoint rules and returns the URL the exporter uses. Sets `tls.insecure` for an
/// `http://` endpoint, as Kyma's config builder does.
fn endpoint_url(
    protocol: Protocol,
    raw: &str,
    path: Option<&str>,
    tls: &mut TlsConfig,
    shown: &Shown,
) -> Result<String, String> {
    let url = endpoint_url_unchecked(protocol, raw, path, tls, shown)?;
    // The URI the gateway sends to must parse as `http::Uri` does (no spaces, control characters or
    // other bytes URIs forbid).
    match http::Uri::try_from(url.as_str()) {
        Ok(_) => Ok(url),
        Err(e) => Err(format!("{} is not a valid HTTP URI: {e}", shown.name(raw))),
    }
}

fn endpoint_url_unchecked(
    protocol: Protocol,
    raw: &str,
    path: Option<&str>,
    tls: &mut TlsConfig,
    shown: &Shown,
) -> Result<String, String> {
    if raw.is_empty() {
        return Err("endpoint is empty".into());
    }
    if let Some(written) = malformed_scheme(raw) {
        // Kyma reads `http//host:4317` as host `http` and reports "missing port".
        let written = match shown {
            Shown::Inline => format!(" '{written}'"),
            Shown::Secret(_) => String::new(),
        };
        return Err(format!(
            "malformed scheme{written} in {}: write 'http://' or 'https://' (or no scheme: host:port)",
            shown.name(raw)
        ));
    }
    let has_scheme = raw.contains("://");
    let parsed = if has_scheme {
        url::Url::parse(raw)
    } else {
        url::Url::parse(&format!("{PLACEHOLDER_SCHEME}://{raw}"))
    }
    .map_err(|e| format!("failed to parse {} as a URL: {e}", shown.name(raw)))?;
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or("missing host")?;
    let port = explicit_port(raw);
    let scheme = if has_scheme { Some(parsed.scheme()) } else { None };
    if scheme == Some("http") {
        tls.insecure = true;
    }
    match protocol {
        Protocol::Grpc => {
            let port = port.ok_or("missing port")?;
            if !matches!(parsed.path(), "" | "/") {
                return Err("gRPC endpoints cannot contain paths".into());
            }
            if !matches!(scheme, None | Some("http") | Some("https")) {
                return Err("missing or unsupported protocol scheme".into());
            }
            let scheme = if tls.insecure { "http" } else { "https" };
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            Ok(format!("{scheme}://{host}:{port}"))
        }
        Protocol::Http => {
            if !matches!(scheme, Some("http") | Some("https")) {
                return Err("missing or unsupported protocol scheme".into());
            }
            match path {
                Some(p) => Ok(custom_path_url(parsed, p)),
                None => {
                    let url = default_traces_url(raw);
                    url::Url::parse(&url)
                        .map_err(|e| format!("failed to parse {} as a URL: {e}", shown.name(&url)))?;
                    Ok(url)
                }
            }
        }
    }
}

/// The scheme as written when it is `http` or `https` with a broken separator (`http//`, `https:/`,
/// `http:host`... but not `http:4317`, which is host `http` and a port).
fn malformed_scheme(raw: &str) -> Option<&str> {
    if raw.contains("://") {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let scheme = ["https", "http"].into_iter().find(|s| lower.starts_with(s))?;
    let rest = &raw[scheme.len()..];
    let separator_len = rest.len() - rest.trim_start_matches([':', '/']).len();
    let separator = &rest[..separator_len];
    let port_follows = separator == ":" && rest[1..].starts_with(|c: char| c.is_ascii_digit());
    if separator.is_empty() || port_follows {
        return None;
    }
    Some(&raw[..scheme.len() + separator_len])
}

/// Adds a header as Kyma's config builder does, into a map keyed by name: a later header replaces an
/// earlier one of the same name, so a custom `Authorization` header replaces the basic-auth one.
/// Names compare without case, as HTTP's do (the Collector canonicalises them when it sends).
fn set_header(headers: &mut Vec<(String, Sensitive)>, header: (String, Sensitive)) {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&header.0));
    headers.push(header);
}

/// The HTTP exporter's URL without `path`: the Collector's otlphttp exporter appends
/// `v1/traces` to the endpoint as a string, with a `/` unless the endpoint ends with one.
fn default_traces_url(raw: &str) -> String {
    if raw.ends_with('/') {
        format!("{raw}{}", DEFAULT_TRACES_PATH.trim_start_matches('/'))
    } else {
        format!("{raw}{DEFAULT_TRACES_PATH}")
    }
}

/// The HTTP exporter's URL with `path`, as Kyma's `resolveEndpointURL` builds it: the endpoint's path
/// and `path`'s path joined by Go's `path.Join` (cleaned: no `//`, `.`, `..` or trailing `/`), and
/// `path`'s query in place of the endpoint's (none when `path` has none); `path`'s fragment is
/// ignored.
fn custom_path_url(mut url: url::Url, path: &str) -> String {
    let path = path.split_once('#').map_or(path, |(p, _)| p);
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q).filter(|q| !q.is_empty())),
        None => (path, None),
    };
    let joined = go_path_join(&[url.path(), path]);
    url.set_path(&joined);
    url.set_query(query);
    url.to_string()
}

/// Go's `path.Join`: the non-empty elements joined with `/` and cleaned; empty when all are empty.
fn go_path_join(elements: &[&str]) -> String {
    let parts: Vec<&str> = elements.iter().copied().filter(|e| !e.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    go_path_clean(&parts.join("/"))
}

/// Go's `path.Clean`: the shortest path equivalent to `path` by lexical processing.
fn go_path_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The port written in the endpoint, if any. `url` drops a port equal to the scheme's default, but Kyma
/// asks whether one was written, so this reads the authority itself.
fn explicit_port(raw: &str) -> Option<u16> {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    after_host.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

#[cfg(test)]
mod tests;
