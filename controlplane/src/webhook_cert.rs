//! The admission webhook's certificates and its `ValidatingWebhookConfiguration`, provisioned by the
//! manager itself as Kyma's `internal/webhookcert` does: no cert-manager, no cluster CA.
//!
//! - A CA, self-signed, kept in the Secret [`CA_SECRET`] (`ca.crt`, `ca.key`) in the manager's
//!   namespace so that restarts reuse it; valid [`CA_VALIDITY`], replaced when it is missing, does not
//!   parse, is not a CA, does not match its key, or has less than [`CA_RENEW_BEFORE`] left.
//! - A serving certificate for the webhook Service's names, signed by that CA and held in memory only
//!   (each manager pod has its own, as Kyma keeps it in an emptyDir); valid [`SERVING_VALIDITY`],
//!   replaced when less than [`SERVING_RENEW_BEFORE`] is left or it does not verify against the
//!   current CA for every name.
//! - The configuration [`WEBHOOK_CONFIGURATION`] with both TracePipeline webhooks, each carrying the
//!   CA as `caBundle`; created when missing and re-applied when it drifted (e.g. someone emptied a
//!   `caBundle`).
//!
//! Kyma uses RSA 4096 keys; these are rcgen's default ECDSA P-256, which the API server accepts and
//! which are generated in microseconds instead of seconds. Kyma's RSA CA, if one is left in the Secret,
//! cannot be loaded for signing here and is simply replaced.
//!
//! [`render`] decides everything from the current state and the time, purely; [`start`] runs it once
//! before the webhook serves and then again on every change of the Secret or the configuration
//! (watched by name), of the module ([`ModuleLink`]), and before anything expires (a timer, re-armed
//! after every pass and never longer than [`WebhookSettings::recheck_every`]).
//!
//! **The module.** As in Kyma, the CA Secret belongs to the `default` Telemetry: while it exists
//! the Secret carries exactly one ownerReference to it, and once the Telemetry is deleted (its
//! finalizer removed because no TracePipeline is left) the Secret goes too and is not recreated
//! until a Telemetry exists again; the webhook keeps serving with the CA held in memory meanwhile.
//! With `telemetry.paused` in the overrides the loop writes nothing, so an emptied `caBundle` stays
//! empty (Kyma's TestOverrides).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Config as WatchConfig};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracegw_contract::pipeline::GROUP;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cluster::FIELD_MANAGER;
use crate::gateway::MANAGED_BY;
use crate::metrics::ManagerMetrics;
use crate::webhook::{self, CertSlot};

/// The Secret holding the webhook CA, in the manager's namespace (Kyma's name).
pub const CA_SECRET: &str = "telemetry-webhook-cert";
/// Key of the CA certificate in [`CA_SECRET`].
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of the CA's private key in [`CA_SECRET`].
pub const CA_KEY_KEY: &str = "ca.key";
/// The Service the API server calls the webhook through.
pub const WEBHOOK_SERVICE: &str = "telemetry-manager-webhook";
/// Port of [`WEBHOOK_SERVICE`].
pub const WEBHOOK_SERVICE_PORT: u16 = 443;
/// The `ValidatingWebhookConfiguration` the manager owns (Kyma's name).
pub const WEBHOOK_CONFIGURATION: &str = "telemetry-validating-webhook.kyma-project.io";
/// How long the API server waits for an answer (Kyma's value; the API server's maximum is 30 s).
pub const WEBHOOK_TIMEOUT_SECONDS: i32 = 15;

/// How long a new CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A CA with less than this left is replaced.
pub const CA_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a new serving certificate is valid.
pub const SERVING_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// A serving certificate with less than this left is replaced.
pub const SERVING_RENEW_BEFORE: Duration = Duration::from_secs(24 * 3600);
/// New certificates are valid from this long ago, for clocks that run behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);
/// Kyma's subject organisation for the CA.
const CA_ORGANIZATION: &str = "kyma-project.io";
/// The owner's kind and API version in the CA Secret's ownerReference.
const OWNER_KIND: &str = "Telemetry";
const OWNER_API_VERSION: &str = tracegw_contract::telemetry::API_VERSION_V1BETA1;

