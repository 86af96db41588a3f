//! X.509 bundles: the CA certificates of one trust domain, and where verifiers look them up.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls_pki_types::CertificateDer;

use super::X509Error;
use super::encoding::{MAX_BUNDLE_CERTS, concat_der, pem_certs, split_der};
use crate::id::TrustDomain;

/// The X.509 authorities (root CA certificates) of one trust domain.
///
/// A bundle is authoritative for its own trust domain only (Trust Domain and Bundle §4): the
/// pairing of name and certificates is kept here so validators never mix trust domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509Bundle {
    trust_domain: TrustDomain,
    authorities: Vec<CertificateDer<'static>>,
}

impl X509Bundle {
    /// A bundle of already-held certificates (not parsed here; verification rejects bad ones).
    pub fn new(td: TrustDomain, authorities: Vec<CertificateDer<'static>>) -> Self {
        X509Bundle {
            trust_domain: td,
            authorities,
        }
    }

    /// Reads concatenated DER certificates (the Workload API form). An empty input gives an empty
    /// bundle, which means every SVID of the trust domain is invalid.
    ///
    /// # Errors
    ///
    /// [`X509Error::MalformedCertificate`] or [`X509Error::TooManyCertificates`] (over
    /// [`MAX_BUNDLE_CERTS`]).
    pub fn from_der(td: TrustDomain, bytes: &[u8]) -> Result<Self, X509Error> {
        Ok(Self::new(td, split_der(bytes, MAX_BUNDLE_CERTS)?))
    }

    /// Reads the `CERTIFICATE` blocks of a PEM text; at least one is required.
    ///
    /// # Errors
    ///
    /// [`X509Error::MissingPemBlock`] without certificates, otherwise as
    /// [`parse_pem_certs`](super::parse_pem_certs).
    pub fn from_pem(td: TrustDomain, pem: &[u8]) -> Result<Self, X509Error> {
        let certs = pem_certs(pem, MAX_BUNDLE_CERTS)?;
        if certs.is_empty() {
            return Err(X509Error::MissingPemBlock {
                label: "CERTIFICATE",
            });
        }
        Ok(Self::new(td, certs))
    }

    /// The trust domain these authorities belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificates, in the order given.
    pub fn authorities(&self) -> &[CertificateDer<'static>] {
        &self.authorities
    }

    /// True when the bundle holds no authority.
    pub fn is_empty(&self) -> bool {
        self.authorities.is_empty()
    }

    /// The authorities as concatenated DER (the Workload API form).
    pub fn to_der(&self) -> Vec<u8> {
        concat_der(&self.authorities)
    }

    /// The authorities as consecutive PEM `CERTIFICATE` blocks.
    pub fn to_pem(&self) -> String {
        super::certs_to_pem(&self.authorities)
    }
}

/// Where verifiers find the X.509 bundle of a trust domain.
///
/// Answers `None` for trust domains it has no bundle for; a peer of such a trust domain is
/// untrusted. Implementations must return the bundle of exactly the trust domain asked for.
pub trait BundleSource: Send + Sync {
    /// The current bundle of `td`, if any.
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle>;
}

/// A single bundle answers for its own trust domain only.
impl BundleSource for X509Bundle {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        (self.trust_domain == *td).then(|| self.clone())
    }
}

/// A hot-swappable single bundle: readers see the latest one stored.
impl BundleSource for ArcSwap<X509Bundle> {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        self.load().x509_bundle(td)
    }
}

/// A hot-swappable bundle set (own trust domain plus federated ones).
impl BundleSource for ArcSwap<X509BundleSet> {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        self.load().x509_bundle(td)
    }
}

impl<T: BundleSource + ?Sized> BundleSource for Arc<T> {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        (**self).x509_bundle(td)
    }
}

impl<T: BundleSource + ?Sized> BundleSource for &T {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        (**self).x509_bundle(td)
    }
}

/// Bundles of several trust domains, each kept under its own name (never pooled).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct X509BundleSet {
    bundles: BTreeMap<TrustDomain, X509Bundle>,
}

impl X509BundleSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a bundle, replacing any earlier one of the same trust domain.
    pub fn insert(&mut self, bundle: X509Bundle) {
        self.bundles.insert(bundle.trust_domain().clone(), bundle);
    }

    /// The bundle of `td`, if present.
    pub fn get(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.bundles.get(td)
    }

    /// Removes and returns the bundle of `td`.
    pub fn remove(&mut self, td: &TrustDomain) -> Option<X509Bundle> {
        self.bundles.remove(td)
    }

    /// All bundles, ordered by trust domain name.
    pub fn iter(&self) -> impl Iterator<Item = &X509Bundle> {
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

impl FromIterator<X509Bundle> for X509BundleSet {
    fn from_iter<I: IntoIterator<Item = X509Bundle>>(iter: I) -> Self {
        let mut set = Self::new();
        for bundle in iter {
            set.insert(bundle);
        }
        set
    }
}

impl BundleSource for X509BundleSet {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        self.bundles.get(td).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::test_certs::{KeyKind, TestCa};

    fn td(name: &str) -> TrustDomain {
        TrustDomain::new(name).unwrap()
    }

    #[test]
    fn der_and_pem_round_trip() {
        let a = TestCa::new("a.org", KeyKind::P256);
        let b = TestCa::new("a.org", KeyKind::P384);
        let bundle = X509Bundle::new(td("a.org"), vec![a.cert.clone(), b.cert.clone()]);
        let from_der = X509Bundle::from_der(td("a.org"), &bundle.to_der()).unwrap();
        assert_eq!(from_der, bundle);
        let from_pem = X509Bundle::from_pem(td("a.org"), bundle.to_pem().as_bytes()).unwrap();
        assert_eq!(from_pem, bundle);
    }

    #[test]
    fn empty_der_is_an_empty_bundle_but_empty_pem_is_an_error() {
        assert!(X509Bundle::from_der(td("a.org"), &[]).unwrap().is_empty());
        assert!(matches!(
            X509Bundle::from_pem(td("a.org"), b""),
            Err(X509Error::MissingPemBlock { .. })
        ));
        assert!(X509Bundle::from_der(td("a.org"), &[0x30, 0x00]).is_err());
    }

    #[test]
    fn a_bundle_answers_only_for_its_own_trust_domain() {
        let bundle = X509Bundle::new(td("a.org"), vec![TestCa::new("a.org", KeyKind::P256).cert]);
        assert_eq!(bundle.x509_bundle(&td("a.org")), Some(bundle.clone()));
        assert_eq!(bundle.x509_bundle(&td("b.org")), None);
        let swap = Arc::new(ArcSwap::from_pointee(bundle.clone()));
        assert_eq!(swap.x509_bundle(&td("a.org")), Some(bundle.clone()));
        let as_dyn: Arc<dyn BundleSource> = swap;
        assert_eq!(as_dyn.x509_bundle(&td("b.org")), None);
    }

    #[test]
    fn a_set_keeps_bundles_apart_by_trust_domain() {
        let a = X509Bundle::new(td("a.org"), vec![TestCa::new("a.org", KeyKind::P256).cert]);
        let b = X509Bundle::new(td("b.org"), vec![TestCa::new("b.org", KeyKind::P256).cert]);
        let set: X509BundleSet = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(set.x509_bundle(&td("a.org")), Some(a));
        assert_eq!(set.x509_bundle(&td("b.org")), Some(b));
        assert_eq!(set.x509_bundle(&td("c.org")), None);
    }
}
