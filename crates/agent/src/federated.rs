//! Bundles of foreign trust domains that authorized entries federate with (`federates_with`).
//!
//! The sync loop fetches each named trust domain's bundle from the server
//! (`Bundle/GetFederatedBundle`) on every round and keeps the last good copy; workloads receive
//! the bundles their identities name (Workload API §6: `federated_bundles`, and the extra trust
//! domains of the bundle RPCs).
//!
//! TODO: fetches are sequential, one RPC per trust domain and round; when deployments federate
//! with many trust domains, fetch them concurrently.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lanyard_proto::spire::api::types;
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, TrustDomain, X509Bundle};
use rustls_pki_types::CertificateDer;

use crate::cache::Cache;
use crate::client::ServerClient;
use crate::report::ErrorChain;

/// One foreign trust domain's authorities, as the server stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FederatedBundle {
    /// CA certificates for X509-SVIDs of the trust domain (possibly none).
    pub(crate) x509: X509Bundle,
    /// Keys for JWT-SVIDs of the trust domain (possibly none).
    pub(crate) jwt: JwtBundle,
}

impl FederatedBundle {
    /// The trust domain the bundle belongs to.
    pub(crate) fn trust_domain(&self) -> &TrustDomain {
        self.x509.trust_domain()
    }
}

/// Federated bundles by trust domain, shared with snapshots without copying.
pub(crate) type FederatedMap = BTreeMap<TrustDomain, FederatedBundle>;

/// A federated bundle from the server that cannot be used; the last good copy stays.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FederatedBundleError {
    /// The server answered with another trust domain's bundle.
    #[error("bundle for {expected} names trust domain {got:?}: it must name the one asked for")]
    WrongTrustDomain {
        /// The trust domain asked for.
        expected: TrustDomain,
        /// The trust domain in the answer.
        got: String,
    },
    /// Neither X.509 nor JWT authorities.
    #[error("bundle for {0} holds no authorities: at least one X.509 or JWT authority is needed")]
    Empty(TrustDomain),
    /// A JWT authority whose public key cannot be read.
    #[error("bundle for {td}: JWT authority {kid:?} has an unusable public key: {reason}")]
    JwtKey {
        /// The bundle's trust domain.
        td: TrustDomain,
        /// The key's ID.
        kid: String,
        /// Why the key cannot be used.
        reason: String,
    },
}

/// Parses the server's answer to `GetFederatedBundle` for `td`. Strict: one unusable key
/// rejects the whole answer, so a workload never sees half of a foreign trust domain's keys.
///
/// # Errors
///
/// [`FederatedBundleError`] naming the broken rule.
pub(crate) fn federated_from_wire(
    td: &TrustDomain,
    wire: &types::Bundle,
) -> Result<FederatedBundle, FederatedBundleError> {
    if wire.trust_domain != td.name() {
        return Err(FederatedBundleError::WrongTrustDomain {
            expected: td.clone(),
            got: wire.trust_domain.clone(),
        });
    }
    if wire.x509_authorities.is_empty() && wire.jwt_authorities.is_empty() {
        return Err(FederatedBundleError::Empty(td.clone()));
    }
    let authorities = wire
        .x509_authorities
        .iter()
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    let mut jwt = JwtBundle::new(td.clone());
    for k in &wire.jwt_authorities {
        let key = JwtPublicKey::from_spki_der(&k.public_key).map_err(|e| {
            FederatedBundleError::JwtKey {
                td: td.clone(),
                kid: k.key_id.clone(),
                reason: e.to_string(),
            }
        })?;
        jwt.insert(k.key_id.clone(), key);
    }
    Ok(FederatedBundle {
        x509: X509Bundle::new(td.clone(), authorities),
        jwt,
    })
}

/// The federated bundles the agent holds.
#[derive(Default)]
pub(crate) struct FederatedBundles {
    bundles: Arc<FederatedMap>,
}

impl FederatedBundles {
    /// Stores `bundle`, replacing the trust domain's previous one; returns whether it changed.
    pub(crate) fn set(&mut self, bundle: FederatedBundle) -> bool {
        if self.bundles.get(bundle.trust_domain()) == Some(&bundle) {
            return false;
        }
        Arc::make_mut(&mut self.bundles).insert(bundle.trust_domain().clone(), bundle);
        true
    }

    /// Drops the bundles of trust domains not in `wanted`; returns the dropped trust domains.
    pub(crate) fn retain(&mut self, wanted: &BTreeSet<TrustDomain>) -> Vec<TrustDomain> {
        let dropped: Vec<TrustDomain> = self
            .bundles
            .keys()
            .filter(|td| !wanted.contains(*td))
            .cloned()
            .collect();
        if !dropped.is_empty() {
            Arc::make_mut(&mut self.bundles).retain(|td, _| wanted.contains(td));
        }
        dropped
    }

