//! A Workload API client: connects over a unix socket or TCP, always sends the security
//! header, and parses answers strictly with `lanyard-spiffe`.

mod context;
mod jwt;
mod watch;

use std::error::Error as _;

use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_proto::workload::{X509BundlesRequest, X509svidRequest};
use lanyard_spiffe::X509Bundle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub use context::X509Context;
pub use watch::{
    DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF, JwtBundlesWatcher, RetryEvent, Watcher,
    X509Watcher,
};

use crate::EndpointAddr;
use crate::server::SECURITY_HEADER;
use context::{bundle, parse_context};

/// Why a client call failed.
///
/// Each message is complete on its own, so no variant has a `source`: tonic repeats causes
/// along its error chains (`transport error`, then the same OS error twice), and a chain walker
/// such as anyhow's `{:#}` would print each of them again. The causes are folded into the
/// message once instead.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint could not be reached.
    #[error("cannot connect to the Workload API at {addr}: {reason}")]
    Connect {
        /// The endpoint.
        addr: String,
        /// What the transport reported, each cause once.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("the Workload API refused the request: {} ({:?})", status_text(.0), .0.code())]
    Status(Status),
    /// The stream ended before the first message.
    #[error("the Workload API closed the stream without sending anything")]
    Empty,
    /// An open stream ended (the agent stopped or closed it).
    #[error("the Workload API closed the stream")]
    Ended,
    /// A message broke the Workload API rules.
    #[error("the Workload API sent an invalid message: {0}")]
    Invalid(String),
    /// No address was given and none is configured in the environment.
    #[error(transparent)]
    Address(#[from] crate::addr::AddrError),
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        ClientError::Status(status)
    }
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
            ClientError::Connect { .. }
            | ClientError::Empty
            | ClientError::Ended
            | ClientError::Invalid(_) => true,
        }
    }
}

type Inner = SpiffeWorkloadApiClient<
    InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>,
>;

/// A connected Workload API client. Clones share the connection.
#[derive(Clone)]
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
        let connect_err = |e: tonic::transport::Error| ClientError::Connect {
            addr: shown.clone(),
            reason: causes(&e),
        };
        let channel = match addr {
            EndpointAddr::Unix(path) => unix_channel(path).await.map_err(connect_err)?,
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
    /// Each item is the complete current state (Workload API §4): an SVID or a federated
    /// bundle missing from a later item has been withdrawn and must no longer be used. A
    /// stream ending with `PermissionDenied` means the caller lost all its identities.
    ///
    /// # Errors
    ///
    /// When the stream cannot be opened; later failures arrive as stream items.
    pub async fn watch_x509_context(
        &mut self,
    ) -> Result<impl Stream<Item = Result<X509Context, ClientError>> + Send + use<>, ClientError>
    {
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
            if bundles
                .iter()
                .any(|b| b.trust_domain() == parsed.trust_domain())
            {
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

/// The status message (its code when empty) followed by the causes it does not already say.
fn status_text(status: &Status) -> String {
    let mut text = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    append_causes(&mut text, status.source());
    text
}

/// The causes of a transport error, each once. tonic's own `transport error` says nothing the
/// causes do not, so it only shows when there is nothing else.
fn causes(e: &tonic::transport::Error) -> String {
    let mut text = String::new();
    append_causes(&mut text, e.source());
    if text.is_empty() {
        text = e.to_string();
    }
    text
}

/// Appends `: cause` for every cause in the chain from `first` whose text `text` does not
/// already contain.
fn append_causes(text: &mut String, first: Option<&(dyn std::error::Error + 'static)>) {
    let mut next = first;
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
}

/// A gRPC channel to any service listening on the unix socket at `path` (the Workload API,
/// the server's admin API). Connects now, so a missing listener is reported at once.
///
/// # Errors
///
/// When nothing accepts connections at `path`.
pub async fn unix_channel(path: &std::path::Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_what_may_change() {
        let retry = |code| ClientError::Status(Status::new(code, "x")).is_retryable();
        assert!(retry(tonic::Code::Unavailable));
        assert!(retry(tonic::Code::PermissionDenied));
        assert!(!retry(tonic::Code::InvalidArgument));
        assert!(!retry(tonic::Code::Unimplemented));
        assert!(!ClientError::Address(crate::addr::AddrError::NotConfigured).is_retryable());
    }

    /// The whole chain as anyhow's `{:#}` prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut next = e.source();
        while let Some(cause) = next {
            text = format!("{text}: {cause}");
            next = cause.source();
        }
        text
    }

    fn occurrences(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[tokio::test]
    async fn connect_failure_names_the_address_and_each_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens.sock");
        let addr = EndpointAddr::Unix(path.clone());
        let err = WorkloadClient::connect(&addr).await.err().unwrap();
        let text = chain(&err);
        assert_eq!(occurrences(&text, &path.display().to_string()), 1, "{text}");
        assert_eq!(occurrences(&text, "(os error 2)"), 1, "{text}");
        assert_eq!(occurrences(&text, "transport error"), 0, "{text}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn overlong_socket_path_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let addr = EndpointAddr::Unix(dir.path().join("s".repeat(200)));
        let err = WorkloadClient::connect(&addr).await.err().unwrap();
        let text = chain(&err);
        assert_eq!(occurrences(&text, "SUN_LEN"), 1, "{text}");
    }

    #[test]
    fn status_shows_its_message_and_causes_once() {
        let plain = ClientError::from(Status::permission_denied("no identity issued"));
        assert_eq!(
            chain(&plain),
            "the Workload API refused the request: no identity issued (PermissionDenied)"
        );
        let caused = ClientError::from(Status::from_error(Box::new(std::io::Error::other(
            "connection reset",
        ))));
        let text = chain(&caused);
        assert_eq!(occurrences(&text, "connection reset"), 1, "{text}");
    }
}
