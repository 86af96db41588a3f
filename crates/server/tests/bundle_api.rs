//! The Bundle API: appending authorities to our own bundle, and federated bundles with every
//! batch call, mask and delete mode.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use lanyard_proto::spire::api::server::bundle::v1::{
    AppendBundleRequest, BatchCreateFederatedBundleRequest, BatchDeleteFederatedBundleRequest,
    BatchSetFederatedBundleRequest, BatchUpdateFederatedBundleRequest, CountBundlesRequest,
    GetBundleRequest, GetFederatedBundleRequest, ListFederatedBundlesRequest,
    PublishJwtAuthorityRequest, batch_delete_federated_bundle_request::Mode,
    bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, GetEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tonic::Code;
use tonic::transport::Channel;

use support::{admin, config};

fn ca_cert() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn leaf_cert() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["leaf.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec()
}

fn jwt_key(kid: &str) -> types::JwtKey {
    let key = rcgen::KeyPair::generate().unwrap();
    types::JwtKey {
        public_key: rcgen::PublicKeyData::subject_public_key_info(&key),
        key_id: kid.into(),
        expires_at: 0,
        tainted: false,
    }
}

fn bundle(td: &str) -> types::Bundle {
    types::Bundle {
        trust_domain: td.into(),
        x509_authorities: vec![types::X509Certificate {
            asn1: ca_cert(),
            tainted: false,
        }],
        jwt_authorities: vec![jwt_key("k1")],
        refresh_hint: 300,
        sequence_number: 0,
    }
}

fn codes<T>(results: &[T], status: impl Fn(&T) -> Option<&types::Status>) -> Vec<i32> {
    results.iter().map(|r| status(r).unwrap().code).collect()
}

async fn own(ch: &Channel) -> types::Bundle {
    BundleClient::new(ch.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn appended_authorities_are_served_stored_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    let mut client = BundleClient::new(ch.clone());
    let before = own(&ch).await;

    let extra = ca_cert();
    let appended = client
        .append_bundle(AppendBundleRequest {
            x509_authorities: vec![types::X509Certificate {
                asn1: extra.clone(),
                tainted: false,
            }],
            jwt_authorities: vec![jwt_key("operator-key")],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(appended.x509_authorities.iter().any(|a| a.asn1 == extra));
    assert!(appended.sequence_number > before.sequence_number);
    let served = own(&ch).await;
    assert!(served.x509_authorities.iter().any(|a| a.asn1 == extra));
    assert!(
        served
            .jwt_authorities
            .iter()
            .any(|k| k.key_id == "operator-key")
    );
    assert_eq!(
        served.jwt_authorities.len(),
        before.jwt_authorities.len() + 1,
        "the CA's keys stay"
    );

    let masked = client
        .get_bundle(GetBundleRequest {
            output_mask: Some(types::BundleMask {
                sequence_number: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(masked.x509_authorities.is_empty() && masked.sequence_number > 0);

    let err = client
        .append_bundle(AppendBundleRequest {
            x509_authorities: vec![types::X509Certificate {
                asn1: leaf_cert(),
                tainted: false,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("not a CA certificate"),
        "{}",
        err.message()
    );
    let err = client
        .append_bundle(AppendBundleRequest {
            jwt_authorities: vec![types::JwtKey {
                key_id: "bad".into(),
                public_key: b"not a key".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = client
        .publish_jwt_authority(PublishJwtAuthorityRequest {
            jwt_authority: Some(jwt_key("down")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("downstream"), "{}", err.message());

    // The appended authority survives a restart (and the CA's next publication).
    server.stop().await.unwrap();
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    assert!(
        own(&ch)
            .await
            .x509_authorities
            .iter()
            .any(|a| a.asn1 == extra)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn federated_bundles_create_update_set_list_count_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    let mut client = BundleClient::new(ch.clone());

    let created = client
        .batch_create_federated_bundle(BatchCreateFederatedBundleRequest {
            bundle: vec![
                bundle("a.org"),
                bundle("a.org"),
                bundle("example.org"),
                bundle("b.org"),
            ],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        codes(&created, |r| r.status.as_ref()),
        [
            Code::Ok as i32,
            Code::AlreadyExists as i32,
            Code::InvalidArgument as i32,
            Code::Ok as i32
        ]
    );
    assert!(
        created[2]
            .status
            .as_ref()
            .unwrap()
            .message
            .contains("own trust domain"),
        "{:?}",
        created[2].status
    );

    let count = client
        .count_bundles(CountBundlesRequest {})
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 3, "our own bundle counts too");
    let listed = client
        .list_federated_bundles(ListFederatedBundlesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .bundles;
    let tds: Vec<&str> = listed.iter().map(|b| b.trust_domain.as_str()).collect();
    assert_eq!(tds, ["a.org", "b.org"], "the own bundle is not federated");

    // Update only the refresh hint; the authorities stay.
    let mut change = bundle("a.org");
    change.refresh_hint = 60;
    change.x509_authorities.clear();
    let updated = client
        .batch_update_federated_bundle(BatchUpdateFederatedBundleRequest {
            bundle: vec![change, bundle("c.org")],
            input_mask: Some(types::BundleMask {
                refresh_hint: true,
                ..Default::default()
            }),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        codes(&updated, |r| r.status.as_ref()),
        [Code::Ok as i32, Code::NotFound as i32]
    );
    let a = updated[0].bundle.clone().unwrap();
    assert_eq!(a.refresh_hint, 60);
    assert_eq!(a.x509_authorities.len(), 1);

    let set = client
        .batch_set_federated_bundle(BatchSetFederatedBundleRequest {
            bundle: vec![bundle("c.org")],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(set[0].status.as_ref().unwrap().code, 0);
    let got = client
        .get_federated_bundle(GetFederatedBundleRequest {
            trust_domain: "c.org".into(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.jwt_authorities[0].key_id, "k1");
    let err = client
        .get_federated_bundle(GetFederatedBundleRequest {
            trust_domain: "d.org".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // An entry federating with a.org blocks RESTRICT; DISSOCIATE drops the link.
    let mut entries = EntryClient::new(ch.clone());
    let entry = entries
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(types::Spiffeid {
                    trust_domain: "example.org".into(),
                    path: "/fed".into(),
                }),
                parent_id: Some(types::Spiffeid {
                    trust_domain: "example.org".into(),
                    path: "/agent".into(),
                }),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1".into(),
                }],
                federates_with: vec!["a.org".into()],
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results[0]
        .entry
        .clone()
        .unwrap();
    let delete = |tds: &[&str], mode: Mode| BatchDeleteFederatedBundleRequest {
        trust_domains: tds.iter().map(|t| t.to_string()).collect(),
        mode: mode as i32,
    };
    let out = client
        .batch_delete_federated_bundle(delete(
            &["a.org", "nowhere.org", "example.org"],
            Mode::Restrict,
        ))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        codes(&out, |r| r.status.as_ref()),
        [
            Code::FailedPrecondition as i32,
            Code::NotFound as i32,
            Code::InvalidArgument as i32
        ]
    );
    let out = client
        .batch_delete_federated_bundle(delete(&["a.org"], Mode::Dissociate))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(out[0].status.as_ref().unwrap().code, 0);
    let kept = entries
        .get_entry(GetEntryRequest {
            id: entry.id.clone(),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(kept.federates_with.is_empty());
    server.stop().await.unwrap();
}
