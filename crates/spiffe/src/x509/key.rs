//! Checking that a PKCS#8 private key belongs to a certificate's public key.
//!
//! The key is loaded with aws-lc-rs for the algorithm the certificate announces, its public key is
//! derived and encoded as SubjectPublicKeyInfo, and the key bits are compared with the
//! certificate's. Supported: EC P-256, P-384, P-521, RSA and Ed25519.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::X509Error;

use crate::spki::{
    OID_CURVE_P256, OID_CURVE_P384, OID_CURVE_P521, OID_EC_PUBLIC_KEY, OID_ED25519,
    OID_RSA_ENCRYPTION, ec_curve_oid,
};

/// Fails unless `pkcs8` is the private key of the public key in `spki` (the leaf's).
pub(crate) fn check_key_matches(
    spki: &SubjectPublicKeyInfo<'_>,
    pkcs8: &[u8],
) -> Result<(), X509Error> {
    let derived = derive_spki(spki, pkcs8)?;
    let (_, derived) =
        SubjectPublicKeyInfo::from_der(derived.as_ref()).map_err(|e| X509Error::MalformedKey {
            algorithm: "derived",
            reason: e.to_string(),
        })?;

    if derived.algorithm.algorithm != spki.algorithm.algorithm
        || derived.subject_public_key.data != spki.subject_public_key.data
    {
        return Err(X509Error::KeyMismatch);
    }
    Ok(())
}

/// Loads `pkcs8` as the kind of key `spki` holds and returns the SPKI DER of its public half.
fn derive_spki(
    spki: &SubjectPublicKeyInfo<'_>,
    pkcs8: &[u8],
) -> Result<PublicKeyX509Der<'static>, X509Error> {
    let alg = spki.algorithm.algorithm.to_id_string();
    let (name, der) = match alg.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = ec_curve_oid(spki);
            let (name, signing) = match curve.as_str() {
                OID_CURVE_P256 => ("EC P-256", &signature::ECDSA_P256_SHA256_ASN1_SIGNING),
                OID_CURVE_P384 => ("EC P-384", &signature::ECDSA_P384_SHA384_ASN1_SIGNING),
                OID_CURVE_P521 => ("EC P-521", &signature::ECDSA_P521_SHA512_ASN1_SIGNING),
                _ => {
                    return Err(X509Error::UnsupportedKeyAlgorithm {
                        oid: format!("{alg}/{curve}"),
                    });
                }
            };
            let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8).map_err(rejected(name))?;
            (name, pair.public_key().as_der())
        }
        OID_RSA_ENCRYPTION => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected("RSA"))?;
            ("RSA", pair.public_key().as_der())
        }
        OID_ED25519 => {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected("Ed25519"))?;
            ("Ed25519", pair.public_key().as_der())
        }
        _ => return Err(X509Error::UnsupportedKeyAlgorithm { oid: alg }),
    };
    der.map_err(|_| X509Error::MalformedKey {
        algorithm: name,
        reason: "cannot encode its public key".into(),
    })
}

fn rejected(algorithm: &'static str) -> impl Fn(KeyRejected) -> X509Error {
    move |e| X509Error::MalformedKey {
        algorithm,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::cert::parse_cert;
    use crate::x509::test_certs::{KeyKind, TestCa};

    #[test]
    fn accepts_the_matching_key_for_every_supported_kind() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        for kind in KeyKind::ALL {
            let leaf = ca.leaf("spiffe://example.org/w", kind);
            let cert = parse_cert(&leaf.cert, 0).unwrap();
            check_key_matches(cert.public_key(), leaf.key.secret_pkcs8_der())
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
    }

    #[test]
    fn rejects_another_key_of_the_same_kind() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        for kind in KeyKind::ALL {
            let a = ca.leaf("spiffe://example.org/a", kind);
            let b = ca.leaf("spiffe://example.org/b", kind);
            let cert = parse_cert(&a.cert, 0).unwrap();
            let err = check_key_matches(cert.public_key(), b.key.secret_pkcs8_der()).unwrap_err();
            assert!(matches!(err, X509Error::KeyMismatch), "{kind:?}: {err}");
        }
    }

    #[test]
    fn rejects_a_key_of_another_kind() {
        let ca = TestCa::new("example.org", KeyKind::P256);
        let p256 = ca.leaf("spiffe://example.org/a", KeyKind::P256);
        let p384 = ca.leaf("spiffe://example.org/b", KeyKind::P384);
        let ed = ca.leaf("spiffe://example.org/c", KeyKind::Ed25519);
        let cert = parse_cert(&p256.cert, 0).unwrap();
        for other in [&p384, &ed] {
            let err =
                check_key_matches(cert.public_key(), other.key.secret_pkcs8_der()).unwrap_err();
            assert!(matches!(err, X509Error::MalformedKey { .. }), "{err}");
        }
        let err = check_key_matches(cert.public_key(), b"garbage").unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::MalformedKey {
                    algorithm: "EC P-256",
                    ..
                }
            ),
            "{err}"
        );
    }
}
