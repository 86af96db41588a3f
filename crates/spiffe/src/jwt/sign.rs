//! Signing JWT-SVIDs (for the server): keys from PKCS#8 DER, headers and claims as SPIRE emits
//! them (`alg`, `kid`, `typ: JWT`; `sub`, `aud` as an array, `exp`, `iat`).

use std::fmt;
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::svid::unix_secs;
use super::{JwtAlgorithm, JwtError, JwtPublicKey, MAX_TOKEN_LEN};
use crate::id::SpiffeId;

/// Claims the signer sets itself; [`JwtSvidClaims::extra`] may not hold them.
const RESERVED_CLAIMS: [&str; 4] = ["sub", "aud", "exp", "iat"];

/// A private key that signs JWT-SVIDs: EC P-256, P-384, P-521 or RSA (2048 to 8192 bits).
pub struct JwtSigningKey {
    pair: Pair,
    public: JwtPublicKey,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl JwtSigningKey {
    /// Loads an unencrypted PKCS#8 DER private key.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidSigningKey`] when it is not an EC P-256/P-384/P-521 or RSA PKCS#8 key,
    /// or the RSA modulus is outside 2048..=8192 bits.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, JwtError> {
        let curves = [
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        ];
        let (pair, spki) = if let Some(pair) = curves
            .into_iter()
            .find_map(|alg| EcdsaKeyPair::from_pkcs8(alg, der).ok())
        {
            let spki = pair.public_key().as_der().map(|d| d.as_ref().to_vec());
            (Pair::Ec(pair), spki)
        } else {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| JwtError::InvalidSigningKey {
                reason: format!(
                    "not a PKCS#8 EC P-256, P-384, P-521 or RSA private key (as RSA: {e})"
                ),
            })?;
            let spki = pair.public_key().as_der().map(|d| d.as_ref().to_vec());
            (Pair::Rsa(pair), spki)
        };

        let spki = spki.map_err(|_| JwtError::InvalidSigningKey {
            reason: "its public key cannot be encoded".into(),
        })?;
        let public =
            JwtPublicKey::from_spki_der(&spki).map_err(|e| JwtError::InvalidSigningKey {
                reason: e.to_string(),
            })?;
        Ok(JwtSigningKey { pair, public })
    }

    /// The public half, as published in the JWT bundle.
    pub fn public_key(&self) -> &JwtPublicKey {
        &self.public
    }

    /// True when this key can sign with `alg` (see [`JwtPublicKey::fits`]).
    pub fn fits(&self, alg: JwtAlgorithm) -> bool {
        self.public.fits(alg)
    }

    pub(crate) fn sign(&self, alg: JwtAlgorithm, message: &[u8]) -> Result<Vec<u8>, JwtError> {
        let failed = |_| JwtError::SigningFailed { alg };
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair) => Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Pair::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    JwtAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    JwtAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    JwtAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    JwtAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
                    JwtAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
                    JwtAlgorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => return Err(JwtError::SigningFailed { alg }),
                };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

impl fmt::Debug for JwtSigningKey {
    /// Shows the key kind only, never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSigningKey({})", self.public)
    }
}

/// What goes into one JWT-SVID.
#[derive(Clone, Debug)]
pub struct JwtSvidClaims {
    /// `sub`: the workload's SPIFFE ID.
    pub subject: SpiffeId,
    /// `aud`: at least one non-empty value; always emitted as an array, as SPIRE does.
    pub audience: Vec<String>,
    /// `iat`, truncated to whole seconds.
    pub issued_at: SystemTime,
    /// `exp`, truncated to whole seconds (the token never outlives the time asked for).
    pub expiry: SystemTime,
    /// Further claims (e.g. `iss`, `jti`); may not hold `sub`, `aud`, `exp` or `iat`.
    pub extra: Map<String, Value>,
}

/// A signing key with the `kid` and algorithm it signs under.
#[derive(Debug)]
pub struct JwtSigner {
    key: JwtSigningKey,
    kid: String,
    alg: JwtAlgorithm,
}

