//! Kyma's validating admission webhook for TracePipelines: the API server asks it, for every CREATE
//! and UPDATE of a `v1alpha1` or `v1beta1` TracePipeline, whether the pipeline's OTTL is valid, so
//! that a broken `filter` or `transform` is refused at `kubectl apply` instead of surfacing later as
//! `ConfigurationGenerated=False`.
//!
//! [`review`] is the whole decision, pure: an `admission.k8s.io/v1` AdmissionReview in, one out. Only
//! OTTL is checked, with the one compiler both planes use ([`tracegw_contract::processing::compile`]),
//! in Kyma's webhook order: every FilterSpec first, then every TransformSpec (the reconcile-time
//! check runs transforms first). The verdict is controller-runtime's: a denial is `allowed: false`
//! with `403 Forbidden` and Kyma's `OTTLSpecInvalid` message; a review that cannot be decoded gets
//! `400` and says why. Deletes are allowed.
//!
//! [`serve`] answers over HTTPS (HTTP/1.1 and HTTP/2) with a certificate the provisioning loop
//! ([`crate::webhook_cert`]) swaps in place when it renews it ([`CertSlot`]), bounding each request
//! to the API server's own body limit ([`MAX_BODY_BYTES`]) and a read timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracegw_contract::pipeline::{FilterSpec, GROUP, TransformSpec};
use tracegw_contract::processing::compile;

use crate::metrics::ManagerMetrics;
use crate::net::{BodyReader, Server, ServerLimits};

/// Where the webhook listens by default: controller-runtime's webhook port, as Kyma's manager.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9443);
/// The largest review accepted: the API server's own request limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a client may take to send a request's body, by default (see [`crate::net`]).
pub const READ_TIMEOUT: Duration = crate::net::DEFAULT_BODY_READ_TIMEOUT;
/// The only AdmissionReview version registered.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// One served TracePipeline version: its path (controller-runtime's naming) and its webhook's name
/// in the configuration (Kyma's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// API version, e.g. `v1beta1`.
    pub version: &'static str,
    /// URL path the API server posts to.
    pub path: &'static str,
    /// Name of the webhook entry; the API server quotes it in denials.
    pub webhook: &'static str,
}

/// Both served versions.
pub const SERVED: [Served; 2] = [
    Served {
        version: "v1alpha1",
        path: "/validate-telemetry-kyma-project-io-v1alpha1-tracepipeline",
        webhook: "validating-tracepipelines.kyma-project.io",
    },
    Served {
        version: "v1beta1",
        path: "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline",
        webhook: "validating-tracepipelines-v1beta1.kyma-project.io",
    },
];

/// The certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key does not parse or do not match.
    #[error("webhook serving certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("webhook TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// An `admission.k8s.io/v1` AdmissionReview as the webhook answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// Always [`ADMISSION_API_VERSION`].
    pub api_version: String,
    /// Always `AdmissionReview`.
    pub kind: String,
    /// The verdict.
    pub response: AdmissionResponse,
}

/// The verdict on one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid, echoed (empty when the request could not be read).
    pub uid: String,
    /// Whether the object may be written.
    pub allowed: bool,
    /// Why, as a `metav1.Status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReviewStatus>,
}

