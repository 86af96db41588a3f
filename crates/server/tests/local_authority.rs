//! The LocalAuthority API on the admin socket: forced rotation, taint and revoke of X.509
//! authorities and JWT keys, as the bundle shows them.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::localauthority::v1::{
    self as la, local_authority_client::LocalAuthorityClient,
};
use lanyard_proto::spire::api::types;
use tonic::Code;
use tonic::transport::Channel;

use support::{admin, config};

async fn bundle(channel: &Channel) -> types::Bundle {
    BundleClient::new(channel.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner()
}

fn x509_ids(bundle: &types::Bundle) -> Vec<(String, bool)> {
    bundle
        .x509_authorities
        .iter()
        .map(|a| (lanyard_ca::x509_authority_id(&a.asn1).unwrap(), a.tainted))
        .collect()
}

fn jwt_ids(bundle: &types::Bundle) -> Vec<(String, bool)> {
    bundle
        .jwt_authorities
        .iter()
        .map(|k| (k.key_id.clone(), k.tainted))
        .collect()
}

fn id_of(state: Option<la::AuthorityState>) -> String {
    state.unwrap().authority_id
}

#[tokio::test]
async fn x509_forced_rotation_marks_then_removes_the_old_authority_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let channel = admin(&config).await;
    let mut la = LocalAuthorityClient::new(channel.clone());

    let state = la
        .get_x509_authority_state(la::GetX509AuthorityStateRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = id_of(state.active);
    assert!(state.prepared.is_none() && state.old.is_none());
    let seq0 = bundle(&channel).await.sequence_number;

    let err = la
        .taint_x509_authority(la::TaintX509AuthorityRequest {
            authority_id: first.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("the active authority"), "{err:?}");

    let prepared = id_of(
        la.prepare_x509_authority(la::PrepareX509AuthorityRequest {})
            .await
            .unwrap()
            .into_inner()
            .prepared_authority,
    );
    let b = bundle(&channel).await;
    assert_eq!(
        x509_ids(&b),
        vec![(first.clone(), false), (prepared.clone(), false)]
    );
    let seq1 = b.sequence_number;
    assert!(seq1 > seq0);

    let err = la
        .activate_x509_authority(la::ActivateX509AuthorityRequest {
            authority_id: "00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let activated = la
        .activate_x509_authority(la::ActivateX509AuthorityRequest {
            authority_id: prepared.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id_of(activated.activated_authority), prepared);

    let err = la
        .revoke_x509_authority(la::RevokeX509AuthorityRequest {
            authority_id: first.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("not tainted"), "{err:?}");

    let seq2 = bundle(&channel).await.sequence_number;
    let tainted = la
        .taint_x509_authority(la::TaintX509AuthorityRequest {
            authority_id: first.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id_of(tainted.tainted_authority), first);
    let b = bundle(&channel).await;
    assert_eq!(
        x509_ids(&b),
        vec![(first.clone(), true), (prepared.clone(), false)]
    );
    assert!(
        b.sequence_number > seq2,
        "tainting raises the sequence though the certificates stay"
    );

    server.stop().await.unwrap();
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let channel = admin(&config).await;
    let mut la = LocalAuthorityClient::new(channel.clone());
    assert_eq!(
        x509_ids(&bundle(&channel).await),
        vec![(first.clone(), true), (prepared.clone(), false)],
        "taint survives a restart"
    );

    let revoked = la
        .revoke_x509_authority(la::RevokeX509AuthorityRequest {
            authority_id: first.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id_of(revoked.revoked_authority), first);
    assert_eq!(
        x509_ids(&bundle(&channel).await),
        vec![(prepared.clone(), false)]
    );
    server.stop().await.unwrap();

    let server = lanyard_server::start(config.clone()).await.unwrap();
    let channel = admin(&config).await;
    assert_eq!(
        x509_ids(&bundle(&channel).await),
        vec![(prepared, false)],
        "revocation survives a restart"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jwt_forced_rotation_marks_then_removes_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let channel = admin(&config).await;
    let mut la = LocalAuthorityClient::new(channel.clone());

    let first = id_of(
        la.get_jwt_authority_state(la::GetJwtAuthorityStateRequest {})
            .await
            .unwrap()
            .into_inner()
            .active,
    );
    let seq0 = bundle(&channel).await.sequence_number;
    let prepared = id_of(
        la.prepare_jwt_authority(la::PrepareJwtAuthorityRequest {})
            .await
            .unwrap()
            .into_inner()
            .prepared_authority,
    );
    let b = bundle(&channel).await;
    assert_eq!(
        jwt_ids(&b),
        vec![(first.clone(), false), (prepared.clone(), false)]
    );
    assert!(
        b.sequence_number > seq0,
        "a new JWT key raises the sequence"
    );

    la.activate_jwt_authority(la::ActivateJwtAuthorityRequest {
        authority_id: prepared.clone(),
    })
    .await
    .unwrap();
    let state = la
        .get_jwt_authority_state(la::GetJwtAuthorityStateRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id_of(state.active), prepared);
    assert_eq!(id_of(state.old), first);

    la.taint_jwt_authority(la::TaintJwtAuthorityRequest {
        authority_id: first.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        jwt_ids(&bundle(&channel).await),
        vec![(first.clone(), true), (prepared.clone(), false)]
    );
    la.revoke_jwt_authority(la::RevokeJwtAuthorityRequest {
        authority_id: first,
    })
    .await
    .unwrap();
    assert_eq!(jwt_ids(&bundle(&channel).await), vec![(prepared, false)]);

    let err = la
        .activate_jwt_authority(la::ActivateJwtAuthorityRequest {
            authority_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_rpcs_are_unimplemented_without_an_upstream_authority() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let mut la = LocalAuthorityClient::new(admin(&config).await);
    let err = la
        .taint_x509_upstream_authority(la::TaintX509UpstreamAuthorityRequest {
            subject_key_id: "ab".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert_eq!(err.message(), "no upstream authority configured");
    let err = la
        .revoke_x509_upstream_authority(la::RevokeX509UpstreamAuthorityRequest {
            subject_key_id: "ab".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    server.stop().await.unwrap();
}