impl JwtSigner {
    /// Pairs `key` with its key ID and algorithm.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidSigningKey`] when `kid` is empty or the key does not fit `alg`.
    pub fn new(
        key: JwtSigningKey,
        kid: impl Into<String>,
        alg: JwtAlgorithm,
    ) -> Result<Self, JwtError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(JwtError::InvalidSigningKey {
                reason: "key ID is empty: validators need a non-empty kid".into(),
            });
        }
        if !key.fits(alg) {
            return Err(JwtError::InvalidSigningKey {
                reason: format!("it is an {} key: it cannot sign {alg}", key.public),
            });
        }
        Ok(JwtSigner { key, kid, alg })
    }

    /// Signs a JWT-SVID; see [`sign_jwt_svid`].
    ///
    /// # Errors
    ///
    /// As [`sign_jwt_svid`].
    pub fn sign(&self, claims: &JwtSvidClaims) -> Result<String, JwtError> {
        sign_jwt_svid(&self.key, &self.kid, self.alg, claims)
    }

    /// The key ID written into every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The public key, as published in the JWT bundle under [`kid`](Self::kid).
    pub fn public_key(&self) -> &JwtPublicKey {
        self.key.public_key()
    }
}

/// Signs a JWT-SVID with `key` as compact JWS, header `{"alg","kid","typ":"JWT"}`.
///
/// # Errors
///
/// [`JwtError::InvalidSigningKey`] for an empty `kid` or a key that does not fit `alg`;
/// [`JwtError::InvalidClaims`] for an empty audience (or value), `expiry` not after
/// `issued_at`, times before the epoch, a reserved name in `extra`, or a token over
/// [`MAX_TOKEN_LEN`]; [`JwtError::SigningFailed`] if aws-lc-rs fails.
pub fn sign_jwt_svid(
    key: &JwtSigningKey,
    kid: &str,
    alg: JwtAlgorithm,
    claims: &JwtSvidClaims,
) -> Result<String, JwtError> {
    if kid.is_empty() || !key.fits(alg) {
        return Err(JwtError::InvalidSigningKey {
            reason: format!(
                "{} key with kid {kid:?} cannot sign {alg}: a non-empty kid and a fitting key are required",
                key.public
            ),
        });
    }
    let claims = claims_object(claims)?;

    let mut header = Map::new();
    header.insert("alg".into(), alg.as_str().into());
    header.insert("kid".into(), kid.into());
    header.insert("typ".into(), "JWT".into());

    let mut token = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()));
    let signature = key.sign(alg, token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));

    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid_claims(format!(
            "the token would be {} bytes: at most {MAX_TOKEN_LEN} are accepted by validators",
            token.len()
        )));
    }
    Ok(token)
}

fn claims_object(claims: &JwtSvidClaims) -> Result<Map<String, Value>, JwtError> {
    if claims.audience.is_empty() || claims.audience.iter().any(String::is_empty) {
        return Err(invalid_claims(format!(
            "audience {:?} is empty or has an empty value: at least one non-empty value is required",
            claims.audience
        )));
    }
    let iat = unix_secs(claims.issued_at);
    let exp = unix_secs(claims.expiry);
    if iat < 0 || exp <= iat {
        return Err(invalid_claims(format!(
            "expiry {exp} is not after issued_at {iat} (unix seconds, both at or after the epoch): \
             a JWT-SVID must expire after it is issued"
        )));
    }
    if let Some(name) = claims
        .extra
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(invalid_claims(format!(
            "extra claim {name:?} is reserved: sub, aud, exp and iat are set by the signer"
        )));
    }

    let mut out = claims.extra.clone();
    out.insert("sub".into(), claims.subject.as_str().into());
    out.insert("aud".into(), claims.audience.clone().into());
    out.insert("exp".into(), exp.into());
    out.insert("iat".into(), iat.into());
    Ok(out)
}

fn invalid_claims(reason: String) -> JwtError {
    JwtError::InvalidClaims { reason }
}
