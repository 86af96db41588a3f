//! [`SpiffeBundle`]: the JSON bundle document of one trust domain.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value};

use super::jwk::{KeyParams, kty_skip, read_jwt_key};
use super::{BundleDocError, MAX_DOCUMENT_LEN, MAX_KEYS, USE_JWT_SVID, USE_X509_SVID};
use crate::id::TrustDomain;
use crate::jwt::JwtBundle;
use crate::jwt::error::{quoted, shown};
use crate::jwt::json::parse_strict;
use crate::x509::X509Bundle;

/// The SPIFFE bundle of one trust domain: X.509 and JWT authorities plus the `spiffe_sequence`
/// and `spiffe_refresh_hint` metadata (Trust Domain and Bundle §4).
///
/// The document does not name its trust domain; the caller supplies it, and it must be the trust
/// domain the document was fetched or configured for, never one derived from a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiffeBundle {
    trust_domain: TrustDomain,
    x509: X509Bundle,
    jwt: JwtBundle,
    sequence: Option<u64>,
    refresh_hint: Option<Duration>,
    skipped: Vec<SkippedKey>,
}

/// A JWK that parsing ignored, as the spec requires, with the reason (for the caller to log).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bundle key {index} ignored: {reason}")]
pub struct SkippedKey {
    /// Position in `keys`.
    pub index: usize,
    /// Why.
    pub reason: SkipReason,
}

/// Why a JWK (or part of it) was ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// No `kty` (Trust Domain and Bundle §4.2.1).
    #[error("\"kty\" is missing")]
    MissingKty,
    /// A `kty` this implementation does not use for the key's `use`.
    #[error("\"kty\" {kty} is not supported: only {known} are")]
    UnknownKty {
        /// The value, quoted.
        kty: String,
        /// The supported ones.
        known: &'static str,
    },
    /// No `use` (Trust Domain and Bundle §4.2.2).
    #[error("\"use\" is missing")]
    MissingUse,
    /// A `use` other than `x509-svid` and `jwt-svid` (e.g. the incubating `wit-svid`).
    #[error("\"use\" {0} is not supported: only \"x509-svid\" and \"jwt-svid\" are")]
    UnknownUse(String),
    /// An `x509-svid` key without certificate (X509-SVID §6: the entry is ignored).
    #[error("\"x5c\" is missing or empty")]
    NoX5c,
    /// An `x509-svid` key with several certificates: the key is kept with its first one only
    /// (X509-SVID §6).
    #[error("\"x5c\" holds {0} certificates: only the first is used")]
    ExtraX5cCertificates(usize),
    /// An EC curve other than P-256, P-384 and P-521.
    #[error("\"crv\" {0} is not supported: only \"P-256\", \"P-384\" and \"P-521\" are")]
    UnsupportedCurve(String),
    /// An RSA key too small or too large for JWT-SVID verification.
    #[error("RSA modulus is {0} bits: JWT-SVID keys must have 2048 to 8192 bits")]
    UnsupportedRsaSize(usize),
}

impl SpiffeBundle {
    /// An empty bundle (no keys, no metadata) for `td`.
    pub fn new(td: TrustDomain) -> Self {
        SpiffeBundle {
            x509: X509Bundle::new(td.clone(), Vec::new()),
            jwt: JwtBundle::new(td.clone()),
            trust_domain: td,
            sequence: None,
            refresh_hint: None,
            skipped: Vec::new(),
        }
    }

    /// A bundle of the given authorities, which must be of one trust domain.
    ///
    /// # Errors
    ///
    /// [`BundleDocError::TrustDomainMismatch`] when they are not.
    pub fn from_parts(x509: X509Bundle, jwt: JwtBundle) -> Result<Self, BundleDocError> {
        if x509.trust_domain() != jwt.trust_domain() {
            return Err(BundleDocError::TrustDomainMismatch {
                x509: x509.trust_domain().to_string(),
                jwt: jwt.trust_domain().to_string(),
            });
        }
        let mut bundle = Self::new(x509.trust_domain().clone());
        bundle.x509 = x509;
        bundle.jwt = jwt;
        Ok(bundle)
    }

