//! Real answers of our server, as the bytes that crossed the socket: a source that signs real
//! JWT-SVIDs (so `ValidateJWTSVID` succeeds) and a gRPC client whose codec hands back each
//! message undecoded.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanyard_ca::{KeyType, generate_key_pair};
use lanyard_spiffe::jwt::{JwtAlgorithm, JwtPublicKey, JwtSigner, JwtSigningKey, JwtSvidClaims};
use lanyard_spiffe::{JwtBundle, JwtBundleSet, SpiffeId};
use lanyard_workload::{
    BundlesSnapshot, Caller, IdentitySource, JwtSvidItem, ServeError, SourceError,
    WorkloadListener, X509Snapshot,
};
use prost::bytes::{Buf, BufMut};
use tokio::sync::{oneshot, watch};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::support::{FakeSource, next, with_header};

/// The `kid` of the one JWT signing key.
pub const KID: &str = "wire-kid";

/// X.509 answers from a [`FakeSource`]; JWT-SVIDs signed for each of its identities with one
/// ES256 key, whose JWT bundle is the own trust domain's.
pub struct SigningSource {
    x509: Arc<FakeSource>,
    signer: JwtSigner,
    minted: Mutex<Vec<JwtSvidItem>>,
}

impl SigningSource {
    pub fn new(x509: Arc<FakeSource>) -> Arc<Self> {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let key = JwtSigningKey::from_pkcs8(&key.serialize_der()).unwrap();
        Arc::new(Self {
            x509,
            signer: JwtSigner::new(key, KID, JwtAlgorithm::ES256).unwrap(),
            minted: Mutex::new(Vec::new()),
        })
    }

    /// The public half of the JWT signing key.
    pub fn public_key(&self) -> &JwtPublicKey {
        self.signer.public_key()
    }

    /// Every JWT-SVID handed to the server so far, in order.
    pub fn minted(&self) -> Vec<JwtSvidItem> {
        self.minted.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl IdentitySource for SigningSource {
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError> {
        self.x509.x509_svids(caller).await
    }

    async fn x509_bundles(&self, caller: &Caller) -> Result<BundlesSnapshot, SourceError> {
        self.x509.x509_bundles(caller).await
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.x509.changes()
    }

    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidItem>, SourceError> {
        let now = self.now();
        let snapshot = self.x509.x509_svids(caller).await?;
        let mut items = Vec::new();
        for svid in snapshot.svids {
            if spiffe_id.is_some_and(|id| *id != svid.spiffe_id) {
                continue;
            }
            let claims = JwtSvidClaims {
                subject: svid.spiffe_id.clone(),
                audience: audience.to_vec(),
                issued_at: now,
                expiry: now + Duration::from_secs(300),
                extra: serde_json::Map::new(),
            };
            let token = self.signer.sign(&claims).unwrap();
            items.push(JwtSvidItem {
                spiffe_id: svid.spiffe_id,
                token,
                hint: svid.hint,
            });
        }
        self.minted.lock().unwrap().extend(items.iter().cloned());
        Ok(items)
    }

    async fn jwt_bundles(&self, caller: &Caller) -> Result<JwtBundleSet, SourceError> {
        let snapshot = self.x509.x509_svids(caller).await?;
        let own = snapshot.svids.first().ok_or(SourceError::NoIdentity)?;
        let mut bundle = JwtBundle::new(own.spiffe_id.trust_domain().clone());
        bundle.insert(KID, self.signer.public_key().clone());
        Ok(JwtBundleSet::from_iter([bundle]))
    }
}

/// Our server on a fresh socket, serving a [`SigningSource`].
pub struct Served {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Served {
    pub fn start(source: Arc<SigningSource>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let listener = WorkloadListener::bind(&socket).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(source, async {
            let _ = stopped.await;
        }));
        Self {
            socket,
            _dir: dir,
            stop,
            task,
        }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// Calls Workload API methods with an encoded request and returns the answer's bytes as they
/// came off the wire, so that other decoders see exactly what our server sent.
pub struct RawClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl RawClient {
    pub async fn connect(served: &Served) -> Self {
        let channel = lanyard_workload::client::unix_channel(&served.socket)
            .await
            .unwrap();
        Self {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// The answer to a unary method.
    pub async fn unary(&mut self, method: &str, request: &impl prost::Message) -> Vec<u8> {
        self.grpc.ready().await.unwrap();
        let answer = self
            .grpc
            .unary(with_header(request.encode_to_vec()), path(method), RawCodec)
            .await
            .map_err(|status| format!("{method}: {status:?}"))
            .unwrap();
        answer.into_inner()
    }

    /// The first message of a server-streaming method.
    pub async fn first_streamed(&mut self, method: &str, request: &impl prost::Message) -> Vec<u8> {
        self.grpc.ready().await.unwrap();
        let answer = self
            .grpc
            .server_streaming(with_header(request.encode_to_vec()), path(method), RawCodec)
            .await
            .map_err(|status| format!("{method}: {status:?}"))
            .unwrap();
        let mut stream = answer.into_inner();
        next(&mut stream)
            .await
            .ok_or_else(|| format!("{method}: the stream ended before its first message"))
            .unwrap()
            .map_err(|status| format!("{method}: {status:?}"))
            .unwrap()
    }
}

/// The HTTP/2 path of a method: the service has no package, so it is `/SpiffeWorkloadAPI/<m>`.
fn path(method: &str) -> http::uri::PathAndQuery {
    format!("/SpiffeWorkloadAPI/{method}").try_into().unwrap()
}

/// Writes requests that are already encoded; reads each message as its undecoded bytes.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    /// tonic hands the decoder exactly one message's bytes, framing already removed.
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
