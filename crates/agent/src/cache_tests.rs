//! Tests of the entry and SVID cache.

use std::time::Duration;

use lanyard_ca::{KeyType, generate_key_pair};
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::*;
use crate::entry::tests::entry;
use crate::test_support::TestCa;

/// An SVID for `e` valid from `start` for 100 s.
fn svid_for(ca: &TestCa, e: &WorkloadEntry, start: SystemTime) -> X509Svid {
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let chain = ca.sign_at(&key, e.spiffe_id.path(), Duration::from_secs(100), start);
    X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der())).unwrap()
}

/// No tainted authority.
fn none(ca: &TestCa) -> X509Bundle {
    X509Bundle::new(ca.td.clone(), Vec::new())
}

fn ids(entries: &[WorkloadEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

#[test]
fn new_entries_are_due_until_signed_then_again_from_half_life() {
    let ca = TestCa::new();
    let mut cache = Cache::new(ca.bundle());
    let web = entry("e1", "/web", &["unix:uid:1"]);
    cache.set_entries(vec![web.clone()]);
    let start = SystemTime::now();
    assert_eq!(ids(&cache.due(start)), ["e1"]);

    let svid = svid_for(&ca, &web, start);
    let lifetime = svid.not_after().duration_since(start).unwrap();
    let half = start + lifetime / 2;
    assert!(cache.insert_svid(&web, svid, start, 0.0));
    assert!(cache.due(start).is_empty());
    assert!(cache.due(half - Duration::from_secs(1)).is_empty());
    assert_eq!(ids(&cache.due(half)), ["e1"]);
    assert_eq!(cache.next_renewal(), Some(half));
}

#[test]
fn changed_entry_is_due_at_once_and_removed_entry_drops_its_svid() {
    let ca = TestCa::new();
    let mut cache = Cache::new(ca.bundle());
    let web = entry("e1", "/web", &["unix:uid:1"]);
    let now = SystemTime::now();
    cache.set_entries(vec![web.clone()]);
    cache.insert_svid(&web, svid_for(&ca, &web, now), now, 0.0);

    let mut moved = web.clone();
    moved.spiffe_id = entry("e1", "/web2", &[]).spiffe_id;
    let changes = cache.set_entries(vec![moved.clone()]);
    assert_eq!(ids(&changes.updated), ["e1"]);
    assert_eq!(ids(&cache.due(now)), ["e1"]);

    let changes = cache.set_entries(vec![]);
    assert_eq!(ids(&changes.removed), ["e1"]);
    assert!(cache.snapshot().identities.is_empty());
    assert!(!cache.insert_svid(&moved, svid_for(&ca, &moved, now), now, 0.0));
}

#[test]
fn svids_that_stop_chaining_to_a_new_bundle_are_due() {
    let ca = TestCa::new();
    let next = TestCa::new();
    let mut cache = Cache::new(ca.bundle());
    let web = entry("e1", "/web", &["unix:uid:1"]);
    let now = SystemTime::now();
    cache.set_entries(vec![web.clone()]);
    cache.insert_svid(&web, svid_for(&ca, &web, now), now, 0.0);
    cache.take_dirty();

    let mut both = ca.bundle().authorities().to_vec();
    both.extend(next.bundle().authorities().iter().cloned());
    assert!(cache.set_bundle(X509Bundle::new(ca.td.clone(), both), none(&ca), 1, now));
    assert!(
        cache.due(now).is_empty(),
        "the old authority is still trusted"
    );
    assert!(cache.set_bundle(next.bundle(), none(&ca), 2, now));
    assert_eq!(ids(&cache.due(now)), ["e1"]);
    assert!(
        !cache.set_bundle(next.bundle(), none(&ca), 2, now),
        "same bundle is no change"
    );
    assert!(cache.take_dirty());
}

#[test]
fn svids_of_a_tainted_authority_are_due_at_once_and_others_are_not() {
    let old = TestCa::new();
    let new = TestCa::new();
    let both = X509Bundle::new(
        old.td.clone(),
        vec![old.authority.cert().clone(), new.authority.cert().clone()],
    );
    let mut cache = Cache::new(both.clone());
    let web = entry("e1", "/web", &["unix:uid:1"]);
    let db = entry("e2", "/db", &["unix:uid:2"]);
    let now = SystemTime::now();
    cache.set_entries(vec![web.clone(), db.clone()]);
    cache.insert_svid(&web, svid_for(&old, &web, now), now, 0.0);
    cache.insert_svid(&db, svid_for(&new, &db, now), now, 0.0);
    assert!(cache.due(now).is_empty());
    cache.take_dirty();

    let tainted = old.bundle();
    assert!(cache.set_bundle(both.clone(), tainted.clone(), 4, now));
    assert_eq!(
        ids(&cache.due(now)),
        ["e1"],
        "only the SVID of the tainted authority"
    );
    assert!(cache.take_dirty());

    cache.insert_svid(&web, svid_for(&new, &web, now), now, 0.0);
    assert!(
        cache.due(now).is_empty(),
        "re-signed by the active authority"
    );
}

#[test]
fn a_new_sequence_alone_is_a_change() {
    let ca = TestCa::new();
    let mut cache = Cache::new(ca.bundle());
    let now = SystemTime::now();
    assert!(cache.set_bundle(ca.bundle(), none(&ca), 3, now));
    assert!(!cache.set_bundle(ca.bundle(), none(&ca), 3, now));
    assert!(cache.set_bundle(ca.bundle(), none(&ca), 4, now));
    assert!(
        cache.set_bundle(ca.bundle(), ca.bundle(), 4, now),
        "taint flag alone"
    );
}

#[test]
fn issued_by_tainted_matches_the_issuer_only() {
    let old = TestCa::new();
    let new = TestCa::new();
    let web = entry("e1", "/web", &["unix:uid:1"]);
    let now = SystemTime::now();
    let svid = svid_for(&old, &web, now);
    assert!(issued_by_tainted(svid.chain(), &old.bundle(), now));
    assert!(!issued_by_tainted(svid.chain(), &new.bundle(), now));
    assert!(!issued_by_tainted(svid.chain(), &none(&old), now));
}

#[test]
fn snapshot_orders_by_creation_time_then_entry_id() {
    let ca = TestCa::new();
    let mut cache = Cache::new(ca.bundle());
    let mut a = entry("b-late", "/a", &["unix:uid:1"]);
    a.created_at = 20;
    let mut b = entry("z-early", "/b", &["unix:uid:1"]);
    b.created_at = 10;
    let mut c = entry("a-late", "/c", &["unix:uid:1"]);
    c.created_at = 20;
    cache.set_entries(vec![a, b, c]);
    let order: Vec<_> = cache
        .snapshot()
        .identities
        .iter()
        .map(|i| i.entry.id.clone())
        .collect();
    assert_eq!(order, ["z-early", "a-late", "b-late"]);
}
