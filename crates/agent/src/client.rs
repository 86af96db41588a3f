//! The gRPC channel to the server's agent API (TLS over TCP, ALPN h2), the SPIRE RPCs the agent
//! uses and Lanyard's change notifications (`Notify/Watch`).
//!
//! The channel connects lazily and reconnects by itself after connection failures; callers
//! ask for a fresh channel with [`ServerClient::reconnect`] when the client certificate
//! changed, so the server sees the new one.

use std::error::Error as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use lanyard_proto::lanyard::agent::v1::{WatchRequest, WatchResponse, notify_client::NotifyClient};
use lanyard_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, RenewAgentRequest, agent_client::AgentClient,
    attest_agent_request, attest_agent_response,
};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, GetFederatedBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    GetAuthorizedEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::server::svid::v1::{
    BatchNewX509svidRequest, NewJwtsvidRequest, NewX509svidParams, batch_new_x509svid_response,
    svid_client::SvidClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::TrustDomain;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::config::ServerAddress;
use crate::denial::Denial;
use crate::report::append_causes;
use crate::tls::{TrustOrigin, does_not_chain};

#[path = "client_sync.rs"]
mod client_sync;
pub(crate) use client_sync::AuthorizedEntries;

/// How long a TCP + TLS connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one RPC may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest GetAuthorizedEntries answer the agent reads. gRPC's 4 MiB default is reached by
/// a node with a few hundred entries listing many DNS names; past the limit the agent could not
/// sync at all. Paging through SyncAuthorizedEntries (issue #9) removes the need for it.
const AUTHORIZED_ENTRIES_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The node attestor the agent speaks.
pub(crate) const JOIN_TOKEN: &str = "join_token";

/// A server API RPC that failed.
#[derive(Debug, thiserror::Error)]
#[error("{rpc}: {detail}")]
pub struct RpcError {
    /// The RPC, as `Service/Method`.
    pub rpc: &'static str,
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The server's message, or what went wrong on the way.
    pub detail: String,
    /// The TLS handshake failed because the server's certificate does not chain to the bundle.
    pub(crate) server_not_trusted: bool,
    /// The server refused the agent itself (evicted, banned), not just this request.
    pub(crate) denial: Option<Denial>,
}

impl RpcError {
    pub(crate) fn from_status(rpc: &'static str, status: &tonic::Status) -> Self {
        Self {
            rpc,
            code: status.code(),
            detail: describe(status),
            server_not_trusted: false,
            denial: Denial::of(status),
        }
    }

    fn protocol(rpc: &'static str, detail: impl Into<String>) -> Self {
        Self {
            rpc,
            code: tonic::Code::Internal,
            detail: detail.into(),
            server_not_trusted: false,
            denial: None,
        }
    }

    /// Whether the server's certificate does not chain to the agent's bundle. Waiting does not
    /// change that: the bundle or the server address is wrong, or the server's CA changed.
    pub(crate) fn server_not_trusted(&self) -> bool {
        self.server_not_trusted
    }

    /// Whether trying again later may help (the server was unreachable or overloaded), as
    /// opposed to a refusal.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.code,
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown
                | tonic::Code::ResourceExhausted
                | tonic::Code::Aborted
        )
    }
}

/// The status message followed by the causes it does not already mention (for transport
/// errors the interesting part, such as a certificate problem, sits in the causes).
fn describe(status: &tonic::Status) -> String {
    let mut text = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    append_causes(&mut text, status.source());
    text
}

/// The TLS error in `status`'s causes, if it says that the server's certificate does not chain
/// to the bundle. The connector reports it inside an `io::Error`, whose `source` skips it.
fn chain_failure(status: &tonic::Status) -> Option<&rustls::Error> {
    let mut next = status.source();
    while let Some(cause) = next {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls.filter(|e| does_not_chain(e)) {
            return Some(tls);
        }
        next = cause.source();
    }
    None
}

/// The agent's client of the server API.
pub(crate) struct ServerClient {
    address: ServerAddress,
    tls: Arc<ClientConfig>,
    /// Where the bundle in `tls` comes from, for the error when the server does not match it.
    origin: TrustOrigin,
    channel: Mutex<Channel>,
}

