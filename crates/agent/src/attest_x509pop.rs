//! The agent's side of `x509pop` attestation: the certificate chain it presents and the
//! signature with which it answers the server's challenge, in SPIRE's JSON format (so a SPIRE
//! server accepts it too).
//!
//! The answer signs SHA-256(server nonce || agent nonce), each nonce 32 bytes. SPIRE's agent
//! hands that digest to Go's signers as the hash value: ECDSA signs it directly and RSA-PSS
//! signs it as a SHA-256 hash with the largest salt. Both are reproduced here.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{self, Digest, SHA256, SHA384};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, RSA_PSS_SHA256,
    RsaKeyPair, RsaPssSaltLength, RsaSignatureEncoding,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lanyard_ca::operator_file::{MAX_OPERATOR_FILE_BYTES, read_operator_file};
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::X509popAgentConfig;

/// The attestor's name on the wire.
pub(crate) const X509POP: &str = "x509pop";

/// Bytes in each side's nonce.
const NONCE_LEN: usize = 32;

/// RSA-PSS as SPIRE's agent signs: SHA-256 and the largest salt the key allows.
static RSA_PSS_MAX_SALT: RsaSignatureEncoding =
    RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);

/// Why x509pop credentials cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum X509popError {
    /// A configured file cannot be read.
    #[error("x509pop {key} {path}: cannot read it", path = path.display())]
    Read {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A configured file holds something unusable.
    #[error("x509pop {key} {path}: {rule}", path = path.display())]
    Content {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        rule: String,
    },
    /// The server's challenge cannot be answered.
    #[error("x509pop challenge from the server: {0}")]
    Challenge(String),
}

impl X509popAgentConfig {
    /// Reads the certificate, intermediates and key files exactly as attestation does and checks
    /// that the key belongs to the leaf, so that `agent validate` refuses what `agent run` would.
    ///
    /// # Errors
    ///
    /// [`X509popError::Read`] or [`X509popError::Content`] naming the config key and the file.
    pub fn check_files(&self) -> Result<(), X509popError> {
        X509popCredentials::load(self).map(|_| ())
    }
}

/// The agent's certificate chain and the key that proves it holds the leaf.
pub(crate) struct X509popCredentials {
    chain: Vec<Vec<u8>>,
    key: PopKey,
}

