//! Taking a compact JWS apart: structure, header rules and claim types (JWT-SVID §2-3), before
//! any key is involved.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::error::{quoted, shown};
use super::json::parse_strict;
use super::{JwtAlgorithm, JwtError, MAX_TOKEN_LEN};
use crate::id::SpiffeId;

/// The header members a JWT-SVID may carry (JWT-SVID §3: any other MUST NOT be included).
const ALLOWED_HEADERS: [&str; 3] = ["alg", "kid", "typ"];

/// A token whose structure, header and claim types are known good; nothing is verified yet.
pub(crate) struct Decoded<'a> {
    pub alg: JwtAlgorithm,
    pub kid: String,
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
    pub sub: SpiffeId,
    pub aud: Vec<String>,
    pub exp: SystemTime,
    pub nbf: Option<SystemTime>,
    pub claims: Map<String, Value>,
}

/// Splits and decodes `token`, checking every rule that needs no key and no clock.
pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }

    // JWT-SVID §2: compact serialization only, so exactly three parts.
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(JwtError::NotCompactJws { parts: parts.len() });
    };
    let signing_input = &token[..header.len() + 1 + claims.len()];

    let header = object("header", &base64url("header", header)?)?;
    let (alg, kid) = check_header(&header)?;

    let claims = object("claims", &base64url("claims", claims)?)?;
    let signature = base64url("signature", signature)?;

    Ok(Decoded {
        alg,
        kid,
        signing_input,
        signature,
        sub: subject(&claims)?,
        aud: audience(&claims)?,
        exp: time_claim(&claims, "exp")?.ok_or(JwtError::MissingClaim { claim: "exp" })?,
        nbf: time_claim(&claims, "nbf")?,
        claims,
    })
}

/// Applies the header rules; `alg` first, as JWT-SVID §3.1 requires it checked before anything.
fn check_header(header: &Map<String, Value>) -> Result<(JwtAlgorithm, String), JwtError> {
    let alg = match header.get("alg") {
        None => return Err(JwtError::MissingAlg),
        Some(value) => value
            .as_str()
            .and_then(JwtAlgorithm::parse)
            .ok_or_else(|| JwtError::UnsupportedAlg { alg: shown(value) })?,
    };

    if let Some(name) = header
        .keys()
        .find(|k| !ALLOWED_HEADERS.contains(&k.as_str()))
    {
        return Err(JwtError::ForbiddenHeader { name: quoted(name) });
    }

    // JWT-SVID §3.3: typ is optional; when present it is JWT or JOSE.
    if let Some(typ) = header.get("typ")
        && !matches!(typ.as_str(), Some("JWT" | "JOSE"))
    {
        return Err(JwtError::BadTyp { typ: shown(typ) });
    }

    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        Some(other) => {
            return Err(JwtError::BadKid {
                found: shown(other),
            });
        }
        None => {
            return Err(JwtError::BadKid {
                found: "missing".to_owned(),
            });
        }
    };
    Ok((alg, kid))
}

/// JWT-SVID §3.1 (claims): `sub` is the SPIFFE ID of the workload.
fn subject(claims: &Map<String, Value>) -> Result<SpiffeId, JwtError> {
    let sub = match claims.get("sub") {
        None => return Err(JwtError::MissingClaim { claim: "sub" }),
        Some(Value::String(s)) => s,
        Some(other) => return Err(type_error("sub", other, "a string")),
    };
    SpiffeId::parse(sub).map_err(|source| JwtError::InvalidSubject {
        sub: quoted(sub),
        source,
    })
}

/// JWT-SVID §3.2: `aud` is present with at least one value; RFC 7519 §4.1.3 lets it be a single
/// string or an array of strings.
fn audience(claims: &Map<String, Value>) -> Result<Vec<String>, JwtError> {
    const EXPECTED: &str = "a string or a non-empty array of strings";
    match claims.get("aud") {
        None => Err(JwtError::MissingClaim { claim: "aud" }),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(items)) if items.is_empty() => Err(JwtError::EmptyAudience),
        Some(value @ Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| type_error("aud", value, EXPECTED)),
        Some(other) => Err(type_error("aud", other, EXPECTED)),
    }
}

/// Reads a NumericDate claim (RFC 7519 §2: seconds since the epoch, fractions allowed).
fn time_claim(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<SystemTime>, JwtError> {
    let number = match claims.get(claim) {
        None => return Ok(None),
        Some(Value::Number(n)) => n,
        Some(other) => {
            return Err(type_error(
                claim,
                other,
                "a number (seconds since the epoch)",
            ));
        }
    };
    let value = number.as_f64().unwrap_or(f64::NAN);
    let out_of_range = || JwtError::TimeOutOfRange {
        claim,
        value: shown(&Value::Number(number.clone())),
    };

    let time = if let Some(secs) = number.as_u64() {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    } else if let Some(secs) = number.as_i64() {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    } else if value >= 0.0 {
        let d = Duration::try_from_secs_f64(value).map_err(|_| out_of_range())?;
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        let d = Duration::try_from_secs_f64(-value).map_err(|_| out_of_range())?;
        SystemTime::UNIX_EPOCH.checked_sub(d)
    };
    time.map(Some).ok_or_else(out_of_range)
}

fn base64url(part: &'static str, text: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|e| JwtError::Base64 {
        part,
        reason: e.to_string(),
    })
}

fn object(part: &'static str, bytes: &[u8]) -> Result<Map<String, Value>, JwtError> {
    match parse_strict(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(JwtError::Json {
            part,
            reason: format!("found {}", shown(&other)),
        }),
        Err(e) => Err(JwtError::Json {
            part,
            reason: e.to_string(),
        }),
    }
}

fn type_error(claim: &'static str, value: &Value, expected: &'static str) -> JwtError {
    JwtError::ClaimType {
        claim,
        found: shown(value),
        expected,
    }
}
