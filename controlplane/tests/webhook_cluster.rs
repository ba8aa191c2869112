//! The admission webhook's provisioning run for real against the simulated API server (`apisim`):
//! the manager creates the CA Secret and the ValidatingWebhookConfiguration, serves with a
//! certificate the configuration's `caBundle` verifies, repairs an emptied `caBundle`, replaces a CA
//! near expiry (at start and, with an injected clock, while running) and renews the serving
//! certificate before it expires.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use apisim::ApiSim;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use telemetry_manager::cluster::{self, ClusterConfig, ClusterManager};
use telemetry_manager::webhook_cert::{
    self, CA_SECRET, Clock, Current, WEBHOOK_CONFIGURATION, WebhookSettings,
};
use tokio::net::TcpStream;

const NS: &str = "kyma-system";
const VWC: &str = "admissionregistration.k8s.io/v1";
const DAY: u64 = 24 * 3600;

fn b64(v: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn unb64(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap(),
    )
    .unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn cluster() -> ApiSim {
    let sim = ApiSim::start().await.unwrap();
    sim.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "u"}}),
    );
    sim
}

/// A manager whose webhook certificates are judged by `clock` and rechecked every `recheck`.
async fn manager(sim: &ApiSim, clock: &Clock, recheck: Duration) -> ClusterManager {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let config = ClusterConfig {
        snapshot_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        webhook: Some(WebhookSettings {
            addr: "127.0.0.1:0".parse().unwrap(),
            recheck_every: recheck,
            clock: clock.clone(),
        }),
        ..ClusterConfig::default()
    };
    cluster::start(client, config).await.unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `ca.crt` of the CA Secret.
fn stored_ca(sim: &ApiSim) -> Option<String> {
    sim.get("v1", "Secret", Some(NS), CA_SECRET).map(|s| unb64(&s["data"]["ca.crt"]))
}

/// The caBundle of each webhook, decoded.
fn bundles(sim: &ApiSim) -> Vec<String> {
    sim.get(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION)
        .and_then(|c| c["webhooks"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|w| unb64(&w["clientConfig"]["caBundle"]))
        .collect()
}

/// The API server's clock, in step with the manager's injected one.
#[derive(Debug)]
struct ClientClock(Clock);

impl rustls::time_provider::TimeProvider for ClientClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.0.now() as u64)))
    }
}

/// Whether a TLS client trusting only `ca_pem` (as the API server with caBundle) can reach the
/// manager's webhook under the Service's name at `clock`'s time.
async fn handshake(m: &ClusterManager, ca_pem: &str, clock: &Clock) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_details(provider, Arc::new(ClientClock(clock.clone())))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(m.webhook_addr.unwrap()).await.unwrap();
    let name = ServerName::try_from("telemetry-manager-webhook.kyma-system.svc").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.is_ok()
}

/// Writes to the CA Secret and the configuration so far.
fn webhook_writes(sim: &ApiSim) -> usize {
    sim.writes()
        .iter()
        .filter(|r| r.path.contains(CA_SECRET) || r.path.contains("validatingwebhookconfigurations"))
        .count()
}

