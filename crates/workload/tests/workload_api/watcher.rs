//! The reconnecting watchers against servers that stop, come back, or refuse.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::stream;
use lanyard_proto::workload::spiffe_workload_api_server::{
    SpiffeWorkloadApi, SpiffeWorkloadApiServer,
};
use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svidRequest,
    X509svidResponse,
};
use lanyard_workload::{EndpointAddr, JwtBundlesWatcher, WorkloadListener, X509Watcher};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::support::{FakeSource, TestCa, snapshot};

/// A server on `socket` until the returned sender fires; the join handle ends once it stopped.
fn serve_at(
    source: Arc<FakeSource>,
    socket: &Path,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = WorkloadListener::bind(socket)
        .unwrap()
        .shutdown_grace(Duration::from_millis(100));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        listener
            .serve(source, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the watcher answers in time")
}

fn first_id(ctx: &lanyard_workload::X509Context) -> String {
    ctx.default_svid().unwrap().spiffe_id().to_string()
}

#[tokio::test]
async fn x509_watcher_reconnects_after_the_server_restarts() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/one")]));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let (stop, task) = serve_at(source.clone(), &socket);

    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    let mut watcher = X509Watcher::x509(EndpointAddr::Unix(socket.clone()))
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .on_retry(move |event| {
            seen.lock().unwrap().push(match event {
                lanyard_workload::client::RetryEvent::Failed { .. } => "failed",
                lanyard_workload::client::RetryEvent::Restored { .. } => "restored",
            });
        });
    let ctx = within(watcher.next()).await.unwrap();
    assert_eq!(first_id(&ctx), "spiffe://example.org/one");
    assert!(events.lock().unwrap().is_empty(), "nothing failed yet");

    source.set(snapshot(vec![ca.svid("/two")]));
    let ctx = within(watcher.next()).await.unwrap();
    assert_eq!(first_id(&ctx), "spiffe://example.org/two");

    stop.send(()).unwrap();
    task.await.unwrap();
    source.set(snapshot(vec![ca.svid("/three")]));
    let next = tokio::spawn(async move {
        let ctx = within(watcher.next()).await.unwrap();
        (first_id(&ctx), watcher)
    });
    // The watcher is retrying against a missing socket now; bring the server back.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (stop, task) = serve_at(source.clone(), &socket);
    let (id, _watcher) = next.await.unwrap();
    assert_eq!(id, "spiffe://example.org/three");
    let events = events.lock().unwrap().clone();
    assert!(events.len() >= 2, "{events:?}");
    assert!(
        events[..events.len() - 1].iter().all(|e| *e == "failed"),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&"restored"), "{events:?}");

    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_federated_bundle_missing_from_a_later_update_is_gone() {
    let ca = TestCa::new("example.org");
    let partner = TestCa::new("partner.org");
    let mut with_partner = snapshot(vec![ca.svid("/one")]).unwrap();
    with_partner
        .federated_bundles
        .insert("spiffe://partner.org".into(), partner.bundle_der());
    let source = FakeSource::new(Ok(with_partner));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let (stop, task) = serve_at(source.clone(), &socket);

    let mut watcher = X509Watcher::x509(EndpointAddr::Unix(socket));
    let partner_td = lanyard_spiffe::TrustDomain::new("partner.org").unwrap();
    let ctx = within(watcher.next()).await.unwrap();
    assert!(ctx.bundle_for(&partner_td).is_some());

    source.set(snapshot(vec![ca.svid("/one")]));
    let ctx = within(watcher.next()).await.unwrap();
    assert!(
        ctx.bundle_for(&partner_td).is_none(),
        "the removed trust domain is gone"
    );

    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn jwt_bundles_watcher_delivers_the_current_set() {
    let ca = TestCa::new("example.org");
    let source = FakeSource::new(snapshot(vec![ca.svid("/one")]));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let (stop, task) = serve_at(source.clone(), &socket);

    let mut watcher = JwtBundlesWatcher::jwt_bundles(EndpointAddr::Unix(socket));
    let set = within(watcher.next()).await.unwrap();
    let td = lanyard_spiffe::TrustDomain::new("example.org").unwrap();
    assert!(set.get(&td).is_some());

    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Refuses every call with one status.
struct Refuser(tonic::Code);

type Never<T> = stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl SpiffeWorkloadApi for Refuser {
    type FetchX509SVIDStream = Never<X509svidResponse>;
    type FetchX509BundlesStream = Never<X509BundlesResponse>;
    type FetchJWTBundlesStream = Never<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        _: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        Err(Status::new(self.0, "refused"))
    }
    async fn fetch_x509_bundles(
        &self,
        _: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        Err(Status::new(self.0, "refused"))
    }
    async fn fetch_jwtsvid(
        &self,
        _: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        Err(Status::new(self.0, "refused"))
    }
    async fn fetch_jwt_bundles(
        &self,
        _: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        Err(Status::new(self.0, "refused"))
    }
    async fn validate_jwtsvid(
        &self,
        _: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        Err(Status::new(self.0, "refused"))
    }
}

async fn stops_on(code: tonic::Code) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let incoming = stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(Refuser(code)))
            .serve_with_incoming(incoming),
    );

    let mut watcher = X509Watcher::x509(EndpointAddr::Unix(socket))
        .backoff(Duration::from_millis(10), Duration::from_millis(50));
    let err = within(watcher.next()).await.err().unwrap();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&format!("{code:?}")), "{err}");
    server.abort();
}

#[tokio::test]
async fn x509_watcher_stops_on_invalid_argument() {
    stops_on(tonic::Code::InvalidArgument).await;
}

#[tokio::test]
async fn x509_watcher_stops_on_unimplemented() {
    stops_on(tonic::Code::Unimplemented).await;
}
