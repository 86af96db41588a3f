//! The plain JWKS of the Workload API's `FetchJWTBundles` (Workload API §6.2.4): only `keys`,
//! and (as SPIRE sends them) no `use` members.

use serde_json::{Map, Value};

use super::document::{SkippedKey, keys_of, parse_document, read_jwt_entry};
use super::jwk::KeyParams;
use super::{BundleDocError, SkipReason, USE_JWT_SVID};
use crate::id::TrustDomain;
use crate::jwt::JwtBundle;
use crate::jwt::error::shown;

/// Reads a JWKS of JWT-SVID keys for `td`; see [`parse_jwks_reporting`] for the rules.
///
/// # Errors
///
/// As [`parse_jwks_reporting`].
pub fn parse_jwks(td: TrustDomain, json: &[u8]) -> Result<JwtBundle, BundleDocError> {
    parse_jwks_reporting(td, json).map(|(bundle, _)| bundle)
}

/// Reads a JWKS of JWT-SVID keys for `td` and also returns the keys it ignored.
///
/// `use` is not required (SPIRE omits it here); a key whose `use` is present and is not
/// `jwt-svid` is skipped, since this JWKS must hold JWT keys only. Like the SPIFFE bundle: `keys`
/// is required, every key needs a non-empty unique `kid`, keys with another `kty` (or an
/// unsupported curve or RSA size) are skipped, malformed EC and RSA keys are errors.
///
/// # Errors
///
/// [`BundleDocError`] naming the first defect.
pub fn parse_jwks_reporting(
    td: TrustDomain,
    json: &[u8],
) -> Result<(JwtBundle, Vec<SkippedKey>), BundleDocError> {
    let doc = parse_document(json)?;
    let keys = keys_of(&doc)?;
    let mut bundle = JwtBundle::new(td);
    let mut skipped = Vec::new();
    for (index, jwk) in keys.into_iter().enumerate() {
        let skip = match jwk.get("use") {
            None => read_jwt_entry(index, jwk, &mut bundle)?,
            Some(Value::String(u)) if u == USE_JWT_SVID => read_jwt_entry(index, jwk, &mut bundle)?,
            Some(other) => Some(SkipReason::UnknownUse(shown(other))),
        };
        if let Some(reason) = skip {
            skipped.push(SkippedKey { index, reason });
        }
    }
    Ok((bundle, skipped))
}

/// Writes a JWT bundle as the Workload API's JWKS: `{"keys":[...]}` with `kty`, key parameters
/// and `kid` on every key, ordered by `kid`, and no `use`.
pub fn jwt_bundle_to_jwks(bundle: &JwtBundle) -> Vec<u8> {
    let keys: Vec<Value> = bundle
        .iter()
        .map(|(kid, key)| {
            let mut jwk = KeyParams::from_jwt_key(key).to_members();
            jwk.insert("kid".into(), kid.into());
            Value::Object(jwk)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("keys".into(), keys.into());
    Value::Object(doc).to_string().into_bytes()
}
