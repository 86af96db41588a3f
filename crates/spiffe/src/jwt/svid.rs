//! [`JwtSvid`]: a JWT-SVID that passed validation.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::decode::{Decoded, decode};
use super::error::{quoted, shown};
use super::{JwtAlgorithm, JwtBundleSource, JwtError, LEEWAY};
use crate::id::SpiffeId;

/// A JWT-SVID (JWT-SVID §2-3) whose rules, audience and validity period were checked.
///
/// Rules enforced on every token, in this order:
///
/// - at most [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) bytes; compact JWS only, three unpadded
///   base64url parts (JWE and JWS JSON serialization are rejected, §2);
/// - header and claims are JSON objects without duplicate member names;
/// - `alg` is one of the nine of §3.1, checked before any other header member or key;
/// - the header holds only `alg`, `kid` and `typ` (§3); `typ`, if present, is `JWT` or `JOSE`;
/// - `kid` is required and non-empty. The spec leaves it optional, but SPIRE always sets it, a
///   bundle is a map from `kid` to key, and go-spiffe also rejects tokens without it: trying
///   every key of the bundle instead would be slower and hide key mix-ups;
/// - `sub` is a valid SPIFFE ID; its trust domain alone selects the bundle (§3.1 claims,
///   Workload API §6.3);
/// - `aud` is a string or a non-empty array of strings and holds at least one expected audience
///   (§3.2); an empty expected list is a caller error, never "any audience";
/// - `exp` is a number and not more than [`LEEWAY`] in the past (§3.3); `nbf`, if present, is
///   not more than [`LEEWAY`] in the future; `iat` is not checked.
#[derive(Clone, Debug)]
pub struct JwtSvid {
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: SystemTime,
    claims: Map<String, Value>,
    token: String,
    kid: String,
    algorithm: JwtAlgorithm,
}

impl JwtSvid {
    /// Validates `token` fully: the rules above, then the signature with the key named by `kid`
    /// in the bundle of `sub`'s trust domain, then time and audience at `now`.
    ///
    /// # Errors
    ///
    /// [`JwtError::NoExpectedAudience`] when `expected_audience` is empty or holds an empty
    /// string; otherwise the variant naming the first rule the token breaks, e.g.
    /// [`JwtError::NoBundle`], [`JwtError::UnknownKid`], [`JwtError::KeyAlgMismatch`],
    /// [`JwtError::BadSignature`], [`JwtError::Expired`], [`JwtError::AudienceMismatch`].
    pub fn parse_and_validate<S: JwtBundleSource + ?Sized>(
        token: &str,
        bundles: &S,
        expected_audience: &[&str],
        now: SystemTime,
    ) -> Result<Self, JwtError> {
        check_expected(expected_audience)?;
        let decoded = decode(token)?;

        // Workload API §6.3 / JWT-SVID §5: the bundle of the token's own trust domain only.
        let td = decoded.sub.trust_domain();
        let bundle = bundles
            .jwt_bundle_for(&td)
            .ok_or_else(|| JwtError::NoBundle {
                trust_domain: td.to_string(),
                sub: decoded.sub.to_string(),
            })?;
        let key = bundle
            .get(&decoded.kid)
            .ok_or_else(|| JwtError::UnknownKid {
                kid: quoted(&decoded.kid),
                trust_domain: td.to_string(),
            })?;
        if !key.fits(decoded.alg) {
            return Err(JwtError::KeyAlgMismatch {
                kid: quoted(&decoded.kid),
                key: key.to_string(),
                alg: decoded.alg,
            });
        }
        if !key.verify(
            decoded.alg,
            decoded.signing_input.as_bytes(),
            &decoded.signature,
        ) {
            return Err(JwtError::BadSignature {
                kid: quoted(&decoded.kid),
                alg: decoded.alg,
            });
        }

        Self::finish(token, decoded, expected_audience, now)
    }

    /// Checks everything [`parse_and_validate`](Self::parse_and_validate) does except the
    /// signature: no bundle is consulted and a forged token passes.
    ///
    /// Only for tokens that come from a trusted source over an authenticated channel, such as
    /// the Workload API client reading the SVIDs the agent just issued to it. Never use it to
    /// authenticate a peer.
    ///
    /// # Errors
    ///
    /// As [`parse_and_validate`](Self::parse_and_validate), without the key and signature ones.
    pub fn parse_insecure(
        token: &str,
        expected_audience: &[&str],
        now: SystemTime,
    ) -> Result<Self, JwtError> {
        check_expected(expected_audience)?;
        let decoded = decode(token)?;
        Self::finish(token, decoded, expected_audience, now)
    }

    /// The SPIFFE ID (`sub`).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The audiences (`aud`), as a list even when the token held a single string.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// When the token expires (`exp`, without the leeway).
    pub fn expiry(&self) -> SystemTime {
        self.expiry
    }

    /// All claims, including `sub`, `aud` and `exp`.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The token exactly as received. It is a bearer credential: do not log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The key ID of the header (safe to log).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm of the header.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The time and audience checks shared by both entry points.
    fn finish(
        token: &str,
        decoded: Decoded<'_>,
        expected_audience: &[&str],
        now: SystemTime,
    ) -> Result<Self, JwtError> {
        check_time(&decoded, now)?;

        // JWT-SVID §3.2: reject unless one of our audiences is listed.
        if !decoded
            .aud
            .iter()
            .any(|aud| expected_audience.contains(&aud.as_str()))
        {
            let aud = Value::from(decoded.aud.clone());
            return Err(JwtError::AudienceMismatch {
                aud: shown(&aud),
                expected: shown(&Value::from(expected_audience.to_vec())),
            });
        }

        Ok(JwtSvid {
            spiffe_id: decoded.sub,
            audience: decoded.aud,
            expiry: decoded.exp,
            claims: decoded.claims,
            token: token.to_owned(),
            kid: decoded.kid,
            algorithm: decoded.alg,
        })
    }
}

fn check_expected(expected_audience: &[&str]) -> Result<(), JwtError> {
    if expected_audience.is_empty() || expected_audience.iter().any(|a| a.is_empty()) {
        return Err(JwtError::NoExpectedAudience);
    }
    Ok(())
}

/// JWT-SVID §3.3: `exp` not in the past; RFC 7519 §4.1.5: `nbf` not in the future. Both allow
/// [`LEEWAY`] of clock skew.
fn check_time(decoded: &Decoded<'_>, now: SystemTime) -> Result<(), JwtError> {
    if let Ok(late) = now.duration_since(decoded.exp)
        && late > LEEWAY
    {
        return Err(JwtError::Expired {
            exp: unix_secs(decoded.exp),
            ago: late.as_secs(),
        });
    }
    if let Some(nbf) = decoded.nbf
        && let Ok(early) = nbf.duration_since(now)
        && early > LEEWAY
    {
        return Err(JwtError::NotYetValid {
            nbf: unix_secs(nbf),
            ahead: early.as_secs(),
        });
    }
    Ok(())
}

/// Whole seconds since the epoch, negative before it (rounded toward negative infinity).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration();
            let secs = before.as_secs() + u64::from(before.subsec_nanos() > 0);
            i64::try_from(secs).map_or(i64::MIN, |s| -s)
        }
    }
}
