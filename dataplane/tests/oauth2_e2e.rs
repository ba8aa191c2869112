//! OAuth2 client credentials end to end: the real `otlp-gateway` binary, a real OAuth2 server (the npm
//! package `oauth2-mock-server`, started by each test on 127.0.0.1, see `oauth2_mock.js`) and a
//! backend that verifies every bearer token's RS256 signature against that server's JWKS, its issuer,
//! audience and expiry, and refuses the export otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, Bytes};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

/// The version `.ci/run` installs too; 7.2 runs on Node 18, 20 and 22.
const MOCK_PACKAGE: &str = "oauth2-mock-server@7.2.1";
/// The audience the mock puts in its tokens and the backend requires.
const AUDIENCE: &str = "otlp-backend";
const CLIENT_SECRET: &str = "s3cret-never-logged";

/// `target/oauth2-mock/node_modules`, installed with npm on first use.
fn mock_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("oauth2-mock");
        let modules = prefix.join("node_modules");
        if !modules.join("oauth2-mock-server/package.json").exists() {
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(&prefix)
                .arg(MOCK_PACKAGE)
                .output()
                .expect("npm is needed for the OAuth2 tests (.ci/run installs Node.js)");
            assert!(
                out.status.success(),
                "npm install {MOCK_PACKAGE}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        modules
    })
    .clone()
}

/// A running `oauth2-mock-server`, steered through files in its state directory.
struct Mock {
    proc: Proc,
    port: u16,
    issuer: String,
    state: PathBuf,
}

impl Mock {
    async fn start(dir: &Path) -> Self {
        let state = dir.join("mock-state");
        std::fs::create_dir_all(&state).unwrap();
        let log = dir.join("oauth2-mock.log");
        let child = Command::new("node")
            .arg(workspace_root().join("dataplane/tests/oauth2_mock.js"))
            .arg(&state)
            .env("NODE_PATH", mock_modules())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("oauth2-mock.err")).unwrap())
            .spawn()
            .expect("node is needed for the OAuth2 tests (.ci/run installs Node.js)");
        let proc = Proc { child, log };
        let mut started = Value::Null;
        wait_until("the OAuth2 mock to listen", Duration::from_secs(20), || {
            started = proc
                .log_text()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v.get("port").is_some())
                .unwrap_or(Value::Null);
            !started.is_null()
        })
        .await;
        let port = started["port"].as_u64().unwrap() as u16;
        Self { proc, port, issuer: started["issuer"].as_str().unwrap().to_string(), state }
    }

    fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn set(&self, name: &str, value: &str) {
        std::fs::write(self.state.join(name), value).unwrap();
    }

    fn clear(&self, name: &str) {
        let _ = std::fs::remove_file(self.state.join(name));
    }

    /// Every token request the mock answered, in order.
    fn token_requests(&self) -> Vec<Value> {
        self.proc
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "token")
            .collect()
    }

    /// The mock's signing keys: key id, modulus and exponent.
    async fn jwks(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let (_, body) = get(&format!("http://127.0.0.1:{}/jwks", self.port)).await.unwrap();
        let jwks: Value = serde_json::from_slice(&body).unwrap();
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kid"].as_str().unwrap().to_string(), b64(&k["n"]), b64(&k["e"])))
            .collect()
    }
}

/// What a token must be for the backend to take the export.
#[derive(Clone)]
struct Verifier {
    keys: Vec<(String, Vec<u8>, Vec<u8>)>,
    issuer: String,
}

impl Verifier {
    /// Checks `Authorization: Bearer <JWT>`: RS256 signature by one of the mock's keys, issuer,
    /// audience, not expired. Returns the token.
    fn check(&self, authorization: Option<&str>) -> Result<String, String> {
        let token = authorization.and_then(|a| a.strip_prefix("Bearer ")).ok_or("no bearer token")?;
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else { return Err("not a JWT".into()) };
        let b64 =
            |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string());
        let header: Value = serde_json::from_slice(&b64(header)?).map_err(|e| e.to_string())?;
        if header["alg"] != "RS256" {
            return Err(format!("alg {}", header["alg"]));
        }
        let (_, n, e) =
            self.keys.iter().find(|(kid, _, _)| header["kid"] == kid.as_str()).ok_or("unknown key id")?;
        let signed = &token[..token.rfind('.').unwrap()];
        ring::signature::RsaPublicKeyComponents { n, e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &b64(signature)?)
            .map_err(|_| "bad signature")?;
        let claims: Value = serde_json::from_slice(&b64(payload)?).map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        if claims["iss"] != self.issuer.as_str() || claims["aud"] != AUDIENCE {
            return Err(format!("wrong issuer or audience: {claims}"));
        }
        if claims["exp"].as_u64().unwrap_or(0) <= now {
            return Err("expired".into());
        }
        Ok(token.to_string())
    }
}

