//! Test certificates: a CA per trust domain that signs real X509-SVIDs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair};
use lanyard_spiffe::{SpiffeId, TrustDomain};

use crate::X509SvidItem;

/// A self-signed CA for one trust domain.
pub(crate) struct TestCa {
    authority: X509Authority,
}

impl TestCa {
    pub(crate) fn new(td: &str) -> Self {
        let td = TrustDomain::new(td).unwrap();
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let authority =
            X509Authority::self_signed(&td, key, Duration::from_secs(3600), SystemTime::now())
                .unwrap();
        Self { authority }
    }

    /// The CA certificate, DER.
    pub(crate) fn bundle_der(&self) -> Vec<u8> {
        self.authority.cert().to_vec()
    }

    /// A fresh SVID for `path` in this CA's trust domain.
    pub(crate) fn svid(&self, path: &str, hint: &str) -> X509SvidItem {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let id = SpiffeId::from_path(self.authority.trust_domain(), path).unwrap();
        let leaf = self
            .authority
            .sign_x509_svid(
                &SvidParams {
                    spiffe_id: id.clone(),
                    public_key_der: rcgen::PublicKeyData::subject_public_key_info(&key),
                    ttl: Duration::from_secs(600),
                    dns_names: vec![],
                },
                SystemTime::now(),
            )
            .unwrap();
        X509SvidItem {
            spiffe_id: id,
            chain_der: leaf.to_vec(),
            key_pkcs8: key.serialize_der(),
            bundle_der: self.bundle_der(),
            hint: hint.to_string(),
        }
    }
}