/// Scenario: a manager starts on an empty cluster; later someone empties one webhook's caBundle,
/// deletes the configuration, deletes the CA Secret; then nothing happens for a while.
/// Guarantees: the CA Secret is created with `ca.crt` and `ca.key`; the configuration is created
/// with both webhooks carrying that CA; a client trusting only the caBundle reaches the webhook; the
/// emptied caBundle is restored, a deleted configuration recreated, a deleted CA replaced and served
/// (prompted by the watches, not the timer); a steady cluster sees no further writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_ca_and_configuration_and_repairs_drift() {
    let sim = cluster().await;
    let clock = Clock::default();
    // No timer helps: the repairs below come from the watches alone.
    let m = manager(&sim, &clock, Duration::from_secs(3600)).await;
    let secret = sim.get("v1", "Secret", Some(NS), CA_SECRET).expect("CA Secret created at start");
    assert!(secret["data"]["ca.key"].as_str().is_some_and(|k| !k.is_empty()));
    let ca = stored_ca(&sim).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let config = sim.get(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION).unwrap();
    let names: Vec<&str> =
        config["webhooks"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["validating-tracepipelines.kyma-project.io", "validating-tracepipelines-v1beta1.kyma-project.io"]
    );
    assert_eq!(bundles(&sim), [ca.clone(), ca.clone()]);
    assert_eq!(config["webhooks"][1]["clientConfig"]["service"]["name"], "telemetry-manager-webhook");
    assert!(handshake(&m, &ca, &clock).await);

    sim.update(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION, |c| {
        c["webhooks"][1]["clientConfig"]["caBundle"] = json!("");
    });
    eventually("caBundle repaired", || bundles(&sim) == [ca.clone(), ca.clone()]).await;
    sim.delete(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION);
    eventually("configuration recreated", || bundles(&sim) == [ca.clone(), ca.clone()]).await;

    sim.delete("v1", "Secret", Some(NS), CA_SECRET);
    eventually("a new CA", || stored_ca(&sim).is_some_and(|c| c != ca)).await;
    let ca = stored_ca(&sim).unwrap();
    eventually("caBundle follows the new CA", || bundles(&sim) == [ca.clone(), ca.clone()]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !handshake(&m, &ca, &clock).await {
        assert!(Instant::now() < deadline, "the webhook never served a certificate of the new CA");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = webhook_writes(&sim);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(webhook_writes(&sim), settled, "a steady cluster sees no writes");
    assert_eq!(stored_ca(&sim).unwrap(), ca, "the CA stays");
    m.stop.cancel();
}

/// Scenario: the cluster holds a CA made 340 days ago (25 days left) when the manager starts; a
/// second cluster holds a fresh one.
/// Guarantees: the old CA is replaced at start, the configuration trusts the new one and the
/// webhook serves a certificate signed by it; a fresh CA is kept as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_a_ca_near_expiry_at_start_and_keeps_a_fresh_one() {
    let names = webhook_cert::service_names(NS);
    for (age_days, replaced) in [(340, true), (10, false)] {
        let sim = cluster().await;
        let made = unix_now() - (age_days * DAY) as i64;
        let old = webhook_cert::render(&Current::default(), &names, made).unwrap().ca;
        sim.put(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CA_SECRET, "namespace": NS},
            "data": {"ca.crt": b64(&old.cert_pem), "ca.key": b64(&old.key_pem)}}),
        );
        let clock = Clock::default();
        let m = manager(&sim, &clock, Duration::from_secs(3600)).await;
        let ca = stored_ca(&sim).unwrap();
        assert_eq!(ca != old.cert_pem, replaced, "CA made {age_days} days ago");
        assert_eq!(bundles(&sim), [ca.clone(), ca.clone()]);
        assert!(handshake(&m, &ca, &clock).await);
        m.stop.cancel();
    }
}

/// Scenario: a running manager's clock moves 6 days and 1 hour forward (past the serving
/// certificate's 1-day threshold), then 330 more days (inside the CA's last 30 days).
/// Guarantees: the timer renews the serving certificate alone first (the CA and caBundle stay,
/// the new certificate is served); then the CA is replaced, the Secret and every caBundle carry the
/// new CA, and the webhook serves a certificate the new CA verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_manager_renews_before_expiry() {
    let sim = cluster().await;
    let clock = Clock::default();
    // The timer is what notices: nothing in the cluster changes.
    let m = manager(&sim, &clock, Duration::from_millis(200)).await;
    let slot = m.webhook_cert.clone().unwrap();
    let ca = stored_ca(&sim).unwrap();
    let first_cert = slot.current().unwrap();

    clock.advance(Duration::from_secs(6 * DAY + 3600));
    eventually("serving certificate renewed", || slot.current().unwrap() != first_cert).await;
    assert_eq!(stored_ca(&sim).unwrap(), ca);
    assert_eq!(bundles(&sim), [ca.clone(), ca.clone()]);
    assert!(handshake(&m, &ca, &clock).await);

    clock.advance(Duration::from_secs(330 * DAY));
    eventually("CA replaced", || stored_ca(&sim).is_some_and(|c| c != ca)).await;
    let new_ca = stored_ca(&sim).unwrap();
    eventually("caBundle updated", || bundles(&sim) == [new_ca.clone(), new_ca.clone()]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !handshake(&m, &new_ca, &clock).await {
        assert!(Instant::now() < deadline, "the webhook never served a certificate of the new CA");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    m.stop.cancel();
}

// === The Telemetry's half (Kyma's TestTelemetry, TestTelemetryDeletionBlocking, TestOverrides) ===

const OP: &str = "operator.kyma-project.io/v1beta1";
const TP: &str = "telemetry.kyma-project.io/v1beta1";

/// Kyma's default CR, as its releases apply it into kyma-system.
fn default_telemetry() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kyma-telemetry/default-cr.yaml");
    let mut cr: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cr["metadata"]["namespace"] = json!(NS);
    cr
}