enum PopKey {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl X509popCredentials {
    /// Reads the files named by the config and checks that the key belongs to the leaf.
    pub(crate) fn load(config: &X509popAgentConfig) -> Result<Self, X509popError> {
        let mut chain = read_certs("certificate_path", &config.certificate_path)?;
        if let Some(path) = &config.intermediates_path {
            chain.extend(read_certs("intermediates_path", path)?);
        }
        let key_path = &config.private_key_path;
        let key_err = |rule: String| X509popError::Content {
            key: "private_key_path",
            path: key_path.clone(),
            rule,
        };
        let pem = read_text("private_key_path", key_path)?;
        let parsed = rcgen::KeyPair::from_pem(&pem).map_err(|e| {
            key_err(format!(
                "{e}: expected one PEM PKCS#8, SEC1 (EC) or PKCS#1 (RSA) private key"
            ))
        })?;

        let leaf_der = chain.first().map(Vec::as_slice).unwrap_or_default();
        let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|e| X509popError::Content {
            key: "certificate_path",
            path: config.certificate_path.clone(),
            rule: format!("the first certificate does not parse: {e}"),
        })?;
        if leaf.public_key().subject_public_key.data.as_ref() != parsed.public_key_raw() {
            return Err(key_err(format!(
                "it is not the key of the first certificate in {}",
                config.certificate_path.display()
            )));
        }
        let der = parsed.serialize_der();
        let key = if parsed.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            PopKey::P256(ec_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(key_err)?)
        } else if parsed.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
            PopKey::P384(ec_key(&ECDSA_P384_SHA384_FIXED_SIGNING, &der).map_err(key_err)?)
        } else if [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_RSA_SHA384,
            &rcgen::PKCS_RSA_SHA512,
        ]
        .contains(&parsed.algorithm())
        {
            let rsa = RsaKeyPair::from_pkcs8(&der)
                .or_else(|_| RsaKeyPair::from_der(&der))
                .map_err(|e| key_err(format!("not a usable RSA key: {e}")))?;
            PopKey::Rsa(rsa)
        } else {
            return Err(key_err(
                "x509pop takes EC P-256, EC P-384 or RSA keys (as SPIRE does for EC and RSA)"
                    .into(),
            ));
        };
        Ok(Self { chain, key })
    }

    /// The attestation payload: `{"certificates": [<base64 DER>, ..]}`, leaf first.
    pub(crate) fn payload(&self) -> Vec<u8> {
        let certs: Vec<String> = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
        json!({ "certificates": certs }).to_string().into_bytes()
    }

    /// Signs the server's nonce and a fresh one of ours.
    pub(crate) fn respond(&self, challenge: &[u8]) -> Result<Vec<u8>, X509popError> {
        let challenge: Value = serde_json::from_slice(challenge)
            .map_err(|e| X509popError::Challenge(format!("not JSON: {e}")))?;
        let member = match self.key {
            PopKey::Rsa(_) => "rsa_signature",
            PopKey::P256(_) | PopKey::P384(_) => "ecdsa_signature",
        };
        let theirs = challenge[member]["nonce"]
            .as_str()
            .and_then(|n| STANDARD.decode(n).ok())
            .filter(|n| n.len() == NONCE_LEN)
            .ok_or_else(|| {
                X509popError::Challenge(format!(
                    "it has no {member}.nonce of {NONCE_LEN} bytes, which our key needs"
                ))
            })?;
        let rng = SystemRandom::new();
        let mut ours = [0u8; NONCE_LEN];
        rng.fill(&mut ours)
            .map_err(|_| X509popError::Challenge("cannot draw a random nonce".into()))?;
        let message = [theirs.as_slice(), &ours].concat();
        let sign_failed = |_| X509popError::Challenge("signing the nonces failed".into());

        let answer = match &self.key {
            PopKey::P256(key) => {
                let sig = key.sign(&rng, &message).map_err(sign_failed)?;
                ecdsa_answer(&ours, sig.as_ref())
            }
            PopKey::P384(key) => {
                // P-384 keys sign the 32-byte SHA-256 value as the hash: left-padded to 48
                // bytes it is the same integer, and no truncation applies below 384 bits.
                let sha = digest::digest(&SHA256, &message);
                let padded = [[0u8; 16].as_slice(), sha.as_ref()].concat();
                let digest = Digest::import_less_safe(&padded, &SHA384).map_err(sign_failed)?;
                let sig = key.sign_digest(&digest).map_err(sign_failed)?;
                ecdsa_answer(&ours, sig.as_ref())
            }
            PopKey::Rsa(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PSS_MAX_SALT, &rng, &message, &mut sig)
                    .map_err(sign_failed)?;
                json!({ "rsa_signature": {
                    "nonce": STANDARD.encode(ours), "signature": STANDARD.encode(sig)
                }})
            }
        };
        Ok(answer.to_string().into_bytes())
    }
}

/// A fixed-size `r || s` signature split into SPIRE's two integers.
fn ecdsa_answer(nonce: &[u8], fixed: &[u8]) -> Value {
    let (r, s) = fixed.split_at(fixed.len() / 2);
    json!({ "ecdsa_signature": {
        "nonce": STANDARD.encode(nonce), "r": STANDARD.encode(r), "s": STANDARD.encode(s)
    }})
}

fn ec_key(
    alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
    der: &[u8],
) -> Result<EcdsaKeyPair, String> {
    EcdsaKeyPair::from_pkcs8(alg, der)
        .or_else(|_| EcdsaKeyPair::from_private_key_der(alg, der))
        .map_err(|e| format!("not a usable EC key: {e}"))
}

fn read_text(key: &'static str, path: &Path) -> Result<String, X509popError> {
    let bytes =
        read_operator_file(path, MAX_OPERATOR_FILE_BYTES).map_err(|source| X509popError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })?;
    String::from_utf8(bytes).map_err(|_| X509popError::Content {
        key,
        path: path.to_path_buf(),
        rule: "it is not PEM text".into(),
    })
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<Vec<u8>>, X509popError> {
    let pem = read_text(key, path)?;
    let certs = lanyard_spiffe::x509::parse_pem_certs(pem.as_bytes()).map_err(|e| {
        X509popError::Content {
            key,
            path: path.to_path_buf(),
            rule: format!("not a PEM file of certificates: {e}"),
        }
    })?;
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

#[cfg(test)]
#[path = "attest_x509pop_tests.rs"]
mod tests;
