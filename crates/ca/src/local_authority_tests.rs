use super::*;
use crate::journal::JournalStore as _;
use crate::journal::{self, Status};
use crate::test_support::{HOUR, Harness, issuer_index, verify_leaf};

fn id_of(ca: &CaManager) -> String {
    x509_authority_id(ca.active().cert()).unwrap()
}

#[tokio::test]
async fn x509_prepare_activate_taint_revoke() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = id_of(&ca);
    let first_cert = ca.active().cert().clone();
    let signed_by_first = h.sign(&ca, HOUR);

    let prepared = ca.prepare_x509_authority().await.unwrap();
    assert_ne!(prepared.authority_id, first);
    let state = ca.x509_authority_state().unwrap();
    assert_eq!(state.active.authority_id, first);
    assert_eq!(state.prepared.as_ref(), Some(&prepared));
    assert_eq!(ca.authorities().len(), 2);

    let activated = ca
        .activate_x509_authority(&prepared.authority_id)
        .await
        .unwrap();
    assert_eq!(activated.authority_id, prepared.authority_id);
    let state = ca.x509_authority_state().unwrap();
    assert_eq!(state.active.authority_id, prepared.authority_id);
    assert!(state.prepared.is_none());
    assert_eq!(
        state.old.as_ref().map(|o| o.authority_id.as_str()),
        Some(first.as_str())
    );
    assert_eq!(
        issuer_index(&h.sign(&ca, HOUR), &ca.authorities(), h.now()),
        Some(1),
        "the new authority signs"
    );

    let tainted = ca.taint_x509_authority(&first).await.unwrap();
    assert!(tainted.tainted);
    assert_eq!(ca.tainted_authorities(), vec![first_cert.clone()]);
    assert!(
        ca.authorities().contains(&first_cert),
        "tainted stays published"
    );
    verify_leaf(&signed_by_first, &ca.authorities(), h.now()).unwrap();
    let after_taint = h.sign(&ca, HOUR);
    assert_eq!(
        issuer_index(&after_taint, &ca.authorities(), h.now()),
        Some(1),
        "never signs with the tainted authority"
    );

    let revoked = ca.revoke_x509_authority(&first).await.unwrap();
    assert_eq!(revoked.authority_id, first);
    assert_eq!(ca.authorities(), vec![ca.active().cert().clone()]);
    assert!(ca.tainted_authorities().is_empty());
    assert!(ca.x509_authority_state().unwrap().old.is_none());
    assert!(verify_leaf(&signed_by_first, &ca.authorities(), h.now()).is_err());
    verify_leaf(&after_taint, &ca.authorities(), h.now()).unwrap();
}

#[tokio::test]
async fn x509_refusals_name_the_rule() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let active = id_of(&ca);

    let err = ca.activate_x509_authority(&active).await.unwrap_err();
    assert!(matches!(err, CaError::NoPreparedAuthority { .. }), "{err}");

    let err = ca.taint_x509_authority(&active).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("(the active authority): only the old authority"),
        "{err}"
    );

    let err = ca.taint_x509_authority("").await.unwrap_err();
    assert!(matches!(err, CaError::MissingAuthorityId { .. }), "{err}");

    let prepared = ca.prepare_x509_authority().await.unwrap();
    let err = ca.activate_x509_authority("00ff").await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "'00ff': it is not the prepared authority ('{}')",
            prepared.authority_id
        )),
        "{err}"
    );
    let err = ca
        .taint_x509_authority(&prepared.authority_id)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("(the prepared authority)"),
        "{err}"
    );

    ca.activate_x509_authority(&prepared.authority_id)
        .await
        .unwrap();
    let err = ca.revoke_x509_authority(&active).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("it is not tainted; only a tainted authority can be revoked"),
        "{err}"
    );
    ca.taint_x509_authority(&active).await.unwrap();
    let err = ca.taint_x509_authority(&active).await.unwrap_err();
    assert!(matches!(err, CaError::AlreadyTainted { .. }), "{err}");
    let err = ca.revoke_x509_authority("beef").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot revoke x509 authority 'beef': no authority has this id; expected the subject \
         key id as hex, e.g. 50e7cb44... (see `lanyard server localauthority x509 show`)"
    );
}

