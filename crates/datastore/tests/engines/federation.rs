//! Federation relationships.

use lanyard_datastore::{
    BundleEndpointProfile, ChangeKind, Datastore, DatastoreError, FederationRelationship,
};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, id};

engine_tests!(
    creates_reads_updates_and_deletes_relationships,
    lists_relationships_in_pages,
    refuses_endpoints_that_are_not_https,
);

fn relationship(name: &str, spiffe: bool) -> FederationRelationship {
    FederationRelationship {
        trust_domain: TrustDomain::new(name).unwrap(),
        bundle_endpoint_url: format!("https://{name}/bundle"),
        profile: if spiffe {
            BundleEndpointProfile::HttpsSpiffe {
                endpoint_spiffe_id: id(&format!("spiffe://{name}/bundle-server")),
            }
        } else {
            BundleEndpointProfile::HttpsWeb
        },
    }
}

async fn creates_reads_updates_and_deletes_relationships(ctx: Ctx) {
    let store = ctx.store;
    let r = relationship("fed.org", true);
    let before = store.latest_change().await.unwrap();
    assert_eq!(store.create_federation_relationship(&r).await.unwrap(), r);
    assert_eq!(
        store
            .get_federation_relationship(&r.trust_domain)
            .await
            .unwrap(),
        Some(r.clone())
    );
    assert!(matches!(
        store.create_federation_relationship(&r).await,
        Err(DatastoreError::FederationRelationshipAlreadyExists(ref t)) if *t == r.trust_domain
    ));

    let web = FederationRelationship {
        bundle_endpoint_url: "https://other.example/b".into(),
        ..relationship("fed.org", false)
    };
    assert_eq!(
        store.update_federation_relationship(&web).await.unwrap(),
        web
    );
    assert_eq!(
        store
            .get_federation_relationship(&r.trust_domain)
            .await
            .unwrap(),
        Some(web)
    );

    store
        .delete_federation_relationship(&r.trust_domain)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_federation_relationship(&r.trust_domain)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.delete_federation_relationship(&r.trust_domain).await,
        Err(DatastoreError::FederationRelationshipNotFound(_))
    ));
    assert!(matches!(
        store.update_federation_relationship(&r).await,
        Err(DatastoreError::FederationRelationshipNotFound(_))
    ));

    let changes = store.changes_since(before, 0).await.unwrap();
    assert_eq!(changes.len(), 3, "create, update, delete: {changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c.kind == ChangeKind::FederationRelationship && c.key == "fed.org")
    );
}

async fn lists_relationships_in_pages(ctx: Ctx) {
    let store = ctx.store;
    for (i, name) in ["c.org", "a.org", "b.org"].into_iter().enumerate() {
        store
            .create_federation_relationship(&relationship(name, i % 2 == 0))
            .await
            .unwrap();
    }
    let (first, next) = store.list_federation_relationships(2, None).await.unwrap();
    let (second, last) = store
        .list_federation_relationships(2, next.as_deref())
        .await
        .unwrap();
    let names: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|r| r.trust_domain.name())
        .collect();
    assert_eq!(names, ["a.org", "b.org", "c.org"]);
    assert!(next.is_some() && last.is_none());
    assert_eq!(first[0], relationship("a.org", false));
}

async fn refuses_endpoints_that_are_not_https(ctx: Ctx) {
    let mut r = relationship("fed.org", false);
    r.bundle_endpoint_url = "http://fed.org/bundle".into();
    let err = ctx
        .store
        .create_federation_relationship(&r)
        .await
        .unwrap_err();
    assert!(matches!(err, DatastoreError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("http://fed.org/bundle"), "{err}");
}
