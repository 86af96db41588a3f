//! The wire rules: the security header, status codes, and what the streams carry when.

use std::collections::BTreeMap;

use futures::{FutureExt, StreamExt};
use lanyard_proto::workload::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, X509BundlesRequest, X509svidRequest,
};
use lanyard_spiffe::TrustDomain;
use lanyard_workload::{SourceError, WorkloadClient, X509Snapshot};
use tonic::Code;

use crate::support::{FakeSource, TestCa, next, snapshot, start, with_header};

#[tokio::test]
async fn request_without_security_header_is_invalid_argument() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let running = start(source.clone());
    let mut raw = running.raw_client().await;

    let err = raw.fetch_x509svid(X509svidRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "security header missing from request");

    let err = raw
        .fetch_x509_bundles(X509BundlesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(source.callers().is_empty(), "the source is never asked");
    running.shutdown().await;
}

#[tokio::test]
async fn header_value_must_be_exactly_true_and_sent_once() {
    let ca = TestCa::new("example.org");
    let running = start(FakeSource::new(snapshot(vec![ca.svid("/a")])));
    let mut raw = running.raw_client().await;

    for values in [&["TRUE"][..], &["yes"], &["true", "true"]] {
        let mut request = tonic::Request::new(X509svidRequest {});
        for v in values {
            request
                .metadata_mut()
                .append("workload.spiffe.io", v.parse().unwrap());
        }
        let err = raw.fetch_x509svid(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{values:?}");
    }
    raw.fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .expect("exactly one `true` is accepted");
    running.shutdown().await;
}

#[tokio::test]
async fn caller_without_identity_gets_permission_denied() {
    let running = start(FakeSource::new(Err(SourceError::NoIdentity)));
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();

    let err = client.fetch_x509_context().await.unwrap_err();
    assert!(err.to_string().contains("no identity issued"), "{err}");
    assert!(err.to_string().contains("PermissionDenied"), "{err}");
    assert!(err.is_retryable());

    let err = client.fetch_x509_bundles().await.unwrap_err();
    assert!(err.to_string().contains("PermissionDenied"), "{err}");
    running.shutdown().await;
}

#[tokio::test]
async fn empty_svid_list_is_permission_denied_too() {
    let running = start(FakeSource::new(Ok(X509Snapshot::default())));
    let mut raw = running.raw_client().await;
    let err = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    running.shutdown().await;
}

#[tokio::test]
async fn source_that_cannot_answer_gives_unavailable() {
    let running = start(FakeSource::new(Err(SourceError::Unavailable(
        "workload attestation failed".into(),
    ))));
    let mut raw = running.raw_client().await;
    let err = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "workload attestation failed");
    running.shutdown().await;
}

#[tokio::test]
async fn jwt_rpcs_without_identity_are_permission_denied() {
    let running = start(FakeSource::new(Err(SourceError::NoIdentity)));
    let mut raw = running.raw_client().await;
    let fetch = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["db".into()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap_err();
    let bundles = raw
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
        .unwrap_err();
    let validate = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "db".into(),
            svid: "x.y.z".into(),
        }))
        .await
        .unwrap_err();
    for status in [fetch, bundles, validate] {
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "no identity issued");
    }

    // The header rule comes first, for these RPCs too.
    let err = raw
        .fetch_jwt_bundles(JwtBundlesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    running.shutdown().await;
}

#[tokio::test]
async fn fetch_jwt_svid_checks_audience_and_spiffe_id() {
    let ca = TestCa::new("example.org");
    let running = start(FakeSource::new(snapshot(vec![
        ca.svid("/a"),
        ca.svid("/b"),
    ])));
    let mut raw = running.raw_client().await;
    let mut fetch = async |audience: Vec<&str>, spiffe_id: &str| {
        raw.fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: audience.into_iter().map(String::from).collect(),
            spiffe_id: spiffe_id.into(),
        }))
        .await
    };

    let err = fetch(vec![], "").await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "audience must be specified")
    );
    let err = fetch(vec![""], "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = fetch(vec!["db"], "not-an-id").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("not-an-id"), "{}", err.message());
    let err = fetch(vec!["db"], "spiffe://example.org/c")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let all = fetch(vec!["db", "cache"], "").await.unwrap().into_inner();
    let tokens: Vec<_> = all.svids.iter().map(|s| s.svid.as_str()).collect();
    assert_eq!(
        tokens,
        [
            "jwt:db,cache:spiffe://example.org/a",
            "jwt:db,cache:spiffe://example.org/b"
        ]
    );
    let one = fetch(vec!["db"], "spiffe://example.org/b")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.svids.len(), 1);
    assert_eq!(one.svids[0].spiffe_id, "spiffe://example.org/b");
    running.shutdown().await;
}

