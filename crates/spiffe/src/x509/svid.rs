//! [`X509Svid`]: an own X509-SVID (chain plus private key) as received from the Workload API.

use std::fmt;
use std::time::SystemTime;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::X509Error;
use super::cert::{check_leaf, check_signing_cert, parse_cert, to_system_time};
use super::encoding::{parse_der_chain, parse_pem_certs};
use super::key::check_key_matches;
use crate::id::SpiffeId;

/// An X509-SVID: a certificate chain (leaf first) with the leaf's private key.
///
/// Holding one means the leaf follows X509-SVID §4-5 (one URI SAN with a non-root SPIFFE ID, not a
/// CA, digitalSignature set, no keyCertSign or cRLSign), every following certificate is a CA with
/// keyCertSign, and the key is the leaf's. It does not mean the chain is trusted: that is
/// [`verify_chain`](super::verify_chain)'s job, against a bundle.
pub struct X509Svid {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl X509Svid {
    /// Reads the Workload API form: concatenated DER certificates and a PKCS#8 DER key.
    ///
    /// # Errors
    ///
    /// [`X509Error`] naming the first broken rule (parse errors, leaf rules, signing certificate
    /// rules, key mismatch).
    pub fn parse_der(chain: &[u8], key_pkcs8: &[u8]) -> Result<Self, X509Error> {
        let certs = parse_der_chain(chain)?;
        Self::from_parts(certs, PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()))
    }

    /// Reads PEM: `CERTIFICATE` blocks (leaf first) and one `PRIVATE KEY` (PKCS#8) block.
    ///
    /// # Errors
    ///
    /// As [`X509Svid::parse_der`], plus PEM errors and [`X509Error::MissingPemBlock`].
    pub fn parse_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, X509Error> {
        let certs = parse_pem_certs(chain_pem)?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => X509Error::MissingPemBlock {
                label: "PRIVATE KEY",
            },
            e => X509Error::MalformedPem {
                reason: e.to_string(),
            },
        })?;
        Self::from_parts(certs, key)
    }

    /// Checks and wraps an already-split chain (leaf first) and its key.
    ///
    /// # Errors
    ///
    /// As [`X509Svid::parse_der`].
    pub fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key: PrivatePkcs8KeyDer<'static>,
    ) -> Result<Self, X509Error> {
        let Some(leaf_der) = chain.first() else {
            return Err(X509Error::EmptyChain);
        };
        let leaf = parse_cert(leaf_der, 0)?;
        let spiffe_id = check_leaf(&leaf)?;

        for (index, der) in chain.iter().enumerate().skip(1) {
            check_signing_cert(&parse_cert(der, index)?, index)?;
        }

        check_key_matches(leaf.public_key(), key.secret_pkcs8_der())?;

        let not_before = to_system_time(leaf.validity().not_before.timestamp())?;
        let not_after = to_system_time(leaf.validity().not_after.timestamp())?;
        drop(leaf);
        Ok(X509Svid {
            spiffe_id,
            chain,
            key,
            not_before,
            not_after,
        })
    }

    /// The SPIFFE ID of the leaf.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The whole chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // from_parts refuses empty chains, so index 0 exists.
        &self.chain[0]
    }

    /// The leaf's private key (PKCS#8 DER).
    pub fn key(&self) -> &PrivatePkcs8KeyDer<'static> {
        &self.key
    }

    /// Start of the leaf's validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the leaf's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

impl Clone for X509Svid {
    fn clone(&self) -> Self {
        X509Svid {
            spiffe_id: self.spiffe_id.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }
}

impl fmt::Debug for X509Svid {
    /// Shows everything but the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id.as_str())
            .field("chain_len", &self.chain.len())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::KeyUsagePurpose;

    use super::*;
    use crate::x509::test_certs::{KeyKind, LeafSpec, TestCa, TestLeaf};
    use crate::x509::{certs_to_pem, concat_der, pkcs8_to_pem};

    const ID: &str = "spiffe://example.org/workload";