/// What a backend saw.
#[derive(Default)]
struct Seen {
    span_ids: Vec<Vec<u8>>,
    tokens: HashSet<String>,
    refused: Vec<String>,
}

/// An OTLP backend (gRPC and HTTP, plain or TLS) that takes an export only with a valid token.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

/// A CA and a server certificate for 127.0.0.1 it issued.
struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

impl Backend {
    async fn start(verifier: Verifier, tls: Option<&Pki>) -> Self {
        let acceptor = tls.map(|pki| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
                .unwrap();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let kept = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, verifier, kept) = (acceptor.clone(), verifier.clone(), Arc::clone(&kept));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (verifier, kept) = (verifier.clone(), Arc::clone(&kept));
                            async move { Ok::<_, std::convert::Infallible>(answer(req, &verifier, &kept).await) }
                        },
                    );
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match acceptor {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                            Err(_) => return,
                        },
                        None => builder.serve_connection(TokioIo::new(tcp), service).await,
                    };
                });
            }
        });
        Self { addr, seen }
    }

    fn spans(&self) -> usize {
        self.seen.lock().unwrap().span_ids.len()
    }

    fn unique_spans(&self) -> HashSet<Vec<u8>> {
        self.seen.lock().unwrap().span_ids.iter().cloned().collect()
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    verifier: &Verifier,
    seen: &Mutex<Seen>,
) -> hyper::Response<Full<Bytes>> {
    let grpc = req.headers().get("content-type").is_some_and(|v| v == "application/grpc");
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let gzip = ["grpc-encoding", "content-encoding"]
        .iter()
        .any(|h| req.headers().get(*h).is_some_and(|v| v == "gzip"));
    let mut body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut resp = hyper::Response::new(Full::new(Bytes::new()));
    let content_type = if grpc { "application/grpc" } else { "application/x-protobuf" };
    resp.headers_mut().insert("content-type", content_type.parse().unwrap());
    match verifier.check(authorization.as_deref()) {
        Ok(token) => {
            if grpc {
                body.advance(5);
                resp.headers_mut().insert("grpc-status", "0".parse().unwrap());
            }
            if gzip {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).unwrap();
                body = Bytes::from(plain);
            }
            let request = ExportTraceServiceRequest::decode(body).unwrap();
            let mut seen = seen.lock().unwrap();
            seen.tokens.insert(token);
            for span in request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                seen.span_ids.push(span.span_id.clone());
            }
        }
        Err(why) => {
            seen.lock().unwrap().refused.push(why);
            if grpc {
                resp.headers_mut().insert("grpc-status", "16".parse().unwrap());
            } else {
                *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
            }
        }
    }
    resp
}

/// `spec.output.otlp` lines for OAuth2 with inline values.
fn oauth2_lines(token_url: &str, secret: &str) -> String {
    format!(
        "      authentication:\n        oauth2:\n          tokenURL: {{value: '{token_url}'}}\n          clientID: {{value: gateway}}\n          clientSecret: {{value: '{secret}'}}\n          scopes: [traces.write]\n          params: {{grant_type: client_credentials}}\n"
    )
}

fn oauth2_pipeline(name: &str, protocol: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\nspec:\n  output:\n    otlp:\n      protocol: {protocol}\n      compression: none\n      endpoint:\n        value: {endpoint}\n{extra}---\n"
    )
}

fn tls_ca_lines(pem: &str) -> String {
    let indented: String = pem.lines().map(|l| format!("            {l}\n")).collect();
    format!("      tls:\n        ca:\n          value: |\n{indented}")
}

/// A request of `spans` spans whose span ids start at `first_id`, so that rounds can be told apart.
fn request_from(first_id: u64, spans: usize) -> Vec<u8> {
    let mut request = otlp_gateway::testing::sample_request(1, spans, 1, 8);
    for (i, span) in request.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        span.span_id = (first_id + i as u64).to_be_bytes().to_vec();
    }
    request.encode_to_vec()
}

