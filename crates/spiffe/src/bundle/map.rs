//! Bundle maps: trust domain → bundle bytes, as in the Workload API's `bundles` and
//! `federated_bundles` fields.

use super::{BundleDocError, parse_jwks};
use crate::id::{SCHEME_PREFIX, SpiffeId, TrustDomain};
use crate::jwt::JwtBundleSet;
use crate::jwt::error::quoted;

/// Builds a [`JwtBundleSet`] from `(trust domain, JWKS bytes)` pairs, as carried by
/// `JWTBundlesResponse.bundles`.
///
/// Keys may be the trust domain's SPIFFE ID (`spiffe://example.org`, the form SPIRE sends) or
/// the bare name (`example.org`); both name the same trust domain, so giving both is a duplicate.
///
/// # Errors
///
/// [`BundleDocError::InvalidTrustDomain`] or [`BundleDocError::TrustDomainWithPath`] for a bad
/// key, [`BundleDocError::DuplicateTrustDomain`] when two keys name one trust domain, and
/// [`BundleDocError::InMap`] wrapping the error of a JWKS that does not parse.
pub fn jwt_bundle_set_from_map<I, K, V>(entries: I) -> Result<JwtBundleSet, BundleDocError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let mut set = JwtBundleSet::new();
    for (key, jwks) in entries {
        let td = map_key(key.as_ref())?;
        if set.get(&td).is_some() {
            return Err(BundleDocError::DuplicateTrustDomain {
                trust_domain: td.to_string(),
            });
        }
        let bundle = parse_jwks(td.clone(), jwks.as_ref()).map_err(|e| BundleDocError::InMap {
            trust_domain: td.to_string(),
            source: Box::new(e),
        })?;
        set.insert(bundle);
    }
    Ok(set)
}

/// A map key: `spiffe://<name>` (no path) or a bare trust domain name.
pub(crate) fn map_key(key: &str) -> Result<TrustDomain, BundleDocError> {
    let invalid = |source| BundleDocError::InvalidTrustDomain {
        key: quoted(key),
        source,
    };
    if key.starts_with(SCHEME_PREFIX) {
        let id = SpiffeId::parse(key).map_err(invalid)?;
        if !id.is_root() {
            return Err(BundleDocError::TrustDomainWithPath { key: quoted(key) });
        }
        Ok(id.trust_domain())
    } else {
        TrustDomain::new(key).map_err(invalid)
    }
}
