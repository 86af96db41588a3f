//! Test-only key factory and token builders: keys are generated at test time (one per kind,
//! cached, plus fresh ones on demand), tokens can be assembled from raw JSON to break rules.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{JwtAlgorithm, JwtBundle, JwtSigner, JwtSigningKey, JwtSvidClaims};
use crate::id::{SpiffeId, TrustDomain};

/// Key kinds used by the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    P256,
    P384,
    P521,
    Rsa2048,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::P256, Kind::P384, Kind::P521, Kind::Rsa2048];

    /// A key kind able to sign `alg`.
    pub(crate) fn for_alg(alg: JwtAlgorithm) -> Kind {
        match alg {
            JwtAlgorithm::ES256 => Kind::P256,
            JwtAlgorithm::ES384 => Kind::P384,
            JwtAlgorithm::ES512 => Kind::P521,
            _ => Kind::Rsa2048,
        }
    }

    /// A fresh PKCS#8 DER private key.
    pub(crate) fn generate(self) -> Vec<u8> {
        let rng = SystemRandom::new();
        let ec = |alg| {
            EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .unwrap()
                .as_ref()
                .to_vec()
        };
        match self {
            Kind::P256 => ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            Kind::P384 => ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            Kind::P521 => ec(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
            Kind::Rsa2048 => RsaKeyPair::generate(KeySize::Rsa2048)
                .unwrap()
                .as_der()
                .unwrap()
                .as_ref()
                .to_vec(),
        }
    }

    /// The cached PKCS#8 key of this kind (RSA generation is slow in debug builds).
    pub(crate) fn pkcs8(self) -> &'static [u8] {
        static KEYS: [OnceLock<Vec<u8>>; 4] = [const { OnceLock::new() }; 4];
        let slot = Kind::ALL.iter().position(|k| *k == self).unwrap();
        KEYS[slot].get_or_init(|| self.generate())
    }

    /// The cached key of this kind.
    pub(crate) fn key(self) -> JwtSigningKey {
        JwtSigningKey::from_pkcs8(self.pkcs8()).unwrap()
    }
}

pub(crate) fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

pub(crate) fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// Now, truncated to whole seconds (the resolution of JWT times).
pub(crate) fn now() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims for `sub` and `aud`, issued now, valid for five minutes.
pub(crate) fn claims(sub: &str, aud: &[&str]) -> JwtSvidClaims {
    let now = now();
    JwtSvidClaims {
        subject: id(sub),
        audience: aud.iter().map(|a| a.to_string()).collect(),
        issued_at: now,
        expiry: now + Duration::from_secs(300),
        extra: serde_json::Map::new(),
    }
}

/// A signer of the cached key fitting `alg`.
pub(crate) fn signer(alg: JwtAlgorithm, kid: &str) -> JwtSigner {
    JwtSigner::new(Kind::for_alg(alg).key(), kid, alg).unwrap()
}

/// A bundle of `td` holding each signer's public key under its kid.
pub(crate) fn bundle_of(td_name: &str, signers: &[&JwtSigner]) -> JwtBundle {
    let mut bundle = JwtBundle::new(td(td_name));
    for s in signers {
        bundle.insert(s.kid(), s.public_key().clone());
    }
    bundle
}

/// A token from raw header and claims JSON, signed with `key` as `alg` (whatever the header says).
pub(crate) fn forge(header: &str, claims: &str, key: &JwtSigningKey, alg: JwtAlgorithm) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let sig = key.sign(alg, token.as_bytes()).unwrap();
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    token
}
