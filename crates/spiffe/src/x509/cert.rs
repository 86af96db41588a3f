//! Reading single certificates: SPIFFE ID, serial, validity, and the SPIFFE rules for leaf and
//! signing certificates (X509-SVID §4, §5).

use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::X509Error;
use crate::id::SpiffeId;

/// The SPIFFE ID in the certificate's only URI SAN (X509-SVID §2).
///
/// Does not check that the ID has a path, nor anything else about the certificate: use it on
/// certificates already verified (e.g. a TLS peer after the handshake), or use [`verify_chain`] /
/// [`X509Svid`](super::X509Svid) for the full rules.
///
/// [`verify_chain`]: super::verify_chain
///
/// # Errors
///
/// [`X509Error::NoUriSan`], [`X509Error::MultipleUriSans`], [`X509Error::InvalidSpiffeId`], or a
/// parse error.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, X509Error> {
    let parsed = parse_cert(cert, 0)?;
    id_from_uri_sans(&parsed, 0)
}

/// The certificate's serial number as a decimal string (the form SPIRE stores and logs).
///
/// # Errors
///
/// [`X509Error::MalformedCertificate`] when the bytes are not a certificate.
pub fn serial_of(cert: &CertificateDer<'_>) -> Result<String, X509Error> {
    Ok(parse_cert(cert, 0)?.tbs_certificate.serial.to_string())
}

/// The end of the certificate's validity period (notAfter).
///
/// # Errors
///
/// A parse error, or [`X509Error::TimeOutOfRange`] if the time does not fit `SystemTime`.
pub fn not_after_of(cert: &CertificateDer<'_>) -> Result<SystemTime, X509Error> {
    to_system_time(parse_cert(cert, 0)?.validity().not_after.timestamp())
}

/// The start of the certificate's validity period (notBefore).
///
/// # Errors
///
/// A parse error, or [`X509Error::TimeOutOfRange`] if the time does not fit `SystemTime`.
pub fn not_before_of(cert: &CertificateDer<'_>) -> Result<SystemTime, X509Error> {
    to_system_time(parse_cert(cert, 0)?.validity().not_before.timestamp())
}

/// Parses exactly one certificate; `index` is its position, for error messages.
pub(crate) fn parse_cert<'a>(
    der: &'a [u8],
    index: usize,
) -> Result<X509Certificate<'a>, X509Error> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
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

/// X509-SVID §5.1 leaf rules: not a CA, no keyCertSign, no cRLSign, digitalSignature set,
/// exactly one URI SAN holding a SPIFFE ID with a non-root path. Returns that ID.
///
/// The criticality of keyUsage is not checked (go-spiffe does not either), so SVIDs from issuers
/// that mark it non-critical still interoperate.
pub(crate) fn check_leaf(leaf: &X509Certificate<'_>) -> Result<SpiffeId, X509Error> {
    let id = id_from_uri_sans(leaf, 0)?;
    if id.is_root() {
        return Err(X509Error::LeafRootId { id: id.to_string() });
    }

    let bc = leaf
        .basic_constraints()
        .map_err(|e| bad_ext(0, "basicConstraints", e))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(X509Error::LeafIsCa);
    }

    let ku = leaf.key_usage().map_err(|e| bad_ext(0, "keyUsage", e))?;
    let Some(ku) = ku else {
        return Err(X509Error::LeafNoDigitalSignature);
    };
    if ku.value.key_cert_sign() {
        return Err(X509Error::LeafKeyCertSign);
    }
    if ku.value.crl_sign() {
        return Err(X509Error::LeafCrlSign);
    }
    if !ku.value.digital_signature() {
        return Err(X509Error::LeafNoDigitalSignature);
    }
    Ok(id)
}

/// X509-SVID §4.1/§4.3 signing certificate rules: cA=true and keyCertSign set. The URI SAN of a
/// signing certificate is not checked: it need not be a strictly valid SPIFFE ID.
pub(crate) fn check_signing_cert(
    cert: &X509Certificate<'_>,
    index: usize,
) -> Result<(), X509Error> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| bad_ext(index, "basicConstraints", e))?;
    if !bc.is_some_and(|bc| bc.value.ca) {
        return Err(X509Error::SigningCertNotCa { index });
    }

    let ku = cert
        .key_usage()
        .map_err(|e| bad_ext(index, "keyUsage", e))?;
    if !ku.is_some_and(|ku| ku.value.key_cert_sign()) {
        return Err(X509Error::SigningCertNoKeyCertSign { index });
    }
    Ok(())
}

