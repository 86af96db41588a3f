//! Checks on every X509-SVID the server returns, before the agent uses or hands it out.

use std::time::SystemTime;

use lanyard_proto::spire::api::types;
use lanyard_spiffe::x509::{X509Error, verify_chain};
use lanyard_spiffe::{SpiffeId, X509Bundle, X509Svid};
use rcgen::KeyPair;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// Why a returned SVID was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SvidCheckError {
    /// No certificates at all.
    #[error("the server returned an empty certificate chain")]
    EmptyChain,
    /// The leaf breaks the X509-SVID rules or does not carry the requested key.
    #[error("the returned SVID is not a valid X509-SVID for the requested key")]
    Malformed(#[source] X509Error),
    /// The certificate names another identity than asked for.
    #[error("the returned SVID is for {got}, expected {expected}")]
    WrongId {
        /// The ID in the certificate.
        got: SpiffeId,
        /// The ID that was asked for.
        expected: SpiffeId,
    },
    /// The chain does not lead to the trust bundle.
    #[error("the returned SVID for {id} does not verify against the trust bundle")]
    Untrusted {
        /// The ID in the certificate.
        id: SpiffeId,
        /// Why path validation failed.
        source: X509Error,
    },
}

/// Accepts `wire` as the SVID of `expected` for `key` if the leaf follows X509-SVID §4-5, holds
/// the public key of `key`, names `expected`, and chains to `bundle` at `now`.
pub(crate) fn accept_svid(
    wire: &types::X509svid,
    key: &KeyPair,
    expected: &SpiffeId,
    bundle: &X509Bundle,
    now: SystemTime,
) -> Result<X509Svid, SvidCheckError> {
    if wire.cert_chain.is_empty() {
        return Err(SvidCheckError::EmptyChain);
    }
    let chain: Vec<CertificateDer<'static>> = wire
        .cert_chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let svid = X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der()))
        .map_err(SvidCheckError::Malformed)?;
    if svid.spiffe_id() != expected {
        return Err(SvidCheckError::WrongId {
            got: svid.spiffe_id().clone(),
            expected: expected.clone(),
        });
    }
    verify_chain(svid.chain(), bundle, now).map_err(|source| SvidCheckError::Untrusted {
        id: expected.clone(),
        source,
    })?;
    Ok(svid)
}

/// Whether a held SVID may be handed out at `now`: inside its validity period.
pub(crate) fn usable_at(svid: &X509Svid, now: SystemTime) -> bool {
    svid.not_before() <= now && now < svid.not_after()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lanyard_ca::{KeyType, generate_key_pair};

    use super::*;
    use crate::test_support::TestCa;

    fn wire(chain: &[CertificateDer<'_>]) -> types::X509svid {
        types::X509svid {
            cert_chain: chain.iter().map(|c| c.to_vec()).collect(),
            ..Default::default()
        }
    }

    fn id(ca: &TestCa, path: &str) -> SpiffeId {
        SpiffeId::from_path(&ca.td, path).unwrap()
    }

    #[test]
    fn accepts_a_chain_for_the_right_key_and_id() {
        let ca = TestCa::new();
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = ca.sign(&key, "/web", Duration::from_secs(60));
        let svid = accept_svid(
            &wire(&chain),
            &key,
            &id(&ca, "/web"),
            &ca.bundle(),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(svid.spiffe_id().path(), "/web");
        assert!(usable_at(&svid, SystemTime::now()));
        assert!(!usable_at(
            &svid,
            SystemTime::now() + Duration::from_secs(61)
        ));
    }

    #[test]
    fn rejects_a_chain_for_another_key() {
        let ca = TestCa::new();
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let other = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = ca.sign(&other, "/web", Duration::from_secs(60));
        let err = accept_svid(
            &wire(&chain),
            &key,
            &id(&ca, "/web"),
            &ca.bundle(),
            SystemTime::now(),
        );
        assert!(matches!(err, Err(SvidCheckError::Malformed(_))), "{err:?}");
    }

    #[test]
    fn rejects_a_chain_for_another_id() {
        let ca = TestCa::new();
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = ca.sign(&key, "/db", Duration::from_secs(60));
        let err = accept_svid(
            &wire(&chain),
            &key,
            &id(&ca, "/web"),
            &ca.bundle(),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the returned SVID is for spiffe://example.org/db, expected spiffe://example.org/web"
        );
    }

    #[test]
    fn rejects_a_chain_from_an_unknown_authority_and_an_empty_chain() {
        let ca = TestCa::new();
        let stranger = TestCa::new();
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = stranger.sign(&key, "/web", Duration::from_secs(60));
        let err = accept_svid(
            &wire(&chain),
            &key,
            &id(&ca, "/web"),
            &ca.bundle(),
            SystemTime::now(),
        );
        assert!(
            matches!(err, Err(SvidCheckError::Untrusted { .. })),
            "{err:?}"
        );
        let err = accept_svid(
            &wire(&[]),
            &key,
            &id(&ca, "/web"),
            &ca.bundle(),
            SystemTime::now(),
        );
        assert!(matches!(err, Err(SvidCheckError::EmptyChain)));
    }
}