/// Sends `requests` requests of `spans` spans straight to the gateway's gRPC receiver.
async fn send_spans(gw: &Gateway, requests: usize, spans: usize, seed: u64) {
    let client = grpc_client(gw.grpc, tracegw_contract::Compression::None, None);
    for i in 0..requests {
        send_raw(&client, request_from(seed * 1_000_000 + (i * spans) as u64 + 1, spans), spans)
            .await
            .unwrap();
    }
}

fn token_metric(gw: &Gateway, exporter: &str, result: &str) -> f64 {
    gw.metric(&format!(
        "otlp_gateway_oauth2_token_requests_total{{exporter=\"{exporter}\",result=\"{result}\"}}"
    ))
}

/// Scenario: two pipelines with OAuth2, one over gRPC with TLS (the CA in `tls.ca`) and one over
/// HTTP in plain text, both with scopes and Kyma's e2e `params`, fed by the Python SDK twice.
/// Guarantees: every export carries `Authorization: Bearer <JWT>` that the backend verifies against
/// the mock's JWKS; each pipeline asks for one token (HTTP Basic, `grant_type=client_credentials`,
/// `scope=traces.write`) and reuses it for the second round; the metrics count one successful
/// token request per pipeline; every span arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_fetched_once_and_sent_on_grpc_and_http() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let pki = pki();
    let grpc_backend = Backend::start(verifier.clone(), Some(&pki)).await;
    let http_backend = Backend::start(verifier, None).await;
    let oauth = oauth2_lines(&mock.token_url(), CLIENT_SECRET);
    let yaml = oauth2_pipeline(
        "oauth-grpc",
        "grpc",
        &format!("https://{}", grpc_backend.addr),
        &format!("{oauth}{}", tls_ca_lines(&pki.ca_pem)),
    ) + &oauth2_pipeline("oauth-http", "http", &format!("http://{}", http_backend.addr), &oauth);
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "100ms"]).await;
    send_with_python("grpc", gw.grpc, 120, "oauth2-one").await;
    wait_until("the first round at both backends", Duration::from_secs(30), || {
        grpc_backend.spans() == 120 && http_backend.spans() == 120
    })
    .await;
    send_with_python("http", gw.http, 80, "oauth2-two").await;
    wait_until("the second round at both backends", Duration::from_secs(30), || {
        grpc_backend.spans() == 200 && http_backend.spans() == 200
    })
    .await;
    for backend in [&grpc_backend, &http_backend] {
        assert_eq!(backend.unique_spans().len(), 200);
        let seen = backend.seen.lock().unwrap();
        assert!(seen.refused.is_empty(), "{:?}", seen.refused);
        assert_eq!(seen.tokens.len(), 1, "one token per pipeline");
    }
    let requests = mock.token_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for r in &requests {
        assert_eq!((r["auth"].as_str(), r["status"].as_u64()), (Some("basic"), Some(200)), "{r}");
        assert_eq!(
            (r["grant_type"].as_str(), r["scope"].as_str()),
            (Some("client_credentials"), Some("traces.write"))
        );
        assert_eq!(r["client_id"], "gateway");
    }
    for exporter in ["otlp_grpc/tracepipeline-oauth-grpc", "otlp_http/tracepipeline-oauth-http"] {
        assert_eq!(token_metric(&gw, exporter, "success"), 1.0, "{exporter}");
    }
    assert!(!gw.proc.log_text().contains(CLIENT_SECRET), "the client secret is in the log");
}

/// Scenario: Kyma's user guide's OAuth2 manifest as documented (docs/user/integrate-otlp-backend:
/// `clientId`, `clientSecret`, `tokenUrl` and the endpoint from Secret `backend`, no `tls` block,
/// gRPC by default) with that Secret; the backend's CA is the system's trust store
/// (`SSL_CERT_FILE`), as a public CA would be.
/// Guarantees: the pipeline runs, fetches a token and delivers every span with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kymas_documented_oauth2_manifest_runs() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let pki = pki();
    let backend = Backend::start(verifier, Some(&pki)).await;
    let ca_file = dir.path().join("system-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let yaml = format!(
        r#"apiVersion: telemetry.kyma-project.io/v1beta1
kind: TracePipeline
metadata:
  name: backend
spec:
  output:
    otlp:
      endpoint:
        valueFrom:
          secretKeyRef:
              name: backend
              namespace: default
              key: endpoint
      authentication:
        oauth2:
          clientId:
            valueFrom:
              secretKeyRef:
                name: backend
                namespace: default
                key: clientId
          clientSecret:
            valueFrom:
              secretKeyRef:
                name: backend
                namespace: default
                key: clientSecret
          tokenUrl:
            valueFrom:
              secretKeyRef:
                name: backend
                namespace: default
                key: tokenUrl
---
apiVersion: v1
kind: Secret
metadata: {{name: backend, namespace: default}}
stringData:
  endpoint: https://{}
  clientId: the-mock-does-not-verify
  clientSecret: the-mock-does-not-verify
  tokenUrl: {}
"#,
        backend.addr,
        mock.token_url()
    );
    let ssl_cert_file = ca_file.display().to_string();
    let gw = Gateway::start_with_env(
        dir.path(),
        &yaml,
        &["--batch-timeout", "100ms"],
        &[("SSL_CERT_FILE", ssl_cert_file.as_str())],
    )
    .await;
    assert_eq!(gw.status()["pipelines"][0]["running"], true, "{}", gw.status());
    send_with_python("grpc", gw.grpc, 50, "documented").await;
    wait_until("the spans at the backend", Duration::from_secs(30), || backend.spans() == 50).await;
    assert!(backend.seen.lock().unwrap().refused.is_empty());
    assert_eq!(mock.token_requests().len(), 1);
}