    /// The bundles, shared.
    pub(crate) fn shared(&self) -> Arc<FederatedMap> {
        Arc::clone(&self.bundles)
    }
}

/// The sync loop's federated-bundle step, with its per-trust-domain failure counts.
#[derive(Default)]
pub(crate) struct FederatedSync {
    /// Consecutive failed fetches per trust domain.
    failures: BTreeMap<TrustDomain, u64>,
}

impl FederatedSync {
    /// Fetches the bundle of every trust domain the entries in `cache` federate with and drops
    /// the bundles no entry names any more. A failed fetch keeps the last good copy: a partner's
    /// bundle briefly missing on the server must not cut workloads off from it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the bundles fetched so far stored and the rest as they were.
    pub(crate) async fn sync(&mut self, cache: &mut Cache, client: &ServerClient) {
        let wanted = cache.federated_trust_domains();
        for td in cache.retain_federated(&wanted) {
            tracing::info!(trust_domain = %td, "Federated bundle dropped: no entry federates with it");
        }
        self.failures.retain(|td, _| wanted.contains(td));
        for td in wanted {
            let fetched = match client.federated_bundle(&td).await {
                Ok(wire) => federated_from_wire(&td, &wire).map_err(|e| e.to_string()),
                Err(e) => Err(ErrorChain(&e).to_string()),
            };
            self.record(cache, &td, fetched);
        }
    }

    /// Takes the outcome of one fetch for `td`: a bundle is stored, a failure only counted.
    fn record(
        &mut self,
        cache: &mut Cache,
        td: &TrustDomain,
        fetched: Result<FederatedBundle, String>,
    ) {
        match fetched {
            Ok(bundle) => self.fetched(cache, td, bundle),
            Err(error) => self.failed(td, &error),
        }
    }

    fn fetched(&mut self, cache: &mut Cache, td: &TrustDomain, bundle: FederatedBundle) {
        let authorities = bundle.x509.authorities().len();
        let jwt_keys = bundle.jwt.len();
        if cache.set_federated(bundle) {
            tracing::info!(trust_domain = %td, authorities, jwt_keys, "Federated bundle updated");
        }
        if let Some(failures) = self.failures.remove(td) {
            tracing::info!(trust_domain = %td, failures, "Fetching the federated bundle works again");
        }
    }