    fn parse(leaf: &TestLeaf, rest: &[&CertificateDer<'static>]) -> Result<X509Svid, X509Error> {
        let mut chain = vec![leaf.cert.clone()];
        chain.extend(rest.iter().map(|c| (*c).clone()));
        X509Svid::parse_der(&concat_der(&chain), leaf.key.secret_pkcs8_der())
    }

    fn issue_broken(change: impl FnOnce(&mut LeafSpec)) -> Result<X509Svid, X509Error> {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let mut spec = LeafSpec::valid(ID);
        change(&mut spec);
        parse(&ca.issue(&spec, KeyKind::P256), &[&ca.cert])
    }

    #[test]
    fn parses_leaf_and_ca_for_every_key_type() {
        for ca_kind in KeyKind::ALL {
            let ca = TestCa::new("example.org", ca_kind);
            for kind in KeyKind::ALL {
                let spec = LeafSpec::valid(ID);
                let leaf = ca.issue(&spec, kind);
                let svid = parse(&leaf, &[&ca.cert])
                    .unwrap_or_else(|e| panic!("ca {ca_kind:?} leaf {kind:?}: {e}"));
                assert_eq!(svid.spiffe_id().as_str(), ID);
                assert_eq!(svid.chain(), [leaf.cert.clone(), ca.cert.clone()]);
                assert_eq!(svid.leaf(), &leaf.cert);
                assert_eq!(svid.key().secret_pkcs8_der(), leaf.key.secret_pkcs8_der());
                assert_eq!(svid.not_before(), spec.not_before);
                assert_eq!(svid.not_after(), spec.not_after);
            }
        }
    }

    #[test]
    fn parses_leaf_only_and_leaf_with_intermediate() {
        let root = TestCa::new("example.org", KeyKind::P384);
        let mid = root.intermediate(KeyKind::P256, true, true);
        let leaf = mid.leaf(ID, KeyKind::Ed25519);
        assert!(parse(&leaf, &[]).is_ok());
        assert_eq!(
            parse(&leaf, &[&mid.cert, &root.cert])
                .unwrap()
                .chain()
                .len(),
            3
        );
    }

    #[test]
    fn rejects_leaf_with_ca_true() {
        let err = issue_broken(|s| s.is_ca = true).unwrap_err();
        assert!(matches!(err, X509Error::LeafIsCa), "{err}");
    }

    #[test]
    fn rejects_leaf_with_key_cert_sign() {
        let err = issue_broken(|s| s.key_usages.push(KeyUsagePurpose::KeyCertSign)).unwrap_err();
        assert!(matches!(err, X509Error::LeafKeyCertSign), "{err}");
    }

    #[test]
    fn rejects_leaf_with_crl_sign() {
        let err = issue_broken(|s| s.key_usages.push(KeyUsagePurpose::CrlSign)).unwrap_err();
        assert!(matches!(err, X509Error::LeafCrlSign), "{err}");
    }

    #[test]
    fn rejects_leaf_without_digital_signature() {
        let err = issue_broken(|s| s.key_usages = vec![KeyUsagePurpose::KeyEncipherment]);
        assert!(matches!(err, Err(X509Error::LeafNoDigitalSignature)));
        let err = issue_broken(|s| s.key_usages.clear());
        assert!(matches!(err, Err(X509Error::LeafNoDigitalSignature)));
    }

    #[test]
    fn rejects_leaf_with_two_uri_sans() {
        let err = issue_broken(|s| s.uris.push("spiffe://example.org/other".into())).unwrap_err();
        assert!(
            matches!(err, X509Error::MultipleUriSans { count: 2 }),
            "{err}"
        );
    }

    #[test]
    fn rejects_leaf_without_uri_san() {
        let err = issue_broken(|s| {
            s.uris.clear();
            s.dns.push("workload.example.org".into());
        })
        .unwrap_err();
        assert!(matches!(err, X509Error::NoUriSan), "{err}");
    }

    #[test]
    fn rejects_leaf_with_root_path_id() {
        let err = issue_broken(|s| s.uris = vec!["spiffe://example.org".into()]).unwrap_err();
        assert!(matches!(err, X509Error::LeafRootId { .. }), "{err}");
        assert!(err.to_string().contains("non-root path"));
    }

    #[test]
    fn rejects_leaf_with_invalid_spiffe_id() {
        let err = issue_broken(|s| s.uris = vec!["spiffe://Example.org/a".into()]).unwrap_err();
        assert!(matches!(err, X509Error::InvalidSpiffeId { .. }), "{err}");
    }

    #[test]
    fn rejects_key_of_another_leaf() {
        for kind in KeyKind::ALL {
            let ca = TestCa::new("example.org", KeyKind::P256);
            let leaf = ca.leaf(ID, kind);
            let other = ca.leaf(ID, kind);
            let err = X509Svid::parse_der(&leaf.cert, other.key.secret_pkcs8_der()).unwrap_err();
            assert!(matches!(err, X509Error::KeyMismatch), "{kind:?}: {err}");
        }
    }

    #[test]
    fn rejects_corrupt_key() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let leaf = ca.leaf(ID, KeyKind::P256);
        let err = X509Svid::parse_der(&leaf.cert, b"\x30\x03\x02\x01\x00").unwrap_err();
        assert!(matches!(err, X509Error::MalformedKey { .. }), "{err}");
    }

