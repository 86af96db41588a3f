//! Settings that only take effect at the next rotation: a changed `ca_key_type` or
//! `jwt_key_type`, or an UpstreamAuthority added or removed, leave the active authority as it
//! is until a new one is prepared and activated. [`config_drift`] names each such difference so
//! that the server can say so at start instead of leaving the operator to wonder.

use lanyard_spiffe::jwt::JwtPublicKey;
use rcgen::{KeyPair, PublicKeyData as _};

use crate::key::KeyType;
use crate::manager::{CaConfig, CaManager};

/// Each way the active authorities differ from `config` (and from whether an upstream
/// authority is configured), as `setting: active ..., configured ...`; empty when they agree.
pub fn config_drift(ca: &CaManager, config: &CaConfig, upstream_configured: bool) -> Vec<String> {
    let mut drift = Vec::new();
    let active = ca.active();
    if let Some(kt) = x509_key_type(active.key())
        && kt != config.key_type
    {
        drift.push(format!(
            "ca_key_type: the active X.509 authority has {kt}, the configuration says {}",
            config.key_type
        ));
    }
    if let Some(kt) = jwt_key_type(ca.active_jwt_authority().public_key())
        && kt != config.jwt_key_type
    {
        drift.push(format!(
            "jwt_key_type: the active JWT key is {kt}, the configuration says {}",
            config.jwt_key_type
        ));
    }
    match (active.upstream().is_some(), upstream_configured) {
        (true, false) => drift.push(
            "UpstreamAuthority: the active X.509 authority is signed by an upstream authority, \
             the configuration has none"
                .to_owned(),
        ),
        (false, true) => drift.push(
            "UpstreamAuthority: the active X.509 authority is self-signed, the configuration \
             has an upstream authority"
                .to_owned(),
        ),
        _ => {}
    }
    drift
}

/// The key type of an X.509 CA key, when it is one Lanyard generates.
fn x509_key_type(key: &KeyPair) -> Option<KeyType> {
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Some(KeyType::EcP256)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Some(KeyType::EcP384)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        // The public key is a DER RSAPublicKey: about 270 bytes for 2048 bits, 526 for 4096.
        match key.der_bytes().len() {
            0..400 => Some(KeyType::Rsa2048),
            500..600 => Some(KeyType::Rsa4096),
            _ => None,
        }
    } else {
        None
    }
}

/// The key type of a JWT public key, when it is one Lanyard generates.
fn jwt_key_type(key: &JwtPublicKey) -> Option<KeyType> {
    if let Some((curve, _, _)) = key.ec_coordinates() {
        return match curve {
            lanyard_spiffe::jwt::EcCurve::P256 => Some(KeyType::EcP256),
            lanyard_spiffe::jwt::EcCurve::P384 => Some(KeyType::EcP384),
            _ => None,
        };
    }
    let (n, _) = key.rsa_components()?;
    let significant = n.iter().skip_while(|b| **b == 0).count();
    match significant * 8 {
        2048 => Some(KeyType::Rsa2048),
        4096 => Some(KeyType::Rsa4096),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::generate_key_pair;
    use crate::test_support::Harness;

    #[test]
    fn recognises_every_generated_x509_key_type() {
        for kt in KeyType::ALL {
            assert_eq!(
                x509_key_type(&generate_key_pair(kt).unwrap()),
                Some(kt),
                "{kt}"
            );
        }
    }

    #[tokio::test]
    async fn names_a_changed_key_type_and_an_added_upstream() {
        let h = Harness::new();
        let ca = h.load().await.unwrap();
        let same = CaConfig::default();
        assert_eq!(config_drift(&ca, &same, false), Vec::<String>::new());

        let changed = CaConfig {
            key_type: KeyType::EcP384,
            jwt_key_type: KeyType::Rsa2048,
            ..CaConfig::default()
        };
        assert_eq!(
            config_drift(&ca, &changed, true),
            [
                "ca_key_type: the active X.509 authority has ec-p256, the configuration says \
                 ec-p384",
                "jwt_key_type: the active JWT key is ec-p256, the configuration says rsa-2048",
                "UpstreamAuthority: the active X.509 authority is self-signed, the configuration \
                 has an upstream authority",
            ]
        );
    }
}
