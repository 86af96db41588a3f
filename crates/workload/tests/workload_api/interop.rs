//! The independent `spiffe` crate (rust-spiffe) as the client: what it accepts from our
//! server is what real workloads will accept.

use std::collections::BTreeMap;

use futures::StreamExt;
use lanyard_workload::{SourceError, X509Snapshot};

use crate::support::{FakeSource, TestCa, next, snapshot, start};

async fn spiffe_client(running: &crate::support::Running) -> spiffe::WorkloadApiClient {
    spiffe::WorkloadApiClient::connect_to(format!("unix://{}", running.socket.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn spiffe_crate_fetches_context_and_bundles() {
    let ca = TestCa::new("example.org");
    let other = TestCa::new("other.org");
    let mut svid = ca.svid("/interop");
    svid.hint = "internal".into();
    let running = start(FakeSource::new(Ok(X509Snapshot {
        svids: vec![svid, ca.svid("/second")],
        federated_bundles: BTreeMap::from([("spiffe://other.org".into(), other.bundle_der())]),
    })));
    let client = spiffe_client(&running).await;

    let ctx = client.fetch_x509_context().await.unwrap();
    let default = ctx.default_svid().unwrap();
    assert_eq!(
        default.spiffe_id().to_string(),
        "spiffe://example.org/interop"
    );
    assert_eq!(default.hint(), Some("internal"));
    assert_eq!(ctx.svids().len(), 2);
    let own = spiffe::TrustDomain::new("example.org").unwrap();
    let foreign = spiffe::TrustDomain::new("other.org").unwrap();
    assert!(ctx.bundle_set().get(&own).is_some());
    assert!(ctx.bundle_set().get(&foreign).is_some());

    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert_eq!(bundles.get(&own).unwrap().authorities().len(), 1);
    assert_eq!(bundles.get(&foreign).unwrap().authorities().len(), 1);
    running.shutdown().await;
}

#[tokio::test]
async fn spiffe_crate_stream_sees_rotation() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/before")]));
    let running = start(source.clone());
    let client = spiffe_client(&running).await;
    let mut stream = Box::pin(client.stream_x509_contexts().await.unwrap());
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        first.default_svid().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/before"
    );

    source.set(snapshot(vec![ca.svid("/after")]));
    let second = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        second.default_svid().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/after"
    );

    source.set(Err(SourceError::NoIdentity));
    assert!(next(&mut stream).await.unwrap().is_err());
    assert!(stream.next().await.is_none());
    running.shutdown().await;
}

#[tokio::test]
async fn spiffe_crate_sees_permission_denied_without_identity() {
    let running = start(FakeSource::new(Err(SourceError::NoIdentity)));
    let client = spiffe_client(&running).await;
    let err = client.fetch_x509_context().await.unwrap_err();
    // It recognises PermissionDenied "no identity issued" as the spec's no-identity case.
    assert!(
        matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
        "{err:?}"
    );
    running.shutdown().await;
}
