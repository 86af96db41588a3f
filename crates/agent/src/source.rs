//! The Workload API's view of the agent: attest the caller, match its selectors against the
//! cached entries, and hand out the SVIDs (and the bundles) it is entitled to: its own trust
//! domain's, and the federated ones its identities name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use lanyard_ca::Clock;
use lanyard_spiffe::x509::concat_der;
use lanyard_spiffe::{JwtBundleSet, JwtSvid, Selector, SpiffeId};
use lanyard_workload::{
    BundlesSnapshot, Caller, IdentitySource, JwtSvidItem, SourceError, X509Snapshot, X509SvidItem,
};
use tokio::sync::watch;

use crate::attestor::{WorkloadAttestor, attest_all};
use crate::cache::demand::{SvidDemand, WatchGuard};
use crate::cache::{Identity, Snapshot};
use crate::check::usable_at;
use crate::federated::FederatedBundle;
use crate::jwt_cache::{CachedJwt, JwtCache};
use crate::published::Published;
use crate::report::ErrorChain;

/// Serves workloads from the published cache snapshots; JWT-SVIDs are signed by the server on
/// demand and cached.
pub(crate) struct AgentSource {
    published: Arc<Published>,
    clock: Arc<dyn Clock>,
    jwts: Mutex<JwtCache>,
    attestors: Vec<Arc<dyn WorkloadAttestor>>,
    /// Where calls are registered, so the SVIDs they use stay cached and missing ones are
    /// signed at once.
    demand: Arc<SvidDemand>,
}

/// What a call learned about its caller, kept for the call's life (a stream's too).
struct Attested {
    selectors: Arc<BTreeSet<Selector>>,
    /// Keeps the caller's SVIDs from eviction while the call lasts.
    _watch: WatchGuard,
}

/// How long a caller whose entries have no SVID yet waits for one to be signed before it is
/// told it has no identity: about a server round trip and a signature, with room for a
/// loaded machine.
const SIGNING_WAIT: Duration = Duration::from_secs(5);

/// How long a caller that has some of its SVIDs waits for the others to be signed: one signing
/// round on a healthy server, short enough that a server outage does not hold up callers that
/// can be served.
const COMPLETING_WAIT: Duration = Duration::from_secs(1);

impl AgentSource {
    pub(crate) fn new(
        published: Arc<Published>,
        clock: Arc<dyn Clock>,
        attestors: Vec<Arc<dyn WorkloadAttestor>>,
        demand: Arc<SvidDemand>,
    ) -> Self {
        Self {
            published,
            clock,
            jwts: Mutex::new(JwtCache::default()),
            attestors,
            demand,
        }
    }

    /// A JWT-SVID for `identity`: the cached one while fresh, else a new one from the server.
    async fn jwt_svid(
        &self,
        identity: &Identity,
        audience: &[String],
    ) -> Result<JwtSvidItem, SourceError> {
        let id = &identity.entry.spiffe_id;
        let snapshot = self.published.load();
        let cached = {
            let mut jwts = self.jwts.lock().unwrap_or_else(PoisonError::into_inner);
            let dropped = jwts.prune(&snapshot.jwt_bundle, &snapshot.tainted_kids);
            if dropped > 0 {
                tracing::info!(
                    dropped,
                    "Dropped cached JWT-SVIDs signed by a tainted or removed key"
                );
            }
            jwts.get(id, audience, self.clock.now())
        };
        let jwt = match cached {
            Some(jwt) => jwt,
            None => self.new_jwt_svid(identity, audience).await?,
        };
        Ok(JwtSvidItem {
            spiffe_id: id.clone(),
            token: jwt.token,
            hint: jwt.hint,
        })
    }