/// Scenario: the mock issues tokens that live 302 s, 2 s longer than the 5-minute expiry buffer;
/// the gateway exports every 200 ms for 5 s.
/// Guarantees: a token is reused for about 2 s, then renewed before the backend could see it
/// expire: several tokens over the run, far fewer token requests than exports, every export
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_renewed_before_they_expire() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    mock.set("expires-in", "302");
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let backend = Backend::start(verifier, None).await;
    let yaml = oauth2_pipeline(
        "short",
        "http",
        &format!("http://{}", backend.addr),
        &oauth2_lines(&mock.token_url(), CLIENT_SECRET),
    );
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "50ms"]).await;
    let rounds = 25;
    for round in 0..rounds {
        send_spans(&gw, 1, 4, round).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until("every span at the backend", Duration::from_secs(20), || {
        backend.spans() == rounds as usize * 4
    })
    .await;
    let tokens = backend.seen.lock().unwrap().tokens.len();
    let requests = mock.token_requests().len();
    assert!(tokens >= 2, "the token was never renewed");
    assert!(requests <= 5, "{requests} token requests for {rounds} exports: not cached");
    assert!(backend.seen.lock().unwrap().refused.is_empty());
}

/// Scenario: the token endpoint answers 503 while spans are sent to a gRPC (TLS) and an HTTP
/// pipeline that retry quickly, then recovers.
/// Guarantees: nothing is lost on either protocol: the exports are retried with the pipeline's
/// backoff until a token comes, then every span arrives once; the failures are counted in
/// `otlp_gateway_oauth2_token_requests_total{result="failure"}` and logged with the pipeline's
/// exporter, never with the client secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_is_down_for_a_while_loses_nothing() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    mock.set("down", "");
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let pki = pki();
    let grpc_backend = Backend::start(verifier.clone(), Some(&pki)).await;
    let http_backend = Backend::start(verifier, None).await;
    let oauth = oauth2_lines(&mock.token_url(), CLIENT_SECRET);
    let yaml = oauth2_pipeline(
        "down-grpc",
        "grpc",
        &format!("https://{}", grpc_backend.addr),
        &format!("{oauth}{}", tls_ca_lines(&pki.ca_pem)),
    ) + &oauth2_pipeline("down-http", "http", &format!("http://{}", http_backend.addr), &oauth);
    let args =
        ["--batch-timeout", "50ms", "--retry-initial-interval", "100ms", "--retry-max-interval", "200ms"];
    let gw = Gateway::start(dir.path(), &yaml, &args).await;
    send_spans(&gw, 3, 10, 1).await;
    let exporters = ["otlp_grpc/tracepipeline-down-grpc", "otlp_http/tracepipeline-down-http"];
    wait_until("token failures on both pipelines", Duration::from_secs(20), || {
        exporters.iter().all(|e| token_metric(&gw, e, "failure") >= 3.0)
    })
    .await;
    assert_eq!(grpc_backend.spans() + http_backend.spans(), 0);
    mock.clear("down");
    wait_until("every span at both backends", Duration::from_secs(30), || {
        grpc_backend.spans() == 30 && http_backend.spans() == 30
    })
    .await;
    for (backend, exporter) in [(&grpc_backend, exporters[0]), (&http_backend, exporters[1])] {
        assert_eq!(backend.unique_spans().len(), 30, "{exporter}");
        assert_eq!(
            gw.metric(&format!("otelcol_exporter_send_failed_spans_total{{exporter=\"{exporter}\"}}")),
            0.0
        );
        assert!(token_metric(&gw, exporter, "success") >= 1.0);
    }
    let log = gw.proc.log_text();
    assert!(!log.contains(CLIENT_SECRET), "the client secret is in the log");
    let warnings: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "cannot get an OAuth2 token; the export will be retried")
        .collect();
    for exporter in exporters {
        let w = warnings
            .iter()
            .find(|w| w["exporter"] == exporter)
            .unwrap_or_else(|| panic!("no warning for {exporter}"));
        assert!(w["error"].as_str().unwrap().contains("temporarily_unavailable"), "{w}");
        // The token URL may come from a Secret: the warning names the exporter only.
        assert!(w.get("token_url").is_none(), "{w}");
    }
}

