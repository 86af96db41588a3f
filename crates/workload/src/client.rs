//! A Workload API client: connects over a unix socket or TCP, always sends the security
//! header, and parses answers strictly with `lanyard-spiffe`.

use std::collections::BTreeSet;

use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_proto::workload::{X509BundlesRequest, X509svidRequest, X509svidResponse};
use lanyard_spiffe::{TrustDomain, X509Bundle, X509Svid};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::EndpointAddr;
use crate::server::SECURITY_HEADER;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint could not be reached.
    #[error("cannot connect to the Workload API at {addr}: {source}")]
    Connect {
        /// The endpoint.
        addr: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The server answered with an error status.
    #[error("the Workload API refused the request: {} ({:?})", .0.message(), .0.code())]
    Status(#[from] Status),
    /// The stream ended before the first message.
    #[error("the Workload API closed the stream without sending anything")]
    Empty,
    /// A message broke the Workload API rules.
    #[error("the Workload API sent an invalid message: {0}")]
    Invalid(String),
    /// No address was given and none is configured in the environment.
    #[error(transparent)]
    Address(#[from] crate::addr::AddrError),
}

impl ClientError {
    /// Whether trying again after a backoff may help (Workload Endpoint §6, Appendix A). A
    /// refused request (`InvalidArgument`), a missing RPC (`Unimplemented`) or a bad address
    /// will not change by itself; everything else may: an unreachable or unavailable server,
    /// a caller with no identity yet (`PermissionDenied`), a stream that ended, a malformed
    /// message (the next one may be fine).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Status(status) => !matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::Unimplemented
            ),
            ClientError::Address(_) => false,
            ClientError::Connect { .. } | ClientError::Empty | ClientError::Invalid(_) => true,
        }
    }
}

/// Everything `FetchX509SVID` delivered in one message.
#[derive(Clone, Debug)]
pub struct X509Context {
    /// The SVIDs; the first is the default identity.
    pub svids: Vec<X509Svid>,
    /// Bundles: the default SVID's own trust domain first, then federated ones.
    pub bundles: Vec<X509Bundle>,
}

impl X509Context {
    /// The default identity: the first SVID (Workload API §8). A context always holds one.
    pub fn default_svid(&self) -> Option<&X509Svid> {
        self.svids.first()
    }

    /// The bundle of trust domain `td`, to verify peers from that trust domain with.
    pub fn bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.bundles.iter().find(|b| b.trust_domain() == td)
    }
}

type Inner = SpiffeWorkloadApiClient<
    InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>,
>;

/// A connected Workload API client.
pub struct WorkloadClient {
    inner: Inner,
}

fn add_header(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.metadata_mut().insert(
        SECURITY_HEADER,
        tonic::metadata::MetadataValue::from_static("true"),
    );
    Ok(request)
}

