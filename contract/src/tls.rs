//! Checks a pipeline's TLS material the way Kyma's reconciler does, before any gateway sees it: every
//! PEM block decodes and parses, the client certificate and key belong together, the CA bundle holds
//! CA certificates, and nothing has expired. A certificate that expires within
//! [`ABOUT_TO_EXPIRE_WINDOW`] is not an error: the pipeline runs and its status warns.
//!
//! Unlike Kyma, which reads only the first block of the CA bundle, every certificate in the bundle is
//! checked, and an expired CA is reported even when the client certificate is about to expire.

use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

/// How far ahead an expiry is announced in the pipeline's status.
pub const ABOUT_TO_EXPIRE_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);

/// The PEM material of one pipeline, newline escapes already replaced.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsMaterial<'a> {
    /// CA bundle.
    pub ca: Option<&'a str>,
    /// Client certificate.
    pub cert: Option<&'a str>,
    /// Client key.
    pub key: Option<&'a str>,
}

/// Which certificate an expiry concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// The client certificate.
    Client,
    /// A certificate of the CA bundle.
    Ca,
}

/// The certificate of a pipeline that expires first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertExpiry {
    /// Client certificate or CA.
    pub kind: CertKind,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// Why TLS material is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsProblem {
    /// The material does not parse, the key does not match, or the CA is no CA.
    #[error("TLS configuration invalid: {0}")]
    Invalid(String),
    /// A certificate's validity has ended.
    #[error("{}", expired_message(*.0))]
    Expired(CertExpiry),
}

// === impl CertExpiry ===

impl CertExpiry {
    /// Whether `now` (Unix seconds) is within the warning window before expiry.
    pub fn about_to_expire(&self, now: i64) -> bool {
        now <= self.not_after && self.not_after - now <= ABOUT_TO_EXPIRE_WINDOW.as_secs() as i64
    }

    /// The expiry date as `YYYY-MM-DD` (UTC).
    pub fn date(&self) -> String {
        date(self.not_after)
    }

    /// The status message shown while the certificate is about to expire.
    pub fn warning(&self) -> String {
        let what = match self.kind {
            CertKind::Client => "TLS certificate",
            CertKind::Ca => "TLS CA certificate",
        };
        format!("{what} is about to expire, configured certificate is valid until {}", self.date())
    }
}

/// Why a client certificate and key cannot be used together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientKeyError {
    /// The chain is empty.
    #[error("no certificate given")]
    NoCertificate,
    /// The end-entity certificate does not parse.
    #[error("cannot parse the certificate: {0}")]
    Certificate(String),
    /// The key does not load.
    #[error("{0}")]
    Key(String),
    /// The key is not the certificate's.
    #[error("certificate and private key do not match")]
    Mismatch,
}

// === free functions ===

