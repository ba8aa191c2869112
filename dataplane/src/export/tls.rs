//! rustls client configuration from a pipeline's resolved TLS settings.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracegw_contract::TlsConfig;

/// TLS material that cannot be used; the pipeline is reported as `TLSConfigurationInvalid`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA bundle holds no usable certificate.
    #[error("invalid CA certificate: {0}")]
    Ca(String),
    /// The client certificate does not parse.
    #[error("invalid client certificate: {0}")]
    Cert(String),
    /// The client key does not parse.
    #[error("invalid client key: {0}")]
    Key(String),
    /// Certificate and key do not belong together, or rustls refused them.
    #[error("client certificate and key cannot be used together: {0}")]
    Pair(String),
}

/// Accepts any server certificate: what `tls.insecureSkipVerify` asks for. Signatures are still
/// checked so the handshake itself stays sound.
#[derive(Debug)]
struct SkipServerVerification(Arc<rustls::crypto::CryptoProvider>);

// === impl SkipServerVerification ===

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// === free functions ===

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trust store, read once: reading it costs milliseconds and it does not change while
/// the process runs.
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // A broken system certificate is skipped, as every TLS client does.
            let _ = store.add(cert);
        }
        store
    })
}

/// Builds the client configuration. A CA bundle replaces the system roots, as in the Collector's
/// `ca_pem`. ALPN is left to the connector, which offers what the protocol needs.
pub fn client_config(tls: &TlsConfig) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(SkipServerVerification(provider)))
    } else if let Some(ca) = &tls.ca_pem {
        let mut roots = RootCertStore::empty();
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let cert = cert.map_err(|e| TlsError::Ca(e.to_string()))?;
            roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
            count += 1;
        }
        if count == 0 {
            return Err(TlsError::Ca("no PEM certificate found".into()));
        }
        builder.with_root_certificates(roots)
    } else {
        builder.with_root_certificates(native_roots().clone())
    };
    let config = match (&tls.cert_pem, &tls.key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Cert(e.to_string()))?;
            if chain.is_empty() {
                return Err(TlsError::Cert("no PEM certificate found".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                .map_err(|e| TlsError::Key(e.to_string()))?;
            // Not `with_client_auth_cert`: its key check reads the certificate with webpki, which
            // refuses X.509 version 1, while Kyma's Go sends such certificates.
            let certified = tracegw_contract::tls::client_certified_key(chain, key)
                .map_err(|e| TlsError::Pair(e.to_string()))?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}
