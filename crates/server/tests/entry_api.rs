//! The Entry API on the admin socket: batch create, update and delete with per-item statuses,
//! every list filter, paging, counting and output masks.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use lanyard_proto::spire::api::server::bundle::v1::{
    BatchCreateFederatedBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchDeleteEntryRequest, BatchUpdateEntryRequest, CountEntriesRequest,
    GetEntryRequest, ListEntriesRequest, count_entries_request, entry_client::EntryClient,
    list_entries_request,
};
use lanyard_proto::spire::api::types;
use tonic::Code;
use tonic::transport::Channel;

use support::{admin, config};

fn id(path: &str) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: "example.org".into(),
        path: path.into(),
    }
}

fn sel(s: &str) -> types::Selector {
    let (t, v) = s.split_once(':').unwrap();
    types::Selector {
        r#type: t.into(),
        value: v.into(),
    }
}

fn entry(spiffe: &str, parent: &str, selectors: &[&str]) -> types::Entry {
    types::Entry {
        spiffe_id: Some(id(spiffe)),
        parent_id: Some(id(parent)),
        selectors: selectors.iter().map(|s| sel(s)).collect(),
        ..Default::default()
    }
}

async fn create(
    channel: &Channel,
    entries: Vec<types::Entry>,
) -> Vec<(i32, String, Option<types::Entry>)> {
    EntryClient::new(channel.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries,
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .into_iter()
        .map(|r| {
            let s = r.status.unwrap();
            (s.code, s.message, r.entry)
        })
        .collect()
}

async fn list(channel: &Channel, filter: list_entries_request::Filter) -> Vec<String> {
    let mut paths: Vec<String> = EntryClient::new(channel.clone())
        .list_entries(ListEntriesRequest {
            filter: Some(filter),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.spiffe_id.unwrap().path)
        .collect();
    paths.sort();
    paths
}

async fn federated_bundle(channel: &Channel, td: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    let result = BundleClient::new(channel.clone())
        .batch_create_federated_bundle(BatchCreateFederatedBundleRequest {
            bundle: vec![types::Bundle {
                trust_domain: td.into(),
                x509_authorities: vec![types::X509Certificate {
                    asn1: ca.der().to_vec(),
                    tainted: false,
                }],
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result.results[0].status.as_ref().unwrap().code, 0);
}

#[tokio::test]
async fn batch_create_reports_each_item_and_returns_the_existing_entry_for_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;

    let mut bad_dns = entry("/dns", "/agent", &["unix:uid:1"]);
    bad_dns.dns_names = vec!["bad_name".into()];
    let mut unknown_td = entry("/fed", "/agent", &["unix:uid:1"]);
    unknown_td.federates_with = vec!["other.org".into()];
    let results = create(
        &ch,
        vec![
            entry("/web", "/agent", &["unix:uid:1000"]),
            entry("/web", "/agent", &["unix:uid:1000"]),
            entry("/spire/server", "/agent", &["unix:uid:1"]),
            entry("/nosel", "/agent", &[]),
            bad_dns,
            unknown_td,
        ],
    )
    .await;
    assert_eq!(results[0].0, Code::Ok as i32);
    let created = results[0].2.clone().unwrap();
    assert_eq!(results[1].0, Code::AlreadyExists as i32, "{}", results[1].1);
    assert_eq!(
        results[1].2.as_ref().unwrap().id,
        created.id,
        "the duplicate answers with the existing entry"
    );
    assert_eq!(results[2].0, Code::InvalidArgument as i32);
    assert!(
        results[2].1.contains("reserved /spire namespace"),
        "{}",
        results[2].1
    );
    assert!(
        results[3].1.contains("at least one selector"),
        "{}",
        results[3].1
    );
    assert!(
        results[4].1.starts_with("dns_names \"bad_name\""),
        "{}",
        results[4].1
    );
    assert!(
        results[5].1.contains("unknown federated trust domain"),
        "{}",
        results[5].1
    );
    assert!(results[2..].iter().all(|r| r.2.is_none()));

    // Once the bundle exists, federating with it works; our own trust domain never does.
    federated_bundle(&ch, "other.org").await;
    let mut fed = entry("/fed", "/agent", &["unix:uid:1"]);
    fed.federates_with = vec!["other.org".into()];
    let mut own = entry("/own", "/agent", &["unix:uid:1"]);
    own.federates_with = vec!["example.org".into()];
    let results = create(&ch, vec![fed, own]).await;
    assert_eq!(results[0].0, 0, "{}", results[0].1);
    assert_eq!(results[0].2.as_ref().unwrap().federates_with, ["other.org"]);
    assert!(
        results[1].1.contains("own trust domain"),
        "{}",
        results[1].1
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn list_filters_paging_count_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    federated_bundle(&ch, "a.org").await;
    federated_bundle(&ch, "b.org").await;

    let mut e1 = entry("/one", "/agent/1", &["unix:uid:1", "unix:gid:1"]);
    e1.federates_with = vec!["a.org".into(), "b.org".into()];
    e1.hint = "primary".into();
    let mut e2 = entry("/two", "/agent/1", &["unix:uid:1"]);
    e2.federates_with = vec!["a.org".into()];
    e2.downstream = true;
    let e3 = entry("/three", "/agent/2", &["k8s:ns:x"]);
    let results = create(&ch, vec![e1, e2, e3]).await;
    assert!(results.iter().all(|r| r.0 == 0), "{results:?}");

    use list_entries_request::Filter;
    let by_parent = Filter {
        by_parent_id: Some(id("/agent/1")),
        ..Default::default()
    };
    assert_eq!(list(&ch, by_parent).await, ["/one", "/two"]);
    let by_id = Filter {
        by_spiffe_id: Some(id("/three")),
        ..Default::default()
    };
    assert_eq!(list(&ch, by_id).await, ["/three"]);
    let selectors = |sels: &[&str], m: i32| Filter {
        by_selectors: Some(types::SelectorMatch {
            selectors: sels.iter().map(|s| sel(s)).collect(),
            r#match: m,
        }),
        ..Default::default()
    };
    assert_eq!(list(&ch, selectors(&["unix:uid:1"], 0)).await, ["/two"]);
    assert_eq!(list(&ch, selectors(&["unix:uid:1"], 1)).await, ["/two"]);
    assert_eq!(
        list(&ch, selectors(&["unix:uid:1"], 2)).await,
        ["/one", "/two"]
    );
    assert_eq!(
        list(&ch, selectors(&["unix:gid:1", "k8s:ns:x"], 3)).await,
        ["/one", "/three"]
    );
    let federates = |tds: &[&str], m: i32| Filter {
        by_federates_with: Some(types::FederatesWithMatch {
            trust_domains: tds.iter().map(|t| t.to_string()).collect(),
            r#match: m,
        }),
        ..Default::default()
    };
    assert_eq!(list(&ch, federates(&["a.org"], 0)).await, ["/two"]);
    assert_eq!(
        list(&ch, federates(&["spiffe://a.org"], 2)).await,
        ["/one", "/two"]
    );
    assert_eq!(list(&ch, federates(&["b.org"], 3)).await, ["/one"]);
    let hint = Filter {
        by_hint: Some("primary".into()),
        ..Default::default()
    };
    assert_eq!(list(&ch, hint).await, ["/one"]);
    let downstream = Filter {
        by_downstream: Some(true),
        ..Default::default()
    };
    assert_eq!(list(&ch, downstream).await, ["/two"]);

    let mut client = EntryClient::new(ch.clone());
    let count = client
        .count_entries(CountEntriesRequest {
            filter: Some(count_entries_request::Filter {
                by_parent_id: Some(id("/agent/1")),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 2);
    let all = client
        .count_entries(CountEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(all, 3);

    // Pages of two, then one, then no token; the mask keeps only the hint.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_entries(ListEntriesRequest {
                page_size: 2,
                page_token: token.clone(),
                output_mask: Some(types::EntryMask {
                    hint: true,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 2);
        for e in &page.entries {
            assert!(
                e.spiffe_id.is_none() && e.selectors.is_empty(),
                "masked: {e:?}"
            );
            seen.push(e.id.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3);
    let err = client
        .list_entries(ListEntriesRequest {
            page_token: "garbage".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .list_entries(ListEntriesRequest {
            filter: Some(selectors(&["unix:uid:1"], 9)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("unknown match behavior"),
        "{}",
        err.message()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn get_update_and_delete_follow_spire() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let ch = admin(&config).await;
    let mut client = EntryClient::new(ch.clone());
    let results = create(
        &ch,
        vec![
            entry("/web", "/agent", &["unix:uid:1"]),
            entry("/db", "/agent", &["unix:uid:2"]),
        ],
    )
    .await;
    let web = results[0].2.clone().unwrap();
    let db = results[1].2.clone().unwrap();

    let got = client
        .get_entry(GetEntryRequest {
            id: web.id.clone(),
            output_mask: Some(types::EntryMask {
                spiffe_id: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.spiffe_id, web.spiffe_id);
    assert!(got.selectors.is_empty() && got.parent_id.is_none());
    let err = client
        .get_entry(GetEntryRequest {
            id: "missing".into(),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A masked update changes only the hint; the unmasked one replaces every field.
    let update = |entries, input_mask| BatchUpdateEntryRequest {
        entries,
        input_mask,
        output_mask: None,
    };
    let hinted = types::Entry {
        id: web.id.clone(),
        hint: "front".into(),
        ..Default::default()
    };
    let out = client
        .batch_update_entry(update(
            vec![hinted.clone()],
            Some(types::EntryMask {
                hint: true,
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    let updated = out.results[0].entry.clone().unwrap();
    assert_eq!(updated.hint, "front");
    assert_eq!(
        updated.selectors, web.selectors,
        "untouched outside the mask"
    );
    assert_eq!(updated.revision_number, web.revision_number + 1);

    let mut no_selectors = web.clone();
    no_selectors.selectors.clear();
    let out = client
        .batch_update_entry(update(vec![no_selectors], None))
        .await
        .unwrap()
        .into_inner();
    let s = out.results[0].status.clone().unwrap();
    assert_eq!(
        s.code,
        Code::InvalidArgument as i32,
        "no mask: every field, selectors too"
    );
    assert!(s.message.contains("selectors"), "{}", s.message);

    // Making /db identical to /web collides; a missing ID is NotFound.
    let mut clash = web.clone();
    clash.id = db.id.clone();
    let mut missing = web.clone();
    missing.id = "missing".into();
    missing.selectors = vec![sel("unix:uid:3")];
    let out = client
        .batch_update_entry(update(
            vec![clash, missing],
            Some(types::EntryMask {
                spiffe_id: true,
                selectors: true,
                hint: true,
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = out
        .results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(codes, [Code::AlreadyExists as i32, Code::NotFound as i32]);

    let out = client
        .batch_delete_entry(BatchDeleteEntryRequest {
            ids: vec![web.id.clone(), web.id.clone(), "bad id!".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = out
        .results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(
        codes,
        [
            Code::Ok as i32,
            Code::NotFound as i32,
            Code::InvalidArgument as i32
        ]
    );
    server.stop().await.unwrap();
}