/// The client certificate and key as rustls sends them, checked to belong together by comparing the
/// key's public half with the certificate's `SubjectPublicKeyInfo`. The certificate is read with
/// x509-parser, which accepts X.509 version 1 as Go's `tls.X509KeyPair` does: rustls' own check
/// (`CertifiedKey::from_der`) reads it with webpki, which refuses version 1 end-entity certificates
/// (`UnsupportedCertVersion`), though a TLS client only has to send its certificate, never parse it.
pub fn client_certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::sign::CertifiedKey, ClientKeyError> {
    let first = chain.first().ok_or(ClientKeyError::NoCertificate)?;
    let (_, cert) =
        X509Certificate::from_der(first.as_ref()).map_err(|e| ClientKeyError::Certificate(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key =
        provider.key_provider.load_private_key(key).map_err(|e| ClientKeyError::Key(e.to_string()))?;
    // ring's keys all know their public half; a key that did not could not be checked, as in rustls.
    if let Some(spki) = signing_key.public_key()
        && spki.as_ref() != cert.public_key().raw
    {
        return Err(ClientKeyError::Mismatch);
    }
    Ok(rustls::sign::CertifiedKey::new(chain, signing_key))
}

fn expired_message(expiry: CertExpiry) -> String {
    let what = match expiry.kind {
        CertKind::Client => "TLS certificate",
        CertKind::Ca => "TLS CA certificate",
    };
    format!("{what} expired on {}", expiry.date())
}

/// `YYYY-MM-DD` for a Unix timestamp, in UTC.
pub fn date(unix_seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(t) => t.date().to_string(),
        Err(_) => unix_seconds.to_string(),
    }
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsProblem> {
    let mut certs = Vec::new();
    for block in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certs.push(
            block.map_err(|_| TlsProblem::Invalid(format!("cannot decode the PEM block of the {what}")))?,
        );
    }
    if certs.is_empty() {
        return Err(TlsProblem::Invalid(format!("no PEM block containing a {what} found")));
    }
    Ok(certs)
}

/// Parses each certificate, returning `notAfter` and whether it is a CA.
fn parsed(der: &CertificateDer<'_>, what: &str) -> Result<(i64, bool), TlsProblem> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|_| TlsProblem::Invalid(format!("cannot parse the {what}")))?;
    Ok((cert.validity().not_after.timestamp(), cert.is_ca()))
}

/// Checks the material at `now` (Unix seconds). `Ok` carries the certificate that expires first, if
/// any, so the caller can warn and check again when it crosses a threshold.
pub fn check(material: TlsMaterial<'_>, now: i64) -> Result<Option<CertExpiry>, TlsProblem> {
    if material.cert.is_some() != material.key.is_some() {
        return Err(TlsProblem::Invalid(
            "a certificate and a private key must either both be given or both be missing".into(),
        ));
    }
    let mut earliest: Option<CertExpiry> = None;
    let mut note = |e: CertExpiry| {
        if earliest.is_none_or(|x| e.not_after < x.not_after) {
            earliest = Some(e);
        }
    };
    let client = match (material.cert, material.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "certificate")?;
            let (not_after, _) = parsed(&chain[0], "certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| TlsProblem::Invalid("cannot decode the PEM block of the private key".into()))?;
            client_certified_key(chain, key).map_err(|e| match e {
                ClientKeyError::Mismatch => {
                    TlsProblem::Invalid("certificate and private key do not match".into())
                }
                ClientKeyError::Certificate(_) => TlsProblem::Invalid("cannot parse the certificate".into()),
                other => TlsProblem::Invalid(format!("unusable private key: {other}")),
            })?;
            Some(CertExpiry { kind: CertKind::Client, not_after })
        }
        _ => None,
    };
    let mut cas = Vec::new();
    if let Some(ca) = material.ca {
        for der in certificates(ca, "CA certificate")? {
            let (not_after, is_ca) = parsed(&der, "CA certificate")?;
            if !is_ca {
                return Err(TlsProblem::Invalid("not a CA certificate".into()));
            }
            cas.push(CertExpiry { kind: CertKind::Ca, not_after });
        }
    }
    for expiry in client.into_iter().chain(cas) {
        if expiry.not_after < now {
            return Err(TlsProblem::Expired(expiry));
        }
        note(expiry);
    }
    Ok(earliest)
}

