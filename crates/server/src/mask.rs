//! Output masks: a response carries only the fields the caller's mask selects. No mask means
//! every field, as in SPIRE. The identifying field (entry ID, agent ID, trust domain) is always
//! set, since without it the result cannot be told apart from others.

use lanyard_proto::spire::api::types;

/// Clears the fields of `e` that `mask` leaves out.
pub(crate) fn entry(mut e: types::Entry, mask: Option<&types::EntryMask>) -> types::Entry {
    let Some(m) = mask else { return e };
    if !m.spiffe_id {
        e.spiffe_id = None;
    }
    if !m.parent_id {
        e.parent_id = None;
    }
    if !m.selectors {
        e.selectors.clear();
    }
    if !m.x509_svid_ttl {
        e.x509_svid_ttl = 0;
    }
    if !m.federates_with {
        e.federates_with.clear();
    }
    if !m.admin {
        e.admin = false;
    }
    if !m.downstream {
        e.downstream = false;
    }
    if !m.expires_at {
        e.expires_at = 0;
    }
    if !m.dns_names {
        e.dns_names.clear();
    }
    if !m.revision_number {
        e.revision_number = 0;
    }
    if !m.store_svid {
        e.store_svid = false;
    }
    if !m.jwt_svid_ttl {
        e.jwt_svid_ttl = 0;
    }
    if !m.hint {
        e.hint.clear();
    }
    if !m.created_at {
        e.created_at = 0;
    }
    e
}

/// Clears the fields of `a` that `mask` leaves out.
pub(crate) fn agent(mut a: types::Agent, mask: Option<&types::AgentMask>) -> types::Agent {
    let Some(m) = mask else { return a };
    if !m.attestation_type {
        a.attestation_type.clear();
    }
    if !m.x509svid_serial_number {
        a.x509svid_serial_number.clear();
    }
    if !m.x509svid_expires_at {
        a.x509svid_expires_at = 0;
    }
    if !m.selectors {
        a.selectors.clear();
    }
    if !m.banned {
        a.banned = false;
    }
    if !m.can_reattest {
        a.can_reattest = false;
    }
    a
}

/// Clears the fields of `b` that `mask` leaves out.
pub(crate) fn bundle(mut b: types::Bundle, mask: Option<&types::BundleMask>) -> types::Bundle {
    let Some(m) = mask else { return b };
    if !m.x509_authorities {
        b.x509_authorities.clear();
    }
    if !m.jwt_authorities {
        b.jwt_authorities.clear();
    }
    if !m.refresh_hint {
        b.refresh_hint = 0;
    }
    if !m.sequence_number {
        b.sequence_number = 0;
    }
    b
}

/// Clears the fields of `r` that `mask` leaves out.
pub(crate) fn relationship(
    mut r: types::FederationRelationship,
    mask: Option<&types::FederationRelationshipMask>,
) -> types::FederationRelationship {
    let Some(m) = mask else { return r };
    if !m.bundle_endpoint_url {
        r.bundle_endpoint_url.clear();
    }
    if !m.bundle_endpoint_profile {
        r.bundle_endpoint_profile = None;
    }
    if !m.trust_domain_bundle {
        r.trust_domain_bundle = None;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_mask_keeps_only_the_id_and_no_mask_keeps_everything() {
        let full = types::Entry {
            id: "e1".into(),
            hint: "h".into(),
            admin: true,
            revision_number: 3,
            selectors: vec![types::Selector {
                r#type: "unix".into(),
                value: "uid:1".into(),
            }],
            ..Default::default()
        };
        assert_eq!(entry(full.clone(), None), full);
        let bare = entry(full.clone(), Some(&types::EntryMask::default()));
        assert_eq!(
            bare,
            types::Entry {
                id: "e1".into(),
                ..Default::default()
            }
        );
        let hint_only = entry(
            full,
            Some(&types::EntryMask {
                hint: true,
                ..Default::default()
            }),
        );
        assert_eq!(hint_only.hint, "h");
        assert!(!hint_only.admin && hint_only.selectors.is_empty());
    }
}