    #[test]
    fn rejects_intermediate_that_is_not_a_ca() {
        let root = TestCa::new("example.org", KeyKind::P256);
        let mid = root.intermediate(KeyKind::P256, false, true);
        let err = parse(&mid.leaf(ID, KeyKind::P256), &[&mid.cert, &root.cert]).unwrap_err();
        assert!(
            matches!(err, X509Error::SigningCertNotCa { index: 1 }),
            "{err}"
        );
    }

    #[test]
    fn rejects_intermediate_without_key_cert_sign() {
        let root = TestCa::new("example.org", KeyKind::P256);
        let mid = root.intermediate(KeyKind::P256, true, false);
        let err = parse(&mid.leaf(ID, KeyKind::P256), &[&mid.cert]).unwrap_err();
        assert!(
            matches!(err, X509Error::SigningCertNoKeyCertSign { index: 1 }),
            "{err}"
        );
    }

    #[test]
    fn rejects_empty_chain() {
        assert!(matches!(
            X509Svid::parse_der(&[], &[]),
            Err(X509Error::EmptyChain)
        ));
    }

    #[test]
    fn parses_pem_including_cert_and_key_in_one_file() {
        let ca = TestCa::new("example.org", KeyKind::P384);
        let leaf = ca.leaf(ID, KeyKind::P384);
        let chain = [leaf.cert.clone(), ca.cert.clone()];
        let certs = certs_to_pem(&chain);
        let key = pkcs8_to_pem(&leaf.key);
        let svid = X509Svid::parse_pem(certs.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(svid.chain(), chain);

        let both = format!("{key}{certs}");
        let svid = X509Svid::parse_pem(both.as_bytes(), both.as_bytes()).unwrap();
        assert_eq!(svid.spiffe_id().as_str(), ID);

        let err = X509Svid::parse_pem(certs.as_bytes(), certs.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::MissingPemBlock {
                    label: "PRIVATE KEY"
                }
            ),
            "{err}"
        );
        let err = X509Svid::parse_pem(key.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::MissingPemBlock {
                    label: "CERTIFICATE"
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_the_key_and_clone_keeps_it() {
        let ca = TestCa::new("example.org", KeyKind::Ed25519);
        let leaf = ca.leaf(ID, KeyKind::Ed25519);
        let svid = parse(&leaf, &[&ca.cert]).unwrap();
        let debug = format!("{svid:?}");
        assert!(debug.contains(ID));
        assert!(!debug.contains("key"), "{debug}");
        let copy = svid.clone();
        assert_eq!(copy.key().secret_pkcs8_der(), svid.key().secret_pkcs8_der());
    }
}