    /// Reads a bundle document for `td`, leniently where the spec says to (see the module docs).
    ///
    /// # Errors
    ///
    /// [`BundleDocError`] naming the first defect that is not a key to skip.
    pub fn parse(td: TrustDomain, json: &[u8]) -> Result<Self, BundleDocError> {
        let doc = parse_document(json)?;
        let keys = keys_of(&doc)?;
        let mut bundle = Self::new(td);
        bundle.sequence = sequence_of(&doc)?;
        bundle.refresh_hint = refresh_hint_of(&doc)?;

        let mut certs = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            let skip = match jwk.get("use") {
                None => Some(SkipReason::MissingUse),
                Some(Value::String(u)) if u == USE_X509_SVID => {
                    read_x509_key(index, jwk, &mut certs, &mut bundle.skipped)?
                }
                Some(Value::String(u)) if u == USE_JWT_SVID => {
                    read_jwt_entry(index, jwk, &mut bundle.jwt)?
                }
                Some(other) => Some(SkipReason::UnknownUse(shown(other))),
            };
            if let Some(reason) = skip {
                bundle.skipped.push(SkippedKey { index, reason });
            }
        }
        bundle.x509 = X509Bundle::new(bundle.trust_domain.clone(), certs);
        Ok(bundle)
    }

    /// Writes the bundle document: X.509 keys first, then JWT keys ordered by `kid`.
    ///
    /// # Errors
    ///
    /// [`BundleDocError::Unencodable`] when an X.509 authority is not a parsable certificate or
    /// its key has no JWK form (EC curves other than P-256/P-384/P-521, DSA, ...).
    pub fn to_json(&self) -> Result<String, BundleDocError> {
        let mut keys = Vec::with_capacity(self.x509.authorities().len() + self.jwt.len());
        for (index, cert) in self.x509.authorities().iter().enumerate() {
            let unencodable = |reason: String| BundleDocError::Unencodable { index, reason };
            let (_, parsed) = x509_parser::parse_x509_certificate(cert)
                .map_err(|e| unencodable(e.to_string()))?;
            let mut jwk = KeyParams::from_spki(parsed.public_key())
                .map_err(unencodable)?
                .to_members();
            jwk.insert("use".into(), USE_X509_SVID.into());
            jwk.insert(
                "x5c".into(),
                vec![Value::from(STANDARD.encode(cert))].into(),
            );
            keys.push(Value::Object(jwk));
        }
        for (kid, key) in self.jwt.iter() {
            let mut jwk = KeyParams::from_jwt_key(key).to_members();
            jwk.insert("kid".into(), kid.into());
            jwk.insert("use".into(), USE_JWT_SVID.into());
            keys.push(Value::Object(jwk));
        }

        let mut doc = Map::new();
        doc.insert("keys".into(), keys.into());
        if let Some(seq) = self.sequence {
            doc.insert("spiffe_sequence".into(), seq.into());
        }
        if let Some(hint) = self.refresh_hint {
            // Whole seconds, rounded up so that a sub-second hint never becomes 0.
            let secs = hint.as_secs() + u64::from(hint.subsec_nanos() > 0);
            doc.insert("spiffe_refresh_hint".into(), secs.into());
        }
        Ok(Value::Object(doc).to_string())
    }

    /// The trust domain the bundle belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The X.509 authorities (for X509-SVIDs only).
    pub fn x509_bundle(&self) -> &X509Bundle {
        &self.x509
    }

    /// The JWT authorities (for JWT-SVIDs only).
    pub fn jwt_bundle(&self) -> &JwtBundle {
        &self.jwt
    }

    /// `spiffe_sequence`, if present.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// `spiffe_refresh_hint`, if present (advisory polling interval).
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint
    }

    /// Keys that [`parse`](Self::parse) ignored, in document order; empty for built bundles.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Sets `spiffe_sequence` (producers must change it on every content change).
    pub fn set_sequence(&mut self, sequence: Option<u64>) {
        self.sequence = sequence;
    }

    /// Sets `spiffe_refresh_hint`; written rounded up to whole seconds.
    pub fn set_refresh_hint(&mut self, hint: Option<Duration>) {
        self.refresh_hint = hint;
    }
}

/// Size check, then strict JSON, then "is an object".
pub(crate) fn parse_document(json: &[u8]) -> Result<Map<String, Value>, BundleDocError> {
    if json.len() > MAX_DOCUMENT_LEN {
        return Err(BundleDocError::TooLarge {
            len: json.len(),
            max: MAX_DOCUMENT_LEN,
        });
    }
    match parse_strict(json) {
        Ok(Value::Object(doc)) => Ok(doc),
        Ok(other) => Err(BundleDocError::NotObject {
            found: shown(&other),
        }),
        Err(e) => Err(BundleDocError::Json {
            reason: e.to_string(),
        }),
    }
}

