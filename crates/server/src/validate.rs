//! The rules a registration entry must follow before the datastore sees it, for creation and
//! for each field of an update. Every message names the field, the value and the rule.
//!
//! Whether each `federates_with` trust domain has a stored bundle needs the datastore; the
//! handlers check that after these rules pass (see [`federates_with`]).

use lanyard_datastore::{EntryId, EntryUpdate, NewEntry};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

use crate::convert::{selector, spiffe_id};

/// The longest hint SPIRE and the Workload API spec accept.
pub(crate) const MAX_HINT_BYTES: usize = 1024;
/// Upper bound on entry SVID lifetimes: ten years, far above any sane setting.
pub(crate) const MAX_TTL_SECONDS: i32 = 10 * 365 * 24 * 3600;
/// The longest DNS name (RFC 1123, section 2.1).
const MAX_DNS_NAME: usize = 253;
/// Most selectors, DNS names and federated trust domains one entry may list. Far above real
/// entries; the bound keeps one entry from producing an SVID over the 64 KiB certificate limit
/// or a sync answer that no agent can read.
pub(crate) const MAX_LIST_LEN: usize = 100;

/// Refuses a list longer than [`MAX_LIST_LEN`], naming the field.
fn bounded<T>(field: &str, list: &[T]) -> Result<(), String> {
    if list.len() > MAX_LIST_LEN {
        return Err(format!(
            "{field}: {} given, at most {MAX_LIST_LEN} are allowed per entry",
            list.len()
        ));
    }
    Ok(())
}

/// Validates a wire entry for creation in `td`.
pub(crate) fn new_entry(e: &types::Entry, td: &TrustDomain) -> Result<NewEntry, String> {
    let id = if e.id.is_empty() {
        None
    } else {
        Some(EntryId::parse(&e.id).map_err(|err| format!("id {:?}: {err}", e.id))?)
    };
    Ok(NewEntry {
        id,
        spiffe_id: entry_spiffe_id(e.spiffe_id.as_ref(), td)?,
        parent_id: parent_id(e.parent_id.as_ref(), td)?,
        selectors: selectors(&e.selectors)?,
        x509_svid_ttl: ttl("x509_svid_ttl", e.x509_svid_ttl)?,
        jwt_svid_ttl: ttl("jwt_svid_ttl", e.jwt_svid_ttl)?,
        federates_with: federation_list(&e.federates_with, td)?,
        admin: e.admin,
        downstream: e.downstream,
        expires_at: expires_at(e.expires_at)?,
        dns_names: dns_names(&e.dns_names)?,
        store_svid: e.store_svid,
        hint: hint(&e.hint)?,
    })
}

/// Validates the fields of `e` that `mask` selects (every field when there is no mask, as
/// SPIRE does) into an update of entry `e.id`.
pub(crate) fn entry_update(
    e: &types::Entry,
    mask: Option<&types::EntryMask>,
    td: &TrustDomain,
) -> Result<(EntryId, EntryUpdate), String> {
    if e.id.is_empty() {
        return Err("id is missing: name the entry to update".into());
    }
    let id = EntryId::parse(&e.id).map_err(|err| format!("id {:?}: {err}", e.id))?;
    let all = types::EntryMask {
        spiffe_id: true,
        parent_id: true,
        selectors: true,
        x509_svid_ttl: true,
        federates_with: true,
        admin: true,
        downstream: true,
        expires_at: true,
        dns_names: true,
        revision_number: true,
        store_svid: true,
        jwt_svid_ttl: true,
        hint: true,
        created_at: true,
    };
    let m = mask.unwrap_or(&all);
    let update = EntryUpdate {
        spiffe_id: m
            .spiffe_id
            .then(|| entry_spiffe_id(e.spiffe_id.as_ref(), td))
            .transpose()?,
        parent_id: m
            .parent_id
            .then(|| parent_id(e.parent_id.as_ref(), td))
            .transpose()?,
        selectors: m.selectors.then(|| selectors(&e.selectors)).transpose()?,
        x509_svid_ttl: m
            .x509_svid_ttl
            .then(|| ttl("x509_svid_ttl", e.x509_svid_ttl))
            .transpose()?,
        jwt_svid_ttl: m
            .jwt_svid_ttl
            .then(|| ttl("jwt_svid_ttl", e.jwt_svid_ttl))
            .transpose()?,
        federates_with: m
            .federates_with
            .then(|| federation_list(&e.federates_with, td))
            .transpose()?,
        admin: m.admin.then_some(e.admin),
        downstream: m.downstream.then_some(e.downstream),
        expires_at: m.expires_at.then(|| expires_at(e.expires_at)).transpose()?,
        dns_names: m.dns_names.then(|| dns_names(&e.dns_names)).transpose()?,
        store_svid: m.store_svid.then_some(e.store_svid),
        hint: m.hint.then(|| hint(&e.hint)).transpose()?,
    };
    Ok((id, update))
}