/// Changes arriving within this long make one pass.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Retry delays after a failed pass.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Wall-clock time in Unix seconds, shifted by an offset tests can move while the manager runs.
/// Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

/// How the webhook is served. Each default is defined here once; the CLI reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    /// Where the HTTPS server listens (the Service's target port).
    pub addr: SocketAddr,
    /// The certificates and the configuration are checked at least this often, whatever the timer
    /// says (a wall clock that jumped, a missed watch event).
    pub recheck_every: Duration,
    /// The time certificates are judged by.
    pub clock: Clock,
}

/// The `default` Telemetry, owner of the CA Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryOwner {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: String,
}

/// What the reconciler of the Telemetry tells the loop after each of its passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleLink {
    /// The reconciler has looked at the module; until then the Secret's ownerReferences stay as
    /// they are (a restarting manager does not strip them for a moment).
    pub observed: bool,
    /// The `default` Telemetry, while it exists (also while its deletion waits for pipelines).
    pub owner: Option<TelemetryOwner>,
    /// The Telemetry was deleted and no TracePipeline is left: the CA Secret goes with it.
    pub removed: bool,
    /// `telemetry.paused` in the overrides: nothing is written.
    pub paused: bool,
}

/// A certificate and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertPair {
    /// Certificate.
    pub cert_pem: String,
    /// Private key (PKCS#8).
    pub key_pem: String,
}

/// What the manager holds before a pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Current {
    /// The CA read from [`CA_SECRET`], if the Secret has both keys.
    pub ca: Option<CertPair>,
    /// The certificate being served, if any.
    pub serving: Option<CertPair>,
}

/// What the manager must hold after a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The CA; store it when `ca_renewed`.
    pub ca: CertPair,
    /// Whether the CA is new.
    pub ca_renewed: bool,
    /// The serving certificate; serve it when `serving_renewed`.
    pub serving: CertPair,
    /// Whether the serving certificate is new.
    pub serving_renewed: bool,
    /// When (Unix seconds) one of them must be replaced.
    pub renew_at: i64,
}

/// A certificate cannot be made, or the API server failed a request.
#[derive(Debug, thiserror::Error)]
pub enum WebhookCertError {
    /// rcgen refused to build a certificate.
    #[error("cannot generate the webhook {what}: {source}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
    /// The new serving certificate cannot be served.
    #[error(transparent)]
    Serve(#[from] webhook::WebhookError),
    /// The API server refused or failed a request.
    #[error("cannot {action} {object}: {source}")]
    Kube {
        /// What was being done.
        action: &'static str,
        /// To which object.
        object: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

/// The running provisioning loop's product: the certificate the webhook server serves, swapped in
/// place when renewed.
#[derive(Debug)]
pub struct Provisioned {
    /// What the webhook server serves.
    pub slot: Arc<CertSlot>,
}

// === impl Clock ===

impl Clock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        wall + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_secs.fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.offset_secs, &other.offset_secs)
            || self.offset_secs.load(Ordering::Relaxed) == other.offset_secs.load(Ordering::Relaxed)
    }
}

// === impl WebhookSettings ===

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            addr: webhook::DEFAULT_ADDR,
            recheck_every: Duration::from_secs(3600),
            clock: Clock::default(),
        }
    }
}

// === impl CertPair ===

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPair").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

// === free functions: pure ===

/// The DNS names the API server may use for the webhook Service in `namespace`.
pub fn service_names(namespace: &str) -> Vec<String> {
    crate::tls::names_for(&format!("https://{WEBHOOK_SERVICE}.{namespace}.svc:{WEBHOOK_SERVICE_PORT}"))
}

/// Decides which certificates to keep and which to make at `now` (Unix seconds) for `names`.
pub fn render(current: &Current, names: &[String], now: i64) -> Result<Rendered, WebhookCertError> {
    let kept_ca = current.ca.as_ref().and_then(|ca| ca_expiry(ca, now).map(|exp| (ca.clone(), exp)));
    let (ca, ca_renewed, ca_expires) = match kept_ca {
        Some((ca, expires)) => (ca, false, expires),
        None => {
            let (ca, expires) = generate_ca(now)?;
            (ca, true, expires)
        }
    };
    let kept_serving =
        current.serving.as_ref().and_then(|s| serving_expiry(s, &ca, names, now).map(|exp| (s.clone(), exp)));
    let (serving, serving_renewed, serving_expires) = match kept_serving {
        Some((s, expires)) => (s, false, expires),
        None => {
            let (s, expires) = generate_serving(&ca, names, now)?;
            (s, true, expires)
        }
    };
    let renew_at = (ca_expires - CA_RENEW_BEFORE.as_secs() as i64)
        .min(serving_expires - SERVING_RENEW_BEFORE.as_secs() as i64);
    Ok(Rendered { ca, ca_renewed, serving, serving_renewed, renew_at })
}

