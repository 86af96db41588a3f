//! Conversions between the SPIRE wire types and Lanyard's own types. Inbound IDs and selectors
//! are parsed here (errors name the field); the rules for whole entries live in `validate.rs`.

use lanyard_datastore::Entry;
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

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