/// The subset of `metav1.Status` a webhook answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatus {
    /// HTTP-style code: 200, 403 or 400.
    pub code: u16,
    /// `Forbidden` or `BadRequest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For people; the API server shows it to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The incoming review: only what the decision needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingReview {
    api_version: String,
    kind: String,
    #[serde(default)]
    request: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingRequest {
    uid: String,
    kind: Gvk,
    operation: String,
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// The part of a TracePipeline the webhook checks. `transform` and `filter` have the same shape in
/// `v1alpha1` and `v1beta1` (the CRD's [`crate::crd::TracePipelineSpec`] types), so both versions
/// read the same way; the rest of the object is left to the schema the API server has already
/// checked.
#[derive(Debug, Default, Deserialize)]
struct OttlOf {
    #[serde(default)]
    spec: Option<OttlSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct OttlSpec {
    #[serde(default)]
    transform: Option<Vec<TransformSpec>>,
    #[serde(default)]
    filter: Option<Vec<FilterSpec>>,
}

/// The certificate being served; replaced in place when renewed, without restarting the listener.
#[derive(Debug)]
pub struct CertSlot(ArcSwap<CertifiedKey>);

// === impl AdmissionReview ===

impl AdmissionReview {
    fn answer(uid: &str, allowed: bool, status: ReviewStatus) -> Self {
        Self {
            api_version: ADMISSION_API_VERSION.into(),
            kind: "AdmissionReview".into(),
            response: AdmissionResponse { uid: uid.into(), allowed, status: Some(status) },
        }
    }

    fn allowed(uid: &str) -> Self {
        Self::answer(uid, true, ReviewStatus { code: 200, reason: None, message: None })
    }

    fn denied(uid: &str, message: String) -> Self {
        let status = ReviewStatus { code: 403, reason: Some("Forbidden".into()), message: Some(message) };
        Self::answer(uid, false, status)
    }

    fn bad_request(uid: &str, message: String) -> Self {
        let status = ReviewStatus { code: 400, reason: Some("BadRequest".into()), message: Some(message) };
        Self::answer(uid, false, status)
    }

    /// `allowed`, `denied` or `invalid`, for the metrics.
    pub fn outcome(&self) -> &'static str {
        match (&self.response.allowed, self.response.status.as_ref().map(|s| s.code)) {
            (true, _) => "allowed",
            (false, Some(400)) => "invalid",
            (false, _) => "denied",
        }
    }
}

// === impl CertSlot ===

impl CertSlot {
    /// A slot serving `cert_pem` (the leaf first) with `key_pem`.
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Self, WebhookError> {
        Ok(Self(ArcSwap::from_pointee(certified_key(cert_pem, key_pem)?)))
    }

    /// Serves `cert_pem` with `key_pem` from the next handshake on; connections already open keep
    /// the certificate they were opened with.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), WebhookError> {
        self.0.store(Arc::new(certified_key(cert_pem, key_pem)?));
        Ok(())
    }

    /// The certificate being served now (leaf, DER).
    pub fn current(&self) -> Option<CertificateDer<'static>> {
        self.0.load().cert.first().cloned()
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

// === free functions ===

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, WebhookError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebhookError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(WebhookError::Certificate("no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| WebhookError::Certificate(e.to_string()))?;
    Ok(CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())?)
}

/// The rustls configuration serving whatever `slot` holds, offering HTTP/2 and HTTP/1.1.
pub fn server_config(slot: Arc<CertSlot>) -> Result<Arc<ServerConfig>, WebhookError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Decides one AdmissionReview, given as the raw request body.
pub fn review(body: &[u8]) -> AdmissionReview {
    let incoming: IncomingReview = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return AdmissionReview::bad_request("", format!("cannot decode the AdmissionReview: {e}")),
    };
    if incoming.api_version != ADMISSION_API_VERSION || incoming.kind != "AdmissionReview" {
        return AdmissionReview::bad_request(
            "",
            format!(
                "expected an {ADMISSION_API_VERSION} AdmissionReview, got {} {}",
                incoming.api_version, incoming.kind
            ),
        );
    }
    let Some(request) = incoming.request.filter(|r| !r.is_null()) else {
        return AdmissionReview::bad_request("", "the AdmissionReview has no request".into());
    };
    let raw_uid = request.get("uid").and_then(Value::as_str).unwrap_or_default().to_string();
    let request: IncomingRequest = match serde_path_to_error::deserialize(request) {
        Ok(r) => r,
        Err(e) => {
            return AdmissionReview::bad_request(
                &raw_uid,
                format!("cannot decode the AdmissionReview's request at {}: {}", e.path(), e.inner()),
            );
        }
    };
    let uid = request.uid.as_str();
    let gvk = &request.kind;
    if gvk.group != GROUP || gvk.kind != "TracePipeline" || !SERVED.iter().any(|s| s.version == gvk.version) {
        return AdmissionReview::bad_request(
            uid,
            format!(
                "this webhook validates {GROUP} TracePipelines (v1alpha1, v1beta1), not {}/{} {}",
                gvk.group, gvk.version, gvk.kind
            ),
        );
    }
    match request.operation.as_str() {
        "CREATE" | "UPDATE" => {}
        // Nothing to check on DELETE (and CONNECT does not apply to TracePipelines).
        _ => return AdmissionReview::allowed(uid),
    }
    let Some(object) = request.object else {
        return AdmissionReview::bad_request(
            uid,
            format!("a {} request carries no object", request.operation),
        );
    };
    let ottl: OttlOf = match serde_path_to_error::deserialize(object) {
        Ok(o) => o,
        Err(e) => {
            return AdmissionReview::bad_request(
                uid,
                format!("cannot decode the TracePipeline at {}: {}", e.path(), e.inner()),
            );
        }
    };
    let spec = ottl.spec.unwrap_or_default();
    match check_ottl(&spec.transform.unwrap_or_default(), &spec.filter.unwrap_or_default()) {
        Ok(()) => AdmissionReview::allowed(uid),
        Err(message) => AdmissionReview::denied(uid, message),
    }
}

