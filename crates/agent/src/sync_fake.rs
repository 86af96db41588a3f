//! A stand-in for the server's entry and SVID services, and a sync loop wired to it, for the
//! tests of the sync steps. It speaks SyncAuthorizedEntries as entry.proto describes it and
//! counts what it sends, so tests can tell revisions from entries.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use lanyard_ca::{KeyType, SvidParams, SystemClock, generate_key_pair};
use lanyard_proto::spire::api::server::entry::v1 as entry;
use lanyard_proto::spire::api::server::svid::v1 as svid;
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{SpiffeId, X509Svid};
use lanyard_telemetry::{AgentMetrics, Metrics};
use rustls_pki_types::PrivatePkcs8KeyDer;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::{SyncParts, Syncer};
use crate::cache::{Cache, Snapshot};
use crate::client::ServerClient;
use crate::config::ServerAddress;
use crate::published::Published;
use crate::store::{AgentSvid, StateStore};
use crate::test_support::TestCa;
use crate::tls::{AgentCert, ServerTrust, TrustOrigin, client_config};

/// Entries or revisions per page, as the server sends them.
pub(crate) const PAGE: usize = 500;

/// What the fake server holds and what it has sent.
#[derive(Default)]
pub(crate) struct FakeState {
    /// The agent's authorized entries, by ID.
    pub(crate) entries: BTreeMap<String, types::Entry>,
    /// Answer SyncAuthorizedEntries with Unimplemented, as an older server does.
    pub(crate) no_sync_rpc: bool,
    /// Leave this entry out when it is asked for by ID (a misbehaving server).
    pub(crate) withhold: Option<String>,
    /// Full entries sent, by either RPC.
    pub(crate) entries_sent: usize,
    /// Revisions sent.
    pub(crate) revisions_sent: usize,
    /// GetAuthorizedEntries calls.
    pub(crate) legacy_calls: usize,
    /// The number of CSRs in each BatchNewX509SVID call.
    pub(crate) batches: Vec<usize>,
}

/// The fake server: its state and its CA.
#[derive(Clone)]
pub(crate) struct FakeServer {
    pub(crate) state: Arc<Mutex<FakeState>>,
    ca: Arc<TestCa>,
}

/// A wire entry `id` for `spiffe://example.org/<path>`, selected by `unix:uid:<uid>`.
pub(crate) fn wire_entry(id: &str, path: &str, uid: u32, revision: i64) -> types::Entry {
    types::Entry {
        id: id.into(),
        spiffe_id: Some(types::Spiffeid {
            trust_domain: "example.org".into(),
            path: path.into(),
        }),
        selectors: vec![types::Selector {
            r#type: "unix".into(),
            value: format!("uid:{uid}"),
        }],
        revision_number: revision,
        ..Default::default()
    }
}

impl FakeServer {
    /// Starts the server on loopback and returns it with a client of it.
    pub(crate) async fn start(ca: Arc<TestCa>) -> (Self, Arc<ServerClient>) {
        let fake = Self {
            state: Arc::default(),
            ca: Arc::clone(&ca),
        };
        let routes =
            tonic::service::Routes::new(entry::entry_server::EntryServer::new(fake.clone()))
                .add_service(svid::svid_server::SvidServer::new(fake.clone()));
        let addr = ca.grpc_server("/spire/server", routes).await;
        let bundle = Arc::new(arc_swap::ArcSwap::from_pointee(ca.bundle()));
        let tls = client_config(
            &ca.td,
            ServerTrust::Bundle(bundle),
            Arc::new(AgentCert::default()),
        )
        .unwrap();
        let address = ServerAddress::parse(&addr.to_string()).unwrap();
        let origin = TrustOrigin::Stored("/var/lib/agent".into());
        (fake, Arc::new(ServerClient::new(address, tls, origin)))
    }

    /// Replaces the authorized entries.
    pub(crate) fn set_entries(&self, entries: impl IntoIterator<Item = types::Entry>) {
        self.state.lock().unwrap().entries =
            entries.into_iter().map(|e| (e.id.clone(), e)).collect();
    }

    /// Reads the counters and resets them.
    pub(crate) fn take_counts(&self) -> (usize, usize, Vec<usize>) {
        let mut state = self.state.lock().unwrap();
        let counts = (
            state.entries_sent,
            state.revisions_sent,
            state.batches.clone(),
        );
        state.entries_sent = 0;
        state.revisions_sent = 0;
        state.batches.clear();
        counts
    }
}

/// A sync loop for a fresh cache, talking to `client`; the directory holds its data.
pub(crate) fn syncer(ca: &TestCa, client: Arc<ServerClient>) -> (Syncer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let chain = ca.sign(&key, "/spire/agent/test", Duration::from_secs(3600));
    let svid = X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der())).unwrap();
    let parts = SyncParts {
        trust_domain: ca.td.clone(),
        client,
        cert: Arc::new(AgentCert::default()),
        bundle: Arc::new(arc_swap::ArcSwap::from_pointee(ca.bundle())),
        store: Arc::new(StateStore::open(dir.path()).unwrap()),
        agent: AgentSvid { svid, slot: 0 },
        cache: Cache::new(ca.bundle()),
        published: Arc::new(Published::new(Snapshot::empty(ca.td.clone()))),
        interval: Duration::from_secs(5),
        key_type: KeyType::EcP256,
        clock: Arc::new(SystemClock),
        metrics: AgentMetrics::register(&Metrics::new()),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    (Syncer::new(parts), dir)
}

