//! PKCS#10 certificate signing requests: agents make them, the server checks them.
//!
//! The server only trusts one thing from a CSR: the public key, and only after the CSR's
//! self-signature proves the requester holds the matching private key. Names in the request are
//! reported but never copied into a certificate; the server decides the identity.

use lanyard_spiffe::SpiffeId;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

use crate::error::CaError;

/// Largest CSR accepted by [`parse_csr`]; real ones are well under 2 KiB.
pub const MAX_CSR_LEN: usize = 64 * 1024;

/// Makes a PKCS#10 request (DER) signed by `key`, with an empty subject and, when `id` is given,
/// that SPIFFE ID as the only URI SAN.
///
/// # Errors
///
/// [`CaError::Encoding`] if the request cannot be encoded or signed.
pub fn make_csr(key: &KeyPair, id: Option<&SpiffeId>) -> Result<Vec<u8>, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(id) = id {
        params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    }
    let csr = params.serialize_request(key)?;
    Ok(csr.der().to_vec())
}

/// A CSR whose self-signature has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedCsr {
    /// The requester's public key as a DER SubjectPublicKeyInfo, ready for
    /// [`crate::SvidParams::public_key_der`].
    pub public_key_der: Vec<u8>,
    /// URI SANs the requester asked for (informational: never copied into an SVID).
    pub uri_sans: Vec<String>,
    /// DNS SANs the requester asked for (informational: never copied into an SVID).
    pub dns_names: Vec<String>,
}

/// Parses a DER PKCS#10 request, verifies its self-signature, and returns its public key.
///
/// # Errors
///
/// [`CaError::MalformedCsr`] for anything that is not a single DER CSR (or is over
/// [`MAX_CSR_LEN`]), [`CaError::CsrSignatureAlgorithm`] for weak or unknown signature algorithms,
/// [`CaError::CsrSignature`] when the signature does not verify, and
/// [`CaError::UnsupportedPublicKey`] for a key that cannot go into a certificate.
pub fn parse_csr(der: &[u8]) -> Result<ValidatedCsr, CaError> {
    if der.len() > MAX_CSR_LEN {
        return Err(CaError::MalformedCsr(format!(
            "{} bytes is over the limit of {MAX_CSR_LEN}",
            der.len()
        )));
    }
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| CaError::MalformedCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CaError::MalformedCsr(format!(
            "{} trailing bytes after the request",
            rest.len()
        )));
    }

    let alg = &csr.signature_algorithm.algorithm;
    let accepted = [
        OID_PKCS1_SHA256WITHRSA,
        OID_PKCS1_SHA384WITHRSA,
        OID_PKCS1_SHA512WITHRSA,
        OID_SIG_ECDSA_WITH_SHA256,
        OID_SIG_ECDSA_WITH_SHA384,
        OID_SIG_ECDSA_WITH_SHA512,
        OID_SIG_ED25519,
    ];
    if !accepted.contains(alg) {
        return Err(CaError::CsrSignatureAlgorithm(alg.to_id_string()));
    }
    csr.verify_signature()
        .map_err(|e| CaError::CsrSignature(e.to_string()))?;

    let public_key_der = csr.certification_request_info.subject_pki.raw.to_vec();
    crate::encoding::public_key_from_spki(&public_key_der)?;

    let (uri_sans, dns_names) = requested_names(&csr);
    Ok(ValidatedCsr {
        public_key_der,
        uri_sans,
        dns_names,
    })
}

/// URI and DNS SANs from the request's extensionRequest attribute, if any.
fn requested_names(csr: &X509CertificationRequest<'_>) -> (Vec<String>, Vec<String>) {
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::URI(u) => uris.push((*u).to_owned()),
                    GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                    _ => {}
                }
            }
        }
    }
    (uris, dns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyType, generate_key_pair};
    use rcgen::PublicKeyData;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    #[test]
    fn round_trips_a_csr_for_every_key_type() {
        for kt in KeyType::ALL {
            let key = generate_key_pair(kt).unwrap();
            let spiffe_id = id("spiffe://example.org/workload");
            let der = make_csr(&key, Some(&spiffe_id)).unwrap();

            let csr = parse_csr(&der).unwrap();
            assert_eq!(csr.public_key_der, key.subject_public_key_info(), "{kt}");
            assert_eq!(
                csr.uri_sans,
                vec!["spiffe://example.org/workload".to_owned()]
            );
            assert!(csr.dns_names.is_empty());
        }
    }

    #[test]
    fn csr_without_an_id_has_no_sans() {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let csr = parse_csr(&make_csr(&key, None).unwrap()).unwrap();
        assert!(csr.uri_sans.is_empty());
        assert_eq!(csr.public_key_der, key.subject_public_key_info());
    }

    #[test]
    fn rejects_csr_with_a_bad_signature() {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut der = make_csr(&key, Some(&id("spiffe://example.org/w"))).unwrap();
        // The signature BIT STRING is the last element; flip a bit in its final byte.
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let err = parse_csr(&der).unwrap_err();
        assert!(matches!(err, CaError::CsrSignature(_)), "{err}");
    }

    #[test]
    fn rejects_csr_whose_key_was_swapped() {
        // Same request body signed by one key, but carrying another key's SPKI: splice the
        // second request's SPKI into the first.
        let a = generate_key_pair(KeyType::EcP256).unwrap();
        let b = generate_key_pair(KeyType::EcP256).unwrap();
        let der = make_csr(&a, None).unwrap();
        let spki_a = a.subject_public_key_info();
        let spki_b = b.subject_public_key_info();
        let pos = der
            .windows(spki_a.len())
            .position(|w| w == spki_a.as_slice())
            .unwrap();
        let mut forged = der.clone();
        forged[pos..pos + spki_b.len()].copy_from_slice(&spki_b);
        assert!(matches!(parse_csr(&forged), Err(CaError::CsrSignature(_))));
    }

    #[test]
    fn rejects_garbage_and_trailing_bytes() {
        assert!(matches!(parse_csr(b""), Err(CaError::MalformedCsr(_))));
        assert!(matches!(
            parse_csr(b"hello world"),
            Err(CaError::MalformedCsr(_))
        ));

        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut der = make_csr(&key, None).unwrap();
        der.push(0);
        let err = parse_csr(&der).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");

        let huge = vec![0x30; MAX_CSR_LEN + 1];
        assert!(matches!(parse_csr(&huge), Err(CaError::MalformedCsr(_))));
    }
}
