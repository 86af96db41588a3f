//! Conversions between the SPIRE wire types and Lanyard's own types. Every inbound value is
//! parsed here, so handlers only see valid IDs and selectors; errors name the field.

use lanyard_datastore::{Entry, EntryId, NewEntry};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

/// The longest hint SPIRE and the Workload API spec accept.
const MAX_HINT_BYTES: usize = 1024;
/// Upper bound on entry SVID lifetimes: ten years, far above any sane setting.
const MAX_TTL_SECONDS: i32 = 10 * 365 * 24 * 3600;

/// A wire SPIFFE ID to a parsed one; `field` names the request field in errors.
pub(crate) fn spiffe_id(field: &str, id: Option<&types::Spiffeid>) -> Result<SpiffeId, String> {
    let id = id.ok_or_else(|| format!("{field} is missing"))?;
    let td = TrustDomain::new(&id.trust_domain)
        .map_err(|e| format!("{field} trust domain {:?}: {e}", id.trust_domain))?;
    SpiffeId::from_path(&td, &id.path).map_err(|e| format!("{field} path {:?}: {e}", id.path))
}

/// A parsed SPIFFE ID to the wire form.
pub(crate) fn wire_id(id: &SpiffeId) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: id.trust_domain_name().to_string(),
        path: id.path().to_string(),
    }
}

/// A wire selector to a parsed one.
pub(crate) fn selector(s: &types::Selector) -> Result<Selector, String> {
    Selector::new(&s.r#type, &s.value).map_err(|e| format!("selector: {e}"))
}

/// A parsed selector to the wire form.
pub(crate) fn wire_selector(s: &Selector) -> types::Selector {
    types::Selector {
        r#type: s.kind().to_string(),
        value: s.value().to_string(),
    }
}

/// Validates a wire entry for creation in `td`.
pub(crate) fn new_entry(e: &types::Entry, td: &TrustDomain) -> Result<NewEntry, String> {
    let id = if e.id.is_empty() {
        None
    } else {
        Some(EntryId::parse(&e.id).map_err(|err| format!("id {:?}: {err}", e.id))?)
    };
    let spiffe_id = spiffe_id("spiffe_id", e.spiffe_id.as_ref())?;
    let parent_id = spiffe_id_field("parent_id", e.parent_id.as_ref())?;
    if !spiffe_id.is_member_of(td) {
        return Err(format!(
            "spiffe_id {spiffe_id} is not in this server's trust domain {td}"
        ));
    }
    if !parent_id.is_member_of(td) {
        return Err(format!(
            "parent_id {parent_id} is not in this server's trust domain {td}"
        ));
    }
    check_issuable("spiffe_id", &spiffe_id)?;
    if e.selectors.is_empty() {
        return Err("selectors: at least one selector is required".into());
    }
    let mut selectors = e
        .selectors
        .iter()
        .map(selector)
        .collect::<Result<Vec<_>, _>>()?;
    selectors.sort();
    selectors.dedup();
    for (field, ttl) in [
        ("x509_svid_ttl", e.x509_svid_ttl),
        ("jwt_svid_ttl", e.jwt_svid_ttl),
    ] {
        if !(0..=MAX_TTL_SECONDS).contains(&ttl) {
            return Err(format!(
                "{field} {ttl}: must be between 0 (server default) and {MAX_TTL_SECONDS} seconds"
            ));
        }
    }
    if e.hint.chars().any(char::is_control) {
        return Err(format!(
            "hint {:?} contains control characters: only printable text is allowed",
            e.hint
        ));
    }
    if e.hint.len() > MAX_HINT_BYTES {
        return Err(format!(
            "hint is {} bytes: at most {MAX_HINT_BYTES} are allowed",
            e.hint.len()
        ));
    }
    if e.expires_at < 0 {
        return Err(format!("expires_at {}: must not be negative", e.expires_at));
    }
    for dns in &e.dns_names {
        validate_dns_name(dns)?;
    }
    if let Some(td) = e.federates_with.first() {
        // Federation arrives with a later milestone; until then no foreign bundle exists.
        return Err(format!(
            "federates_with {td:?}: no federated bundle exists for that trust domain"
        ));
    }
    Ok(NewEntry {
        id,
        spiffe_id,
        parent_id,
        selectors,
        x509_svid_ttl: e.x509_svid_ttl,
        jwt_svid_ttl: e.jwt_svid_ttl,
        federates_with: Vec::new(),
        admin: e.admin,
        downstream: e.downstream,
        expires_at: e.expires_at,
        dns_names: e.dns_names.clone(),
        store_svid: e.store_svid,
        hint: e.hint.clone(),
    })
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

fn spiffe_id_field(field: &str, id: Option<&types::Spiffeid>) -> Result<SpiffeId, String> {
    spiffe_id(field, id)
}

/// DNS names for X509-SVID SANs: letters, digits, hyphens and dots, with an optional
/// leading `*.` wildcard label.
fn validate_dns_name(name: &str) -> Result<(), String> {
    let rule = "a DNS name is 1-253 bytes of dot-separated labels of 1-63 letters, digits or \
                hyphens, optionally starting with '*.'";
    let body = name.strip_prefix("*.").unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("dns_names {name:?}: {rule}"))
    }
}