type SyncStream =
    Pin<Box<dyn Stream<Item = Result<entry::SyncAuthorizedEntriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl entry::entry_server::Entry for FakeServer {
    type SyncAuthorizedEntriesStream = SyncStream;

    async fn get_authorized_entries(
        &self,
        _: Request<entry::GetAuthorizedEntriesRequest>,
    ) -> Result<Response<entry::GetAuthorizedEntriesResponse>, Status> {
        let mut state = self.state.lock().unwrap();
        state.legacy_calls += 1;
        state.entries_sent += state.entries.len();
        let entries = state.entries.values().cloned().collect();
        Ok(Response::new(entry::GetAuthorizedEntriesResponse {
            entries,
        }))
    }

    async fn sync_authorized_entries(
        &self,
        request: Request<Streaming<entry::SyncAuthorizedEntriesRequest>>,
    ) -> Result<Response<SyncStream>, Status> {
        if self.state.lock().unwrap().no_sync_rpc {
            return Err(Status::unimplemented(
                "unknown method SyncAuthorizedEntries",
            ));
        }
        let mut incoming = request.into_inner();
        incoming.message().await?;
        let (snapshot, withhold) = {
            let state = self.state.lock().unwrap();
            (state.entries.clone(), state.withhold.clone())
        };
        let (tx, rx) = mpsc::channel(4);
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            let send = |entries: Vec<types::Entry>, revisions: Vec<entry::EntryRevision>, more| {
                let mut counts = state.lock().unwrap();
                counts.entries_sent += entries.len();
                counts.revisions_sent += revisions.len();
                tx.send(Ok(entry::SyncAuthorizedEntriesResponse {
                    entry_revisions: revisions,
                    entries,
                    more,
                }))
            };
            if snapshot.len() <= PAGE {
                let _ = send(snapshot.into_values().collect(), Vec::new(), false).await;
                return;
            }
            let revisions: Vec<_> = snapshot
                .values()
                .map(|e| entry::EntryRevision {
                    id: e.id.clone(),
                    revision_number: e.revision_number,
                })
                .collect();
            let pages = revisions.chunks(PAGE).count();
            for (n, page) in revisions.chunks(PAGE).enumerate() {
                let _ = send(Vec::new(), page.to_vec(), n + 1 < pages).await;
            }
            while let Ok(Some(request)) = incoming.message().await {
                let wanted: Vec<_> = request
                    .ids
                    .iter()
                    .filter(|id| withhold.as_ref() != Some(*id))
                    .filter_map(|id| snapshot.get(id).cloned())
                    .collect();
                let pages = wanted.chunks(PAGE).count().max(1);
                let mut chunks = wanted.chunks(PAGE);
                for n in 0..pages {
                    let page = chunks.next().map(<[_]>::to_vec).unwrap_or_default();
                    let _ = send(page, Vec::new(), n + 1 < pages).await;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn count_entries(
        &self,
        _: Request<entry::CountEntriesRequest>,
    ) -> Result<Response<entry::CountEntriesResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_entries(
        &self,
        _: Request<entry::ListEntriesRequest>,
    ) -> Result<Response<entry::ListEntriesResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn get_entry(
        &self,
        _: Request<entry::GetEntryRequest>,
    ) -> Result<Response<types::Entry>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn batch_create_entry(
        &self,
        _: Request<entry::BatchCreateEntryRequest>,
    ) -> Result<Response<entry::BatchCreateEntryResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn batch_update_entry(
        &self,
        _: Request<entry::BatchUpdateEntryRequest>,
    ) -> Result<Response<entry::BatchUpdateEntryResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn batch_delete_entry(
        &self,
        _: Request<entry::BatchDeleteEntryRequest>,
    ) -> Result<Response<entry::BatchDeleteEntryResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

#[tonic::async_trait]
impl svid::svid_server::Svid for FakeServer {
    /// Signs each CSR for its entry's SPIFFE ID, as the server does.
    async fn batch_new_x509svid(
        &self,
        request: Request<svid::BatchNewX509svidRequest>,
    ) -> Result<Response<svid::BatchNewX509svidResponse>, Status> {
        let params = request.into_inner().params;
        let mut state = self.state.lock().unwrap();
        state.batches.push(params.len());
        let results = params
            .iter()
            .map(|p| {
                let entry = &state.entries[&p.entry_id];
                let id = entry.spiffe_id.as_ref().unwrap();
                let spiffe_id = SpiffeId::from_path(&self.ca.td, &id.path).unwrap();
                let csr = lanyard_ca::parse_csr(&p.csr).unwrap();
                let params = SvidParams {
                    spiffe_id,
                    public_key_der: csr.public_key_der,
                    ttl: Duration::from_secs(3600),
                    dns_names: Vec::new(),
                };
                let leaf = self
                    .ca
                    .authority
                    .sign_x509_svid(&params, std::time::SystemTime::now())
                    .unwrap();
                svid::batch_new_x509svid_response::Result {
                    status: None,
                    svid: Some(types::X509svid {
                        cert_chain: vec![leaf.to_vec()],
                        id: Some(id.clone()),
                        expires_at: 0,
                        hint: String::new(),
                    }),
                }
            })
            .collect();
        Ok(Response::new(svid::BatchNewX509svidResponse { results }))
    }

    async fn mint_x509svid(
        &self,
        _: Request<svid::MintX509svidRequest>,
    ) -> Result<Response<svid::MintX509svidResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn mint_jwtsvid(
        &self,
        _: Request<svid::MintJwtsvidRequest>,
    ) -> Result<Response<svid::MintJwtsvidResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn new_jwtsvid(
        &self,
        _: Request<svid::NewJwtsvidRequest>,
    ) -> Result<Response<svid::NewJwtsvidResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}
