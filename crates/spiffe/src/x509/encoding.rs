//! DER and PEM encodings of certificate chains, bundles and keys.
//!
//! The Workload API carries chains and bundles as DER certificates appended back to back (no
//! outer SEQUENCE, no PEM) and keys as PKCS#8 DER; files on disk use PEM.

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::X509Error;

/// Most certificates accepted in one SVID chain.
pub const MAX_CHAIN_CERTS: usize = 32;

/// Most certificates accepted in one bundle.
pub const MAX_BUNDLE_CERTS: usize = 1024;

/// Splits concatenated DER certificates into a chain, leaf first.
///
/// Every certificate must parse as X.509; trailing bytes that are not a whole certificate are an
/// error, as are an empty input and more than [`MAX_CHAIN_CERTS`] certificates.
///
/// # Errors
///
/// [`X509Error::EmptyChain`], [`X509Error::TooManyCertificates`] or
/// [`X509Error::MalformedCertificate`] naming the position of the first bad certificate.
pub fn parse_der_chain(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let certs = split_der(bytes, MAX_CHAIN_CERTS)?;
    if certs.is_empty() {
        return Err(X509Error::EmptyChain);
    }
    Ok(certs)
}

/// Appends the DER encodings of `certs` back to back (the Workload API form).
pub fn concat_der(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(certs.iter().map(|c| c.len()).sum());
    for cert in certs {
        out.extend_from_slice(cert);
    }
    out
}

/// Reads every `CERTIFICATE` block of a PEM text, in order; other blocks are skipped.
///
/// # Errors
///
/// [`X509Error::MalformedPem`] for broken PEM, [`X509Error::MissingPemBlock`] when there is no
/// certificate, [`X509Error::MalformedCertificate`] when a block is not exactly one X.509
/// certificate, [`X509Error::TooManyCertificates`] beyond [`MAX_CHAIN_CERTS`].
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let certs = pem_certs(pem, MAX_CHAIN_CERTS)?;
    if certs.is_empty() {
        return Err(X509Error::MissingPemBlock {
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// Encodes certificates as consecutive PEM `CERTIFICATE` blocks.
pub fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    let mut out = String::new();
    for cert in certs {
        push_pem(&mut out, "CERTIFICATE", cert);
    }
    out
}

/// Encodes a PKCS#8 private key as a PEM `PRIVATE KEY` block.
pub fn pkcs8_to_pem(key: &PrivatePkcs8KeyDer<'_>) -> String {
    let mut out = String::new();
    push_pem(&mut out, "PRIVATE KEY", key.secret_pkcs8_der());
    out
}

/// Splits concatenated DER certificates, accepting an empty input, refusing more than `max`.
pub(crate) fn split_der(
    bytes: &[u8],
    max: usize,
) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let mut certs = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if certs.len() == max {
            return Err(X509Error::TooManyCertificates { max });
        }
        let index = certs.len();
        let remaining = match x509_parser::parse_x509_certificate(rest) {
            Ok((remaining, _)) => remaining,
            Err(e) => {
                return Err(X509Error::MalformedCertificate {
                    index,
                    reason: e.to_string(),
                });
            }
        };
        let used = rest.len() - remaining.len();
        certs.push(CertificateDer::from(rest[..used].to_vec()));
        rest = remaining;
    }
    Ok(certs)
}

/// Reads the `CERTIFICATE` blocks of a PEM text (possibly none), refusing more than `max`.
pub(crate) fn pem_certs(pem: &[u8], max: usize) -> Result<Vec<CertificateDer<'static>>, X509Error> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let cert = item.map_err(|e| X509Error::MalformedPem {
            reason: e.to_string(),
        })?;
        if certs.len() == max {
            return Err(X509Error::TooManyCertificates { max });
        }
        check_single_cert(&cert, certs.len())?;
        certs.push(cert);
    }
    Ok(certs)
}

/// Checks that `der` is exactly one X.509 certificate with nothing after it.
fn check_single_cert(der: &[u8], index: usize) -> Result<(), X509Error> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], _)) => Ok(()),
        Ok((rest, _)) => Err(X509Error::MalformedCertificate {
            index,
            reason: format!("{} trailing bytes after the certificate", rest.len()),
        }),
        Err(e) => Err(X509Error::MalformedCertificate {
            index,
            reason: e.to_string(),
        }),
    }
}

fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::test_certs::{KeyKind, TestCa};

    fn two_certs() -> Vec<CertificateDer<'static>> {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let leaf = ca.leaf("spiffe://example.org/w", KeyKind::P256);
        vec![leaf.cert, ca.cert.clone()]
    }

    #[test]
    fn splits_concatenated_der_and_concatenates_back() {
        let certs = two_certs();
        let bytes = concat_der(&certs);
        assert_eq!(parse_der_chain(&bytes).unwrap(), certs);
    }

    #[test]
    fn rejects_empty_der_chain() {
        assert!(matches!(parse_der_chain(&[]), Err(X509Error::EmptyChain)));
    }

    #[test]
    fn rejects_trailing_garbage_after_der_certificates() {
        let mut bytes = concat_der(&two_certs());
        bytes.extend_from_slice(&[0x30, 0x03, 0x01]);
        assert!(matches!(
            parse_der_chain(&bytes),
            Err(X509Error::MalformedCertificate { index: 2, .. })
        ));
        assert!(matches!(
            parse_der_chain(b"not der"),
            Err(X509Error::MalformedCertificate { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_more_than_32_certificates() {
        let certs = two_certs();
        let one = concat_der(&certs[..1]);
        assert_eq!(parse_der_chain(&one.repeat(32)).unwrap().len(), 32);
        assert!(matches!(
            parse_der_chain(&one.repeat(33)),
            Err(X509Error::TooManyCertificates { max: 32 })
        ));
    }

    #[test]
    fn pem_round_trips() {
        let certs = two_certs();
        let pem = certs_to_pem(&certs);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(parse_pem_certs(pem.as_bytes()).unwrap(), certs);
    }

    #[test]
    fn rejects_pem_without_certificates_or_with_corrupt_ones() {
        assert!(matches!(
            parse_pem_certs(b"just text"),
            Err(X509Error::MissingPemBlock {
                label: "CERTIFICATE"
            })
        ));
        let corrupt = "-----BEGIN CERTIFICATE-----\nMIIBIjAN\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_pem_certs(corrupt.as_bytes()),
            Err(X509Error::MalformedCertificate { index: 0, .. })
        ));
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIBIjAN\n";
        assert!(matches!(
            parse_pem_certs(unterminated.as_bytes()),
            Err(X509Error::MalformedPem { .. })
        ));
    }

    #[test]
    fn key_pem_uses_the_pkcs8_label_and_round_trips() {
        let ca = TestCa::new("example.org", KeyKind::Ed25519);
        let leaf = ca.leaf("spiffe://example.org/w", KeyKind::Ed25519);
        let pem = pkcs8_to_pem(&leaf.key);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back.secret_pkcs8_der(), leaf.key.secret_pkcs8_der());
    }
}
