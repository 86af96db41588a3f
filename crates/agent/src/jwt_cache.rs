//! JWT-SVIDs the server signed for workloads, reused while more than half their lifetime is
//! left. Bounded: past [`MAX_CACHED`] tokens the oldest one is dropped.
//! Tokens signed by a key the server tainted, or one that left the bundle, are dropped when the
//! agent's JWT keys change, so the next request gets a token from the active key.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::{JwtBundle, SpiffeId};

/// Most tokens kept at once.
pub(crate) const MAX_CACHED: usize = 1000;

/// A token is keyed by its subject and its audience as a set (order and repeats do not matter).
type Key = (SpiffeId, BTreeSet<String>);

/// One cached JWT-SVID.
#[derive(Clone)]
pub(crate) struct CachedJwt {
    pub(crate) token: String,
    pub(crate) hint: String,
    /// The `kid` in the token's header: the key that signed it.
    pub(crate) kid: String,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: SystemTime,
}

impl CachedJwt {
    /// True while more than half of the lifetime is left at `now`.
    fn fresh_at(&self, now: SystemTime) -> bool {
        let Ok(lifetime) = self.expires_at.duration_since(self.issued_at) else {
            return false;
        };
        now < self.issued_at + lifetime / 2
    }
}

/// The cache; the caller serializes access.
#[derive(Default)]
pub(crate) struct JwtCache {
    tokens: HashMap<Key, CachedJwt>,
    /// The JWT keys the tokens were last checked against.
    checked: Option<Arc<JwtBundle>>,
}

impl JwtCache {
    /// Drops the tokens whose signing key is not in `keys` or is one of `tainted`; returns how
    /// many. Does nothing when `keys` is the same allocation as at the last call (the agent's
    /// cache makes a new one at every change of the keys or of their taint).
    pub(crate) fn prune(&mut self, keys: &Arc<JwtBundle>, tainted: &BTreeSet<String>) -> usize {
        if self.checked.as_ref().is_some_and(|c| Arc::ptr_eq(c, keys)) {
            return 0;
        }
        self.checked = Some(Arc::clone(keys));
        let before = self.tokens.len();
        self.tokens
            .retain(|_, c| keys.get(&c.kid).is_some() && !tainted.contains(&c.kid));
        before - self.tokens.len()
    }

    /// The cached token for `id` and `audience`, if it is still fresh at `now`.
    pub(crate) fn get(
        &self,
        id: &SpiffeId,
        audience: &[String],
        now: SystemTime,
    ) -> Option<CachedJwt> {
        self.tokens
            .get(&key(id, audience))
            .filter(|c| c.fresh_at(now))
            .cloned()
    }

    /// Keeps `token`, dropping the oldest token first when the cache is full.
    pub(crate) fn insert(&mut self, id: &SpiffeId, audience: &[String], token: CachedJwt) {
        let key = key(id, audience);
        if !self.tokens.contains_key(&key) && self.tokens.len() >= MAX_CACHED {
            let oldest = self
                .tokens
                .iter()
                .min_by_key(|(_, c)| c.issued_at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.tokens.remove(&oldest);
            }
        }
        self.tokens.insert(key, token);
    }

    /// How many tokens are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tokens.len()
    }
}

fn key(id: &SpiffeId, audience: &[String]) -> Key {
    (id.clone(), audience.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn token(name: &str, issued_at: SystemTime) -> CachedJwt {
        signed(name, "k1", issued_at)
    }

    fn signed(name: &str, kid: &str, issued_at: SystemTime) -> CachedJwt {
        CachedJwt {
            token: name.into(),
            hint: String::new(),
            kid: kid.into(),
            issued_at,
            expires_at: issued_at + Duration::from_secs(300),
        }
    }

    fn id(path: &str) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap()
    }

    #[test]
    fn reuses_a_token_until_half_life_whatever_the_audience_order() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let mut cache = JwtCache::default();
        let ab = ["a".to_string(), "b".to_string()];
        cache.insert(&id("/w"), &ab, token("t", t0));
        let ba = ["b".to_string(), "a".to_string(), "a".to_string()];
        let hit = cache.get(&id("/w"), &ba, t0 + Duration::from_secs(149));
        assert_eq!(hit.unwrap().token, "t");
        assert!(
            cache
                .get(&id("/w"), &ab, t0 + Duration::from_secs(150))
                .is_none()
        );
        assert!(cache.get(&id("/other"), &ab, t0).is_none());
        assert!(cache.get(&id("/w"), &["a".to_string()], t0).is_none());
    }

    #[test]
    fn evicts_the_oldest_token_when_full() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let mut cache = JwtCache::default();
        let aud = ["a".to_string()];
        for i in 0..MAX_CACHED {
            let at = t0 + Duration::from_secs(u64::try_from(i).unwrap());
            cache.insert(&id(&format!("/w{i}")), &aud, token("t", at));
        }
        cache.insert(
            &id("/new"),
            &aud,
            token("n", t0 + Duration::from_secs(5000)),
        );
        assert_eq!(cache.len(), MAX_CACHED);
        assert!(cache.get(&id("/w0"), &aud, t0).is_none());
        assert!(cache.get(&id("/w1"), &aud, t0).is_some());
        assert!(
            cache
                .get(&id("/new"), &aud, t0 + Duration::from_secs(5000))
                .is_some()
        );
    }

    fn keys(kids: &[&str]) -> Arc<JwtBundle> {
        let td = lanyard_spiffe::TrustDomain::new("example.org").unwrap();
        let key = lanyard_spiffe::jwt::JwtSigningKey::from_pkcs8(
            &lanyard_ca::generate_key_pair(lanyard_ca::KeyType::EcP256)
                .unwrap()
                .serialize_der(),
        )
        .unwrap();
        let mut bundle = JwtBundle::new(td);
        for kid in kids {
            bundle.insert(*kid, key.public_key().clone());
        }
        Arc::new(bundle)
    }

    #[test]
    fn drops_tokens_of_a_tainted_kid_and_of_a_kid_gone_from_the_bundle() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let aud = ["a".to_string()];
        let mut cache = JwtCache::default();
        cache.insert(&id("/old"), &aud, signed("o", "old", t0));
        cache.insert(&id("/new"), &aud, signed("n", "new", t0));
        cache.insert(&id("/gone"), &aud, signed("g", "gone", t0));

        let both = keys(&["old", "new"]);
        let tainted = BTreeSet::from(["old".to_string()]);
        assert_eq!(cache.prune(&both, &tainted), 2);
        assert!(cache.get(&id("/old"), &aud, t0).is_none(), "tainted kid");
        assert!(
            cache.get(&id("/gone"), &aud, t0).is_none(),
            "kid left the bundle"
        );
        assert_eq!(cache.get(&id("/new"), &aud, t0).unwrap().token, "n");

        cache.insert(&id("/late"), &aud, signed("l", "old", t0));
        assert_eq!(
            cache.prune(&both, &tainted),
            0,
            "same keys: not checked again"
        );
        assert_eq!(cache.prune(&keys(&["new"]), &BTreeSet::new()), 1);
        assert_eq!(cache.len(), 1);
    }
}
