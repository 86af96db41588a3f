//! Tests of the entry rules.

use super::*;
use lanyard_proto::spire::api::types;
use lanyard_spiffe::TrustDomain;

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

#[test]
fn rejects_federation_with_own_trust_domain_and_bad_names() {
    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.federates_with = vec!["spiffe://example.org".into()];
    let err = new_entry(&e, &td()).unwrap_err();
    assert!(err.contains("own trust domain"), "{err}");
    e.federates_with = vec!["Not A Domain".into()];
    let err = new_entry(&e, &td()).unwrap_err();
    assert!(err.starts_with("federates_with \"Not A Domain\""), "{err}");
    e.federates_with = vec!["spiffe://other.org".into(), "other.org".into()];
    let ok = new_entry(&e, &td()).unwrap();
    assert_eq!(
        ok.federates_with.len(),
        1,
        "both spellings name one trust domain"
    );
}

#[test]
fn enforces_hint_dns_and_expiry_limits() {
    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.hint = "h".repeat(MAX_HINT_BYTES);
    new_entry(&e, &td()).unwrap();
    e.hint.push('h');
    assert!(new_entry(&e, &td()).unwrap_err().contains("at most 1024"));

    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.dns_names = vec!["*.example.org".into(), "a-b.example".into()];
    new_entry(&e, &td()).unwrap();
    for bad in [
        "-a.example",
        "a..b",
        "*.",
        "a.*.b",
        &"a".repeat(64),
        &"a.".repeat(127),
    ] {
        e.dns_names = vec![bad.to_string()];
        assert!(new_entry(&e, &td()).is_err(), "{bad} accepted");
    }

    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.expires_at = -5;
    assert!(new_entry(&e, &td()).unwrap_err().contains("expires_at -5"));
    e.expires_at = 0;
    e.jwt_svid_ttl = MAX_TTL_SECONDS + 1;
    assert!(new_entry(&e, &td()).unwrap_err().contains("jwt_svid_ttl"));
}

#[test]
fn rejects_selectors_without_type_or_value() {
    for (t, v) in [("", "uid:1"), ("un:ix", "uid:1"), ("unix", "")] {
        let err = new_entry(&entry("/web", "/agent", &[(t, v)]), &td()).unwrap_err();
        assert!(err.starts_with("selectors:"), "{err}");
    }
}

#[test]
fn update_without_mask_sets_every_field_and_with_mask_only_the_chosen() {
    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.id = "e1".into();
    e.hint = "h".into();
    let (id, all) = entry_update(&e, None, &td()).unwrap();
    assert_eq!(id.as_str(), "e1");
    assert!(all.spiffe_id.is_some() && all.selectors.is_some());
    assert_eq!(all.hint.as_deref(), Some("h"));
    assert_eq!(all.admin, Some(false));

    let mask = types::EntryMask {
        hint: true,
        ..Default::default()
    };
    // Fields outside the mask are not validated: an update of the hint alone need not resend
    // the selectors.
    e.selectors.clear();
    let (_, only_hint) = entry_update(&e, Some(&mask), &td()).unwrap();
    assert_eq!(only_hint.hint.as_deref(), Some("h"));
    assert!(only_hint.selectors.is_none() && only_hint.spiffe_id.is_none());

    let err = entry_update(&e, None, &td()).unwrap_err();
    assert!(err.contains("at least one selector"), "{err}");
    e.id.clear();
    assert!(
        entry_update(&e, Some(&mask), &td())
            .unwrap_err()
            .contains("id is missing")
    );
}

#[test]
fn bounds_list_lengths_and_refuses_ip_addresses_as_dns_names() {
    let many: Vec<(String, String)> = (0..=MAX_LIST_LEN)
        .map(|i| ("unix".to_owned(), format!("uid:{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(t, v)| (t.as_str(), v.as_str())).collect();
    let err = new_entry(&entry("/web", "/agent", &refs), &td()).unwrap_err();
    assert!(err.contains("selectors: 101 given, at most 100"), "{err}");
    // Exactly the limit is fine.
    assert!(new_entry(&entry("/web", "/agent", &refs[..MAX_LIST_LEN]), &td()).is_ok());

    let mut e = entry("/web", "/agent", &[("unix", "uid:1")]);
    e.dns_names = (0..=MAX_LIST_LEN)
        .map(|i| format!("h{i}.example.org"))
        .collect();
    let err = new_entry(&e, &td()).unwrap_err();
    assert!(err.contains("dns_names: 101 given"), "{err}");

    e.dns_names = vec!["192.168.1.1".into()];
    let err = new_entry(&e, &td()).unwrap_err();
    assert!(err.contains("an IP address is not a DNS name"), "{err}");
    e.dns_names = vec!["1.example.org".into()];
    assert!(new_entry(&e, &td()).is_ok(), "numeric labels are fine");
}