/// The trust domains of `list` that have no stored bundle: an entry may only federate with a
/// trust domain whose bundle the server can hand out.
pub(crate) async fn federates_with(
    datastore: &dyn lanyard_datastore::Datastore,
    list: &[TrustDomain],
) -> Result<Result<(), String>, lanyard_datastore::DatastoreError> {
    for td in list {
        if datastore.get_bundle(td).await?.is_none() {
            return Ok(Err(format!(
                "federates_with {td}: unknown federated trust domain: create its bundle (bundle \
                 API or a federation relationship) first"
            )));
        }
    }
    Ok(Ok(()))
}

/// An ID the server may issue to a workload: it needs a path, and the `/spire` namespace
/// belongs to servers and agents. Without this rule an admin could register a workload as
/// `spiffe://<td>/spire/server` and let it impersonate the server to agents.
pub(crate) fn check_issuable(field: &str, id: &SpiffeId) -> Result<(), String> {
    if id.is_root() {
        return Err(format!(
            "{field} {id} has no path: workload identities need one"
        ));
    }
    if id.path() == "/spire" || id.path().starts_with("/spire/") {
        return Err(format!(
            "{field} {id} is in the reserved /spire namespace: it belongs to servers and agents"
        ));
    }
    Ok(())
}

/// A wire trust domain name, bare (`example.org`) or as a SPIFFE ID (`spiffe://example.org`),
/// as SPIRE accepts both.
pub(crate) fn trust_domain(field: &str, name: &str) -> Result<TrustDomain, String> {
    let bare = name.strip_prefix("spiffe://").unwrap_or(name);
    TrustDomain::new(bare).map_err(|e| format!("{field} {name:?}: {e}"))
}

fn entry_spiffe_id(id: Option<&types::Spiffeid>, td: &TrustDomain) -> Result<SpiffeId, String> {
    let id = spiffe_id("spiffe_id", id)?;
    member_of("spiffe_id", &id, td)?;
    check_issuable("spiffe_id", &id)?;
    Ok(id)
}

fn parent_id(id: Option<&types::Spiffeid>, td: &TrustDomain) -> Result<SpiffeId, String> {
    let id = spiffe_id("parent_id", id)?;
    member_of("parent_id", &id, td)?;
    Ok(id)
}

fn member_of(field: &str, id: &SpiffeId, td: &TrustDomain) -> Result<(), String> {
    if id.is_member_of(td) {
        Ok(())
    } else {
        Err(format!(
            "{field} {id} is not in this server's trust domain {td}"
        ))
    }
}

fn selectors(wire: &[types::Selector]) -> Result<Vec<Selector>, String> {
    if wire.is_empty() {
        return Err("selectors: at least one selector is required".into());
    }
    bounded("selectors", wire)?;
    let mut parsed = wire
        .iter()
        .map(|s| selector(s).map_err(|e| format!("selectors: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

fn ttl(field: &str, ttl: i32) -> Result<i32, String> {
    if (0..=MAX_TTL_SECONDS).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(format!(
            "{field} {ttl}: must be between 0 (server default) and {MAX_TTL_SECONDS} seconds"
        ))
    }
}

fn federation_list(names: &[String], own: &TrustDomain) -> Result<Vec<TrustDomain>, String> {
    bounded("federates_with", names)?;
    let mut list = Vec::with_capacity(names.len());
    for name in names {
        let td = trust_domain("federates_with", name)?;
        if &td == own {
            return Err(format!(
                "federates_with {name:?}: an entry cannot federate with the server's own trust \
                 domain, whose bundle every workload already gets"
            ));
        }
        list.push(td);
    }
    list.sort();
    list.dedup();
    Ok(list)
}

fn expires_at(at: i64) -> Result<i64, String> {
    if at < 0 {
        return Err(format!(
            "expires_at {at}: must not be negative (0 means never)"
        ));
    }
    Ok(at)
}

fn hint(hint: &str) -> Result<String, String> {
    if hint.chars().any(char::is_control) {
        return Err(format!(
            "hint {hint:?} contains control characters: only printable text is allowed"
        ));
    }
    if hint.len() > MAX_HINT_BYTES {
        return Err(format!(
            "hint is {} bytes: at most {MAX_HINT_BYTES} are allowed",
            hint.len()
        ));
    }
    Ok(hint.to_owned())
}

fn dns_names(names: &[String]) -> Result<Vec<String>, String> {
    bounded("dns_names", names)?;
    for name in names {
        dns_name(name)?;
    }
    Ok(names.to_vec())
}

/// DNS names for X509-SVID SANs (RFC 1123 host names): letters, digits and hyphens in labels,
/// with an optional leading `*.` wildcard label.
fn dns_name(name: &str) -> Result<(), String> {
    let rule = "a DNS name is 1-253 bytes of dot-separated labels of 1-63 letters, digits or \
                hyphens (not starting or ending with one), optionally starting with '*.'";
    let body = name.strip_prefix("*.").unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= MAX_DNS_NAME
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(format!("dns_names {name:?}: {rule}"));
    }
    // An IPv4 address passes the label rule but belongs in an IP SAN, which entries do not
    // carry; as a DNS SAN no client would match it.
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(format!(
            "dns_names {name:?}: an IP address is not a DNS name (X509-SVIDs carry DNS SANs only)"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