    async fn new_jwt_svid(
        &self,
        identity: &Identity,
        audience: &[String],
    ) -> Result<CachedJwt, SourceError> {
        let client = self.published.client().ok_or_else(|| {
            SourceError::Unavailable("the agent is not connected to the server yet".into())
        })?;
        let wire = client
            .new_jwt_svid(&identity.entry.id, audience)
            .await
            .map_err(|e| {
                let message = format!("cannot get a JWT-SVID from the server: {e}");
                // The server refuses what no retry can fix (audiences making the token too large)
                // with InvalidArgument; anything else may pass once the server is reachable again.
                if e.code == tonic::Code::InvalidArgument {
                    tracing::info!(entry.id = %identity.entry.id, error = %e, "JWT-SVID refused");
                    SourceError::InvalidRequest(message)
                } else {
                    tracing::warn!(entry.id = %identity.entry.id, error = %e, "Cannot get a JWT-SVID");
                    SourceError::Unavailable(message)
                }
            })?;
        let at = |secs: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs());
        // An unreadable header leaves the kid empty: no bundle has it, so the token is handed
        // out once and dropped at the next change of the keys.
        let audience_refs: Vec<&str> = audience.iter().map(String::as_str).collect();
        let kid = JwtSvid::parse_insecure(&wire.token, &audience_refs, self.clock.now())
            .map(|svid| svid.kid().to_owned())
            .unwrap_or_default();
        let jwt = CachedJwt {
            kid,
            token: wire.token,
            hint: wire.hint,
            issued_at: at(wire.issued_at),
            expires_at: at(wire.expires_at),
        };
        tracing::debug!(
            spiffe_id = %identity.entry.spiffe_id,
            expires_at = wire.expires_at,
            "JWT-SVID signed"
        );
        self.jwts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(&identity.entry.spiffe_id, audience, jwt.clone());
        Ok(jwt)
    }

    /// The published snapshot and the caller's selectors, for a caller entitled to at least
    /// one identity in it: the bundle RPCs answer only workloads that have an identity, like
    /// the SVID RPCs.
    async fn entitled_snapshot(
        &self,
        caller: &Caller,
    ) -> Result<(Arc<Snapshot>, Arc<BTreeSet<Selector>>), SourceError> {
        let selectors = self.attest(caller).await?;
        let snapshot = self.published.load();
        if matching(&snapshot, &selectors).next().is_none() {
            return Err(no_identity(caller, &snapshot));
        }
        Ok((snapshot, selectors))
    }

    /// The caller's selectors from every attestor (only `unix` so far), worked out once per
    /// call: a stream keeps the selectors it was opened with (see `CallMemo`), and is
    /// registered as using the SVIDs they match for as long as it lasts.
    async fn attest(&self, caller: &Caller) -> Result<Arc<BTreeSet<Selector>>, SourceError> {
        let attested = caller
            .memo
            .get_or_try_init(|| async {
                let selectors = attest_all(&self.attestors, caller).await.map_err(|e| {
                    let error = ErrorChain(&e);
                    tracing::warn!(peer.uid = caller.uid, peer.pid = caller.pid, %error, "Workload attestation failed");
                    SourceError::Unavailable(format!("workload attestation failed: {error}"))
                })?;
                let selectors = Arc::new(selectors);
                let watch = self.demand.watch(Arc::clone(&selectors));
                Ok::<_, SourceError>(Attested {
                    selectors,
                    _watch: watch,
                })
            })
            .await?;
        Ok(Arc::clone(&attested.selectors))
    }

    /// The caller's usable SVIDs. Entries it matches whose SVID is missing (dropped from the
    /// bounded cache, or not signed yet) are signed at once, and the caller waits for them:
    /// up to [`SIGNING_WAIT`] when it has none yet, up to [`COMPLETING_WAIT`] when it has
    /// some, after which it gets what there is (an open stream gets the rest when it comes).
    async fn usable_svids(
        &self,
        selectors: &BTreeSet<Selector>,
    ) -> (Arc<Snapshot>, Vec<X509SvidItem>) {
        let mut published = self.published.subscribe();
        let started = tokio::time::Instant::now();
        loop {
            published.mark_unchanged();
            let snapshot = self.published.load();
            let now = self.clock.now();
            let svids = svid_items(&snapshot, selectors, now);
            let missing = matching(&snapshot, selectors)
                .any(|identity| !identity.svid.as_ref().is_some_and(|s| usable_at(s, now)));
            if !missing {
                return (snapshot, svids);
            }
            self.demand.sign_now();
            let wait = if svids.is_empty() {
                SIGNING_WAIT
            } else {
                COMPLETING_WAIT
            };
            tracing::debug!(
                have = svids.len(),
                "Waiting for the caller's SVIDs to be signed"
            );
            match tokio::time::timeout_at(started + wait, published.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return (snapshot, svids),
            }
        }
    }
}

#[async_trait::async_trait]
impl IdentitySource for AgentSource {
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError> {
        let selectors = self.attest(caller).await?;
        let (snapshot, svids) = self.usable_svids(&selectors).await;
        if svids.is_empty() {
            return Err(no_identity(caller, &snapshot));
        }
        tracing::trace!(
            peer.uid = caller.uid,
            peer.pid = caller.pid,
            spiffe_id = %svids[0].spiffe_id,
            svids = svids.len(),
            "X509-SVIDs served"
        );
        Ok(X509Snapshot {
            svids,
            federated_bundles: x509_federated(&snapshot, &selectors).collect(),
        })
    }