#[cfg(test)]
#[path = "tls/v1_cert.rs"]
mod v1_cert;

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::v1_cert;
    use super::*;

    const DAY_SECONDS: i64 = 24 * 3600;

    fn cert(ca: bool, not_after: i64) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["backend.example".into()]).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(not_after - 400 * DAY_SECONDS).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    /// Scenario: a CA and a matching client pair, valid for a year.
    /// Guarantees: accepted, and the earliest expiry is reported for later checks.
    #[test]
    fn valid_material_passes() {
        let now = 1_800_000_000;
        let (ca, _) = cert(true, now + 365 * DAY_SECONDS);
        let (client, key) = cert(false, now + 200 * DAY_SECONDS);
        let m = TlsMaterial { ca: Some(&ca), cert: Some(&client), key: Some(&key) };
        let expiry = check(m, now).unwrap().unwrap();
        assert_eq!(expiry, CertExpiry { kind: CertKind::Client, not_after: now + 200 * DAY_SECONDS });
        assert!(!expiry.about_to_expire(now));
        assert!(expiry.about_to_expire(now + 190 * DAY_SECONDS));
    }

    /// Scenario: broken PEM, a key of another certificate, a leaf given as CA, cert without key.
    /// Guarantees: each is refused as invalid configuration with its own explanation.
    #[test]
    fn broken_material_is_invalid() {
        let now = 1_800_000_000;
        let (leaf, leaf_key) = cert(false, now + 100 * DAY_SECONDS);
        let (_, other_key) = cert(false, now + 100 * DAY_SECONDS);
        let invalid = |m: TlsMaterial<'_>| match check(m, now) {
            Err(TlsProblem::Invalid(why)) => why,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert!(invalid(TlsMaterial { ca: Some("garbage"), ..Default::default() }).contains("no PEM block"));
        let mismatched = TlsMaterial { cert: Some(&leaf), key: Some(&other_key), ..Default::default() };
        assert_eq!(invalid(mismatched), "certificate and private key do not match");
        assert_eq!(invalid(TlsMaterial { ca: Some(&leaf), ..Default::default() }), "not a CA certificate");
        assert!(invalid(TlsMaterial { cert: Some(&leaf), ..Default::default() }).contains("both"));
        let bad_key = TlsMaterial {
            cert: Some(&leaf),
            key: Some("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"),
            ..Default::default()
        };
        assert!(invalid(bad_key).contains("private key"), "{leaf_key}");
    }

    /// Scenario: an expired CA beside a client certificate that is only about to expire.
    /// Guarantees: the expired CA wins, with Kyma's message and the date of expiry.
    #[test]
    fn expired_beats_about_to_expire() {
        let now = 1_800_000_000;
        let (ca, _) = cert(true, now - DAY_SECONDS);
        let (client, key) = cert(false, now + 3 * DAY_SECONDS);
        let err =
            check(TlsMaterial { ca: Some(&ca), cert: Some(&client), key: Some(&key) }, now).unwrap_err();
        assert_eq!(err.to_string(), format!("TLS CA certificate expired on {}", date(now - DAY_SECONDS)));
        let warn = check(TlsMaterial { cert: Some(&client), key: Some(&key), ..Default::default() }, now)
            .unwrap()
            .unwrap();
        assert!(warn.about_to_expire(now));
        assert_eq!(
            warn.warning(),
            format!(
                "TLS certificate is about to expire, configured certificate is valid until {}",
                date(now + 3 * DAY_SECONDS)
            )
        );
    }

    /// Scenario: a version 1 client certificate (no extensions) issued by a version 3 CA, with its own
    /// key and with another key.
    /// Guarantees: it passes Kyma's checks as Go's parser passes it (rustls' own key check would
    /// refuse it through webpki), its expiry is read, and a wrong key is still caught.
    #[test]
    fn version_1_client_certificates_are_accepted() {
        let now = 1_800_000_000;
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let v1 = v1_cert::v1_certificate(
            "gateway",
            &key,
            Some(ca.der()),
            &ca_key,
            "250101000000Z",
            "380101000000Z",
        );
        let der = CertificateDer::from_pem_slice(v1.as_bytes()).unwrap();
        let parsed = X509Certificate::from_der(der.as_ref()).unwrap().1;
        assert_eq!(parsed.version().0, 0, "not a version 1 certificate");
        assert!(
            rustls::sign::CertifiedKey::from_der(
                vec![der.clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
                &rustls::crypto::ring::default_provider(),
            )
            .is_err(),
            "rustls' own check accepts version 1 now: client_certified_key could go"
        );
        let material = TlsMaterial { ca: Some(&ca.pem()), cert: Some(&v1), key: Some(&key.serialize_pem()) };
        // 2038-01-01, before rcgen's default CA expiry.
        let expiry = check(material, now).unwrap().unwrap();
        assert_eq!(expiry, CertExpiry { kind: CertKind::Client, not_after: 2_145_916_800 });
        let other = KeyPair::generate().unwrap().serialize_pem();
        let wrong = TlsMaterial { cert: Some(&v1), key: Some(&other), ..Default::default() };
        assert_eq!(
            check(wrong, now),
            Err(TlsProblem::Invalid("certificate and private key do not match".into()))
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_800_000_000), "2027-01-15");
    }
}
