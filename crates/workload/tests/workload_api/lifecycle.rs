//! Streams end when their client goes away or the server shuts down, and nothing is left
//! behind: no subscriptions, no socket file.

use std::time::Duration;

use lanyard_proto::workload::X509svidRequest;
use lanyard_workload::{ServeError, SourceError, WorkloadClient, serve_unix};
use tonic::Code;
use tonic::transport::Endpoint;

use crate::support::{FakeSource, TestCa, next, snapshot, start, start_with_grace, with_header};

#[tokio::test]
async fn dropping_a_stream_releases_it_while_the_connection_stays() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    next(&mut stream).await.unwrap().unwrap();
    assert_eq!(source.subscribers(), 1);

    drop(stream);
    source.all_streams_dropped().await;

    // The connection still serves.
    client.fetch_x509_context().await.unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn closing_the_connection_releases_its_streams() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut one = Box::pin(client.watch_x509_context().await.unwrap());
    let mut two = Box::pin(client.watch_x509_context().await.unwrap());
    next(&mut one).await.unwrap().unwrap();
    next(&mut two).await.unwrap().unwrap();
    assert_eq!(source.subscribers(), 2);

    drop((one, two, client));
    source.all_streams_dropped().await;
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    // A grace period far longer than the test: the streams must end by themselves.
    let running = start_with_grace(source.clone(), Duration::from_secs(3600));
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    next(&mut stream).await.unwrap().unwrap();

    let stopping = tokio::spawn(running.shutdown_within(Duration::from_secs(10)));
    let end = next(&mut stream).await.unwrap().unwrap_err();
    assert!(end.to_string().contains("Unavailable"), "{end}");
    assert!(end.is_retryable());
    stopping.await.unwrap();
    source.all_streams_dropped().await;
}

#[tokio::test]
async fn shutdown_cuts_off_a_client_that_stopped_reading() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let running = start_with_grace(source.clone(), Duration::from_millis(200));

    // A stream window of zero: the server can send headers but not a single message, so the
    // stream stays open until the connection is cut.
    let channel = running
        .channel(Endpoint::from_static("http://localhost").initial_stream_window_size(0))
        .await;
    let mut raw =
        lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(channel);
    let stuck = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap();
    assert_eq!(source.subscribers(), 1);

    running.shutdown_within(Duration::from_secs(10)).await;
    source.all_streams_dropped().await;
    let err = stuck.into_inner().message().await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);
}

#[tokio::test]
async fn serve_unix_refuses_a_regular_file_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, b"keep me").unwrap();
    let err = serve_unix(
        &path,
        FakeSource::new(Err(SourceError::NoIdentity)),
        async {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServeError::Bind { .. }), "{err}");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[tokio::test]
async fn serve_unix_serves_until_shutdown_and_removes_its_socket() {
    let ca = TestCa::new("example.org");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/api.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let server = serve_unix(&path, source, async {
        let _ = stopped.await;
    });
    let mut server = std::pin::pin!(server);

    // The first poll binds the socket (and then waits for connections).
    assert!(futures::poll!(server.as_mut()).is_pending());
    assert!(path.exists());

    let client = async {
        let addr = lanyard_workload::EndpointAddr::Unix(path.clone());
        let mut client = WorkloadClient::connect(&addr).await.unwrap();
        client.fetch_x509_context().await.unwrap();
        stop.send(()).unwrap();
    };
    let (served, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(server, client)
    })
    .await
    .unwrap();
    served.unwrap();
    assert!(!path.exists());
}

/// What a caller's memo already holds, filling an empty one with `mark`.
async fn memo_mark(caller: &lanyard_workload::Caller, mark: u32) -> u32 {
    *caller
        .memo
        .get_or_try_init(|| async { Ok::<_, ()>(mark) })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stream_keeps_one_memo_and_every_call_starts_with_a_fresh_one() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/a")]));
    let running = start(source.clone());
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    next(&mut stream).await.unwrap().unwrap();
    source.set(snapshot(vec![ca.svid("/b")]));
    next(&mut stream).await.unwrap().unwrap();
    client.fetch_x509_context().await.unwrap();

    let callers = source.callers();
    assert_eq!(callers.len(), 3, "open, recompute, one-shot call");
    assert_eq!(memo_mark(&callers[0], 1).await, 1);
    assert_eq!(
        memo_mark(&callers[1], 2).await,
        1,
        "the recompute sees what the stream's first answer remembered"
    );
    assert_eq!(
        memo_mark(&callers[2], 3).await,
        3,
        "another call on the same connection starts empty"
    );
    running.shutdown().await;
}