/// How long to sleep at `now` before the next pass when one is due at `renew_at`: until then, but
/// at most `recheck_every`.
pub fn wait_before_pass(renew_at: i64, now: i64, recheck_every: Duration) -> Duration {
    Duration::from_secs(renew_at.saturating_sub(now).max(0) as u64).min(recheck_every)
}

/// The CA Secret as the manager applies it, without an owner.
pub fn ca_secret(namespace: &str, ca: &CertPair) -> Value {
    ca_secret_owned(namespace, ca, &[])
}

/// The CA Secret with an ownerReference to each of `owners` (Kyma's: no `controller`, no
/// `blockOwnerDeletion`), so that garbage collection deletes it with the Telemetry.
pub fn ca_secret_owned(namespace: &str, ca: &CertPair, owners: &[TelemetryOwner]) -> Value {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": CA_SECRET, "namespace": namespace,
                     "labels": {MANAGED_BY.0: MANAGED_BY.1, "app.kubernetes.io/name": "telemetry-manager"}},
        "data": {CA_CERT_KEY: b64(&ca.cert_pem), CA_KEY_KEY: b64(&ca.key_pem)},
    });
    if !owners.is_empty() {
        let refs: Vec<Value> = owners
            .iter()
            .map(|o| json!({"apiVersion": OWNER_API_VERSION, "kind": OWNER_KIND, "name": o.name, "uid": o.uid}))
            .collect();
        secret["metadata"]["ownerReferences"] = json!(refs);
    }
    secret
}

/// The Telemetry owners a Secret names.
pub fn telemetry_owners(secret: &Secret) -> Vec<TelemetryOwner> {
    let group = OWNER_API_VERSION.split('/').next().unwrap_or_default();
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.kind == OWNER_KIND && r.api_version.split('/').next() == Some(group))
        .map(|r| TelemetryOwner { name: r.name.clone(), uid: r.uid.clone() })
        .collect()
}

/// The CA held in a Secret's decoded data, if both keys are there as text.
pub fn ca_from_secret(secret: &Secret) -> Option<CertPair> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| data.get(k).and_then(|v| String::from_utf8(v.0.clone()).ok());
    Some(CertPair { cert_pem: text(CA_CERT_KEY)?, key_pem: text(CA_KEY_KEY)? })
}

/// The `ValidatingWebhookConfiguration` with one webhook per served TracePipeline version, each
/// trusting `ca_pem` (empty: no `caBundle`, as `deploy/` ships it).
pub fn webhook_configuration(namespace: &str, ca_pem: &str) -> Value {
    let webhooks: Vec<Value> = webhook::SERVED
        .iter()
        .map(|served| {
            let mut client_config = json!({
                "service": {"name": WEBHOOK_SERVICE, "namespace": namespace, "path": served.path,
                            "port": WEBHOOK_SERVICE_PORT},
            });
            if !ca_pem.is_empty() {
                client_config["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca_pem));
            }
            json!({
                "name": served.webhook,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config,
                "failurePolicy": "Fail",
                "matchPolicy": "Exact",
                "sideEffects": "None",
                "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
                "rules": [{
                    "apiGroups": [GROUP],
                    "apiVersions": [served.version],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["tracepipelines"],
                    "scope": "*",
                }],
            })
        })
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION,
                     "labels": {"app.kubernetes.io/name": "telemetry-manager", "app.kubernetes.io/part-of": "telemetry"}},
        "webhooks": webhooks,
    })
}