/// Kyma's webhook order: every FilterSpec, then every TransformSpec; the first error wins, worded
/// as Kyma's `OTTLSpecInvalid` message.
fn check_ottl(transform: &[TransformSpec], filter: &[FilterSpec]) -> Result<(), String> {
    for f in filter {
        compile(&[], std::slice::from_ref(f)).map_err(|e| e.message)?;
    }
    for t in transform {
        compile(std::slice::from_ref(t), &[]).map_err(|e| e.message)?;
    }
    Ok(())
}

type Body = Full<Bytes>;

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r
}

fn json_response(review: &AdmissionReview) -> Response<Body> {
    let body = serde_json::to_vec(review).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

async fn handle(req: Request<Incoming>, metrics: &ManagerMetrics, bodies: &BodyReader) -> Response<Body> {
    let path = req.uri().path();
    if !SERVED.iter().any(|s| s.path == path) {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    if req.method() != http::Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let answer = if content_type.is_some_and(|c| !c.starts_with("application/json")) {
        AdmissionReview::bad_request(
            "",
            format!("content type {} is not application/json", content_type.unwrap_or_default()),
        )
    } else {
        match bodies.read(req.into_body(), MAX_BODY_BYTES).await {
            Ok(body) => review(&body),
            Err(e) => AdmissionReview::bad_request("", e.to_string()),
        }
    };
    metrics.admission_reviewed(answer.outcome());
    if let Some(status) = answer.response.status.as_ref().filter(|_| !answer.response.allowed) {
        tracing::info!(uid = %answer.response.uid, code = status.code, message = status.message.as_deref().unwrap_or_default(), "admission denied");
    }
    json_response(&answer)
}

/// Serves the webhook over TLS (`tls`, typically [`server_config`]) until `stop` fires, with the
/// default deadlines and connection cap.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    metrics: ManagerMetrics,
    stop: CancellationToken,
) {
    serve_with_limits(listener, tls, metrics, ServerLimits::default(), stop).await;
}

/// [`serve`] under `limits`.
pub async fn serve_with_limits(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    metrics: ManagerMetrics,
    limits: ServerLimits,
    stop: CancellationToken,
) {
    let server = Server::new("webhook", limits, metrics.clone());
    let bodies = server.body_reader();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    server
        .serve(listener, Some(acceptor), stop, move |req| {
            let (metrics, bodies) = (metrics.clone(), bodies.clone());
            async move { handle(req, &metrics, &bodies).await }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const V1BETA1: &str = "telemetry.kyma-project.io/v1beta1";
    const V1ALPHA1: &str = "telemetry.kyma-project.io/v1alpha1";
    const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

    /// An AdmissionReview as kube-apiserver sends it for `operation` on a TracePipeline of
    /// `api_version` with `spec`.
    fn request(api_version: &str, operation: &str, spec: Value) -> Vec<u8> {
        let version = api_version.rsplit('/').next().unwrap_or_default();
        let object = json!({
            "apiVersion": api_version, "kind": "TracePipeline",
            "metadata": {"name": "p", "uid": "7e6b4a3c-0000-4000-8000-000000000001", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": []},
            "spec": spec,
        });
        let mut request = json!({
            "uid": UID,
            "kind": {"group": "telemetry.kyma-project.io", "version": version, "kind": "TracePipeline"},
            "resource": {"group": "telemetry.kyma-project.io", "version": version, "resource": "tracepipelines"},
            "requestKind": {"group": "telemetry.kyma-project.io", "version": version, "kind": "TracePipeline"},
            "requestResource": {"group": "telemetry.kyma-project.io", "version": version, "resource": "tracepipelines"},
            "name": "p",
            "operation": operation,
            "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        });
        if operation == "UPDATE" || operation == "DELETE" {
            request["oldObject"] = request["object"].clone();
            request["options"]["kind"] =
                json!(if operation == "UPDATE" { "UpdateOptions" } else { "DeleteOptions" });
        }
        if operation == "DELETE" {
            request["object"] = Value::Null;
        }
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}),
        )
        .unwrap()
    }

    fn spec(transform: Value, filter: Value) -> Value {
        json!({"output": {"otlp": {"endpoint": {"value": "http://backend.tracing:4317"}}},
               "transform": transform, "filter": filter})
    }

    fn message(r: &AdmissionReview) -> String {
        r.response.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default()
    }

    fn assert_denied(r: &AdmissionReview, kind: &str) {
        assert!(!r.response.allowed, "{r:?}");
        assert_eq!(r.response.uid, UID);
        let status = r.response.status.as_ref().unwrap();
        assert_eq!((status.code, status.reason.as_deref()), (403, Some("Forbidden")));
        let m = message(r);
        assert!(m.starts_with(&format!("OTTL specification is invalid, invalid {kind}: ")), "{m}");
        assert!(
            m.ends_with(". Fix the syntax error indicated by the message or see troubleshooting: https://kyma-project.io/external-content/telemetry-manager/docs/user/troubleshooting.html#ottl-spec-invalid-with-unspecific-error-message"),
            "{m}"
        );
    }

    /// The filter of Kyma's e2e `TestFilterInvalid`: a valid condition and a context-less one.
    fn kyma_filter_invalid() -> Value {
        json!([{"conditions": ["Len(resource.attributes[\"k8s.namespace.name\"]) > 0", "attributes[\"foo\"] == \"bar\""]}])
    }

    /// Scenario: a pipeline with valid transform and filter OTTL, created in each served version; one
    /// with no OTTL at all.
    /// Guarantees: allowed, with the request's uid echoed and controller-runtime's 200 status.
    #[test]
    fn valid_ottl_is_allowed() {
        for api_version in [V1BETA1, V1ALPHA1] {
            let valid = spec(
                json!([{"conditions": ["span.name == \"drop-me\""], "statements": ["set(span.attributes[\"team\"], \"a\")"]}]),
                json!([{"conditions": ["span.attributes[\"http.route\"] == \"/healthz\""]}]),
            );
            for s in [valid, spec(json!([]), json!([]))] {
                let r = review(&request(api_version, "CREATE", s));
                assert!(r.response.allowed, "{api_version}: {r:?}");
                assert_eq!(r.response.uid, UID);
                assert_eq!(r.response.status.as_ref().map(|s| s.code), Some(200));
                assert_eq!(
                    (r.api_version.as_str(), r.kind.as_str()),
                    ("admission.k8s.io/v1", "AdmissionReview")
                );
            }
        }
    }

    /// Scenario: Kyma's `TestFilterInvalid`, created in each served version.
    /// Guarantees: denied with 403 Forbidden and Kyma's message naming the FilterSpec.
    #[test]
    fn kyma_filter_invalid_is_denied() {
        for api_version in [V1BETA1, V1ALPHA1] {
            let r = review(&request(api_version, "CREATE", spec(json!([]), kyma_filter_invalid())));
            assert_denied(&r, "FilterSpec");
        }
    }

    /// Scenario: Kyma's `TestTransformInvalid` (`sset`, an unknown function), in each served version.
    /// Guarantees: denied with 403 and Kyma's message naming the TransformSpec and the function.
    #[test]
    fn kyma_transform_invalid_is_denied() {
        for api_version in [V1BETA1, V1ALPHA1] {
            let transform = json!([{"statements": ["sset(span.attributes[\"test\"], \"foo\")"]}]);
            let r = review(&request(api_version, "CREATE", spec(transform, json!([]))));
            assert_denied(&r, "TransformSpec");
            assert!(message(&r).contains("sset"), "{}", message(&r));
        }
    }

    /// Scenario: a pipeline whose transform and filter are both invalid.
    /// Guarantees: the FilterSpec is named, as Kyma's webhook checks filters first.
    #[test]
    fn filters_are_checked_before_transforms() {
        let transform = json!([{"statements": ["sset(span.attributes[\"test\"], \"foo\")"]}]);
        let r = review(&request(V1BETA1, "CREATE", spec(transform, kyma_filter_invalid())));
        assert_denied(&r, "FilterSpec");
    }

    /// Scenario: the same specs on UPDATE; an invalid pipeline being deleted.
    /// Guarantees: UPDATE is judged as CREATE; DELETE is allowed.
    #[test]
    fn update_is_validated_delete_is_allowed() {
        let r = review(&request(V1BETA1, "UPDATE", spec(json!([]), kyma_filter_invalid())));
        assert_denied(&r, "FilterSpec");
        let r = review(&request(
            V1ALPHA1,
            "UPDATE",
            spec(json!([]), json!([{"conditions": ["span.name == \"x\""]}])),
        ));
        assert!(r.response.allowed, "{r:?}");
        let r = review(&request(V1BETA1, "DELETE", spec(json!([]), kyma_filter_invalid())));
        assert!(r.response.allowed, "{r:?}");
        assert_eq!(r.response.uid, UID);
    }

    /// Scenario: bodies that are not a usable AdmissionReview: garbage, another review version, no
    /// request, another kind, a CREATE without object, a filter of the wrong shape.
    /// Guarantees: each is refused with 400 and a message saying what is wrong; the uid is echoed
    /// whenever it could be read.
    #[test]
    fn undecodable_reviews_get_400() {
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (b"{not json".to_vec(), "", "cannot decode the AdmissionReview"),
            (
                serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}})).unwrap(),
                "",
                "expected an admission.k8s.io/v1 AdmissionReview",
            ),
            (
                serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})).unwrap(),
                "",
                "no request",
            ),
            (
                serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                    "uid": UID, "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": {}}})).unwrap(),
                UID,
                "not /v1 Pod",
            ),
            (
                serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                    "uid": UID, "operation": "CREATE", "kind": {"group": "telemetry.kyma-project.io", "version": "v1beta1", "kind": "TracePipeline"}}})).unwrap(),
                UID,
                "carries no object",
            ),
            (request(V1BETA1, "CREATE", spec(json!([]), json!({"conditions": "x"}))), UID, "at spec.filter"),
        ];
        for (body, uid, expected) in cases {
            let r = review(&body);
            assert!(!r.response.allowed, "{r:?}");
            assert_eq!(r.response.uid, uid);
            let status = r.response.status.as_ref().unwrap();
            assert_eq!(status.code, 400, "{r:?}");
            assert!(message(&r).contains(expected), "{expected}: {}", message(&r));
            assert_eq!(r.outcome(), "invalid");
        }
    }

    /// Scenario: a denial serialised as the API server reads it.
    /// Guarantees: controller-runtime's shape: `response.uid`, `allowed: false`, `status.code`,
    /// `status.reason`, `status.message`.
    #[test]
    fn denial_wire_shape() {
        let r = review(&request(V1BETA1, "CREATE", spec(json!([]), kyma_filter_invalid())));
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(wire["kind"], "AdmissionReview");
        assert_eq!(wire["response"]["uid"], UID);
        assert_eq!(wire["response"]["allowed"], false);
        assert_eq!(wire["response"]["status"]["code"], 403);
        assert_eq!(wire["response"]["status"]["reason"], "Forbidden");
        assert!(wire["response"]["status"]["message"].as_str().unwrap().contains("invalid FilterSpec"));
        assert_eq!(r.outcome(), "denied");
    }
}