    async fn x509_bundles(&self, caller: &Caller) -> Result<BundlesSnapshot, SourceError> {
        let (snapshot, selectors) = self.entitled_snapshot(caller).await?;
        let mut bundles: BTreeMap<String, Vec<u8>> =
            x509_federated(&snapshot, &selectors).collect();
        bundles.insert(
            snapshot.trust_domain.id_string(),
            snapshot.bundle_der.clone(),
        );
        Ok(BundlesSnapshot { bundles })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidItem>, SourceError> {
        let selectors = self.attest(caller).await?;
        let snapshot = self.published.load();
        let mut seen = BTreeSet::new();
        let identities: Vec<&Identity> = matching(&snapshot, &selectors)
            .filter(|i| seen.insert(&i.entry.spiffe_id))
            .collect();
        if identities.is_empty() {
            return Err(no_identity(caller, &snapshot));
        }
        let wanted: Vec<&Identity> = match spiffe_id {
            None => identities,
            Some(id) => identities
                .into_iter()
                .filter(|i| i.entry.spiffe_id == *id)
                .collect(),
        };
        if let (Some(id), true) = (spiffe_id, wanted.is_empty()) {
            tracing::info!(peer.uid = caller.uid, peer.pid = caller.pid, spiffe_id = %id, "Denied: the caller asked for an identity it does not have");
            return Err(SourceError::NotEntitled(id.clone()));
        }
        let mut svids = Vec::with_capacity(wanted.len());
        for identity in wanted {
            svids.push(self.jwt_svid(identity, audience).await?);
        }
        Ok(svids)
    }

    async fn jwt_bundles(&self, caller: &Caller) -> Result<JwtBundleSet, SourceError> {
        let (snapshot, selectors) = self.entitled_snapshot(caller).await?;
        let federated = federated_of(&snapshot, &selectors).map(|b| b.jwt.clone());
        Ok(JwtBundleSet::from_iter(
            federated.chain([snapshot.jwt_bundle.as_ref().clone()]),
        ))
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }
}

/// Logs a caller turned away for having no identity, and the error it gets: "no identity",
/// or, before the agent has received its entries from the server (just started, server
/// unreachable), "unavailable", which clients retry, since the caller may well have one.
fn no_identity(caller: &Caller, snapshot: &Snapshot) -> SourceError {
    if !snapshot.synced {
        tracing::debug!(
            peer.uid = caller.uid,
            peer.pid = caller.pid,
            "No identity for the caller yet: the entries have not been synced"
        );
        return SourceError::Unavailable(NOT_SYNCED.into());
    }
    tracing::info!(
        peer.uid = caller.uid,
        peer.pid = caller.pid,
        "Denied: no identity issued for the caller"
    );
    SourceError::NoIdentity
}

/// What a caller is told before the agent has its entries.
pub(crate) const NOT_SYNCED: &str =
    "the agent has not received its registration entries from the server yet";

/// The snapshot's entries whose selectors the caller has, in SVID order.
fn matching<'a>(
    snapshot: &'a Snapshot,
    selectors: &'a BTreeSet<Selector>,
) -> impl Iterator<Item = &'a Identity> + 'a {
    snapshot
        .identities
        .iter()
        .filter(move |identity| identity.entry.matches(selectors))
}

/// The federated bundles the caller's identities name (the union of their `federates_with`),
/// by trust domain. Trust domains whose bundle the agent does not hold (yet) are left out, as
/// is the own trust domain: its bundle is never a federated one.
fn federated_of<'a>(
    snapshot: &'a Snapshot,
    selectors: &'a BTreeSet<Selector>,
) -> impl Iterator<Item = &'a FederatedBundle> + 'a {
    let named: BTreeSet<_> = matching(snapshot, selectors)
        .flat_map(|identity| identity.entry.federates_with.iter())
        .filter(|td| **td != snapshot.trust_domain)
        .collect();
    named
        .into_iter()
        .filter_map(|td| snapshot.federated.get(td))
}

/// The X.509 form of [`federated_of`]: trust domain ID (`spiffe://td`) to concatenated DER CA
/// certificates (Workload API §6.1 `federated_bundles`). A bundle with only JWT authorities is
/// left out rather than sent as an empty value, which would read as "no bundle".
fn x509_federated<'a>(
    snapshot: &'a Snapshot,
    selectors: &'a BTreeSet<Selector>,
) -> impl Iterator<Item = (String, Vec<u8>)> + 'a {
    federated_of(snapshot, selectors)
        .filter(|b| !b.x509.is_empty())
        .map(|b| (b.trust_domain().id_string(), b.x509.to_der()))
}