/// Whether `live` lacks something `desired` sets: its labels, or any field of one of its webhooks
/// (matched by name, so an entry someone else added is left alone). The API server's defaults
/// (selectors, `reinvocationPolicy`...) are not in `desired` and never count as drift.
pub fn needs_apply(desired: &Value, live: Option<&Value>) -> bool {
    let Some(live) = live else { return true };
    if !crate::gateway::is_subset(&desired["metadata"]["labels"], &live["metadata"]["labels"]) {
        return true;
    }
    let live_hooks = live["webhooks"].as_array().map(Vec::as_slice).unwrap_or_default();
    desired["webhooks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .any(|d| !live_hooks.iter().any(|l| l["name"] == d["name"] && crate::gateway::is_subset(d, l)))
}

fn parse_cert(pem: &str) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).next().and_then(Result::ok)
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// When the stored CA expires, if it can still sign: it parses, is a CA, matches its key, rcgen can
/// sign with that key, and it has at least [`CA_RENEW_BEFORE`] left.
fn ca_expiry(ca: &CertPair, now: i64) -> Option<i64> {
    let der = parse_cert(&ca.cert_pem)?;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    if !cert.is_ca() {
        return None;
    }
    let key = PrivateKeyDer::from_pem_slice(ca.key_pem.as_bytes()).ok()?;
    rustls::sign::CertifiedKey::from_der(vec![der.clone()], key, &ring()).ok()?.keys_match().ok()?;
    let signing = KeyPair::from_pem(&ca.key_pem).ok()?;
    Issuer::from_ca_cert_der(&der, signing).ok()?;
    let expires = cert.validity().not_after.timestamp();
    (expires - now >= CA_RENEW_BEFORE.as_secs() as i64).then_some(expires)
}

/// When the serving certificate expires, if it can still serve: it verifies against `ca` for every
/// name at `now`, exactly as the API server will check it, and has at least
/// [`SERVING_RENEW_BEFORE`] left.
fn serving_expiry(serving: &CertPair, ca: &CertPair, names: &[String], now: i64) -> Option<i64> {
    let der = parse_cert(&serving.cert_pem)?;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let expires = cert.validity().not_after.timestamp();
    if expires - now < SERVING_RENEW_BEFORE.as_secs() as i64 {
        return None;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(parse_cert(&ca.cert_pem)?).ok()?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ring()).build().ok()?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
    for name in names {
        let name = ServerName::try_from(name.clone()).ok()?;
        verifier.verify_server_cert(&der, &[], &name, &[], at).ok()?;
    }
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).ok()?;
    rustls::sign::CertifiedKey::from_der(vec![der], key, &ring()).ok()?.keys_match().ok()?;
    Some(expires)
}

fn validity(params: &mut CertificateParams, now: i64, valid_for: Duration) -> Result<i64, rcgen::Error> {
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| rcgen::Error::Time);
    let expires = now + valid_for.as_secs() as i64;
    params.not_before = at(now - CLOCK_SKEW.as_secs() as i64)?;
    params.not_after = at(expires)?;
    Ok(expires)
}

/// A new self-signed CA (Kyma's subject and validity; ECDSA P-256, see the module docs).
fn generate_ca(now: i64) -> Result<(CertPair, i64), WebhookCertError> {
    let err = |source| WebhookCertError::Generate { what: "CA", source };
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Kyma adds KeyEncipherment, which only means something for RSA keys.
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let expires = validity(&mut params, now, CA_VALIDITY).map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() }, expires))
}

/// A new serving certificate for `names`, signed by `ca`.
fn generate_serving(ca: &CertPair, names: &[String], now: i64) -> Result<(CertPair, i64), WebhookCertError> {
    let err = |source| WebhookCertError::Generate { what: "serving certificate", source };
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{}@{now}", names.first().map(String::as_str).unwrap_or_default()));
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let expires = validity(&mut params, now, SERVING_VALIDITY).map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok((CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() }, expires))
}

// === free functions: the loop ===

