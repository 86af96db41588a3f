//! The JSON shape of SPIRE API objects, as `spire-server ... -output json` prints them: protobuf
//! JSON with proto field names and every field present (Go's `protojson` with `UseProtoNames`
//! and `EmitUnpopulated`). That mapping writes bytes in standard base64 and 64-bit integers as
//! decimal strings (`"expires_at": "0"`), 32-bit ones as numbers; a script written against
//! SPIRE's output reads ours unchanged only if the types match too.

use lanyard_proto::spire::api::types;
use serde_json::{Value, json};

/// A SPIFFE ID as `{"trust_domain": ..., "path": ...}`, or null.
pub(crate) fn id_json(id: Option<&types::Spiffeid>) -> Value {
    id.map(|id| json!({"trust_domain": id.trust_domain, "path": id.path}))
        .unwrap_or(Value::Null)
}

/// A 64-bit integer as protobuf JSON writes it: a decimal string, which JSON readers that hold
/// numbers as doubles cannot round.
pub(crate) fn int64(n: impl ToString) -> Value {
    Value::String(n.to_string())
}

/// An entry.
pub(crate) fn entry_json(e: &types::Entry) -> Value {
    json!({
        "id": e.id,
        "spiffe_id": id_json(e.spiffe_id.as_ref()),
        "parent_id": id_json(e.parent_id.as_ref()),
        "selectors": e.selectors.iter().map(selector_json).collect::<Vec<_>>(),
        "x509_svid_ttl": e.x509_svid_ttl,
        "jwt_svid_ttl": e.jwt_svid_ttl,
        "federates_with": e.federates_with,
        "admin": e.admin,
        "downstream": e.downstream,
        "expires_at": int64(e.expires_at),
        "dns_names": e.dns_names,
        "revision_number": int64(e.revision_number),
        "store_svid": e.store_svid,
        "hint": e.hint,
        "created_at": int64(e.created_at),
    })
}

/// A list response: `items` under `key`, and the `next_page_token` every SPIRE list response
/// carries (empty, as the CLI has read all pages).
pub(crate) fn list_json(key: &str, items: Vec<Value>) -> Value {
    json!({ key: items, "next_page_token": "" })
}

/// A selector as `{"type": ..., "value": ...}`.
pub(crate) fn selector_json(s: &types::Selector) -> Value {
    json!({"type": s.r#type, "value": s.value})
}

/// An attested agent.
pub(crate) fn agent_json(a: &types::Agent) -> Value {
    json!({
        "id": id_json(a.id.as_ref()),
        "attestation_type": a.attestation_type,
        "x509svid_serial_number": a.x509svid_serial_number,
        "x509svid_expires_at": int64(a.x509svid_expires_at),
        "selectors": a.selectors.iter().map(selector_json).collect::<Vec<_>>(),
        "banned": a.banned,
        "can_reattest": a.can_reattest,
    })
}

/// A bundle; certificates and keys are base64 DER, as protobuf JSON writes bytes.
pub(crate) fn bundle_json(b: &types::Bundle) -> Value {
    json!({
        "trust_domain": b.trust_domain,
        "x509_authorities": b.x509_authorities.iter()
            .map(|a| json!({"asn1": base64(&a.asn1), "tainted": a.tainted}))
            .collect::<Vec<_>>(),
        "jwt_authorities": b.jwt_authorities.iter()
            .map(|k| json!({
                "public_key": base64(&k.public_key),
                "key_id": k.key_id,
                "expires_at": int64(k.expires_at),
                "tainted": k.tainted,
            }))
            .collect::<Vec<_>>(),
        "refresh_hint": int64(b.refresh_hint),
        "sequence_number": int64(b.sequence_number),
    })
}

/// A per-item status of a batch response.
pub(crate) fn status_json(s: Option<&types::Status>) -> Value {
    let s = s.cloned().unwrap_or_default();
    json!({"code": s.code, "message": s.message})
}

/// A federation relationship; the profile is one of `https_web` / `https_spiffe`, as in
/// protobuf JSON for a oneof.
pub(crate) fn federation_json(r: &types::FederationRelationship) -> Value {
    use types::federation_relationship::BundleEndpointProfile as P;
    let mut v = json!({
        "trust_domain": r.trust_domain,
        "bundle_endpoint_url": r.bundle_endpoint_url,
    });
    match &r.bundle_endpoint_profile {
        Some(P::HttpsWeb(_)) => v["https_web"] = json!({}),
        Some(P::HttpsSpiffe(p)) => {
            v["https_spiffe"] = json!({"endpoint_spiffe_id": p.endpoint_spiffe_id});
        }
        None => {}
    }
    if let Some(b) = &r.trust_domain_bundle {
        v["trust_domain_bundle"] = bundle_json(b);
    }
    v
}

/// Standard base64 with padding (RFC 4648 section 4), the encoding protobuf JSON uses for bytes.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn int64_fields_are_strings_and_int32_fields_numbers() {
        let e = types::Entry {
            expires_at: 1_900_000_000,
            revision_number: 3,
            created_at: 1_700_000_000,
            x509_svid_ttl: 600,
            ..Default::default()
        };
        let v = entry_json(&e);
        assert_eq!(v["expires_at"], "1900000000");
        assert_eq!(v["revision_number"], "3");
        assert_eq!(v["created_at"], "1700000000");
        assert_eq!(v["x509_svid_ttl"], 600);
        assert_eq!(v["jwt_svid_ttl"], 0);
        assert_eq!(v["spiffe_id"], Value::Null);
    }

    #[test]
    fn federation_profile_is_a_oneof_key() {
        use types::federation_relationship::BundleEndpointProfile as P;
        let r = types::FederationRelationship {
            trust_domain: "other.org".into(),
            bundle_endpoint_url: "https://other.org:8443".into(),
            bundle_endpoint_profile: Some(P::HttpsSpiffe(types::HttpsspiffeProfile {
                endpoint_spiffe_id: "spiffe://other.org/spire/server".into(),
            })),
            trust_domain_bundle: None,
        };
        let v = federation_json(&r);
        assert_eq!(
            v["https_spiffe"]["endpoint_spiffe_id"],
            "spiffe://other.org/spire/server"
        );
        assert!(v.get("https_web").is_none());
        assert!(v.get("trust_domain_bundle").is_none());
    }
}
