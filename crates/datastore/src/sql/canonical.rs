//! The stored form of a new entry: validation, canonical selector order, and the selector key
//! that makes duplicate detection independent of selector order.

use aws_lc_rs::digest;
use lanyard_spiffe::{Selector, TrustDomain};

use crate::error::DatastoreError;
use crate::model::{Entry, NewEntry};

/// Longest hint accepted, in bytes.
const MAX_HINT_LEN: usize = 1024;

/// Longest DNS name accepted, in bytes (RFC 1035 limit on a name's text form).
const MAX_DNS_NAME_LEN: usize = 253;

/// Validates a new entry and puts it in stored form: ID assigned, selectors and federation list
/// sorted without duplicates.
pub(super) fn canonical_entry(new: NewEntry, now: i64) -> Result<Entry, DatastoreError> {
    check_new_entry(&new).map_err(DatastoreError::InvalidInput)?;

    let federates_with = canonical_trust_domains(new.federates_with);
    Ok(Entry {
        id: new.id.unwrap_or_default(),
        spiffe_id: new.spiffe_id,
        parent_id: new.parent_id,
        selectors: canonical_selectors(new.selectors),
        x509_svid_ttl: new.x509_svid_ttl,
        jwt_svid_ttl: new.jwt_svid_ttl,
        federates_with,
        admin: new.admin,
        downstream: new.downstream,
        expires_at: new.expires_at,
        dns_names: new.dns_names,
        store_svid: new.store_svid,
        hint: new.hint,
        revision_number: 0,
        created_at: now,
    })
}

/// Checks an updated entry against the rules for new entries and puts its selectors and
/// federation list in stored form.
pub(super) fn canonical_updated(mut entry: Entry) -> Result<Entry, DatastoreError> {
    let as_new = NewEntry {
        id: Some(entry.id.clone()),
        spiffe_id: entry.spiffe_id.clone(),
        parent_id: entry.parent_id.clone(),
        selectors: entry.selectors.clone(),
        x509_svid_ttl: entry.x509_svid_ttl,
        jwt_svid_ttl: entry.jwt_svid_ttl,
        federates_with: Vec::new(),
        admin: entry.admin,
        downstream: entry.downstream,
        expires_at: entry.expires_at,
        dns_names: entry.dns_names.clone(),
        store_svid: entry.store_svid,
        hint: entry.hint.clone(),
    };
    check_new_entry(&as_new).map_err(DatastoreError::InvalidInput)?;
    entry.selectors = canonical_selectors(entry.selectors);
    entry.federates_with = canonical_trust_domains(entry.federates_with);
    Ok(entry)
}

/// Sorts trust domains by name and drops duplicates.
pub(super) fn canonical_trust_domains(mut domains: Vec<TrustDomain>) -> Vec<TrustDomain> {
    domains.sort_by(|a, b| a.name().cmp(b.name()));
    domains.dedup();
    domains
}

/// The rules a new entry must follow beyond what its field types guarantee.
fn check_new_entry(new: &NewEntry) -> Result<(), String> {
    if new.selectors.is_empty() {
        return Err(format!(
            "entry for '{}' has no selectors: at least one selector is required",
            new.spiffe_id
        ));
    }
    for (name, ttl) in [
        ("x509_svid_ttl", new.x509_svid_ttl),
        ("jwt_svid_ttl", new.jwt_svid_ttl),
    ] {
        if ttl < 0 {
            return Err(format!(
                "{name} {ttl} is negative: ttls must be 0 (server default) or more seconds"
            ));
        }
    }
    if new.expires_at < 0 {
        return Err(format!(
            "expires_at {} is negative: it must be 0 (never) or a unix time",
            new.expires_at
        ));
    }
    if new.hint.len() > MAX_HINT_LEN {
        return Err(format!(
            "hint of {} bytes is too long: it must have at most {MAX_HINT_LEN} bytes",
            new.hint.len()
        ));
    }
    if let Some(bad) = new
        .dns_names
        .iter()
        .find(|n| n.is_empty() || n.len() > MAX_DNS_NAME_LEN)
    {
        return Err(format!(
            "dns name '{bad}' has {} bytes: dns names must have 1 to {MAX_DNS_NAME_LEN} bytes",
            bad.len()
        ));
    }
    Ok(())
}

/// Sorts selectors by (type, value) bytes and drops duplicates. The order is spelled out rather
/// than taken from `Selector`'s `Ord`, because stored selector keys depend on it.
pub(super) fn canonical_selectors(mut selectors: Vec<Selector>) -> Vec<Selector> {
    selectors.sort_by(|a, b| (a.kind(), a.value()).cmp(&(b.kind(), b.value())));
    selectors.dedup_by(|a, b| a.kind() == b.kind() && a.value() == b.value());
    selectors
}

/// Hex SHA-256 over the length-prefixed types and values of a canonical selector list.
pub(super) fn selector_key(canonical: &[Selector]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for s in canonical {
        for part in [s.kind(), s.value()] {
            let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
            ctx.update(&len.to_be_bytes());
            ctx.update(part.as_bytes());
        }
    }
    hex::encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{entry, sels};
    use super::*;

    #[test]
    fn selector_key_ignores_order_and_duplicates_but_not_content() {
        let key = |l: &[&str]| selector_key(&canonical_selectors(sels(l)));
        assert_eq!(key(&["a:1", "b:2"]), key(&["b:2", "a:1", "a:1"]));
        assert_ne!(key(&["a:1", "b:2"]), key(&["a:1"]));
        // Length prefixes keep type/value boundaries apart.
        assert_ne!(key(&["a:b:c"]), key(&["a:bc"]));
    }

    #[test]
    fn rejects_oversized_hints_negative_expiry_and_bad_dns_names() {
        let mut e = entry("web", "node1", &["unix:uid:1"]);
        e.hint = "h".repeat(MAX_HINT_LEN + 1);
        let err = check_new_entry(&e).unwrap_err();
        assert!(err.starts_with("hint of 1025 bytes is too long"), "{err}");

        let mut e = entry("web", "node1", &["unix:uid:1"]);
        e.expires_at = -5;
        assert!(
            check_new_entry(&e)
                .unwrap_err()
                .contains("expires_at -5 is negative")
        );

        let mut e = entry("web", "node1", &["unix:uid:1"]);
        e.dns_names = vec!["ok.example.org".into(), String::new()];
        assert!(
            check_new_entry(&e)
                .unwrap_err()
                .contains("dns names must have 1 to 253 bytes")
        );

        let mut e = entry("web", "node1", &["unix:uid:1"]);
        e.jwt_svid_ttl = -1;
        assert!(
            check_new_entry(&e)
                .unwrap_err()
                .starts_with("jwt_svid_ttl -1 is negative")
        );
    }
}