/// Scenario: a token endpoint that refuses credentials sent as HTTP Basic.
/// Guarantees: as x/oauth2's auto-detection: each token request is tried with Basic first, then
/// with `client_id` and `client_secret` in the form, which succeeds; the export goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_in_the_form_when_basic_is_refused() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    mock.set("reject-basic", "");
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let backend = Backend::start(verifier, None).await;
    let yaml = oauth2_pipeline(
        "form",
        "http",
        &format!("http://{}", backend.addr),
        &oauth2_lines(&mock.token_url(), CLIENT_SECRET),
    );
    let gw = Gateway::start(dir.path(), &yaml, &["--batch-timeout", "50ms"]).await;
    send_spans(&gw, 1, 5, 1).await;
    wait_until("the spans at the backend", Duration::from_secs(20), || backend.spans() == 5).await;
    let requests = mock.token_requests();
    let auth: Vec<&str> = requests.iter().map(|r| r["auth"].as_str().unwrap()).collect();
    assert_eq!(auth, ["basic", "form"]);
    assert_eq!(requests[0]["fields"], serde_json::json!(["grant_type", "scope"]));
    assert_eq!(
        requests[1]["fields"],
        serde_json::json!(["client_id", "client_secret", "grant_type", "scope"])
    );
    assert_eq!(requests[1]["secret_matches"], true);
    assert_eq!(token_metric(&gw, "otlp_http/tracepipeline-form", "success"), 1.0);
}

/// Scenario: the client secret is rotated (the token server and the pipeline's Secret both change)
/// while spans keep flowing, the token server refusing the old secret from then on.
/// Guarantees: no span is lost: the pipeline restarts with the new secret and fetches a token
/// with it, the old pipeline drains with the token it already holds; no token request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_secret_is_rotated_while_spans_flow() {
    let dir = tempdir();
    let mock = Mock::start(dir.path()).await;
    mock.set("expected-secret", "one");
    let verifier = Verifier { keys: mock.jwks().await, issuer: mock.issuer.clone() };
    let backend = Backend::start(verifier, None).await;
    let yaml = |secret: &str| {
        let lines = format!(
            "      authentication:\n        oauth2:\n          tokenURL: {{value: '{}'}}\n          clientID: {{value: gateway}}\n          clientSecret: {{valueFrom: {{secretKeyRef: {{name: oauth, namespace: default, key: secret}}}}}}\n",
            mock.token_url()
        );
        oauth2_pipeline("rotate", "http", &format!("http://{}", backend.addr), &lines)
            + &format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: oauth, namespace: default}}\nstringData: {{secret: {secret}}}\n"
            )
    };
    let gw = Gateway::start(dir.path(), &yaml("one"), &["--batch-timeout", "50ms"]).await;
    let client = grpc_client(gw.grpc, tracegw_contract::Compression::None, None);
    let mut sent = 0;
    for round in 0..60u64 {
        if round == 20 {
            mock.set("expected-secret", "two");
            std::fs::write(&gw.pipelines, yaml("two")).unwrap();
        }
        send_raw(&client, request_from(round * 5 + 1, 5), 5).await.unwrap();
        sent += 5;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until("the rotation to be applied", Duration::from_secs(20), || mock.token_requests().len() >= 2)
        .await;
    wait_until("every span at the backend", Duration::from_secs(30), || backend.spans() == sent).await;
    assert_eq!(backend.unique_spans().len(), sent);
    let requests = mock.token_requests();
    assert!(requests.iter().all(|r| r["status"] == 200 && r["secret_matches"] == true), "{requests:?}");
    assert!(backend.seen.lock().unwrap().refused.is_empty());
}