/// Converts seconds since the Unix epoch to `SystemTime`.
pub(crate) fn to_system_time(timestamp: i64) -> Result<SystemTime, X509Error> {
    let offset = Duration::from_secs(timestamp.unsigned_abs());
    let time = if timestamp >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or(X509Error::TimeOutOfRange { timestamp })
}

/// X509-SVID §2: exactly one URI SAN, and it must be a SPIFFE ID.
fn id_from_uri_sans(cert: &X509Certificate<'_>, index: usize) -> Result<SpiffeId, X509Error> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad_ext(index, "subjectAltName", e))?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|san| san.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();

    match uris.as_slice() {
        [] => Err(X509Error::NoUriSan),
        [uri] => SpiffeId::parse(uri).map_err(|source| X509Error::InvalidSpiffeId {
            uri: uri.chars().take(200).collect(),
            source,
        }),
        more => Err(X509Error::MultipleUriSans { count: more.len() }),
    }
}

fn bad_ext(index: usize, extension: &'static str, e: x509_parser::error::X509Error) -> X509Error {
    X509Error::BadExtension {
        index,
        extension,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::test_certs::{KeyKind, LeafSpec, TestCa};

    #[test]
    fn reads_the_spiffe_id_from_the_only_uri_san() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let leaf = ca.leaf("spiffe://example.org/workload", KeyKind::P256);
        assert_eq!(
            spiffe_id_of(&leaf.cert).unwrap().as_str(),
            "spiffe://example.org/workload"
        );
        assert_eq!(
            spiffe_id_of(&ca.cert).unwrap().as_str(),
            "spiffe://example.org"
        );
    }

    #[test]
    fn rejects_no_or_two_uri_sans() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let none = ca.issue(
            &LeafSpec {
                uris: vec![],
                ..LeafSpec::valid("")
            },
            KeyKind::P256,
        );
        assert!(matches!(spiffe_id_of(&none.cert), Err(X509Error::NoUriSan)));
        let two = ca.issue(
            &LeafSpec {
                uris: vec![
                    "spiffe://example.org/a".into(),
                    "spiffe://example.org/b".into(),
                ],
                ..LeafSpec::valid("")
            },
            KeyKind::P256,
        );
        assert!(matches!(
            spiffe_id_of(&two.cert),
            Err(X509Error::MultipleUriSans { count: 2 })
        ));
    }

    #[test]
    fn rejects_a_uri_san_that_is_not_a_spiffe_id() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let leaf = ca.leaf("https://example.org/a", KeyKind::P256);
        let err = spiffe_id_of(&leaf.cert).unwrap_err();
        assert!(matches!(err, X509Error::InvalidSpiffeId { .. }), "{err}");
    }

    #[test]
    fn reads_serial_as_decimal_and_validity() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let spec = LeafSpec {
            serial: Some(vec![0x01, 0x00]),
            ..LeafSpec::valid("spiffe://example.org/a")
        };
        let leaf = ca.issue(&spec, KeyKind::P256);
        assert_eq!(serial_of(&leaf.cert).unwrap(), "256");
        let not_before = not_before_of(&leaf.cert).unwrap();
        let not_after = not_after_of(&leaf.cert).unwrap();
        assert_eq!(not_before, spec.not_before);
        assert_eq!(not_after, spec.not_after);
    }

    #[test]
    fn converts_negative_and_positive_timestamps() {
        assert_eq!(to_system_time(0).unwrap(), SystemTime::UNIX_EPOCH);
        assert_eq!(
            to_system_time(-10).unwrap(),
            SystemTime::UNIX_EPOCH - Duration::from_secs(10)
        );
    }

    #[test]
    fn rejects_garbage_instead_of_a_certificate() {
        let garbage = CertificateDer::from(vec![1, 2, 3]);
        assert!(matches!(
            spiffe_id_of(&garbage),
            Err(X509Error::MalformedCertificate { .. })
        ));
        assert!(serial_of(&garbage).is_err());
        assert!(not_after_of(&garbage).is_err());
    }
}
