//! A fake identity source, a test CA, and a server running on a socket in a temp directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair};
use lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_spiffe::{JwtBundle, JwtBundleSet, SpiffeId, TrustDomain};
use lanyard_workload::{
    BundlesSnapshot, Caller, DEFAULT_SHUTDOWN_GRACE, EndpointAddr, IdentitySource, JwtSvidItem,
    ServeError, SourceError, WorkloadListener, X509Snapshot, X509SvidItem,
};
use tokio::sync::{oneshot, watch};
use tonic::transport::{Channel, Endpoint};

/// Answers every caller with the same snapshot, which tests replace at will.
pub struct FakeSource {
    answer: Mutex<Result<X509Snapshot, SourceError>>,
    callers: Mutex<Vec<Caller>>,
    changes: watch::Sender<u64>,
}

impl FakeSource {
    pub fn new(answer: Result<X509Snapshot, SourceError>) -> Arc<Self> {
        Arc::new(Self {
            answer: Mutex::new(answer),
            callers: Mutex::new(Vec::new()),
            changes: watch::channel(0).0,
        })
    }

    /// Replaces the answer and announces a change.
    pub fn set(&self, answer: Result<X509Snapshot, SourceError>) {
        *self.answer.lock().unwrap() = answer;
        self.changes.send_modify(|n| *n += 1);
    }

    /// Every caller the source was asked about, in order.
    pub fn callers(&self) -> Vec<Caller> {
        self.callers.lock().unwrap().clone()
    }

    /// How many open streams are subscribed to changes.
    pub fn subscribers(&self) -> usize {
        self.changes.receiver_count()
    }

    /// Completes once no stream is subscribed any more (every stream was dropped).
    pub async fn all_streams_dropped(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.changes.closed())
            .await
            .expect("every stream is dropped once its client is gone");
    }
}

#[async_trait::async_trait]
impl IdentitySource for FakeSource {
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError> {
        self.callers.lock().unwrap().push(caller.clone());
        self.answer.lock().unwrap().clone()
    }

    /// The own trust domain's bundle (from the first SVID) and the federated ones.
    async fn x509_bundles(&self, caller: &Caller) -> Result<BundlesSnapshot, SourceError> {
        self.callers.lock().unwrap().push(caller.clone());
        let snapshot = self.answer.lock().unwrap().clone()?;
        let own = snapshot.svids.first().ok_or(SourceError::NoIdentity)?;
        let mut bundles = snapshot.federated_bundles.clone();
        bundles.insert(
            own.spiffe_id.trust_domain().id_string(),
            own.bundle_der.clone(),
        );
        Ok(BundlesSnapshot { bundles })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A placeholder token `jwt:<audience>:<id>` per X509-SVID identity.
    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidItem>, SourceError> {
        self.callers.lock().unwrap().push(caller.clone());
        let snapshot = self.answer.lock().unwrap().clone()?;
        let items: Vec<_> = snapshot
            .svids
            .iter()
            .filter(|s| spiffe_id.is_none_or(|id| *id == s.spiffe_id))
            .map(|s| JwtSvidItem {
                spiffe_id: s.spiffe_id.clone(),
                token: format!("jwt:{}:{}", audience.join(","), s.spiffe_id),
                hint: s.hint.clone(),
            })
            .collect();
        match spiffe_id {
            Some(id) if items.is_empty() => Err(SourceError::NotEntitled(id.clone())),
            _ => Ok(items),
        }
    }

    /// An empty JWT bundle for the own trust domain.
    async fn jwt_bundles(&self, caller: &Caller) -> Result<JwtBundleSet, SourceError> {
        self.callers.lock().unwrap().push(caller.clone());
        let snapshot = self.answer.lock().unwrap().clone()?;
        let own = snapshot.svids.first().ok_or(SourceError::NoIdentity)?;
        Ok(JwtBundleSet::from_iter([JwtBundle::new(
            own.spiffe_id.trust_domain().clone(),
        )]))
    }
}

/// A self-signed CA for one trust domain.
pub struct TestCa {
    authority: X509Authority,
}

impl TestCa {
    pub fn new(td: &str) -> Self {
        let td = TrustDomain::new(td).unwrap();
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let authority =
            X509Authority::self_signed(&td, key, Duration::from_secs(3600), SystemTime::now())
                .unwrap();
        Self { authority }
    }

    pub fn bundle_der(&self) -> Vec<u8> {
        self.authority.cert().to_vec()
    }

    pub fn svid(&self, path: &str) -> X509SvidItem {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let id = SpiffeId::from_path(self.authority.trust_domain(), path).unwrap();
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
            bundle_der: self.bundle_der(),
            hint: String::new(),
        }
    }
}

pub fn snapshot(svids: Vec<X509SvidItem>) -> Result<X509Snapshot, SourceError> {
    Ok(X509Snapshot {
        svids,
        federated_bundles: BTreeMap::new(),
    })
}

/// A server on a fresh socket. The socket is bound before `start` returns, so clients can
/// connect at once.
pub struct Running {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

pub fn start(source: Arc<FakeSource>) -> Running {
    start_with_grace(source, DEFAULT_SHUTDOWN_GRACE)
}

pub fn start_with_grace(source: Arc<FakeSource>, grace: Duration) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent").join("api.sock");
    let listener = WorkloadListener::bind(&socket)
        .unwrap()
        .shutdown_grace(grace);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(listener.serve(source, async {
        let _ = stopped.await;
    }));
    Running {
        socket,
        _dir: dir,
        stop: Some(stop),
        task,
    }
}

impl Running {
    pub fn addr(&self) -> EndpointAddr {
        EndpointAddr::Unix(self.socket.clone())
    }

    /// A plain generated client: no security header unless the test adds one.
    pub async fn raw_client(&self) -> SpiffeWorkloadApiClient<Channel> {
        SpiffeWorkloadApiClient::new(
            self.channel(Endpoint::from_static("http://localhost"))
                .await,
        )
    }

    pub async fn channel(&self, endpoint: Endpoint) -> Channel {
        let path = self.socket.clone();
        endpoint
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map(hyper_util::rt::TokioIo::new)
                }
            }))
            .await
            .unwrap()
    }

    /// Signals shutdown; the server must stop within `within`.
    pub async fn shutdown_within(mut self, within: Duration) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(within, self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
        assert!(!self.socket.exists(), "the socket file is removed");
    }

    pub async fn shutdown(self) {
        self.shutdown_within(Duration::from_secs(10)).await;
    }
}

/// Waits for the next stream item, failing instead of hanging.
pub async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a stream item in time")
}

/// A request carrying the security header.
pub fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}