/// Provisions the certificates and the configuration once (an error fails the start, as in Kyma),
/// then keeps them current until `stop` fires.
pub async fn start(
    client: Client,
    namespace: String,
    settings: WebhookSettings,
    metrics: ManagerMetrics,
    link: watch::Receiver<ModuleLink>,
    stop: CancellationToken,
) -> Result<Provisioned, WebhookCertError> {
    let names = service_names(&namespace);
    let mut state = LoopState {
        client,
        namespace,
        names,
        metrics,
        link,
        current: Current::default(),
        slot: None,
        paused_logged: false,
    };
    let renew_at = state.pass(settings.clock.now()).await?;
    let slot = state.slot.clone().ok_or_else(|| {
        WebhookCertError::Serve(webhook::WebhookError::Certificate(
            "no certificate after the first pass".into(),
        ))
    })?;
    let (trigger_tx, trigger_rx) = mpsc::unbounded_channel();
    let secrets = Api::<Secret>::namespaced(state.client.clone(), &state.namespace);
    spawn_trigger(secrets, CA_SECRET, trigger_tx.clone(), stop.clone());
    let configurations = Api::<ValidatingWebhookConfiguration>::all(state.client.clone());
    spawn_trigger(configurations, WEBHOOK_CONFIGURATION, trigger_tx, stop.clone());
    tokio::spawn(state.run(renew_at, settings, trigger_rx, stop));
    Ok(Provisioned { slot })
}

/// Pokes `trigger` whenever the object `name` changes (a watch by field selector, so RBAC can limit
/// it to that one name).
fn spawn_trigger<K>(
    api: Api<K>,
    name: &'static str,
    trigger: mpsc::UnboundedSender<()>,
    stop: CancellationToken,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let config = WatchConfig::default().fields(&format!("metadata.name={name}"));
        let stream = watcher::watcher(api, config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = stream.next() => e,
            };
            match event {
                None => return,
                Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Some(Ok(_)) => {
                    if trigger.send(()).is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(object = name, error = %e, "watch failed; retrying with backoff")
                }
            }
        }
    });
}

struct LoopState {
    client: Client,
    namespace: String,
    names: Vec<String>,
    metrics: ManagerMetrics,
    link: watch::Receiver<ModuleLink>,
    current: Current,
    slot: Option<Arc<CertSlot>>,
    paused_logged: bool,
}