#[tokio::test]
async fn x509_authority_ids_accept_upper_case_and_colon_separated_hex() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let prepared = ca.prepare_x509_authority().await.unwrap().authority_id;
    let openssl_style = prepared
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let activated = ca.activate_x509_authority(&openssl_style).await.unwrap();
    assert_eq!(activated.authority_id, prepared);
    assert_eq!(normalize_x509_authority_id("AB:cd:01"), "abcd01");
    assert_eq!(normalize_x509_authority_id("not-hex"), "not-hex");
}

#[tokio::test]
async fn preparing_twice_replaces_the_prepared_authority() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = ca.prepare_x509_authority().await.unwrap();
    let second = ca.prepare_x509_authority().await.unwrap();
    assert_ne!(first.authority_id, second.authority_id);
    assert_eq!(ca.authorities().len(), 2, "only one prepared authority");
    let err = ca
        .activate_x509_authority(&first.authority_id)
        .await
        .unwrap_err();
    assert!(matches!(err, CaError::NotPreparedAuthority { .. }), "{err}");
    ca.activate_x509_authority(&second.authority_id)
        .await
        .unwrap();

    let jwt_first = ca.prepare_jwt_authority().await.unwrap();
    let jwt_second = ca.prepare_jwt_authority().await.unwrap();
    assert_ne!(jwt_first.authority_id, jwt_second.authority_id);
    assert_eq!(ca.jwt_authorities().len(), 2);
}

#[tokio::test]
async fn restart_keeps_taint_and_revocation() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = id_of(&ca);
    let next = ca.prepare_x509_authority().await.unwrap();
    ca.activate_x509_authority(&next.authority_id)
        .await
        .unwrap();
    ca.taint_x509_authority(&first).await.unwrap();
    let first_kid = ca.active_jwt_authority().kid().to_owned();
    let next_kid = ca.prepare_jwt_authority().await.unwrap().authority_id;
    ca.activate_jwt_authority(&next_kid).await.unwrap();
    ca.taint_jwt_authority(&first_kid).await.unwrap();
    drop(ca);

    let again = h.load().await.unwrap();
    let state = again.x509_authority_state().unwrap();
    assert_eq!(state.active.authority_id, next.authority_id);
    assert!(
        state
            .old
            .as_ref()
            .is_some_and(|o| o.tainted && o.authority_id == first)
    );
    assert_eq!(again.tainted_jwt_kids(), vec![first_kid.clone()]);
    let saved = journal::decode(&h.journal.blob().unwrap()).unwrap();
    assert!(
        saved
            .x509
            .iter()
            .any(|r| r.status == Status::Old && r.tainted)
    );

    again.revoke_x509_authority(&first).await.unwrap();
    again.revoke_jwt_authority(&first_kid).await.unwrap();
    drop(again);

    let third = h.load().await.unwrap();
    assert_eq!(third.authorities().len(), 1);
    assert!(third.x509_authority_state().unwrap().old.is_none());
    assert_eq!(third.jwt_authorities().len(), 1);
    assert_eq!(third.active_jwt_authority().kid(), next_kid);
}

