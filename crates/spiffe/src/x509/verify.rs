//! Peer chain verification: SPIFFE leaf rules plus RFC 5280 path validation against the bundle of
//! the leaf's own trust domain (X509-SVID §5).

use std::sync::LazyLock;
use std::time::SystemTime;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage};

use super::cert::{check_leaf, check_signing_cert, parse_cert};
use super::{BundleSource, MAX_CHAIN_CERTS, X509Error};
use crate::id::SpiffeId;

/// Signature algorithms accepted in certificate chains: those of the aws-lc-rs provider.
static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> = LazyLock::new(|| {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
});

/// Verifies a peer's chain (leaf first) and returns the leaf's SPIFFE ID.
///
/// 1. The leaf must satisfy X509-SVID §5.1: exactly one URI SAN with a SPIFFE ID that has a path,
///    not a CA, no keyCertSign, no cRLSign, digitalSignature set.
/// 2. The bundle is chosen by the leaf's trust domain, and only that bundle's authorities are
///    trust anchors: a leaf of `a.org` never verifies against the CAs of `b.org`.
/// 3. RFC 5280 path validation (rustls-webpki) at `now`, with the rest of the chain as
///    intermediates. Extended key usage may be absent; when present it must allow server or
///    client authentication.
/// 4. Every intermediate on the validated path must be a CA with keyCertSign (X509-SVID §4.3,
///    RFC 5280 §6.1.4 (n)); rustls-webpki does not look at key usage, so it is checked here.
///
/// Chains longer than [`MAX_CHAIN_CERTS`] are refused before any signature is checked.
/// Intermediate and root certificates' URI SANs are not run through the SPIFFE ID parser.
///
/// # Errors
///
/// [`X509Error`] naming the broken leaf rule, [`X509Error::NoBundle`] /
/// [`X509Error::EmptyBundle`] when the trust domain has no authorities, or
/// [`X509Error::PathValidation`] (unknown issuer, expired, bad signature, ...).
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    bundles: &dyn BundleSource,
    now: SystemTime,
) -> Result<SpiffeId, X509Error> {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return Err(X509Error::EmptyChain);
    };
    if chain.len() > MAX_CHAIN_CERTS {
        return Err(X509Error::TooManyCertificates {
            max: MAX_CHAIN_CERTS,
        });
    }
    let id = check_leaf(&parse_cert(leaf_der, 0)?)?;

    let td = id.trust_domain();
    let trust_domain = td.name().to_owned();
    let Some(bundle) = bundles.x509_bundle(&td) else {
        return Err(X509Error::NoBundle { trust_domain });
    };
    if bundle.is_empty() {
        return Err(X509Error::EmptyBundle { trust_domain });
    }
    let mut anchors = Vec::with_capacity(bundle.authorities().len());
    for (index, authority) in bundle.authorities().iter().enumerate() {
        let anchor = webpki::anchor_from_trusted_cert(authority).map_err(|reason| {
            X509Error::BadAuthority {
                trust_domain: trust_domain.clone(),
                index,
                reason,
            }
        })?;
        anchors.push(anchor);
    }

    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| X509Error::TimeBeforeEpoch)?;
    let path_error = |reason| X509Error::PathValidation {
        trust_domain: trust_domain.clone(),
        reason,
    };
    let end_entity = EndEntityCert::try_from(leaf_der).map_err(path_error)?;
    let path = end_entity
        .verify_for_usage(
            ALGORITHMS.all,
            &anchors,
            intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            SpiffeEku,
            None,
            None,
        )
        .map_err(path_error)?;

    for cert in path.intermediate_certificates() {
        let der = cert.der();
        // Report the position in the chain as given (1 = the certificate after the leaf).
        let index = chain
            .iter()
            .position(|c| c.as_ref() == der.as_ref())
            .unwrap_or(0);
        check_signing_cert(&parse_cert(&der, index)?, index)?;
    }
    Ok(id)
}

/// Extended key usage policy: absent, or including serverAuth, clientAuth or anyExtendedKeyUsage.
struct SpiffeEku;

/// id-kp-serverAuth (1.3.6.1.5.5.7.3.1), DER contents.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth (1.3.6.1.5.5.7.3.2), DER contents.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// anyExtendedKeyUsage (2.5.29.37.0), DER contents.
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

