//! JWT bundles: the JWT-SVID signing keys of one trust domain, by `kid`, and where validators
//! look them up.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::JwtPublicKey;
use crate::id::TrustDomain;

/// The JWT authorities (public keys by key ID) of one trust domain.
///
/// Like an X.509 bundle, it is authoritative for its own trust domain only (Trust Domain and
/// Bundle §4), so the name travels with the keys. An empty bundle means every JWT-SVID of the
/// trust domain is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtBundle {
    trust_domain: TrustDomain,
    keys: BTreeMap<String, JwtPublicKey>,
}

impl JwtBundle {
    /// An empty bundle for `td`.
    pub fn new(td: TrustDomain) -> Self {
        JwtBundle {
            trust_domain: td,
            keys: BTreeMap::new(),
        }
    }

    /// Adds a key under `kid`, returning the key it replaces, if any.
    pub fn insert(&mut self, kid: impl Into<String>, key: JwtPublicKey) -> Option<JwtPublicKey> {
        self.keys.insert(kid.into(), key)
    }

    /// Removes the key `kid`.
    pub fn remove(&mut self, kid: &str) -> Option<JwtPublicKey> {
        self.keys.remove(kid)
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&JwtPublicKey> {
        self.keys.get(kid)
    }

    /// The trust domain these keys belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// `(kid, key)` pairs, ordered by `kid`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &JwtPublicKey)> {
        self.keys.iter().map(|(kid, key)| (kid.as_str(), key))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the bundle holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Where validators find the JWT bundle of a trust domain.
///
/// Answers `None` for trust domains it has no bundle for; tokens of such a trust domain are
/// untrusted. Implementations must return the bundle of exactly the trust domain asked for
/// (never a pool of several: that would let one trust domain sign for another).
pub trait JwtBundleSource {
    /// The bundle of `td`, if any.
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle>;
}

/// A single bundle answers for its own trust domain only.
impl JwtBundleSource for JwtBundle {
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        (self.trust_domain == *td).then_some(self)
    }
}

impl<T: JwtBundleSource + ?Sized> JwtBundleSource for &T {
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        (**self).jwt_bundle_for(td)
    }
}

impl<T: JwtBundleSource + ?Sized> JwtBundleSource for Arc<T> {
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        (**self).jwt_bundle_for(td)
    }
}

/// JWT bundles of several trust domains, each kept under its own name (never pooled).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtBundleSet {
    bundles: BTreeMap<TrustDomain, JwtBundle>,
}

impl JwtBundleSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a bundle, returning the one of the same trust domain it replaces, if any.
    pub fn insert(&mut self, bundle: JwtBundle) -> Option<JwtBundle> {
        self.bundles.insert(bundle.trust_domain().clone(), bundle)
    }

    /// The bundle of `td`.
    pub fn get(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        self.bundles.get(td)
    }

    /// Removes and returns the bundle of `td`.
    pub fn remove(&mut self, td: &TrustDomain) -> Option<JwtBundle> {
        self.bundles.remove(td)
    }

    /// All bundles, ordered by trust domain name.
    pub fn iter(&self) -> impl Iterator<Item = &JwtBundle> {
        self.bundles.values()
    }

    /// Number of trust domains in the set.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// True when the set holds no bundle.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }
}

impl FromIterator<JwtBundle> for JwtBundleSet {
    /// Later bundles replace earlier ones of the same trust domain.
    fn from_iter<I: IntoIterator<Item = JwtBundle>>(iter: I) -> Self {
        let mut set = Self::new();
        for bundle in iter {
            set.insert(bundle);
        }
        set
    }
}

impl JwtBundleSource for JwtBundleSet {
    fn jwt_bundle_for(&self, td: &TrustDomain) -> Option<&JwtBundle> {
        self.bundles.get(td)
    }
}