fn pipeline(name: &str) -> Value {
    json!({"apiVersion": TP, "kind": "TracePipeline", "metadata": {"name": name},
        "spec": {"output": {"otlp": {"endpoint": {"value": "http://backend:4317"}}}}})
}

fn telemetry_uid(sim: &ApiSim) -> Option<String> {
    sim.get(OP, "Telemetry", Some(NS), "default")
        .and_then(|t| t["metadata"]["uid"].as_str().map(str::to_string))
}

/// The CA Secret's ownerReferences.
fn owner_refs(sim: &ApiSim) -> Value {
    sim.get("v1", "Secret", Some(NS), CA_SECRET)
        .map(|s| s["metadata"]["ownerReferences"].clone())
        .unwrap_or_default()
}

/// Exactly one ownerReference, to the `default` Telemetry as it exists now.
fn owned_by_telemetry(sim: &ApiSim) -> bool {
    let Some(uid) = telemetry_uid(sim) else { return false };
    owner_refs(sim)
        == json!([{"apiVersion": "operator.kyma-project.io/v1beta1", "kind": "Telemetry", "name": "default", "uid": uid}])
}

/// Scenario (TestTelemetry, webhook half): Kyma's default CR and a TracePipeline, then a manager;
/// later someone deletes the CA Secret. Kyma's configuration holds 6 webhooks because it also
/// validates LogPipelines and MetricPipelines, which this project does not serve; its 2
/// TracePipeline webhooks are checked here with the same assertions.
/// Guarantees: `telemetry-validating-webhook.kyma-project.io` has exactly the two TracePipeline
/// webhooks, each with a non-empty caBundle, service `telemetry-manager-webhook` in kyma-system on
/// port 443, path `/validate-telemetry-kyma-project-io-<version>-tracepipeline`, and one rule on
/// `tracepipelines` of its version for CREATE and UPDATE; the CA Secret has non-empty `ca.crt` and
/// `ca.key` and exactly one ownerReference (Telemetry `default`, its UID); a deleted Secret comes
/// back as a new object (new UID) with that ownerReference again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telemetry_owns_the_webhook_ca_and_the_webhooks_have_kymas_shape() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1"));
    let m = manager(&sim, &Clock::default(), Duration::from_secs(3600)).await;

    let config = sim.get(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION).unwrap();
    let hooks = config["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    for (hook, version) in hooks.iter().zip(["v1alpha1", "v1beta1"]) {
        assert!(hook["clientConfig"]["caBundle"].as_str().is_some_and(|b| !b.is_empty()));
        let service = &hook["clientConfig"]["service"];
        assert_eq!(service["name"], "telemetry-manager-webhook");
        assert_eq!(service["namespace"], NS);
        assert_eq!(service["port"], 443);
        assert_eq!(service["path"], format!("/validate-telemetry-kyma-project-io-{version}-tracepipeline"));
        let rules = hook["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["resources"], json!(["tracepipelines"]));
        assert_eq!(rules[0]["apiVersions"], json!([version]));
        assert_eq!(rules[0]["operations"], json!(["CREATE", "UPDATE"]));
    }

    eventually("the CA Secret owned by the Telemetry", || owned_by_telemetry(&sim)).await;
    let secret = sim.get("v1", "Secret", Some(NS), CA_SECRET).unwrap();
    for key in ["ca.crt", "ca.key"] {
        assert!(secret["data"][key].as_str().is_some_and(|v| !v.is_empty()), "{key}");
    }
    let old_uid = secret["metadata"]["uid"].clone();

    sim.delete("v1", "Secret", Some(NS), CA_SECRET);
    eventually("a new CA Secret, owned again", || {
        sim.get("v1", "Secret", Some(NS), CA_SECRET).is_some_and(|s| s["metadata"]["uid"] != old_uid)
            && owned_by_telemetry(&sim)
    })
    .await;
    let ca = stored_ca(&sim).unwrap();
    eventually("the caBundle follows the new CA", || bundles(&sim) == [ca.clone(), ca.clone()]).await;
    m.stop.cancel();
}

