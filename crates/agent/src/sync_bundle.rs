//! The bundle step of a sync round: the server's X.509 authorities (and which of them are
//! tainted) and its JWT keys.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_proto::spire::api::types;
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, TrustDomain, X509Bundle};
use rustls_pki_types::CertificateDer;

use super::{SyncError, Syncer, blocking};

impl Syncer {
    /// Takes the server's bundle when anything in it changed, the sequence number included:
    /// SVIDs it no longer covers, or that a tainted authority issued, come due at once.
    pub(super) async fn apply_bundle(
        &mut self,
        bundle: X509Bundle,
        tainted: X509Bundle,
        sequence: u64,
    ) -> Result<(), SyncError> {
        let authorities = bundle.authorities().len();
        let tainted_count = tainted.authorities().len();
        let now = self.p.clock.now();
        if !self
            .p
            .cache
            .set_bundle(bundle.clone(), tainted, sequence, now)
        {
            return Ok(());
        }
        self.p.bundle.store(Arc::new(bundle.clone()));
        let store = Arc::clone(&self.p.store);
        blocking(move || store.save_bundle(&bundle)).await??;
        tracing::info!(
            authorities,
            tainted = tainted_count,
            sequence,
            "Trust bundle updated"
        );
        Ok(())
    }

    /// Keeps the server's JWT keys; a key that cannot be used is left out with a warning.
    pub(super) fn apply_jwt_bundle(&mut self, keys: &[types::JwtKey]) {
        let mut bundle = JwtBundle::new(self.p.trust_domain.clone());
        let mut tainted = BTreeSet::new();
        for k in keys {
            match JwtPublicKey::from_spki_der(&k.public_key) {
                Ok(key) => {
                    bundle.insert(k.key_id.clone(), key);
                    if k.tainted {
                        tainted.insert(k.key_id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(kid = %k.key_id, error = %e, "Ignoring an unusable JWT key");
                }
            }
        }
        let kids = bundle.len();
        let tainted_count = tainted.len();
        if self.p.cache.set_jwt_bundle(bundle, tainted) {
            tracing::info!(keys = kids, tainted = tainted_count, "JWT keys updated");
        }
    }
}

/// The X.509 authorities of `wire` the server marked tainted, as a bundle of `td`.
pub(super) fn tainted_from_wire(td: &TrustDomain, wire: &types::Bundle) -> X509Bundle {
    let tainted = wire
        .x509_authorities
        .iter()
        .filter(|a| a.tainted)
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    X509Bundle::new(td.clone(), tainted)
}