impl ServerClient {
    /// A client that connects to `address` with `tls` on first use; `origin` says where the
    /// bundle `tls` checks the server against comes from.
    pub(crate) fn new(address: ServerAddress, tls: Arc<ClientConfig>, origin: TrustOrigin) -> Self {
        let channel = Mutex::new(lazy_channel(&address, &tls));
        Self {
            address,
            tls,
            origin,
            channel,
        }
    }

    /// The error of a failed `rpc`. When the server's certificate does not chain to the bundle,
    /// the message names the server, the bundle and the fix instead of the bare TLS error.
    fn error(&self, rpc: &'static str, status: &tonic::Status) -> RpcError {
        let mut error = RpcError::from_status(rpc, status);
        if let Some(tls) = chain_failure(status) {
            error.detail = format!(
                "the server at {} presented a certificate that does not chain to {} ({tls}); {}",
                self.address.addr,
                self.origin,
                self.origin.remedy()
            );
            error.server_not_trusted = true;
        }
        error
    }

    /// Drops the current connection; the next RPC handshakes anew (with the current client
    /// certificate and bundle).
    pub(crate) fn reconnect(&self) {
        let fresh = lazy_channel(&self.address, &self.tls);
        *self.channel.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    fn channel(&self) -> Channel {
        self.channel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `Agent/AttestAgent` with a join token; returns the agent's new X509-SVID.
    pub(crate) async fn attest_join_token(
        &self,
        token: &str,
        csr: Vec<u8>,
    ) -> Result<types::X509svid, RpcError> {
        const RPC: &str = "Agent/AttestAgent";
        let request = AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(types::AttestationData {
                        r#type: JOIN_TOKEN.to_string(),
                        payload: token.as_bytes().to_vec(),
                    }),
                    params: Some(AgentX509svidParams { csr }),
                },
            )),
        };
        let mut responses = AgentClient::new(self.channel())
            .attest_agent(futures::stream::iter([request]))
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner();
        let first = responses
            .message()
            .await
            .map_err(|s| self.error(RPC, &s))?
            .ok_or_else(|| {
                RpcError::protocol(RPC, "the server closed the stream without a result")
            })?;
        match first.step {
            Some(attest_agent_response::Step::Result(result)) => result
                .svid
                .ok_or_else(|| RpcError::protocol(RPC, "the result carries no SVID")),
            Some(attest_agent_response::Step::Challenge(_)) => Err(RpcError::protocol(
                RPC,
                "the server sent a challenge, but join_token attestation has none",
            )),
            None => Err(RpcError::protocol(
                RPC,
                "the response carries neither result nor challenge",
            )),
        }
    }

    /// `Agent/AttestAgent` with x509pop: sends `payload` (the certificate chain), answers the
    /// server's one challenge with `respond`, and returns the agent's new X509-SVID.
    pub(crate) async fn attest_x509pop(
        &self,
        payload: Vec<u8>,
        csr: Vec<u8>,
        respond: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<types::X509svid, RpcError> {
        const RPC: &str = "Agent/AttestAgent";
        let params = AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(types::AttestationData {
                        r#type: crate::bootstrap::X509POP.to_string(),
                        payload,
                    }),
                    params: Some(AgentX509svidParams { csr }),
                },
            )),
        };
        // Room for both messages, so sending never waits on the server.
        let (requests, outgoing) = tokio::sync::mpsc::channel(2);
        requests
            .send(params)
            .await
            .map_err(|_| RpcError::protocol(RPC, "the request stream closed early"))?;
        let mut responses = AgentClient::new(self.channel())
            .attest_agent(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner();
        let mut respond = Some(respond);
        loop {
            let message = responses
                .message()
                .await
                .map_err(|s| self.error(RPC, &s))?
                .ok_or_else(|| {
                    RpcError::protocol(RPC, "the server closed the stream without a result")
                })?;
            match message.step {
                Some(attest_agent_response::Step::Result(result)) => {
                    return result
                        .svid
                        .ok_or_else(|| RpcError::protocol(RPC, "the result carries no SVID"));
                }
                Some(attest_agent_response::Step::Challenge(challenge)) => {
                    let respond = respond.take().ok_or_else(|| {
                        RpcError::protocol(RPC, "the server sent a second x509pop challenge")
                    })?;
                    let answer = respond(&challenge).map_err(|e| RpcError::protocol(RPC, e))?;
                    let step = attest_agent_request::Step::ChallengeResponse(answer);
                    requests
                        .send(AttestAgentRequest { step: Some(step) })
                        .await
                        .map_err(|_| {
                            RpcError::protocol(RPC, "the server stopped reading the attestation")
                        })?;
                }
                None => {
                    return Err(RpcError::protocol(
                        RPC,
                        "the response carries neither result nor challenge",
                    ));
                }
            }
        }
    }

    /// `Agent/RenewAgent`: a new agent SVID for the key behind `csr`.
    pub(crate) async fn renew_agent(&self, csr: Vec<u8>) -> Result<types::X509svid, RpcError> {
        const RPC: &str = "Agent/RenewAgent";
        AgentClient::new(self.channel())
            .renew_agent(RenewAgentRequest {
                params: Some(AgentX509svidParams { csr }),
            })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner()
            .svid
            .ok_or_else(|| RpcError::protocol(RPC, "the response carries no SVID"))
    }

    /// `Entry/GetAuthorizedEntries`. One answer holds every entry the agent may have, so it
    /// may exceed gRPC's 4 MiB default.
    pub(crate) async fn authorized_entries(&self) -> Result<Vec<types::Entry>, RpcError> {
        const RPC: &str = "Entry/GetAuthorizedEntries";
        Ok(EntryClient::new(self.channel())
            .max_decoding_message_size(AUTHORIZED_ENTRIES_MAX_BYTES)
            .get_authorized_entries(GetAuthorizedEntriesRequest { output_mask: None })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner()
            .entries)
    }

    /// `Bundle/GetBundle`: the bundle of the server's own trust domain.
    pub(crate) async fn bundle(&self) -> Result<types::Bundle, RpcError> {
        const RPC: &str = "Bundle/GetBundle";
        Ok(BundleClient::new(self.channel())
            .get_bundle(GetBundleRequest { output_mask: None })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner())
    }

    /// `Bundle/GetFederatedBundle`: the bundle the server holds for the foreign trust domain
    /// `td` (`NotFound` when it holds none).
    pub(crate) async fn federated_bundle(
        &self,
        td: &TrustDomain,
    ) -> Result<types::Bundle, RpcError> {
        const RPC: &str = "Bundle/GetFederatedBundle";
        Ok(BundleClient::new(self.channel())
            .get_federated_bundle(GetFederatedBundleRequest {
                trust_domain: td.name().to_string(),
                output_mask: None,
            })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner())
    }

    /// `SVID/NewJWTSVID`: a JWT-SVID for entry `entry_id` with `audience`.
    pub(crate) async fn new_jwt_svid(
        &self,
        entry_id: &str,
        audience: &[String],
    ) -> Result<types::Jwtsvid, RpcError> {
        const RPC: &str = "SVID/NewJWTSVID";
        SvidClient::new(self.channel())
            .new_jwtsvid(NewJwtsvidRequest {
                entry_id: entry_id.to_string(),
                audience: audience.to_vec(),
            })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner()
            .svid
            .ok_or_else(|| RpcError::protocol(RPC, "the response carries no JWT-SVID"))
    }

    /// `Notify/Watch`: the server's change notifications, as long as the stream stays open (the
    /// RPC timeout covers opening it, not its lifetime). A server without the service (SPIRE)
    /// answers `Unimplemented`.
    pub(crate) async fn watch(&self) -> Result<WatchStream, RpcError> {
        let mut client = NotifyClient::new(self.channel());
        let stream = client
            .watch(WatchRequest {})
            .await
            .map_err(|s| self.error(WATCH_RPC, &s))?
            .into_inner();
        Ok(WatchStream(stream))
    }

    /// `SVID/BatchNewX509SVID`: one result per request, in request order.
    pub(crate) async fn new_x509_svids(
        &self,
        params: Vec<NewX509svidParams>,
    ) -> Result<Vec<batch_new_x509svid_response::Result>, RpcError> {
        const RPC: &str = "SVID/BatchNewX509SVID";
        let asked = params.len();
        let results = SvidClient::new(self.channel())
            .batch_new_x509svid(BatchNewX509svidRequest { params })
            .await
            .map_err(|s| self.error(RPC, &s))?
            .into_inner()
            .results;
        if results.len() != asked {
            return Err(RpcError::protocol(
                RPC,
                format!("{} results for {asked} requests", results.len()),
            ));
        }
        Ok(results)
    }
}

