//! The Workload API server over a real unix socket, with a fake identity source: the wire
//! rules (header, status codes, streaming) and interop with the independent `spiffe` crate.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair};
use lanyard_spiffe::{SpiffeId, TrustDomain};
use lanyard_workload::addr::EndpointAddr;
use lanyard_workload::client::WorkloadClient;
use lanyard_workload::{
    BundlesSnapshot, Caller, IdentitySource, SourceError, X509Snapshot, X509SvidItem, serve_unix,
};
use tokio::sync::watch;

struct FakeSource {
    answer: Mutex<Result<X509Snapshot, SourceError>>,
    callers: Mutex<Vec<Caller>>,
    changes: watch::Sender<u64>,
}

impl FakeSource {
    fn new(answer: Result<X509Snapshot, SourceError>) -> Arc<Self> {
        Arc::new(Self {
            answer: Mutex::new(answer),
            callers: Mutex::new(Vec::new()),
            changes: watch::channel(0).0,
        })
    }

    fn set(&self, answer: Result<X509Snapshot, SourceError>) {
        *self.answer.lock().unwrap() = answer;
        self.changes.send_modify(|n| *n += 1);
    }
}

#[async_trait::async_trait]
impl IdentitySource for FakeSource {
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError> {
        self.callers.lock().unwrap().push(*caller);
        self.answer.lock().unwrap().clone()
    }

    async fn x509_bundles(&self, _caller: &Caller) -> Result<BundlesSnapshot, SourceError> {
        let snapshot = self.answer.lock().unwrap().clone()?;
        let own = snapshot.svids.first().ok_or(SourceError::NoIdentity)?;
        Ok(BundlesSnapshot {
            bundles: BTreeMap::from([(
                own.spiffe_id.trust_domain().id_string(),
                own.bundle_der.clone(),
            )]),
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

struct Ca {
    authority: X509Authority,
}

impl Ca {
    fn new() -> Self {
        let td = TrustDomain::new("example.org").unwrap();
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let authority =
            X509Authority::self_signed(&td, key, Duration::from_secs(3600), SystemTime::now())
                .unwrap();
        Self { authority }
    }

    fn svid(&self, path: &str) -> X509SvidItem {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let id = SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap();
        let leaf = self
            .authority
            .sign_x509_svid(
                &SvidParams {
                    spiffe_id: id.clone(),
                    public_key_der: rcgen::PublicKeyData::subject_public_key_info(&key),
                    ttl: Duration::from_secs(600),
                    dns_names: vec![],
                },
                SystemTime::now(),
            )
            .unwrap();
        X509SvidItem {
            spiffe_id: id,
            chain_der: leaf.to_vec(),
            key_pkcs8: key.serialize_der(),
            bundle_der: self.authority.cert().to_vec(),
            hint: String::new(),
        }
    }
}

struct Running {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(source: Arc<FakeSource>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = socket.clone();
    let task = tokio::spawn(async move {
        serve_unix(&path, source, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "socket never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Running {
        socket,
        _dir: dir,
        stop: Some(stop),
        task,
    }
}

impl Running {
    fn addr(&self) -> EndpointAddr {
        EndpointAddr::Unix(self.socket.clone())
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops promptly even with open streams")
            .unwrap();
    }
}

fn snapshot(items: Vec<X509SvidItem>) -> Result<X509Snapshot, SourceError> {
    Ok(X509Snapshot {
        svids: items,
        federated_bundles: BTreeMap::new(),
    })
}

fn own_uid() -> u32 {
    // Read the same way the server reads a peer's: kernel credentials of a socket pair.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    tokio::net::UnixStream::from_std(a)
        .unwrap()
        .peer_cred()
        .unwrap()
        .uid()
}

#[tokio::test]
async fn request_without_security_header_is_invalid_argument() {
    let ca = Ca::new();
    let running = start(FakeSource::new(snapshot(vec![ca.svid("/a")]))).await;
    let path = running.socket.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
        .unwrap();
    let mut raw =
        lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(channel);
    let err = raw
        .fetch_x509svid(lanyard_proto::workload::X509svidRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "security header missing from request");

    let mut request = tonic::Request::new(lanyard_proto::workload::X509svidRequest {});
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "TRUE".parse().unwrap());
    let err = raw.fetch_x509svid(request).await.unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::InvalidArgument,
        "the value is case-sensitive"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn caller_without_identity_gets_permission_denied() {
    let running = start(FakeSource::new(Err(SourceError::NoIdentity))).await;
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let err = client.fetch_x509_context().await.unwrap_err();
    assert!(err.to_string().contains("no identity issued"), "{err}");
    assert!(err.to_string().contains("PermissionDenied"), "{err}");
    running.shutdown().await;
}

#[tokio::test]
async fn first_message_is_immediate_and_carries_the_callers_credentials() {
    let ca = Ca::new();
    let source = FakeSource::new(snapshot(vec![ca.svid("/first")]));
    let running = start(source.clone()).await;
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        ctx.svids[0].spiffe_id().as_str(),
        "spiffe://example.org/first"
    );
    let caller = source.callers.lock().unwrap()[0];
    assert_eq!(caller.uid, own_uid());
    assert_eq!(caller.pid, Some(i32::try_from(std::process::id()).unwrap()));
    running.shutdown().await;
}

#[tokio::test]
async fn open_stream_receives_changes_but_not_repeats() {
    let ca = Ca::new();
    let one = ca.svid("/one");
    let source = FakeSource::new(snapshot(vec![one.clone()]));
    let running = start(source.clone()).await;
    let mut client = WorkloadClient::connect(&running.addr()).await.unwrap();
    let mut stream = client.watch_x509_context().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.svids[0].spiffe_id().as_str(),
        "spiffe://example.org/one"
    );

    // The same answer again is not resent; a different one is.
    source.set(snapshot(vec![one.clone()]));
    let two = ca.svid("/two");
    source.set(snapshot(vec![two, one]));
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let ids: Vec<_> = next
        .svids
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(
        ids,
        ["spiffe://example.org/two", "spiffe://example.org/one"]
    );

    // Losing every identity ends the stream with PermissionDenied.
    source.set(Err(SourceError::NoIdentity));
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(end.unwrap_err().to_string().contains("PermissionDenied"));
    running.shutdown().await;
}

#[tokio::test]
async fn spiffe_crate_fetches_context_and_bundles() {
    let ca = Ca::new();
    let running = start(FakeSource::new(snapshot(vec![ca.svid("/interop")]))).await;
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", running.socket.display()))
            .await
            .unwrap();
    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(
        ctx.default_svid().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/interop"
    );
    let bundles = client.fetch_x509_bundles().await.unwrap();
    let td = spiffe::TrustDomain::new("example.org").unwrap();
    assert_eq!(bundles.get(&td).unwrap().authorities().len(), 1);
    running.shutdown().await;
}

#[tokio::test]
async fn refuses_to_replace_a_regular_file_with_the_socket() {
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
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}