/// A stored entry to the wire form.
pub(crate) fn wire_entry(e: &Entry) -> types::Entry {
    types::Entry {
        id: e.id.to_string(),
        spiffe_id: Some(wire_id(&e.spiffe_id)),
        parent_id: Some(wire_id(&e.parent_id)),
        selectors: e.selectors.iter().map(wire_selector).collect(),
        x509_svid_ttl: e.x509_svid_ttl,
        federates_with: e
            .federates_with
            .iter()
            .map(|td| td.name().to_string())
            .collect(),
        admin: e.admin,
        downstream: e.downstream,
        expires_at: e.expires_at,
        dns_names: e.dns_names.clone(),
        revision_number: e.revision_number,
        store_svid: e.store_svid,
        jwt_svid_ttl: e.jwt_svid_ttl,
        hint: e.hint.clone(),
        created_at: e.created_at,
    }
}

/// A per-item status for batch responses.
pub(crate) fn status(code: tonic::Code, message: impl Into<String>) -> types::Status {
    types::Status {
        code: code as i32,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::new("example.org").unwrap()
    }

    fn entry(spiffe: &str, parent: &str, selectors: &[(&str, &str)]) -> types::Entry {
        types::Entry {
            spiffe_id: Some(types::Spiffeid {
                trust_domain: "example.org".into(),
                path: spiffe.into(),
            }),
            parent_id: Some(types::Spiffeid {
                trust_domain: "example.org".into(),
                path: parent.into(),
            }),
            selectors: selectors
                .iter()
                .map(|(t, v)| types::Selector {
                    r#type: (*t).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_plain_workload_entry() {
        let e = new_entry(&entry("/web", "/agent", &[("unix", "uid:1000")]), &td()).unwrap();
        assert_eq!(e.spiffe_id.as_str(), "spiffe://example.org/web");
    }

    #[test]
    fn rejects_bad_path_naming_the_field() {
        let err = new_entry(&entry("/we b", "/agent", &[("unix", "uid:1")]), &td()).unwrap_err();
        assert!(err.starts_with("spiffe_id path \"/we b\""), "{err}");
    }

    #[test]
    fn rejects_entry_without_selectors() {
        let err = new_entry(&entry("/web", "/agent", &[]), &td()).unwrap_err();
        assert!(err.contains("at least one selector"), "{err}");
    }

    #[test]
    fn rejects_foreign_trust_domain() {
        let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
        e.spiffe_id.as_mut().unwrap().trust_domain = "other.org".into();
        let err = new_entry(&e, &td()).unwrap_err();
        assert!(err.contains("not in this server's trust domain"), "{err}");
    }

    #[test]
    fn rejects_reserved_and_root_ids() {
        for path in ["/spire/server", "/spire/agent/join_token/x", "/spire", ""] {
            let err = new_entry(&entry(path, "/agent", &[("unix", "uid:1")]), &td()).unwrap_err();
            assert!(
                err.contains("reserved /spire namespace") || err.contains("has no path"),
                "{err}"
            );
        }
        new_entry(&entry("/spire-ish", "/agent", &[("unix", "uid:1")]), &td()).unwrap();
    }

    #[test]
    fn rejects_control_characters_in_hints() {
        let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
        e.hint = "a\nSPIFFE ID : spiffe://example.org/admin".into();
        assert!(
            new_entry(&e, &td())
                .unwrap_err()
                .contains("control characters")
        );
    }

    #[test]
    fn rejects_negative_ttl_and_bad_dns() {
        let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
        e.x509_svid_ttl = -1;
        assert!(
            new_entry(&e, &td())
                .unwrap_err()
                .contains("x509_svid_ttl -1")
        );
        e.x509_svid_ttl = 0;
        e.dns_names = vec!["bad_name".into()];
        assert!(
            new_entry(&e, &td())
                .unwrap_err()
                .contains("dns_names \"bad_name\"")
        );
    }
}