#[tokio::test]
async fn jwt_bundles_are_jwks_and_validation_refuses_bad_requests() {
    let ca = TestCa::new("example.org");
    let running = start(FakeSource::new(snapshot(vec![ca.svid("/a")])));
    let mut raw = running.raw_client().await;

    let mut stream = raw
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        first.bundles,
        BTreeMap::from([(
            "spiffe://example.org".to_string(),
            b"{\"keys\":[]}".to_vec()
        )])
        .into_iter()
        .collect()
    );

    for (audience, svid) in [("", "x.y.z"), ("db", "")] {
        let err = raw
            .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
                audience: audience.into(),
                svid: svid.into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{audience:?} {svid:?}");
    }
    let err = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "db".into(),
            svid: "x.y.z".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("invalid JWT-SVID: "),
        "{}",
        err.message()
    );
    running.shutdown().await;
}

#[tokio::test]
async fn first_message_is_immediate_and_the_caller_is_this_process() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/first")]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();

    // No change is ever announced: the first message must come anyway.
    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        ctx.default_svid().unwrap().spiffe_id().as_str(),
        "spiffe://example.org/first"
    );
    assert_eq!(ctx.bundles[0].to_der(), ca.bundle_der());

    let caller = source.callers()[0].clone();
    assert_eq!(caller.uid, nix::unistd::geteuid().as_raw());
    assert_eq!(caller.gid, nix::unistd::getegid().as_raw());
    assert_eq!(caller.pid, Some(i32::try_from(std::process::id()).unwrap()));
    running.shutdown().await;
}

#[tokio::test]
async fn open_stream_receives_changes_but_not_repeats() {
    let ca = TestCa::new("example.org");
    let one = ca.svid("/one");
    let source = FakeSource::new(snapshot(vec![one.clone()]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        first.svids[0].spiffe_id().as_str(),
        "spiffe://example.org/one"
    );

    // The same answer again is not resent ...
    source.set(snapshot(vec![one.clone()]));
    // ... a different one is, and the stream is ordered, so the next item must be it.
    let two = ca.svid("/two");
    source.set(snapshot(vec![two, one]));
    let next_ctx = next(&mut stream).await.unwrap().unwrap();
    let ids: Vec<_> = next_ctx
        .svids
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(
        ids,
        ["spiffe://example.org/two", "spiffe://example.org/one"]
    );
    assert!(
        stream.next().now_or_never().is_none(),
        "nothing else was sent"
    );

    // Losing every identity ends the stream with PermissionDenied.
    source.set(Err(SourceError::NoIdentity));
    let end = next(&mut stream).await.unwrap().unwrap_err();
    assert!(end.to_string().contains("PermissionDenied"), "{end}");
    assert!(next(&mut stream).await.is_none());
    running.shutdown().await;
}

#[tokio::test]
async fn federated_bundles_come_and_go_with_the_full_state() {
    let ca = TestCa::new("example.org");
    let other = TestCa::new("other.org");
    let svid = ca.svid("/web");
    let source = FakeSource::new(snapshot(vec![svid.clone()]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    assert_eq!(next(&mut stream).await.unwrap().unwrap().bundles.len(), 1);

    source.set(Ok(X509Snapshot {
        svids: vec![svid.clone()],
        federated_bundles: BTreeMap::from([("spiffe://other.org".into(), other.bundle_der())]),
    }));
    let with = next(&mut stream).await.unwrap().unwrap();
    let other_td = TrustDomain::new("other.org").unwrap();
    assert_eq!(
        with.bundle_for(&other_td).unwrap().to_der(),
        other.bundle_der()
    );

    // An empty map means "removed", and is a change worth sending.
    source.set(snapshot(vec![svid]));
    let without = next(&mut stream).await.unwrap().unwrap();
    assert!(without.bundle_for(&other_td).is_none());
    running.shutdown().await;
}

#[tokio::test]
async fn bundles_rpc_includes_the_own_trust_domain() {
    let ca = TestCa::new("example.org");
    let other = TestCa::new("other.org");
    let running = start(FakeSource::new(Ok(X509Snapshot {
        svids: vec![ca.svid("/web")],
        federated_bundles: BTreeMap::from([("spiffe://other.org".into(), other.bundle_der())]),
    })));
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let bundles = client.fetch_x509_bundles().await.unwrap();
    let tds: Vec<_> = bundles
        .iter()
        .map(|b| b.trust_domain().to_string())
        .collect();
    assert_eq!(tds, ["example.org", "other.org"]);
    running.shutdown().await;
}

#[tokio::test]
async fn bundles_stream_suppresses_identical_answers() {
    let ca = TestCa::new("example.org");
    let other = TestCa::new("other.org");
    let svid = ca.svid("/web");
    let source = FakeSource::new(snapshot(vec![svid.clone()]));
    let running = start(source.clone());
    let mut raw = running.raw_client().await;
    let mut stream = raw
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(first.bundles.len(), 1);

    // A new SVID leaves the bundles as they were: nothing is sent for it.
    source.set(snapshot(vec![ca.svid("/web")]));
    source.set(Ok(X509Snapshot {
        svids: vec![svid],
        federated_bundles: BTreeMap::from([("spiffe://other.org".into(), other.bundle_der())]),
    }));
    let second = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(second.bundles.len(), 2);
    running.shutdown().await;
}
