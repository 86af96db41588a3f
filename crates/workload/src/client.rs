//! A Workload API client: connects over a unix socket or TCP, always sends the security
//! header, and parses answers strictly with `lanyard-spiffe`.

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
}

/// Everything `FetchX509SVID` delivered in one message.
#[derive(Clone, Debug)]
pub struct X509Context {
    /// The SVIDs; the first is the default identity.
    pub svids: Vec<X509Svid>,
    /// Bundles: the default SVID's own trust domain first, then federated ones.
    pub bundles: Vec<X509Bundle>,
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
        first
            .bundles
            .iter()
            .map(|(td, der)| bundle(td, der))
            .collect()
    }
}

fn bundle(td: &str, der: &[u8]) -> Result<X509Bundle, ClientError> {
    let td = TrustDomain::from_name_or_id(td)
        .map_err(|e| ClientError::Invalid(format!("bundle key {td:?}: {e}")))?;
    X509Bundle::from_der(td.clone(), der)
        .map_err(|e| ClientError::Invalid(format!("bundle of {td}: {e}")))
}

fn parse_context(message: X509svidResponse) -> Result<X509Context, ClientError> {
    if message.svids.is_empty() {
        return Err(ClientError::Invalid("the response holds no SVID".into()));
    }
    let mut svids = Vec::with_capacity(message.svids.len());
    let mut bundles: Vec<X509Bundle> = Vec::new();
    for item in &message.svids {
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
    for (td, der) in &message.federated_bundles {
        let federated = bundle(td, der)?;
        if !bundles
            .iter()
            .any(|b| b.trust_domain() == federated.trust_domain())
        {
            bundles.push(federated);
        }
    }
    Ok(X509Context { svids, bundles })
}
