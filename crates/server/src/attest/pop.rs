//! The x509pop proof of possession as SPIRE's agents speak it: JSON messages with base64
//! byte strings, a 32-byte nonce from each side, and a signature over SHA-256 of the server's
//! nonce followed by the agent's.
//!
//! SPIRE signs the SHA-256 digest directly (ECDSA with the digest as the hash value, RSA-PSS
//! with SHA-256 and the largest salt). Verifying "SHA-256 of challenge || response" with an
//! algorithm that hashes its message with SHA-256 is the same check, so no digest-level API is
//! needed on this side.

use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{self, RsaParameters, RsaPssSaltLength, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in each side's nonce (SPIRE's `nonceLen`).
pub(crate) const NONCE_LEN: usize = 32;

/// RSA-PSS as SPIRE's agents sign it: SHA-256 and the largest salt the key allows.
const RSA_PSS_MAX_SALT: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);

/// The attestation payload: DER certificates, the agent's leaf first.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct AttestationData {
    #[serde(with = "b64_list")]
    pub(crate) certificates: Vec<Vec<u8>>,
}

/// The challenge; exactly one member is set, chosen by the leaf's key type.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct Challenge {
    #[serde(default)]
    pub(crate) rsa_signature: Option<NonceChallenge>,
    #[serde(default)]
    pub(crate) ecdsa_signature: Option<NonceChallenge>,
}

/// A nonce to be signed together with the agent's own.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct NonceChallenge {
    #[serde(with = "b64")]
    pub(crate) nonce: Vec<u8>,
}

/// The agent's answer; the member matching the challenge must be set.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct Response {
    #[serde(default)]
    pub(crate) rsa_signature: Option<RsaResponse>,
    #[serde(default)]
    pub(crate) ecdsa_signature: Option<EcdsaResponse>,
}

/// An RSA-PSS signature with the agent's nonce.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct RsaResponse {
    #[serde(with = "b64")]
    pub(crate) nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub(crate) signature: Vec<u8>,
}

/// An ECDSA signature as its two big-endian integers, with the agent's nonce.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct EcdsaResponse {
    #[serde(with = "b64")]
    pub(crate) nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub(crate) r: Vec<u8>,
    #[serde(with = "b64")]
    pub(crate) s: Vec<u8>,
}

/// The leaf's public key, in the forms the proof needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LeafKey {
    /// NIST P-256; the uncompressed point.
    EcP256(Vec<u8>),
    /// NIST P-384; the uncompressed point.
    EcP384(Vec<u8>),
    /// RSA; the DER `RSAPublicKey`.
    Rsa(Vec<u8>),
}

/// Why a response does not prove possession of the leaf's key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PopError {
    /// The response answers another key type than the one challenged.
    #[error("the response has no {0} member, which the challenge asked for")]
    WrongKind(&'static str),
    /// A nonce of the wrong size.
    #[error("the response nonce is {0} bytes: it must be {NONCE_LEN}")]
    NonceLength(usize),
    /// r or s cannot be an integer of the curve.
    #[error("the ECDSA signature's {0} value is {1} bytes: too long for the curve")]
    IntegerLength(&'static str, usize),
    /// The signature does not verify.
    #[error("the signature over the nonces does not verify with the certificate's key")]
    BadSignature,
    /// The system random generator failed.
    #[error("cannot draw a random nonce")]
    Random,
}

impl LeafKey {
    /// A fresh challenge for this key.
    pub(crate) fn challenge(&self) -> Result<Challenge, PopError> {
        let mut nonce = vec![0; NONCE_LEN];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| PopError::Random)?;
        let nonce = Some(NonceChallenge { nonce });
        Ok(match self {
            LeafKey::Rsa(_) => Challenge {
                rsa_signature: nonce,
                ecdsa_signature: None,
            },
            LeafKey::EcP256(_) | LeafKey::EcP384(_) => Challenge {
                rsa_signature: None,
                ecdsa_signature: nonce,
            },
        })
    }

    /// Checks that `response` signs `challenge_nonce` and its own nonce with this key.
    pub(crate) fn verify(
        &self,
        challenge_nonce: &[u8],
        response: &Response,
    ) -> Result<(), PopError> {
        match self {
            LeafKey::EcP256(point) | LeafKey::EcP384(point) => {
                let r = response
                    .ecdsa_signature
                    .as_ref()
                    .ok_or(PopError::WrongKind("ecdsa_signature"))?;
                let message = signed_message(challenge_nonce, &r.nonce)?;
                let der = ecdsa_der(&r.r, &r.s)?;
                let algorithm = if matches!(self, LeafKey::EcP256(_)) {
                    &signature::ECDSA_P256_SHA256_ASN1
                } else {
                    &signature::ECDSA_P384_SHA256_ASN1
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(&message, &der)
                    .map_err(|_| PopError::BadSignature)
            }
            LeafKey::Rsa(der) => {
                let r = response
                    .rsa_signature
                    .as_ref()
                    .ok_or(PopError::WrongKind("rsa_signature"))?;
                let message = signed_message(challenge_nonce, &r.nonce)?;
                // SPIRE's agents use the largest salt; a signer with the common
                // digest-length salt is accepted too, as Go's verifier would.
                [&RSA_PSS_MAX_SALT, &signature::RSA_PSS_2048_8192_SHA256]
                    .into_iter()
                    .any(|alg| {
                        UnparsedPublicKey::new(alg, der)
                            .verify(&message, &r.signature)
                            .is_ok()
                    })
                    .then_some(())
                    .ok_or(PopError::BadSignature)
            }
        }
    }
}

/// The bytes whose SHA-256 is signed: the server's nonce, then the agent's.
fn signed_message(challenge: &[u8], response: &[u8]) -> Result<Vec<u8>, PopError> {
    if response.len() != NONCE_LEN {
        return Err(PopError::NonceLength(response.len()));
    }
    Ok([challenge, response].concat())
}

/// `SEQUENCE { INTEGER r, INTEGER s }` from unsigned big-endian integers.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Result<Vec<u8>, PopError> {
    // 66 bytes covers P-521; anything longer is not a coordinate of a supported curve and
    // would need long-form DER lengths.
    const MAX: usize = 66;
    let integer = |name: &'static str, v: &[u8]| -> Result<Vec<u8>, PopError> {
        if v.len() > MAX {
            return Err(PopError::IntegerLength(name, v.len()));
        }
        let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
            body.push(0);
        }
        body.extend_from_slice(&trimmed);
        let mut out = vec![0x02, der_len(body.len())];
        out.extend_from_slice(&body);
        Ok(out)
    };
    let body = [integer("r", r)?, integer("s", s)?].concat();
    let mut out = vec![0x30, der_len(body.len())];
    out.extend_from_slice(&body);
    Ok(out)
}

/// A short-form DER length; callers bound their contents below 128 bytes.
fn der_len(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX).min(0x7f)
}

/// Go's `[]byte` in JSON: standard base64 with padding; `null` reads as empty.
mod b64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(text)
            .map_err(|e| serde::de::Error::custom(format!("not standard base64: {e}")))
    }
}

/// Go's `[][]byte` in JSON.
mod b64_list {
    use super::*;

    pub(super) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|b| STANDARD.encode(b)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Option::<Vec<String>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|text| {
                STANDARD
                    .decode(text)
                    .map_err(|e| serde::de::Error::custom(format!("not standard base64: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "pop_tests.rs"]
mod tests;
