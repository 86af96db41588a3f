//! The TrustDomain API: federation relationships with their validation, masks and the bundle
//! they carry.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use lanyard_proto::spire::api::server::bundle::v1::{
    GetFederatedBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::trustdomain::v1::{
    BatchCreateFederationRelationshipRequest, BatchDeleteFederationRelationshipRequest,
    BatchUpdateFederationRelationshipRequest, GetFederationRelationshipRequest,
    ListFederationRelationshipsRequest, RefreshBundleRequest,
    trust_domain_client::TrustDomainClient,
};
use lanyard_proto::spire::api::types::{
    self, federation_relationship::BundleEndpointProfile as Profile,
};
use tonic::Code;

use support::{admin, config};

fn ca_cert() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn relationship(td: &str, url: &str, profile: Option<Profile>) -> types::FederationRelationship {
    types::FederationRelationship {
        trust_domain: td.into(),
        bundle_endpoint_url: url.into(),
        bundle_endpoint_profile: profile,
        trust_domain_bundle: None,
    }
}

fn spiffe_profile(id: &str) -> Option<Profile> {
    Some(Profile::HttpsSpiffe(types::HttpsspiffeProfile {
        endpoint_spiffe_id: id.into(),
    }))
}

fn web() -> Option<Profile> {
    Some(Profile::HttpsWeb(types::HttpsWebProfile {}))
}

#[tokio::test]
async fn relationships_are_validated_stored_masked_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    let mut client = TrustDomainClient::new(ch.clone());

    let mut with_bundle = relationship(
        "a.org",
        "https://a.org:8443/bundle",
        spiffe_profile("spiffe://a.org/spire/server"),
    );
    with_bundle.trust_domain_bundle = Some(types::Bundle {
        trust_domain: "a.org".into(),
        x509_authorities: vec![types::X509Certificate {
            asn1: ca_cert(),
            tainted: false,
        }],
        ..Default::default()
    });
    let created = client
        .batch_create_federation_relationship(BatchCreateFederationRelationshipRequest {
            federation_relationships: vec![
                with_bundle,
                relationship("b.org", "https://b.org/", web()),
                relationship("b.org", "https://b.org/", web()),
                relationship("c.org", "http://c.org/", web()),
                relationship("d.org", "https://d.org/", spiffe_profile("")),
                relationship("e.org", "https://e.org/", None),
                relationship("example.org", "https://example.org/", web()),
            ],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let statuses: Vec<(i32, String)> = created
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap();
            (s.code, s.message)
        })
        .collect();
    assert_eq!(statuses[0].0, 0, "{statuses:?}");
    assert_eq!(statuses[1].0, 0, "{statuses:?}");
    assert_eq!(statuses[2].0, Code::AlreadyExists as i32);
    assert!(
        statuses[3].1.contains("https:// URL with a host"),
        "{statuses:?}"
    );
    assert!(
        statuses[4].1.contains("endpoint_spiffe_id is missing"),
        "{statuses:?}"
    );
    assert!(
        statuses[5].1.contains("bundle_endpoint_profile is missing"),
        "{statuses:?}"
    );
    assert!(statuses[6].1.contains("own trust domain"), "{statuses:?}");

    // The bundle given with the relationship is now a federated bundle.
    BundleClient::new(ch.clone())
        .get_federated_bundle(GetFederatedBundleRequest {
            trust_domain: "a.org".into(),
            output_mask: None,
        })
        .await
        .unwrap();
    let got = client
        .get_federation_relationship(GetFederationRelationshipRequest {
            trust_domain: "a.org".into(),
            output_mask: Some(types::FederationRelationshipMask {
                bundle_endpoint_url: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.bundle_endpoint_url, "https://a.org:8443/bundle");
    assert!(got.bundle_endpoint_profile.is_none() && got.trust_domain_bundle.is_none());

    let page = client
        .list_federation_relationships(ListFederationRelationshipsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.federation_relationships.len(), 1);
    assert!(!page.next_page_token.is_empty());

    // Updating the URL alone keeps the profile.
    let updated = client
        .batch_update_federation_relationship(BatchUpdateFederationRelationshipRequest {
            federation_relationships: vec![
                relationship("b.org", "https://b.example/bundle", None),
                relationship("zz.org", "https://zz.org/", web()),
            ],
            input_mask: Some(types::FederationRelationshipMask {
                bundle_endpoint_url: true,
                ..Default::default()
            }),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(updated[0].status.as_ref().unwrap().code, 0);
    let b = updated[0].federation_relationship.clone().unwrap();
    assert_eq!(b.bundle_endpoint_url, "https://b.example/bundle");
    assert_eq!(b.bundle_endpoint_profile, web());
    assert_eq!(
        updated[1].status.as_ref().unwrap().code,
        Code::NotFound as i32
    );

    let err = client
        .refresh_bundle(RefreshBundleRequest {
            trust_domain: "a.org".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    let deleted = client
        .batch_delete_federation_relationship(BatchDeleteFederationRelationshipRequest {
            trust_domains: vec!["b.org".into(), "b.org".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let codes: Vec<i32> = deleted
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(codes, [0, Code::NotFound as i32]);
    let err = client
        .get_federation_relationship(GetFederationRelationshipRequest {
            trust_domain: "b.org".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await.unwrap();
}