/// The RPC name of [`ServerClient::watch`], for errors.
pub(crate) const WATCH_RPC: &str = "Notify/Watch";

/// An open `Notify/Watch` stream.
pub(crate) struct WatchStream(tonic::Streaming<WatchResponse>);

impl WatchStream {
    /// The next notification; `None` when the server ended the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is either returned or still in the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<WatchResponse>, RpcError> {
        self.0
            .message()
            .await
            .map_err(|s| RpcError::from_status(WATCH_RPC, &s))
    }
}

/// A channel that dials TCP, then TLS with `tls`, on first use and after failures.
fn lazy_channel(address: &ServerAddress, tls: &Arc<ClientConfig>) -> Channel {
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    let addr = address.addr.clone();
    let name = address.name.clone();
    // The TLS is ours, so tonic must see a plain-text scheme; the authority is informational.
    let endpoint = Endpoint::from_shared(format!("http://{}", address.addr))
        .unwrap_or_else(|_| Endpoint::from_static("http://lanyard-server"))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
        let connector = connector.clone();
        let addr = addr.clone();
        let name = name.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestCa;
    use crate::tls::{AgentCert, ServerTrust, client_config};

    #[test]
    fn unavailable_is_transient_and_refusals_are_not() {
        let s = tonic::Status::unavailable("connection refused");
        assert!(RpcError::from_status("X/Y", &s).is_transient());
        let s = tonic::Status::permission_denied("join token has expired");
        let e = RpcError::from_status("Agent/AttestAgent", &s);
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "Agent/AttestAgent: join token has expired");
    }

    fn client_trusting(
        ca: &TestCa,
        server: std::net::SocketAddr,
        origin: TrustOrigin,
    ) -> ServerClient {
        let bundle = Arc::new(arc_swap::ArcSwap::from_pointee(ca.bundle()));
        let tls = client_config(
            &ca.td,
            ServerTrust::Bundle(bundle),
            Arc::new(AgentCert::default()),
        )
        .unwrap();
        let address = ServerAddress::parse(&server.to_string()).unwrap();
        ServerClient::new(address, tls, origin)
    }

    #[tokio::test]
    async fn server_from_another_ca_is_named_with_the_bundle_and_the_fix() {
        let ca = TestCa::new();
        let stranger = TestCa::new();
        let server = stranger.tls_server("/spire/server").await;
        let origin = TrustOrigin::File {
            path: "/etc/lanyard/bundle.pem".into(),
            stored_in: None,
        };
        let client = client_trusting(&ca, server, origin);

        let err = client
            .attest_join_token("token", Vec::new())
            .await
            .unwrap_err();
        assert!(err.server_not_trusted(), "{err}");
        let text = err.to_string();
        for part in [
            format!("the server at {server} presented a certificate that does not chain to"),
            "the trust bundle file /etc/lanyard/bundle.pem".to_string(),
            "invalid peer certificate".to_string(),
            "`lanyard server bundle show`".to_string(),
        ] {
            assert!(text.contains(&part), "{part:?} missing from {text}");
        }
    }

    #[tokio::test]
    async fn server_with_the_right_ca_but_another_id_is_not_a_bundle_problem() {
        let ca = TestCa::new();
        let server = ca.tls_server("/not/the/server").await;
        let client = client_trusting(&ca, server, TrustOrigin::Stored("/var/lib/agent".into()));
        let err = client.bundle().await.unwrap_err();
        assert!(!err.server_not_trusted(), "{err}");
        assert!(err.detail.contains("not authorized"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_transient_and_not_a_bundle_problem() {
        let ca = TestCa::new();
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let client = client_trusting(&ca, closed, TrustOrigin::Stored("/var/lib/agent".into()));
        let err = client.authorized_entries().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(!err.server_not_trusted(), "{err}");
        assert_eq!(err.detail.matches("(os error 111)").count(), 1, "{err}");
        assert!(!err.detail.contains("transport error"), "{err}");
    }
}
