//! A throwaway CA for the unit tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair};
use lanyard_spiffe::{SpiffeId, TrustDomain, X509Bundle};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;

/// A self-signed authority of `example.org`, valid for a day.
pub(crate) struct TestCa {
    pub(crate) td: TrustDomain,
    pub(crate) authority: X509Authority,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let td = TrustDomain::new("example.org").unwrap();
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let authority =
            X509Authority::self_signed(&td, key, Duration::from_secs(86_400), SystemTime::now())
                .unwrap();
        Self { td, authority }
    }

    /// The bundle holding this authority.
    pub(crate) fn bundle(&self) -> X509Bundle {
        X509Bundle::new(self.td.clone(), vec![self.authority.cert().clone()])
    }

    /// An X509-SVID chain for `path` with `key`'s public key, issued now.
    pub(crate) fn sign(
        &self,
        key: &KeyPair,
        path: &str,
        ttl: Duration,
    ) -> Vec<CertificateDer<'static>> {
        self.sign_at(key, path, ttl, SystemTime::now())
    }

    /// As [`TestCa::sign`], issued at `now`.
    pub(crate) fn sign_at(
        &self,
        key: &KeyPair,
        path: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Vec<CertificateDer<'static>> {
        let params = SvidParams {
            spiffe_id: SpiffeId::from_path(&self.td, path).unwrap(),
            public_key_der: key.subject_public_key_info(),
            ttl,
            dns_names: Vec::new(),
        };
        vec![self.authority.sign_x509_svid(&params, now).unwrap()]
    }
}