    /// First failure at warn, repeats at debug with a count.
    fn failed(&mut self, td: &TrustDomain, error: &str) {
        let failures = self.failures.entry(td.clone()).or_insert(0);
        *failures += 1;
        if *failures == 1 {
            tracing::warn!(
                trust_domain = %td,
                error,
                "Cannot fetch the federated bundle of {td}; keeping the last good copy, if any"
            );
        } else {
            tracing::debug!(
                trust_domain = %td,
                failures = *failures,
                error,
                "Fetching the federated bundle failed again"
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use lanyard_ca::{KeyType, generate_key_pair};
    use rcgen::PublicKeyData;

    use super::*;
    use crate::entry::tests::entry;
    use crate::test_support::TestCa;

    /// A bundle for `name` whose single "certificate" is `marker` (only compared, never parsed).
    pub(crate) fn bundle(name: &str, marker: u8) -> FederatedBundle {
        let td = TrustDomain::new(name).unwrap();
        FederatedBundle {
            x509: X509Bundle::new(td.clone(), vec![CertificateDer::from(vec![0x30, marker])]),
            jwt: JwtBundle::new(td),
        }
    }

    fn tds(names: &[&str]) -> BTreeSet<TrustDomain> {
        names.iter().map(|n| TrustDomain::new(n).unwrap()).collect()
    }

    #[test]
    fn adding_and_changing_a_bundle_are_changes_and_the_same_one_is_not() {
        let mut held = FederatedBundles::default();
        assert!(held.set(bundle("partner.org", 1)), "added");
        assert!(!held.set(bundle("partner.org", 1)), "same again");
        let before = held.shared();
        assert!(held.set(bundle("partner.org", 2)), "changed");
        let td = TrustDomain::new("partner.org").unwrap();
        assert_eq!(held.shared()[&td], bundle("partner.org", 2));
        assert_eq!(
            before[&td],
            bundle("partner.org", 1),
            "snapshots keep their copy"
        );
    }

    #[test]
    fn bundles_of_trust_domains_no_longer_wanted_are_dropped() {
        let mut held = FederatedBundles::default();
        held.set(bundle("a.org", 1));
        held.set(bundle("b.org", 1));
        assert!(held.retain(&tds(&["a.org", "b.org", "c.org"])).is_empty());
        assert_eq!(
            held.retain(&tds(&["b.org"])),
            tds(&["a.org"]).into_iter().collect::<Vec<_>>()
        );
        let left: Vec<_> = held.shared().keys().map(|t| t.name().to_owned()).collect();
        assert_eq!(left, ["b.org"]);
    }

    #[test]
    fn cache_follows_the_entries_federates_with_and_marks_changes_for_publishing() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let mut web = entry("e1", "/web", &["unix:uid:1"]);
        web.federates_with = tds(&["partner.org", "example.org"]);
        let mut db = entry("e2", "/db", &["unix:uid:2"]);
        db.federates_with = tds(&["other.org"]);
        cache.set_entries(vec![web.clone(), db]);
        assert_eq!(
            cache.federated_trust_domains(),
            tds(&["other.org", "partner.org"]),
            "the own trust domain is never federated"
        );
        cache.take_dirty();

        assert!(cache.set_federated(bundle("partner.org", 1)));
        assert!(cache.take_dirty(), "added");
        assert!(!cache.set_federated(bundle("partner.org", 1)));
        assert!(!cache.take_dirty(), "unchanged");
        assert!(cache.set_federated(bundle("partner.org", 2)));
        assert!(cache.take_dirty(), "changed");
        assert_eq!(cache.snapshot().federated.len(), 1);

        cache.set_entries(vec![web]);
        cache.take_dirty();
        let wanted = cache.federated_trust_domains();
        assert!(
            cache.retain_federated(&wanted).is_empty(),
            "partner.org is still named"
        );
        assert!(!cache.take_dirty());
        cache.set_entries(vec![]);
        let wanted = cache.federated_trust_domains();
        let dropped = cache.retain_federated(&wanted);
        assert_eq!(dropped, [TrustDomain::new("partner.org").unwrap()]);
        assert!(cache.take_dirty(), "dropped");
        assert!(cache.snapshot().federated.is_empty());
    }

    #[test]
    fn failed_fetch_keeps_the_last_good_copy_and_counts_until_one_succeeds() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let mut web = entry("e1", "/web", &["unix:uid:1"]);
        web.federates_with = tds(&["partner.org"]);
        cache.set_entries(vec![web]);
        let td = TrustDomain::new("partner.org").unwrap();
        let mut sync = FederatedSync::default();

        sync.record(&mut cache, &td, Ok(bundle("partner.org", 1)));
        cache.take_dirty();
        sync.record(&mut cache, &td, Err("unavailable".into()));
        sync.record(&mut cache, &td, Err("unavailable".into()));
        assert_eq!(sync.failures[&td], 2);
        assert!(!cache.take_dirty(), "nothing to publish");
        assert_eq!(cache.snapshot().federated[&td], bundle("partner.org", 1));

        sync.record(&mut cache, &td, Ok(bundle("partner.org", 2)));
        assert!(sync.failures.is_empty());
        assert_eq!(cache.snapshot().federated[&td], bundle("partner.org", 2));
    }

    #[test]
    fn parses_wire_bundles_and_refuses_foreign_empty_or_broken_ones() {
        let td = TrustDomain::new("partner.org").unwrap();
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut wire = types::Bundle {
            trust_domain: "partner.org".into(),
            x509_authorities: vec![types::X509Certificate {
                asn1: vec![0x30, 7],
                ..Default::default()
            }],
            jwt_authorities: vec![types::JwtKey {
                public_key: key.subject_public_key_info(),
                key_id: "k1".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let parsed = federated_from_wire(&td, &wire).unwrap();
        assert_eq!(parsed.x509.to_der(), [0x30, 7]);
        assert!(parsed.jwt.get("k1").is_some());

        wire.jwt_authorities[0].public_key = vec![1, 2, 3];
        let err = federated_from_wire(&td, &wire).unwrap_err();
        assert!(
            matches!(err, FederatedBundleError::JwtKey { ref kid, .. } if kid == "k1"),
            "{err}"
        );

        wire.jwt_authorities.clear();
        wire.x509_authorities.clear();
        assert_eq!(
            federated_from_wire(&td, &wire),
            Err(FederatedBundleError::Empty(td.clone()))
        );

        wire.trust_domain = "example.org".into();
        let err = federated_from_wire(&td, &wire).unwrap_err().to_string();
        assert!(err.contains("\"example.org\""), "{err}");
    }
}