impl LoopState {
    async fn run(
        mut self,
        mut renew_at: i64,
        settings: WebhookSettings,
        mut triggers: mpsc::UnboundedReceiver<()>,
        stop: CancellationToken,
    ) {
        let mut retry_delay = FIRST_RETRY;
        let mut wait = wait_before_pass(renew_at, settings.clock.now(), settings.recheck_every);
        // The reconciler gone (the manager stopping) leaves the watches and the timer.
        let mut link_open = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                t = triggers.recv() => if t.is_none() { return },
                changed = self.link.changed(), if link_open => link_open = changed.is_ok(),
                _ = tokio::time::sleep(wait) => {}
            }
            tokio::time::sleep(DEBOUNCE).await;
            while triggers.try_recv().is_ok() {}
            match self.pass(settings.clock.now()).await {
                Ok(next) => {
                    renew_at = next;
                    retry_delay = FIRST_RETRY;
                    wait = wait_before_pass(renew_at, settings.clock.now(), settings.recheck_every);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?retry_delay, "webhook certificate pass failed; retrying");
                    wait = retry_delay;
                    retry_delay = (retry_delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// One pass: read the CA, renew what must be renewed, store the CA (owned by the Telemetry), or
    /// delete it once the module was removed, publish it as `caBundle`, then serve the new
    /// certificate. Returns when to run again.
    async fn pass(&mut self, now: i64) -> Result<i64, WebhookCertError> {
        let link = self.link.borrow_and_update().clone();
        if link.paused {
            return self.paused_pass(now);
        }
        if std::mem::take(&mut self.paused_logged) {
            tracing::info!(
                "no longer paused: the admission webhook's CA and configuration are reconciled again"
            );
        }
        let kube = |action, object: String| move |source| WebhookCertError::Kube { action, object, source };
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &self.namespace);
        let secret_name = format!("Secret {}/{CA_SECRET}", self.namespace);
        let stored = secrets.get_opt(CA_SECRET).await.map_err(kube("read", secret_name.clone()))?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if link.removed {
            // In a cluster, garbage collection deletes the Secret through its ownerReference once
            // the Telemetry is gone. The manager deletes it as well: the simulated API server has
            // no garbage collector, and a Secret stored before the manager saw the Telemetry may
            // lack the reference. Either way this loop must not bring it back (its watch on the
            // Secret sees the deletion): the webhook serves on with the CA held in memory.
            if stored.is_some() {
                match secrets.delete(CA_SECRET, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.is_not_found() => {}
                    Err(source) => {
                        return Err(WebhookCertError::Kube { action: "delete", object: secret_name, source });
                    }
                }
                tracing::info!(secret = CA_SECRET, "deleted with the Telemetry");
                self.metrics.deleted("Secret");
            }
        } else {
            self.current.ca = stored.as_ref().and_then(ca_from_secret);
        }
        let rendered = render(&self.current, &self.names, now)?;
        if !link.removed {
            let stored_owners = stored.as_ref().map(telemetry_owners).unwrap_or_default();
            let owners =
                if link.observed { link.owner.iter().cloned().collect() } else { stored_owners.clone() };
            let owners_drifted = stored.is_some() && stored_owners != owners;
            if rendered.ca_renewed || owners_drifted {
                if rendered.ca_renewed {
                    tracing::info!(secret = CA_SECRET, "creating the admission webhook's CA");
                } else {
                    tracing::info!(secret = CA_SECRET, owners = ?owners, "setting the owner of the webhook's CA");
                }
                let secret = ca_secret_owned(&self.namespace, &rendered.ca, &owners);
                secrets
                    .patch(CA_SECRET, &params, &Patch::Apply(&secret))
                    .await
                    .map_err(kube("apply", secret_name))?;
                self.metrics.applied("Secret");
            }
        }
        self.current.ca = Some(rendered.ca.clone());

        // The caBundle before the certificate: the API server trusts the new CA a moment before
        // the manager serves a certificate signed by it.
        let configurations = Api::<ValidatingWebhookConfiguration>::all(self.client.clone());
        let vwc_name = format!("ValidatingWebhookConfiguration {WEBHOOK_CONFIGURATION}");
        let live = configurations
            .get_opt(WEBHOOK_CONFIGURATION)
            .await
            .map_err(kube("read", vwc_name.clone()))?
            .and_then(|v| serde_json::to_value(v).ok());
        let desired = webhook_configuration(&self.namespace, &rendered.ca.cert_pem);
        if needs_apply(&desired, live.as_ref()) {
            configurations
                .patch(WEBHOOK_CONFIGURATION, &params, &Patch::Apply(&desired))
                .await
                .map_err(kube("apply", vwc_name))?;
            tracing::info!(configuration = WEBHOOK_CONFIGURATION, drift = live.is_some(), "applied");
            self.metrics.applied("ValidatingWebhookConfiguration");
        }

        self.serve(rendered.serving_renewed, rendered.serving)?;
        Ok(rendered.renew_at)
    }

    /// Paused by the overrides: nothing is read or written in the cluster. Only a serving
    /// certificate due for renewal is renewed from the CA in memory, which needs no write; a CA due
    /// for replacement waits, since its caBundle could not be published.
    fn paused_pass(&mut self, now: i64) -> Result<i64, WebhookCertError> {
        if !self.paused_logged {
            tracing::info!(
                "paused by the overrides (telemetry.paused): the admission webhook's CA Secret and configuration are left as they are"
            );
            self.paused_logged = true;
        }
        let rendered = render(&self.current, &self.names, now)?;
        if rendered.ca_renewed {
            tracing::warn!("the admission webhook's CA is due for replacement, which waits while paused");
            // Until the next recheck or a change.
            return Ok(i64::MAX);
        }
        self.serve(rendered.serving_renewed, rendered.serving)?;
        Ok(rendered.renew_at)
    }

    /// Serves `serving` when it is new or nothing is served yet.
    fn serve(&mut self, renewed: bool, serving: CertPair) -> Result<(), WebhookCertError> {
        if renewed || self.slot.is_none() {
            match &self.slot {
                Some(slot) => slot.replace(&serving.cert_pem, &serving.key_pem)?,
                None => self.slot = Some(Arc::new(CertSlot::new(&serving.cert_pem, &serving.key_pem)?)),
            }
            tracing::info!(names = ?self.names, "serving a new admission webhook certificate");
        }
        self.current.serving = Some(serving);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 24 * 3600;

    fn names() -> Vec<String> {
        service_names("kyma-system")
    }

    fn x509(pem: &str) -> (i64, i64, bool, Vec<String>) {
        let der = parse_cert(pem).unwrap();
        let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .map(|s| {
                s.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp(), cert.is_ca(), sans)
    }

    /// Scenario: nothing stored yet.
    /// Guarantees: a CA (IsCA, 365 days, from an hour ago) and a serving certificate for the four
    /// Service names (7 days) that verifies against it; the next pass is due a day before the
    /// serving certificate expires.
    #[test]
    fn first_render_makes_both() {
        let r = render(&Current::default(), &names(), NOW).unwrap();
        assert!(r.ca_renewed && r.serving_renewed);
        let (nb, na, is_ca, _) = x509(&r.ca.cert_pem);
        assert_eq!((nb, na, is_ca), (NOW - 3600, NOW + 365 * DAY, true));
        let (nb, na, is_ca, sans) = x509(&r.serving.cert_pem);
        assert_eq!((nb, na, is_ca), (NOW - 3600, NOW + 7 * DAY, false));
        assert_eq!(
            sans,
            [
                "telemetry-manager-webhook.kyma-system.svc",
                "telemetry-manager-webhook",
                "telemetry-manager-webhook.kyma-system",
                "telemetry-manager-webhook.kyma-system.svc.cluster.local"
            ]
        );
        assert!(serving_expiry(&r.serving, &r.ca, &names(), NOW).is_some());
        assert_eq!(r.renew_at, NOW + 6 * DAY);
        assert!(!format!("{r:?}").contains("PRIVATE"));
    }

    /// Scenario: the same state an hour later, then just past the serving certificate's threshold,
    /// then inside the CA's last 30 days.
    /// Guarantees: nothing changes while both are good; the serving certificate alone is renewed at
    /// its threshold; a CA near expiry is replaced together with the certificate it signed.
    #[test]
    fn renews_at_the_thresholds() {
        let first = render(&Current::default(), &names(), NOW).unwrap();
        let current = Current { ca: Some(first.ca.clone()), serving: Some(first.serving.clone()) };
        let steady = render(&current, &names(), NOW + 3600).unwrap();
        assert!(!steady.ca_renewed && !steady.serving_renewed);
        assert_eq!(steady, Rendered { ca_renewed: false, serving_renewed: false, ..first.clone() });

        let later = render(&current, &names(), first.renew_at + 1).unwrap();
        assert!(!later.ca_renewed && later.serving_renewed);
        assert_eq!(later.ca, first.ca);
        assert_eq!(later.renew_at, first.renew_at + 1 + 6 * DAY);

        let near_ca_expiry = NOW + 336 * DAY;
        let replaced = render(&current, &names(), near_ca_expiry).unwrap();
        assert!(replaced.ca_renewed && replaced.serving_renewed);
        assert_ne!(replaced.ca, first.ca);
        assert!(serving_expiry(&replaced.serving, &replaced.ca, &names(), near_ca_expiry).is_some());
        assert!(serving_expiry(&replaced.serving, &first.ca, &names(), near_ca_expiry).is_none());
    }

    /// Scenario: the stored CA is garbage, lacks its key, is paired with another key, or is not a CA;
    /// the serving certificate was signed by another CA or names another Service.
    /// Guarantees: each is replaced; a certificate whose CA was replaced is replaced too.
    #[test]
    fn replaces_what_does_not_verify() {
        let a = render(&Current::default(), &names(), NOW).unwrap();
        let b = render(&Current::default(), &names(), NOW).unwrap();
        let bad_cas = [
            CertPair { cert_pem: "garbage".into(), key_pem: a.ca.key_pem.clone() },
            CertPair { cert_pem: a.ca.cert_pem.clone(), key_pem: String::new() },
            CertPair { cert_pem: a.ca.cert_pem.clone(), key_pem: b.ca.key_pem.clone() },
            a.serving.clone(),
        ];
        for ca in bad_cas {
            let r =
                render(&Current { ca: Some(ca), serving: Some(a.serving.clone()) }, &names(), NOW).unwrap();
            assert!(r.ca_renewed && r.serving_renewed);
        }
        let foreign =
            render(&Current { ca: Some(a.ca.clone()), serving: Some(b.serving) }, &names(), NOW).unwrap();
        assert!(!foreign.ca_renewed && foreign.serving_renewed);
        let other_ns = service_names("telemetry");
        let moved =
            render(&Current { ca: Some(a.ca.clone()), serving: Some(a.serving) }, &other_ns, NOW).unwrap();
        assert!(!moved.ca_renewed && moved.serving_renewed);
        assert!(serving_expiry(&moved.serving, &a.ca, &other_ns, NOW).is_some());
    }

    /// Scenario: the configuration for a CA, as the API server returns it (defaults added), then with
    /// one caBundle emptied, then with an entry someone else added.
    /// Guarantees: both of Kyma's webhooks with paths, names, Fail/15 s/None/[v1], CREATE and UPDATE
    /// on their own version, and the CA as caBundle; defaults and foreign entries are no drift, an
    /// emptied caBundle is.
    #[test]
    fn configuration_and_drift() {
        let desired = webhook_configuration("kyma-system", "PEM");
        assert_eq!(desired["metadata"]["name"], WEBHOOK_CONFIGURATION);
        let hooks = desired["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 2);
        for (hook, version, name) in [
            (&hooks[0], "v1alpha1", "validating-tracepipelines.kyma-project.io"),
            (&hooks[1], "v1beta1", "validating-tracepipelines-v1beta1.kyma-project.io"),
        ] {
            assert_eq!(hook["name"], name);
            assert_eq!(
                hook["clientConfig"]["service"],
                json!({"name": "telemetry-manager-webhook", "namespace": "kyma-system", "port": 443,
                       "path": format!("/validate-telemetry-kyma-project-io-{version}-tracepipeline")})
            );
            assert_eq!(hook["clientConfig"]["caBundle"], "UEVN");
            assert_eq!(hook["failurePolicy"], "Fail");
            assert_eq!(hook["timeoutSeconds"], 15);
            assert_eq!(hook["sideEffects"], "None");
            assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
            assert_eq!(hook["rules"][0]["apiVersions"], json!([version]));
            assert_eq!(hook["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
            assert_eq!(hook["rules"][0]["resources"], json!(["tracepipelines"]));
            assert_eq!(hook["rules"][0]["apiGroups"], json!(["telemetry.kyma-project.io"]));
        }
        assert!(needs_apply(&desired, None));
        let mut live = desired.clone();
        live["metadata"]["resourceVersion"] = json!("7");
        for hook in live["webhooks"].as_array_mut().unwrap() {
            hook["namespaceSelector"] = json!({});
            hook["objectSelector"] = json!({});
        }
        assert!(!needs_apply(&desired, Some(&live)));
        let mut foreign = live.clone();
        foreign["webhooks"].as_array_mut().unwrap().insert(0, json!({"name": "other.example.com"}));
        assert!(!needs_apply(&desired, Some(&foreign)));
        let mut emptied = live.clone();
        emptied["webhooks"][1]["clientConfig"]["caBundle"] = json!("");
        assert!(needs_apply(&desired, Some(&emptied)));
        let mut removed = live;
        removed["webhooks"].as_array_mut().unwrap().remove(0);
        assert!(needs_apply(&desired, Some(&removed)));
        assert!(
            webhook_configuration("kyma-system", "")["webhooks"][0]["clientConfig"].get("caBundle").is_none()
        );
    }

    /// Scenario: the next renewal is days away, minutes away, or overdue.
    /// Guarantees: the loop sleeps until it, but never longer than the recheck interval, and not at
    /// all when it is overdue.
    #[test]
    fn waits_until_renewal_at_most_recheck() {
        let hour = Duration::from_secs(3600);
        assert_eq!(wait_before_pass(NOW + 6 * DAY, NOW, hour), hour);
        assert_eq!(wait_before_pass(NOW + 90, NOW, hour), Duration::from_secs(90));
        assert_eq!(wait_before_pass(NOW - 5, NOW, hour), Duration::ZERO);
    }

    /// Scenario: a clock moved forward by a clone.
    /// Guarantees: every clone sees the same shifted time.
    #[test]
    fn clock_clones_share_the_offset() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = clock.now();
        other.advance(Duration::from_secs(10 * DAY as u64));
        assert!(clock.now() >= before + 10 * DAY);
        assert_eq!(clock, other);
    }
}
