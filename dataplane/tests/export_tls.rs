//! The exporter against a real TLS server on 127.0.0.1 (rustls, certificates made by rcgen for the
//! test): CA pinning, mTLS, `insecureSkipVerify`, and both OTLP protocols over TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_gateway::batch::Batch;
use otlp_gateway::export::{BuildError, ExportError, ExportSettings, Exporter};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tracegw_contract::{Compression, OtlpOutputConfig, Protocol, Sensitive, TlsConfig};

struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
    ca_der: CertificateDer<'static>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client =
        CertificateParams::new(vec!["gateway".to_string()]).unwrap().signed_by(&client_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// Request bodies a test server received, in arrival order.
type Bodies = Arc<std::sync::Mutex<Vec<Bytes>>>;

/// A TLS server answering every request with an empty OTLP success; counts requests that presented a
/// client certificate and keeps every body.
async fn server(pki: &Pki, require_client_cert: bool) -> (SocketAddr, Arc<AtomicUsize>, Bodies) {
    server_speaking(pki, require_client_cert, &[b"h2", b"http/1.1"]).await
}

/// A backend offering the HTTP versions `alpn` in TLS negotiation.
async fn server_speaking(
    pki: &Pki,
    require_client_cert: bool,
    alpn: &[&[u8]],
) -> (SocketAddr, Arc<AtomicUsize>, Bodies) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config =
        builder.with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key()).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let with_cert = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&with_cert);
    let bodies = Bodies::default();
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let has_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                let grpc_service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let counter = Arc::clone(&counter);
                        let kept = Arc::clone(&kept);
                        async move {
                            let grpc =
                                req.headers().get("content-type").is_some_and(|v| v == "application/grpc");
                            if let Ok(body) = req.into_body().collect().await {
                                kept.lock().unwrap().push(body.to_bytes());
                            }
                            if has_cert {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            if grpc {
                                resp.headers_mut()
                                    .insert("content-type", "application/grpc".parse().unwrap());
                                // Trailers-only success.
                                resp.headers_mut().insert("grpc-status", "0".parse().unwrap());
                            } else {
                                resp.headers_mut()
                                    .insert("content-type", "application/x-protobuf".parse().unwrap());
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), grpc_service)
                    .await;
            });
        }
    });
    (addr, with_cert, bodies)
}

fn output(protocol: Protocol, addr: SocketAddr, tls: TlsConfig) -> OtlpOutputConfig {
    let url = match protocol {
        Protocol::Grpc => format!("https://{addr}"),
        Protocol::Http => format!("https://{addr}/v1/traces"),
    };
    OtlpOutputConfig { protocol, url, compression: Compression::Gzip, headers: vec![], tls, oauth2: None }
}

async fn send(config: &OtlpOutputConfig) -> Result<(), ExportError> {
    let exporter = Exporter::new(config, ExportSettings::default()).unwrap();
    let body = Bytes::from(prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(1, 3, 1, 4)));
    let batch = Batch { len: body.len(), chunks: vec![body], spans: 3 };
    exporter.send(exporter.encode(&batch).unwrap()).await.map(|_| ())
}

/// Scenario: a backend that requires client certificates; the pipeline has the CA, cert and key.
/// Guarantees: both protocols connect, verify the server against the CA only, and present the client
/// certificate.
#[tokio::test]
async fn mtls_with_pinned_ca() {
    let pki = pki();
    let (addr, with_cert, _) = server(&pki, true).await;
    let tls = TlsConfig {
        ca_pem: Some(pki.ca_pem.clone()),
        cert_pem: Some(pki.client_cert_pem.clone()),
        key_pem: Some(Sensitive::new(pki.client_key_pem.clone())),
        ..Default::default()
    };
    for protocol in [Protocol::Http, Protocol::Grpc] {
        send(&output(protocol, addr, tls.clone())).await.unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
    }
    assert_eq!(with_cert.load(Ordering::SeqCst), 2);
}

