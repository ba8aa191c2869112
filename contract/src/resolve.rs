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
    API_VERSION_V1ALPHA1, API_VERSION_V1BETA1, Header, OtlpOutput, Secret, SecretKeyRef, TracePipeline,
    ValueType,
};
use crate::snapshot::{
    Compression, OtlpOutputConfig, PipelineConfig, Protocol, Sensitive, Snapshot, TlsConfig,
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
                    .map_err(|e| format!("is not valid base64 ({e})"))
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
        let value = self.value_parts(
            field,
            h.value.as_deref(),
            h.value_from.as_ref().map(|f| f.secret_key_ref.as_ref()),
        )?;
        let value = match h.prefix.as_deref() {
            Some(prefix) if !prefix.is_empty() => format!("{prefix} {value}"),
            _ => value,
        };
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
    let mut checker = Checker { secrets, schema: Vec::new(), missing: Vec::new() };
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
        if auth.oauth2.is_some() {
            return Err(PipelineError::new(
                Reason::Unsupported,
                format!("{OTLP}.authentication.oauth2"),
                "OAuth2 authentication is not supported by this gateway yet",
            ));
        }
    }
    for (i, h) in otlp.headers.iter().enumerate() {
        if let Some(header) = c.header(&format!("{OTLP}.headers[{i}]"), h) {
            headers.push(header);
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
        Some("snappy") => {
            return Err(PipelineError::new(
                Reason::Unsupported,
                format!("{OTLP}.compression"),
                "snappy compression is not supported by this gateway yet; use gzip, zstd or none",
            ));
        }
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
    let url = endpoint_url(protocol, endpoint.trim(), path, &mut tls).map_err(|why| {
        PipelineError::new(
            Reason::EndpointInvalid,
            format!("{OTLP}.endpoint"),
            format!("OTLP output endpoint invalid: {why}"),
        )
    })?;
    Ok(OtlpOutputConfig { protocol, url, compression, headers, tls })
}

/// Applies Kyma's endpoint rules and returns the URL the exporter uses. Sets `tls.insecure` for an
/// `http://` endpoint, as Kyma's config builder does.
fn endpoint_url(
    protocol: Protocol,
    raw: &str,
    path: Option<&str>,
    tls: &mut TlsConfig,
) -> Result<String, String> {
    if raw.is_empty() {
        return Err("endpoint is empty".into());
    }
    let has_scheme = raw.contains("://");
    let parsed = if has_scheme {
        url::Url::parse(raw)
    } else {
        url::Url::parse(&format!("{PLACEHOLDER_SCHEME}://{raw}"))
    }
    .map_err(|e| format!("failed to parse '{raw}' as a URL: {e}"))?;
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
            let mut url = parsed.clone();
            match path {
                Some(p) => {
                    let (p, query) = match p.split_once('?') {
                        Some((p, q)) => (p, Some(q)),
                        None => (p, None),
                    };
                    url.set_path(&join_paths(parsed.path(), p));
                    if query.is_some() {
                        url.set_query(query);
                    }
                }
                None => url.set_path(&join_paths(parsed.path(), DEFAULT_TRACES_PATH)),
            }
            Ok(url.to_string())
        }
    }
}

fn join_paths(base: &str, tail: &str) -> String {
    let base = base.trim_end_matches('/');
    let tail = tail.trim_start_matches('/');
    format!("{base}/{tail}")
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