/// Scenario (TestTelemetryDeletionBlocking, last step): the default CR and a TracePipeline with a
/// running manager; the CR is deleted while the pipeline exists; then the pipeline is deleted.
/// Guarantees: while the deletion waits the CA Secret stays, owned by the Telemetry; once the
/// pipeline is gone the Telemetry is gone and then the CA Secret is gone, and it does not come back;
/// the webhook still serves a certificate its caBundle verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_ca_secret_goes_with_the_telemetry() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    sim.put(pipeline("p1"));
    let clock = Clock::default();
    let m = manager(&sim, &clock, Duration::from_secs(3600)).await;
    eventually("the CA Secret owned by the Telemetry", || owned_by_telemetry(&sim)).await;

    sim.delete(OP, "Telemetry", Some(NS), "default");
    consistently_for(&sim, Duration::from_millis(800), "the deletion waits, the Secret stays owned", |sim| {
        sim.get(OP, "Telemetry", Some(NS), "default").is_some() && owned_by_telemetry(sim)
    })
    .await;

    sim.delete(TP, "TracePipeline", None, "p1");
    eventually("the Telemetry is gone", || sim.get(OP, "Telemetry", Some(NS), "default").is_none()).await;
    eventually("the CA Secret is gone", || sim.get("v1", "Secret", Some(NS), CA_SECRET).is_none()).await;
    consistently_for(&sim, Duration::from_millis(1000), "the CA Secret stays gone", |sim| {
        sim.get("v1", "Secret", Some(NS), CA_SECRET).is_none()
    })
    .await;
    let bundle = bundles(&sim);
    assert_eq!(bundle.len(), 2);
    assert!(handshake(&m, &bundle[0], &clock).await, "the webhook serves on with the CA in memory");
    m.stop.cancel();
}

/// Scenario (TestOverrides, webhook step): the default CR with a running manager; the overrides
/// ConfigMap sets `telemetry.paused: true`; someone empties webhook[0]'s caBundle; later the
/// ConfigMap is deleted.
/// Guarantees: while paused the emptied caBundle is not restored (the Telemetry reconciliation,
/// webhook included, is paused); once the ConfigMap is gone it is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_telemetry_leaves_an_emptied_ca_bundle() {
    let sim = cluster().await;
    sim.put(default_telemetry());
    let m = manager(&sim, &Clock::default(), Duration::from_millis(200)).await;
    eventually("the CA Secret owned by the Telemetry", || owned_by_telemetry(&sim)).await;
    let ca = stored_ca(&sim).unwrap();
    sim.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "telemetry-overrides", "namespace": NS},
        "data": {"overrides": "global:\n  logLevel: debug\ntelemetry:\n  paused: true\n"}}));
    // The reconciler's pass after the ConfigMap event tells the webhook loop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    sim.update(VWC, "ValidatingWebhookConfiguration", None, WEBHOOK_CONFIGURATION, |c| {
        c["webhooks"][0]["clientConfig"]["caBundle"] = json!("");
    });
    consistently_for(&sim, Duration::from_millis(1200), "the emptied caBundle stays empty", |sim| {
        bundles(sim) == [String::new(), ca.clone()]
    })
    .await;

    sim.delete("v1", "ConfigMap", Some(NS), "telemetry-overrides");
    eventually("caBundle restored", || bundles(&sim) == [ca.clone(), ca.clone()]).await;
    m.stop.cancel();
}

/// Asserts `check` holds for the whole of `period`.
async fn consistently_for(sim: &ApiSim, period: Duration, what: &str, check: impl Fn(&ApiSim) -> bool) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        assert!(check(sim), "no longer true: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