impl WorkloadClient {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connect`] when nothing answers there.
    pub async fn connect(addr: &EndpointAddr) -> Result<Self, ClientError> {
        let shown = addr.to_string();
        let connect_err = |source| ClientError::Connect {
            addr: shown.clone(),
            source,
        };
        let channel = match addr {
            EndpointAddr::Unix(path) => {
                let path = path.clone();
                // The URI is required by the API but unused: the connector dials the socket.
                Endpoint::from_static("http://localhost")
                    .connect_with_connector(tower::service_fn(move |_| {
                        let path = path.clone();
                        async move {
                            tokio::net::UnixStream::connect(path)
                                .await
                                .map(TokioIo::new)
                        }
                    }))
                    .await
                    .map_err(connect_err)?
            }
            EndpointAddr::Tcp(sock) => Endpoint::from_shared(format!("http://{sock}"))
                .map_err(connect_err)?
                .connect()
                .await
                .map_err(connect_err)?,
        };
        let interceptor: fn(Request<()>) -> Result<Request<()>, Status> = add_header;
        Ok(Self {
            inner: SpiffeWorkloadApiClient::with_interceptor(channel, interceptor),
        })
    }

    /// Connects to the address in `SPIFFE_ENDPOINT_SOCKET`; for clients with no address
    /// configured (Workload Endpoint §4: explicit configuration wins).
    ///
    /// # Errors
    ///
    /// [`ClientError::Address`] when the variable is unset or invalid, else as
    /// [`WorkloadClient::connect`].
    pub async fn connect_env() -> Result<Self, ClientError> {
        Self::connect(&EndpointAddr::from_env()?).await
    }

    /// The first message of `FetchX509SVID`, parsed and checked.
    ///
    /// # Errors
    ///
    /// A refusal from the server (such as `PermissionDenied` for a caller without identity)
    /// or an invalid message.
    pub async fn fetch_x509_context(&mut self) -> Result<X509Context, ClientError> {
        let mut stream = self
            .inner
            .fetch_x509svid(X509svidRequest {})
            .await?
            .into_inner();
        let first = stream.message().await?.ok_or(ClientError::Empty)?;
        parse_context(first)
    }

    /// Every message of `FetchX509SVID`, parsed, until the server ends the stream.
    ///
    /// # Errors
    ///
    /// When the stream cannot be opened; later failures arrive as stream items.
    pub async fn watch_x509_context(
        &mut self,
    ) -> Result<impl Stream<Item = Result<X509Context, ClientError>> + use<>, ClientError> {
        let stream = self
            .inner
            .fetch_x509svid(X509svidRequest {})
            .await?
            .into_inner();
        Ok(stream.map(|message| parse_context(message?)))
    }

    /// The first message of `FetchX509Bundles`.
    ///
    /// # Errors
    ///
    /// A refusal from the server or an invalid message.
    pub async fn fetch_x509_bundles(&mut self) -> Result<Vec<X509Bundle>, ClientError> {
        let mut stream = self
            .inner
            .fetch_x509_bundles(X509BundlesRequest {})
            .await?
            .into_inner();
        let first = stream.message().await?.ok_or(ClientError::Empty)?;
        if first.bundles.is_empty() {
            return Err(ClientError::Invalid("the response holds no bundle".into()));
        }
        let mut bundles: Vec<X509Bundle> = Vec::with_capacity(first.bundles.len());
        for (td, der) in &first.bundles {
            let parsed = bundle(td, der)?;
            if bundles.iter().any(|b| b.trust_domain() == parsed.trust_domain()) {
                return Err(ClientError::Invalid(format!(
                    "two bundles for trust domain {}",
                    parsed.trust_domain()
                )));
            }
            bundles.push(parsed);
        }
        bundles.sort_by(|a, b| a.trust_domain().cmp(b.trust_domain()));
        Ok(bundles)
    }
}

/// A bundle from a map entry; keys are `spiffe://td` as servers send them, or a bare `td`
/// as go-spiffe also accepts.
fn bundle(td: &str, der: &[u8]) -> Result<X509Bundle, ClientError> {
    let td = TrustDomain::from_name_or_id(td)
        .map_err(|e| ClientError::Invalid(format!("bundle key {td:?}: {e}")))?;
    X509Bundle::from_der(td.clone(), der)
        .map_err(|e| ClientError::Invalid(format!("bundle of {td}: {e}")))
}

/// Parses one `FetchX509SVID` message (Workload API §5.2). Every SVID must parse and match
/// its `spiffe_id`; of SVIDs with the same non-empty hint only the first is kept (§4). The
/// own trust domain's bundle comes from the SVIDs, federated ones follow.
fn parse_context(message: X509svidResponse) -> Result<X509Context, ClientError> {
    if message.svids.is_empty() {
        return Err(ClientError::Invalid("the response holds no SVID".into()));
    }
    let mut svids = Vec::with_capacity(message.svids.len());
    let mut bundles: Vec<X509Bundle> = Vec::new();
    let mut hints = BTreeSet::new();
    for item in &message.svids {
        if !item.hint.is_empty() && !hints.insert(item.hint.as_str()) {
            continue;
        }
        let svid = X509Svid::parse_der(&item.x509_svid, &item.x509_svid_key)
            .map_err(|e| ClientError::Invalid(format!("SVID {:?}: {e}", item.spiffe_id)))?;
        if svid.spiffe_id().as_str() != item.spiffe_id {
            return Err(ClientError::Invalid(format!(
                "spiffe_id {:?} differs from the certificate's {}",
                item.spiffe_id,
                svid.spiffe_id()
            )));
        }
        let td = svid.spiffe_id().trust_domain();
        if !bundles.iter().any(|b| *b.trust_domain() == td) {
            bundles.push(bundle(&td.id_string(), &item.bundle)?);
        }
        svids.push(svid);
    }
    let mut federated = message
        .federated_bundles
        .iter()
        .map(|(td, der)| bundle(td, der))
        .collect::<Result<Vec<_>, _>>()?;
    federated.sort_by(|a, b| a.trust_domain().cmp(b.trust_domain()));
    for f in federated {
        if !bundles.iter().any(|b| b.trust_domain() == f.trust_domain()) {
            bundles.push(f);
        }
    }
    Ok(X509Context { svids, bundles })
}
