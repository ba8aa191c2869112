//! X.509 version 1 certificates for tests. rcgen writes only version 3, and version 1 (no version
//! field, no extensions) is what old private CAs still issue and Go's parser accepts, so this writes
//! the DER by hand: `TBSCertificate` without `version` and `extensions`, signed with ECDSA P-256 and
//! SHA-256 by the issuer's key. Shared by the contract's and the data plane's tests (`#[path]`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helper: a failed unwrap is a failed test

use rcgen::{KeyPair, PublicKeyData as _, SigningKey as _};
use x509_parser::prelude::{FromDer, X509Certificate};

/// `ecdsa-with-SHA256` (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// `id-at-commonName` (2.5.4.3).
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

/// One DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A Name of one common name.
fn name(common_name: &str) -> Vec<u8> {
    let attribute = sequence(&[&der(0x06, COMMON_NAME_OID), &der(0x0c, common_name.as_bytes())]);
    sequence(&[&der(0x31, &attribute)])
}

/// A version 1 certificate for `key` named `common_name`, valid between the two UTCTimes
/// (`YYMMDDHHMMSSZ`), signed by `issuer_key`; issued by `issuer` (the issuer's certificate, DER), or
/// self-signed when `None`. Returns PEM.
pub fn v1_certificate(
    common_name: &str,
    key: &KeyPair,
    issuer: Option<&[u8]>,
    issuer_key: &KeyPair,
    not_before: &str,
    not_after: &str,
) -> String {
    let subject = name(common_name);
    let issuer_name = match issuer {
        Some(der) => X509Certificate::from_der(der).unwrap().1.tbs_certificate.subject.as_raw().to_vec(),
        None => subject.clone(),
    };
    let algorithm = sequence(&[&der(0x06, ECDSA_WITH_SHA256_OID)]);
    let validity = sequence(&[&der(0x17, not_before.as_bytes()), &der(0x17, not_after.as_bytes())]);
    let serial = der(0x02, &[0x01, 0x23, 0x45, 0x67]);
    let tbs =
        sequence(&[&serial, &algorithm, &issuer_name, &validity, &subject, &key.subject_public_key_info()]);
    let signature = issuer_key.sign(&tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let cert = sequence(&[&tbs, &algorithm, &der(0x03, &bits)]);
    pem(&cert)
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
