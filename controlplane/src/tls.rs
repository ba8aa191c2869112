//! TLS for the snapshot channel in a cluster. Snapshots carry backend credentials, so the manager
//! serves them over TLS with a certificate of its own: self-signed for the manager Service's names,
//! kept in the Secret `telemetry-manager-tls` so restarts reuse it, and renewed at start when it
//! expires within [`RENEW_BEFORE`] or does not cover the names. Gateways trust exactly that
//! certificate, which the manager publishes in the gateway Secret (`ca.crt`): no cluster CA and no
//! cert-manager needed, and no other certificate is accepted for the channel.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Name of the Secret holding the manager's serving certificate.
pub const SERVING_SECRET: &str = "telemetry-manager-tls";
/// A certificate this close to expiry is replaced at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a new certificate is valid.
pub const VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ServingCert {
    /// Certificate.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// A certificate cannot be made or used.
#[derive(Debug, thiserror::Error)]
#[error("serving certificate: {0}")]
pub struct TlsError(String);

// === impl ServingCert ===

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

impl ServingCert {
    /// A new self-signed certificate for `names` (DNS names or IP addresses), valid from an hour ago
    /// (clock skew) for [`VALIDITY`].
    pub fn generate(names: &[String], now_unix: i64) -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError(e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(names.to_vec()).map_err(|e| TlsError(e.to_string()))?;
        let at =
            |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| TlsError(e.to_string()));
        params.not_before = at(now_unix - 3600)?;
        params.not_after = at(now_unix + VALIDITY.as_secs() as i64)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "telemetry-manager");
        let cert = params.self_signed(&key).map_err(|e| TlsError(e.to_string()))?;
        Ok(Self { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Whether this certificate can still serve `names` at `now`: it parses, covers every name and
    /// does not expire within [`RENEW_BEFORE`].
    pub fn usable_for(&self, names: &[String], now_unix: i64) -> bool {
        let Some(der) = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).next().and_then(Result::ok)
        else {
            return false;
        };
        let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else { return false };
        if cert.validity().not_after.timestamp() - now_unix < RENEW_BEFORE.as_secs() as i64 {
            return false;
        }
        let mut covered: Vec<String> = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => covered.push((*d).to_string()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => covered.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                        16 => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(ip);
                            covered.push(std::net::Ipv6Addr::from(b).to_string());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        names.iter().all(|n| covered.contains(n)) && self.server_config().is_ok()
    }

    /// The rustls configuration that serves with this certificate.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError(e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| TlsError(e.to_string()))?;
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

// === free functions ===

/// The names gateways may use for the manager at `url`: its host, and for a Service name the
/// other forms cluster DNS answers to (`name`, `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`).
pub fn names_for(url: &str) -> Vec<String> {
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()))
        .unwrap_or_default();
    let mut names = vec![host.clone()];
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() >= 3 && labels[2] == "svc" {
        let (name, ns) = (labels[0], labels[1]);
        for n in [
            name.to_string(),
            format!("{name}.{ns}"),
            format!("{name}.{ns}.svc"),
            format!("{name}.{ns}.svc.cluster.local"),
        ] {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Scenario: the names of the manager's Service, and an IP address for tests.
    /// Guarantees: every form cluster DNS answers to is covered.
    #[test]
    fn names() {
        assert_eq!(
            names_for("https://telemetry-manager.kyma-system.svc:9090"),
            [
                "telemetry-manager.kyma-system.svc",
                "telemetry-manager",
                "telemetry-manager.kyma-system",
                "telemetry-manager.kyma-system.svc.cluster.local"
            ]
        );
        assert_eq!(names_for("https://127.0.0.1:9090"), ["127.0.0.1"]);
    }

    /// Scenario: a new certificate; the same one years later; one for other names.
    /// Guarantees: a fresh one is usable and serves; it is replaced near expiry or when the names
    /// change.
    #[test]
    fn generate_and_renew() {
        let names = names_for("https://telemetry-manager.kyma-system.svc:9090");
        let cert = ServingCert::generate(&names, NOW).unwrap();
        assert!(cert.usable_for(&names, NOW));
        assert!(cert.server_config().is_ok());
        let almost_expired = NOW + VALIDITY.as_secs() as i64 - 24 * 3600;
        assert!(!cert.usable_for(&names, almost_expired));
        assert!(!cert.usable_for(&["other.example".to_string()], NOW));
        let ip = ServingCert::generate(&["127.0.0.1".to_string()], NOW).unwrap();
        assert!(ip.usable_for(&["127.0.0.1".to_string()], NOW));
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