/// Trust Domain and Bundle §4.1: `keys` MUST be present (it may be empty); every entry is a JWK.
pub(crate) fn keys_of(
    doc: &Map<String, Value>,
) -> Result<Vec<&Map<String, Value>>, BundleDocError> {
    let keys = match doc.get("keys") {
        None | Some(Value::Null) => return Err(BundleDocError::MissingKeys),
        Some(Value::Array(keys)) => keys,
        Some(other) => {
            return Err(BundleDocError::KeysNotArray {
                found: shown(other),
            });
        }
    };
    if keys.len() > MAX_KEYS {
        return Err(BundleDocError::TooManyKeys {
            count: keys.len(),
            max: MAX_KEYS,
        });
    }
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            key.as_object().ok_or_else(|| BundleDocError::KeyNotObject {
                index,
                found: shown(key),
            })
        })
        .collect()
}

/// Reads a `jwt-svid` key into `jwt`; `Some(reason)` when it is to be skipped.
pub(crate) fn read_jwt_entry(
    index: usize,
    jwk: &Map<String, Value>,
    jwt: &mut JwtBundle,
) -> Result<Option<SkipReason>, BundleDocError> {
    // JWT-SVID §6: `kid` MUST be set; validators look keys up by it.
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid,
        _ => return Err(BundleDocError::MissingKid { index }),
    };
    let key = match read_jwt_key(index, jwk)? {
        Ok(key) => key,
        Err(reason) => return Ok(Some(reason)),
    };
    if jwt.get(kid).is_some() {
        return Err(BundleDocError::DuplicateKid { kid: quoted(kid) });
    }
    jwt.insert(kid.clone(), key);
    Ok(None)
}

/// Reads an `x509-svid` key (X509-SVID §6) into `certs`; `Some(reason)` when it is skipped.
fn read_x509_key(
    index: usize,
    jwk: &Map<String, Value>,
    certs: &mut Vec<CertificateDer<'static>>,
    skipped: &mut Vec<SkippedKey>,
) -> Result<Option<SkipReason>, BundleDocError> {
    let kty = jwk.get("kty").and_then(Value::as_str);
    if !matches!(kty, Some("EC" | "RSA" | "OKP")) {
        return Ok(Some(kty_skip(kty, "EC, RSA and OKP")));
    }
    let x5c = match jwk.get("x5c") {
        None | Some(Value::Null) => return Ok(Some(SkipReason::NoX5c)),
        Some(Value::Array(x5c)) if x5c.is_empty() => return Ok(Some(SkipReason::NoX5c)),
        Some(Value::Array(x5c)) => x5c,
        Some(other) => {
            return Err(bad_x5c(
                index,
                format!("{}: an array is required", shown(other)),
            ));
        }
    };
    if x5c.len() > 1 {
        skipped.push(SkippedKey {
            index,
            reason: SkipReason::ExtraX5cCertificates(x5c.len()),
        });
    }

    let der = x5c
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| bad_x5c(index, "the first entry is not a string".into()))?;
    let der = STANDARD.decode(der).map_err(|e| {
        bad_x5c(
            index,
            format!("not standard base64 ({e}): RFC 7517 §4.7 requires it"),
        )
    })?;
    let params = match x509_parser::parse_x509_certificate(&der) {
        Ok(([], cert)) => KeyParams::from_spki(cert.public_key()).map_err(|e| bad_x5c(index, e))?,
        Ok((rest, _)) => {
            return Err(bad_x5c(
                index,
                format!("{} bytes follow the certificate", rest.len()),
            ));
        }
        Err(e) => return Err(bad_x5c(index, format!("not DER X.509: {e}"))),
    };
    params.check_matches(index, jwk)?;

    if !certs.iter().any(|c| c.as_ref() == der.as_slice()) {
        certs.push(CertificateDer::from(der));
    }
    Ok(None)
}

fn bad_x5c(index: usize, reason: String) -> BundleDocError {
    BundleDocError::BadCertificate { index, reason }
}

/// `spiffe_sequence`: an unsigned 64-bit integer (negative, fractional or larger is an error).
fn sequence_of(doc: &Map<String, Value>) -> Result<Option<u64>, BundleDocError> {
    match doc.get("spiffe_sequence") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| BundleDocError::BadSequence { found: shown(v) }),
    }
}

/// `spiffe_refresh_hint`: whole seconds (Trust Domain and Bundle §4.1).
fn refresh_hint_of(doc: &Map<String, Value>) -> Result<Option<Duration>, BundleDocError> {
    match doc.get("spiffe_refresh_hint") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| BundleDocError::BadRefreshHint { found: shown(v) }),
    }
}