impl ExtendedKeyUsageValidator for SpiffeEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let accepted = [EKU_SERVER_AUTH, EKU_CLIENT_AUTH, EKU_ANY].map(KeyPurposeId::new);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if accepted.contains(&id) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: KeyUsage::server_auth(),
                present,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

    use super::*;
    use crate::id::TrustDomain;
    use crate::x509::test_certs::{KeyKind, LeafSpec, TestCa, now_secs};
    use crate::x509::{X509Bundle, X509BundleSet};

    const ID: &str = "spiffe://a.org/workload";

    fn verify_spec(spec: &LeafSpec) -> Result<SpiffeId, X509Error> {
        let ca = TestCa::new("a.org", KeyKind::P256);
        let leaf = ca.issue(spec, KeyKind::P256);
        verify_chain(&[leaf.cert], &ca.bundle(), now_secs())
    }

    #[test]
    fn verifies_leaf_signed_by_bundle_ca_for_every_key_type() {
        for ca_kind in KeyKind::ALL {
            let ca = TestCa::new("a.org", ca_kind);
            for kind in KeyKind::ALL {
                let leaf = ca.leaf(ID, kind);
                let id = verify_chain(&[leaf.cert, ca.cert.clone()], &ca.bundle(), now_secs())
                    .unwrap_or_else(|e| panic!("ca {ca_kind:?} leaf {kind:?}: {e}"));
                assert_eq!(id.as_str(), ID);
            }
        }
    }

    #[test]
    fn verifies_through_an_intermediate() {
        let root = TestCa::new("a.org", KeyKind::P384);
        let mid = root.intermediate(KeyKind::P256, true, true);
        let leaf = mid.leaf(ID, KeyKind::P256);
        let chain = [leaf.cert.clone(), mid.cert.clone()];
        assert_eq!(
            verify_chain(&chain, &root.bundle(), now_secs())
                .unwrap()
                .as_str(),
            ID
        );
        let err = verify_chain(&[leaf.cert], &root.bundle(), now_secs()).unwrap_err();
        assert!(matches!(
            err,
            X509Error::PathValidation {
                reason: webpki::Error::UnknownIssuer,
                ..
            }
        ));
    }

    #[test]
    fn ca_uri_sans_need_not_be_strict_spiffe_ids() {
        let ca = TestCa::with_uri("a.org", KeyKind::P256, "spiffe://a.org/");
        let leaf = ca.leaf(ID, KeyKind::P256);
        assert!(verify_chain(&[leaf.cert], &ca.bundle(), now_secs()).is_ok());
    }

    #[test]
    fn uses_only_the_bundle_of_the_leafs_trust_domain() {
        let a = TestCa::new("a.org", KeyKind::P256);
        let b = TestCa::new("b.org", KeyKind::P256);
        let both: X509BundleSet = [a.bundle(), b.bundle()].into_iter().collect();

        // b.org's CA signing an a.org ID: b's CA is trusted, but not for a.org.
        let forged = b.leaf(ID, KeyKind::P256);
        let err = verify_chain(std::slice::from_ref(&forged.cert), &both, now_secs()).unwrap_err();
        assert!(
            matches!(&err, X509Error::PathValidation { trust_domain, reason: webpki::Error::UnknownIssuer } if trust_domain == "a.org"),
            "{err}"
        );

        // A source holding only b.org's bundle has nothing for an a.org leaf.
        let only_b = b.bundle();
        let err = verify_chain(&[forged.cert], &only_b, now_secs()).unwrap_err();
        assert!(matches!(err, X509Error::NoBundle { .. }), "{err}");

        let genuine = a.leaf(ID, KeyKind::P256);
        assert!(verify_chain(std::slice::from_ref(&genuine.cert), &both, now_secs()).is_ok());
        assert!(matches!(
            verify_chain(&[genuine.cert], &b.bundle(), now_secs()),
            Err(X509Error::NoBundle { .. })
        ));
    }

    #[test]
    fn rejects_when_the_trust_domain_bundle_is_empty() {
        let ca = TestCa::new("a.org", KeyKind::P256);
        let leaf = ca.leaf(ID, KeyKind::P256);
        let empty = X509Bundle::new(TrustDomain::new("a.org").unwrap(), vec![]);
        let err = verify_chain(&[leaf.cert], &empty, now_secs()).unwrap_err();
        assert!(matches!(err, X509Error::EmptyBundle { .. }), "{err}");
    }

    #[test]
    fn rejects_expired_and_not_yet_valid_leaves_at_the_injected_time() {
        let ca = TestCa::new("a.org", KeyKind::P256);
        let spec = LeafSpec::valid(ID);
        let leaf = ca.issue(&spec, KeyKind::P256);
        let chain = [leaf.cert];
        let bundle = ca.bundle();

        assert!(verify_chain(&chain, &bundle, spec.not_after - Duration::from_secs(1)).is_ok());
        let err = verify_chain(&chain, &bundle, spec.not_after + Duration::from_secs(1));
        assert!(matches!(
            err,
            Err(X509Error::PathValidation {
                reason: webpki::Error::CertExpired { .. },
                ..
            })
        ));
        let err = verify_chain(&chain, &bundle, spec.not_before - Duration::from_secs(1));
        assert!(matches!(
            err,
            Err(X509Error::PathValidation {
                reason: webpki::Error::CertNotValidYet { .. },
                ..
            })
        ));
    }

    #[test]
    fn applies_the_leaf_rules() {
        let mut ca_leaf = LeafSpec::valid(ID);
        ca_leaf.is_ca = true;
        assert!(matches!(verify_spec(&ca_leaf), Err(X509Error::LeafIsCa)));

        let mut cert_sign = LeafSpec::valid(ID);
        cert_sign.key_usages.push(KeyUsagePurpose::KeyCertSign);
        assert!(matches!(
            verify_spec(&cert_sign),
            Err(X509Error::LeafKeyCertSign)
        ));

        let mut crl_sign = LeafSpec::valid(ID);
        crl_sign.key_usages.push(KeyUsagePurpose::CrlSign);
        assert!(matches!(
            verify_spec(&crl_sign),
            Err(X509Error::LeafCrlSign)
        ));

        let mut no_ds = LeafSpec::valid(ID);
        no_ds.key_usages = vec![KeyUsagePurpose::KeyAgreement];
        assert!(matches!(
            verify_spec(&no_ds),
            Err(X509Error::LeafNoDigitalSignature)
        ));

        let mut two = LeafSpec::valid(ID);
        two.uris.push("spiffe://a.org/other".into());
        assert!(matches!(
            verify_spec(&two),
            Err(X509Error::MultipleUriSans { count: 2 })
        ));

        let mut none = LeafSpec::valid(ID);
        none.uris.clear();
        assert!(matches!(verify_spec(&none), Err(X509Error::NoUriSan)));

        let root = LeafSpec::valid("spiffe://a.org");
        assert!(matches!(
            verify_spec(&root),
            Err(X509Error::LeafRootId { .. })
        ));
    }

    #[test]
    fn accepts_absent_or_client_only_eku_and_rejects_unrelated_eku() {
        let mut no_eku = LeafSpec::valid(ID);
        no_eku.ekus.clear();
        assert!(verify_spec(&no_eku).is_ok());

        let mut client_only = LeafSpec::valid(ID);
        client_only.ekus = vec![ExtendedKeyUsagePurpose::ClientAuth];
        assert!(verify_spec(&client_only).is_ok());

        let mut code_signing = LeafSpec::valid(ID);
        code_signing.ekus = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let err = verify_spec(&code_signing).unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::PathValidation {
                    reason: webpki::Error::RequiredEkuNotFoundContext(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_empty_chain_and_garbage_leaf() {
        let ca = TestCa::new("a.org", KeyKind::P256);
        assert!(matches!(
            verify_chain(&[], &ca.bundle(), now_secs()),
            Err(X509Error::EmptyChain)
        ));
        let garbage = CertificateDer::from(vec![0x30, 0x00]);
        assert!(matches!(
            verify_chain(&[garbage], &ca.bundle(), now_secs()),
            Err(X509Error::MalformedCertificate { .. })
        ));
    }
}