/// The caller's SVIDs that may be handed out at `now`, default identity first.
fn svid_items(
    snapshot: &Snapshot,
    selectors: &BTreeSet<Selector>,
    now: SystemTime,
) -> Vec<X509SvidItem> {
    matching(snapshot, selectors)
        .filter_map(|identity| {
            let svid = identity.svid.as_ref().filter(|s| usable_at(s, now))?;
            Some(X509SvidItem {
                spiffe_id: svid.spiffe_id().clone(),
                chain_der: concat_der(svid.chain()),
                key_pkcs8: svid.key().secret_pkcs8_der().to_vec(),
                bundle_der: snapshot.bundle_der.clone(),
                hint: identity.entry.hint.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lanyard_ca::{KeyType, generate_key_pair};
    use lanyard_spiffe::X509Svid;
    use rustls_pki_types::PrivatePkcs8KeyDer;

    use super::*;
    use crate::cache::Cache;
    use crate::entry::WorkloadEntry;
    use crate::entry::tests::entry;
    use crate::federated::tests::bundle;
    use crate::test_support::TestCa;

    fn sign(ca: &TestCa, cache: &mut Cache, e: &WorkloadEntry) {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = ca.sign(&key, e.spiffe_id.path(), Duration::from_secs(60));
        let svid =
            X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der())).unwrap();
        assert!(cache.insert_svid(e, svid, SystemTime::now(), 0.0));
    }

    fn selectors(s: &[&str]) -> BTreeSet<Selector> {
        s.iter().map(|s| Selector::parse(s).unwrap()).collect()
    }

    /// Every caller has these selectors.
    struct FixedAttestor(BTreeSet<Selector>);

    #[async_trait::async_trait]
    impl WorkloadAttestor for FixedAttestor {
        fn kind(&self) -> &'static str {
            "fixed"
        }
        async fn attest(
            &self,
            _caller: &Caller,
        ) -> Result<BTreeSet<Selector>, crate::attestor::AttestorError> {
            Ok(self.0.clone())
        }
    }

    /// A source over `cache`'s snapshot whose every caller has the selector `unix:uid:7`.
    fn uid7_source(cache: &Cache) -> (Arc<Published>, Arc<SvidDemand>, Arc<AgentSource>) {
        let published = Arc::new(Published::new(cache.snapshot()));
        let demand = Arc::new(SvidDemand::default());
        let source = Arc::new(AgentSource::new(
            Arc::clone(&published),
            Arc::new(lanyard_ca::SystemClock),
            vec![Arc::new(FixedAttestor(selectors(&["unix:uid:7"])))],
            Arc::clone(&demand),
        ));
        (published, demand, source)
    }

    #[tokio::test]
    async fn a_caller_whose_svid_is_missing_waits_for_it_and_is_registered_meanwhile() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let e = entry("e1", "/evicted", &["unix:uid:7"]);
        cache.set_entries(vec![e.clone()]);
        let (published, demand, source) = uid7_source(&cache);
        let asking = {
            let source = Arc::clone(&source);
            let caller = Caller::new(Some(1), 7, 7, None);
            tokio::spawn(async move { source.x509_svids(&caller).await })
        };
        // The sync loop is asked to sign, and sees the caller as a user of the entry.
        tokio::time::timeout(Duration::from_secs(5), demand.signing_requested())
            .await
            .expect("the missing SVID is asked for at once");
        assert_eq!(demand.take().watched.len(), 1, "the call is registered");
        assert!(!asking.is_finished(), "no 'no identity' while it is signed");

        sign(&ca, &mut cache, &e);
        published.publish(cache.snapshot());
        let answer = asking.await.unwrap().unwrap();
        assert_eq!(answer.svids[0].spiffe_id.path(), "/evicted");
        assert!(
            demand.take().watched.is_empty(),
            "a one-shot call lets go when it is answered"
        );
    }

    #[tokio::test]
    async fn a_caller_missing_some_svids_gets_them_all_once_signed() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let kept = entry("e1", "/kept", &["unix:uid:7"]);
        let dropped = entry("e2", "/dropped", &["unix:uid:7"]);
        cache.set_entries(vec![kept.clone(), dropped.clone()]);
        sign(&ca, &mut cache, &kept);
        let (published, demand, source) = uid7_source(&cache);
        let asking = {
            let source = Arc::clone(&source);
            let caller = Caller::new(Some(1), 7, 7, None);
            tokio::spawn(async move { source.x509_svids(&caller).await })
        };
        tokio::time::timeout(Duration::from_secs(5), demand.signing_requested())
            .await
            .expect("the missing SVID is asked for at once");
        sign(&ca, &mut cache, &dropped);
        published.publish(cache.snapshot());
        let answer = asking.await.unwrap().unwrap();
        assert_eq!(answer.svids.len(), 2, "not a partial first answer");
    }

    #[tokio::test]
    async fn before_the_first_sync_a_caller_is_told_to_come_back() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let (_, _, source) = uid7_source(&cache);
        let caller = Caller::new(Some(1), 7, 7, None);
        let err = source.x509_svids(&caller).await.unwrap_err();
        assert_eq!(err, SourceError::Unavailable(NOT_SYNCED.into()));

        cache.set_entries(Vec::new());
        let (_, _, synced) = uid7_source(&cache);
        let caller = Caller::new(Some(1), 7, 7, None);
        assert_eq!(
            synced.x509_svids(&caller).await.unwrap_err(),
            SourceError::NoIdentity
        );
    }

    #[test]
    fn caller_gets_the_svids_of_matching_entries_oldest_first() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let mut newer = entry("e-new", "/newer", &["unix:uid:7"]);
        newer.created_at = 2;
        let mut older = entry("e-old", "/older", &["unix:uid:7", "unix:gid:7"]);
        older.created_at = 1;
        older.hint = "main".into();
        let other = entry("e-other", "/other", &["unix:uid:8"]);
        cache.set_entries(vec![newer.clone(), older.clone(), other.clone()]);
        for e in [&newer, &older, &other] {
            sign(&ca, &mut cache, e);
        }

        let items = svid_items(
            &cache.snapshot(),
            &selectors(&["unix:uid:7", "unix:gid:7"]),
            SystemTime::now(),
        );
        let ids: Vec<_> = items
            .iter()
            .map(|i| i.spiffe_id.path().to_string())
            .collect();
        assert_eq!(ids, ["/older", "/newer"]);
        assert_eq!(items[0].hint, "main");
        assert_eq!(items[0].bundle_der, ca.bundle().to_der());
        X509Svid::parse_der(&items[0].chain_der, &items[0].key_pkcs8).unwrap();
    }

    #[test]
    fn expired_and_unsigned_svids_are_not_handed_out() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let signed = entry("e1", "/signed", &["unix:uid:7"]);
        let pending = entry("e2", "/pending", &["unix:uid:7"]);
        cache.set_entries(vec![signed.clone(), pending]);
        sign(&ca, &mut cache, &signed);
        let snapshot = cache.snapshot();
        let caller = selectors(&["unix:uid:7"]);
        assert_eq!(svid_items(&snapshot, &caller, SystemTime::now()).len(), 1);
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(svid_items(&snapshot, &caller, later).is_empty());
        assert_eq!(matching(&snapshot, &caller).count(), 2);
    }

    #[test]
    fn caller_gets_only_the_federated_bundles_its_identities_name() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let td = |n: &str| lanyard_spiffe::TrustDomain::new(n).unwrap();
        let mut web = entry("e1", "/web", &["unix:uid:7"]);
        web.federates_with = [td("a.org")].into();
        let mut api = entry("e2", "/api", &["unix:uid:7"]);
        api.federates_with = [td("b.org"), td("unheld.org")].into();
        let mut other = entry("e3", "/other", &["unix:uid:8"]);
        other.federates_with = [td("c.org")].into();
        cache.set_entries(vec![web, api, other]);
        for name in ["a.org", "b.org", "c.org"] {
            cache.set_federated(bundle(name, 9));
        }
        let mut jwt_only = bundle("b.org", 0);
        jwt_only.x509 = lanyard_spiffe::X509Bundle::new(td("b.org"), Vec::new());
        cache.set_federated(jwt_only);
        let snapshot = cache.snapshot();
        let caller = selectors(&["unix:uid:7"]);

        let x509: Vec<_> = x509_federated(&snapshot, &caller).collect();
        assert_eq!(x509, [("spiffe://a.org".to_string(), vec![0x30, 9])]);
        let all: Vec<_> = federated_of(&snapshot, &caller)
            .map(|b| b.trust_domain().name())
            .collect();
        assert_eq!(
            all,
            ["a.org", "b.org"],
            "JWT bundles include the JWT-only one"
        );
    }
}