/// Scenario: the backend requires a client certificate and the pipeline has none.
/// Guarantees: the export fails (retryable: it is a connection failure), nothing is sent.
#[tokio::test]
async fn mtls_without_client_cert_fails() {
    let pki = pki();
    let (addr, with_cert, _) = server(&pki, true).await;
    let tls = TlsConfig { ca_pem: Some(pki.ca_pem.clone()), ..Default::default() };
    let err = send(&output(Protocol::Http, addr, tls)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(with_cert.load(Ordering::SeqCst), 0);
}

/// Scenario: a server certificate from a private CA, the pipeline without that CA, then with
/// `insecureSkipVerify`.
/// Guarantees: verification against the system roots fails; skip-verify connects.
#[tokio::test]
async fn unknown_ca_fails_unless_verification_is_skipped() {
    let pki = pki();
    let (addr, _, _) = server(&pki, false).await;
    let err = send(&output(Protocol::Grpc, addr, TlsConfig::default())).await.unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    let skip = TlsConfig { insecure_skip_verify: true, ..Default::default() };
    send(&output(Protocol::Grpc, addr, skip.clone())).await.unwrap();
    send(&output(Protocol::Http, addr, skip)).await.unwrap();
}

/// Scenario: TLS material that does not parse, and a certificate with a key that is not a key.
/// Guarantees: building the exporter fails with a TLS error naming what is wrong.
#[test]
fn unusable_pem_is_a_build_error() {
    let pki = pki();
    let bad_ca = TlsConfig { ca_pem: Some("not a pem".into()), ..Default::default() };
    let err = Exporter::new(
        &output(Protocol::Http, "127.0.0.1:1".parse().unwrap(), bad_ca),
        ExportSettings::default(),
    )
    .unwrap_err();
    assert!(matches!(err, BuildError::Tls(_)) && err.to_string().contains("CA"), "{err}");
    let bad_key = TlsConfig {
        cert_pem: Some(pki.client_cert_pem.clone()),
        key_pem: Some(Sensitive::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")),
        ..Default::default()
    };
    let err = Exporter::new(
        &output(Protocol::Http, "127.0.0.1:1".parse().unwrap(), bad_key),
        ExportSettings::default(),
    )
    .unwrap_err();
    assert!(matches!(err, BuildError::Tls(_)), "{err}");
}

/// Scenario: a 3 MB uncompressed batch over TLS, made of hundreds of parts of 1 byte to 70 KB (as a
/// batch is made of slices of many requests and a few bytes of new framing), sent over gRPC, HTTP/2
/// and HTTP/1.1: far beyond HTTP/2's 16 KiB frames and 64 KiB initial window, so the export
/// connection cuts frames across parts, flushes and waits for window updates many times.
/// Guarantees: the backend receives exactly the encoded request (after the gRPC message prefix).
#[tokio::test]
async fn large_batches_arrive_intact() {
    let pki = pki();
    let (addr, _, bodies) = server(&pki, false).await;
    let (h1_addr, _, h1_bodies) = server_speaking(&pki, false, &[b"http/1.1"]).await;
    let tls = TlsConfig { ca_pem: Some(pki.ca_pem.clone()), ..Default::default() };
    let request = prost::Message::encode_to_vec(&otlp_gateway::testing::sample_request(7, 6000, 10, 40));
    assert!(request.len() > 3_000_000, "{}", request.len());
    let mut rest = Bytes::from(request.clone());
    let mut chunks = Vec::new();
    for size in [1usize, 5, 300, 16_384, 70_000, 2, 4_000].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        chunks.push(rest.split_to((*size).min(rest.len())));
    }
    assert!(chunks.len() > 200, "{}", chunks.len());
    let batch = Batch { len: request.len(), chunks, spans: 6000 };
    for (protocol, addr) in [(Protocol::Grpc, addr), (Protocol::Http, addr), (Protocol::Http, h1_addr)] {
        let config =
            OtlpOutputConfig { compression: Compression::None, ..output(protocol, addr, tls.clone()) };
        let exporter = Exporter::new(&config, ExportSettings::default()).unwrap();
        exporter.send(exporter.encode(&batch).unwrap()).await.unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
    }
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    let (prefix, message) = bodies[0].split_at(5);
    assert_eq!(prefix[0], 0, "not compressed");
    assert_eq!(u32::from_be_bytes(prefix[1..].try_into().unwrap()) as usize, request.len());
    assert!(message == &request[..], "gRPC body differs");
    assert!(bodies[1] == request, "HTTP/2 body differs");
    let h1_bodies = h1_bodies.lock().unwrap();
    assert_eq!(h1_bodies.len(), 1);
    assert!(h1_bodies[0] == request, "HTTP/1.1 body differs");
}