#[tokio::test]
async fn a_version_2_journal_loads_untainted_and_is_rewritten_as_version_3() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let next = ca.prepare_x509_authority().await.unwrap();
    ca.activate_x509_authority(&next.authority_id)
        .await
        .unwrap();
    let serials_before = ca.authorities();
    drop(ca);

    // Rewrite the saved journal as version 2 wrote it: no taint flags.
    let mut v2: serde_json::Value = serde_json::from_slice(&h.journal.blob().unwrap()).unwrap();
    v2["version"] = 2.into();
    for list in ["x509_authorities", "jwt_keys"] {
        for record in v2[list].as_array_mut().unwrap() {
            record.as_object_mut().unwrap().remove("tainted");
        }
    }
    h.journal
        .save_journal(&serde_json::to_vec(&v2).unwrap())
        .await
        .unwrap();

    let ca = h.load().await.unwrap();
    assert_eq!(ca.authorities(), serials_before);
    assert!(ca.tainted_authorities().is_empty());
    let old = ca.x509_authority_state().unwrap().old.unwrap();
    ca.taint_x509_authority(&old.authority_id).await.unwrap();
    let text = String::from_utf8(h.journal.blob().unwrap()).unwrap();
    assert!(text.contains("\"version\": 3"), "{text}");
}

#[tokio::test]
async fn jwt_prepare_activate_taint_revoke() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = ca.active_jwt_authority().kid().to_owned();
    let id = crate::test_support::id("spiffe://example.org/w");

    let err = ca.taint_jwt_authority(&first).await.unwrap_err();
    assert!(err.to_string().contains("(the active authority)"), "{err}");
    let prepared = ca.prepare_jwt_authority().await.unwrap();
    assert_eq!(
        ca.jwt_authority_state().prepared.map(|p| p.authority_id),
        Some(prepared.authority_id.clone())
    );
    let err = ca.activate_jwt_authority("nope").await.unwrap_err();
    assert!(matches!(err, CaError::NotPreparedAuthority { .. }), "{err}");
    ca.activate_jwt_authority(&prepared.authority_id)
        .await
        .unwrap();
    let err = ca.revoke_jwt_authority(&first).await.unwrap_err();
    assert!(matches!(err, CaError::NotTainted { .. }), "{err}");

    ca.taint_jwt_authority(&first).await.unwrap();
    assert_eq!(ca.tainted_jwt_kids(), vec![first.clone()]);
    let token = ca
        .sign_jwt_svid(&id, &["aud".to_owned()], HOUR, h.now())
        .unwrap();
    assert_eq!(
        token.kid, prepared.authority_id,
        "never signs with the tainted key"
    );

    ca.revoke_jwt_authority(&first).await.unwrap();
    assert!(ca.jwt_bundle().get(&first).is_none());
    assert_eq!(ca.jwt_authorities().len(), 1);
}

#[tokio::test]
async fn an_authority_an_upstream_signed_cannot_be_tainted() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose};

    let dir = tempfile::tempdir().unwrap();
    let key = crate::key::generate_key_pair(crate::key::KeyType::EcP256).unwrap();
    let mut params = CertificateParams::default();
    params.not_before = crate::encoding::cert_time(crate::test_support::t0() - HOUR).unwrap();
    params.not_after = crate::encoding::cert_time(crate::test_support::t0() + 1000 * HOUR).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = params.self_signed(&key).unwrap();
    let paths = crate::upstream::DiskUpstreamPaths {
        cert: dir.path().join("upstream.crt"),
        key: dir.path().join("upstream.key"),
        bundle: None,
    };
    std::fs::write(&paths.cert, root.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();
    let upstream = crate::upstream::DiskUpstream::open(paths, crate::test_support::t0()).unwrap();

    let h = Harness::new();
    let ca = CaManager::load_or_create_with_upstream(
        crate::test_support::td(),
        crate::CaConfig::default(),
        std::sync::Arc::clone(&h.km),
        Some(std::sync::Arc::new(upstream)),
        h.journal.clone(),
        h.clock.clone(),
    )
    .await
    .unwrap();
    let first = id_of(&ca);
    let next = ca.prepare_x509_authority().await.unwrap();
    ca.activate_x509_authority(&next.authority_id)
        .await
        .unwrap();
    let err = ca.taint_x509_authority(&first).await.unwrap_err();
    assert!(
        matches!(err, CaError::UpstreamSignedAuthority { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("taint the upstream authority instead"),
        "{err}"
    );
}
