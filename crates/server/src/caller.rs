//! Who is calling: the connection types of both listeners carry what is known about the peer
//! into every request, and [`Caller`] turns that into an authorization decision.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use lanyard_datastore::AttestedAgent;
use lanyard_proto::spire::api::types::PermissionDeniedDetails;
pub(crate) use lanyard_proto::spire::api::types::permission_denied_details::Reason;
use lanyard_spiffe::SpiffeId;
use prost::Message as _;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;
use tonic::Status;
use tonic::transport::server::Connected;

use crate::state::ServerState;

/// What a connection tells about its peer; tonic copies it into each request's extensions.
#[derive(Clone, Debug)]
pub(crate) enum Peer {
    /// A process on this host that could open the admin socket.
    Local {
        /// The peer's uid, for the audit trail.
        uid: Option<u32>,
        /// The peer's gid.
        gid: Option<u32>,
        /// The peer's pid, when the kernel reports one.
        pid: Option<i32>,
        /// The peer's executable (`/proc/<pid>/exe`), when readable.
        exe: Option<std::path::PathBuf>,
    },
    /// A TLS client of the agent API.
    Tls {
        /// Source address.
        addr: Option<SocketAddr>,
        /// The verified client chain, leaf first; empty for anonymous callers.
        certs: Vec<CertificateDer<'static>>,
    },
}

impl Peer {
    /// The peer of a request; absent only if a listener forgot to attach it (a bug).
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Result<&Peer, Status> {
        request
            .extensions()
            .get::<Peer>()
            .ok_or_else(|| Status::internal("connection carries no peer information"))
    }

    /// Admin RPCs: only callers of the admin socket.
    pub(crate) fn require_local(&self) -> Result<(), Status> {
        match self {
            Peer::Local { .. } => Ok(()),
            Peer::Tls { .. } => Err(Status::permission_denied(
                "this RPC is only served on the admin socket",
            )),
        }
    }

    /// Admin RPCs: callers of the admin socket, and callers of the agent API whose X509-SVID
    /// names an ID in `admin_ids` or the SPIFFE ID of an entry with `admin = true` (SPIRE's
    /// rule). Returns the caller's SPIFFE ID for TLS callers, for the log.
    pub(crate) fn require_admin(&self, state: &ServerState) -> Result<Option<SpiffeId>, Status> {
        let Peer::Tls { certs, addr } = self else {
            return Ok(None);
        };
        let Some(leaf) = certs.first() else {
            tracing::info!(
                client.addr = addr.as_ref().map(tracing::field::display),
                "Denied: admin RPC without a certificate"
            );
            return Err(Status::permission_denied(
                "admin RPCs need an admin X509-SVID or the admin socket; the caller presented \
                 no certificate",
            ));
        };
        let id = lanyard_spiffe::x509::spiffe_id_of(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        if state.config.admin_ids.contains(&id) || state.is_admin_entry(&id) {
            return Ok(Some(id));
        }
        tracing::info!(caller.id = %id, "Denied: caller is not an admin");
        Err(Status::permission_denied(format!(
            "caller {id} is not an admin: it is neither in admin_ids nor the SPIFFE ID of an \
             entry with admin = true"
        )))
    }

    /// Whether the caller may use admin RPCs, without logging a denial (for RPCs that admins
    /// and agents may both call).
    pub(crate) fn is_admin(&self, state: &ServerState) -> bool {
        match self {
            Peer::Local { .. } => true,
            Peer::Tls { certs, .. } => certs
                .first()
                .and_then(|leaf| lanyard_spiffe::x509::spiffe_id_of(leaf).ok())
                .is_some_and(|id| {
                    state.config.admin_ids.contains(&id) || state.is_admin_entry(&id)
                }),
        }
    }

    /// Agent RPCs: the caller's certificate must be the current SVID of a known, non-banned
    /// agent.
    pub(crate) async fn require_agent(&self, state: &ServerState) -> Result<AttestedAgent, Status> {
        let credentials = self.agent_credentials()?;
        credentials.authorize(state).await
    }

    /// The SPIFFE ID and serial of the caller's certificate, for authorizing it again later
    /// (long-lived streams) without parsing the certificate each time.
    pub(crate) fn agent_credentials(&self) -> Result<AgentCredentials, Status> {
        let Peer::Tls { certs, addr } = self else {
            return Err(Status::permission_denied(
                "this RPC needs an agent certificate and is only served on the agent API",
            ));
        };
        let Some(leaf) = certs.first() else {
            tracing::info!(
                client.addr = addr.as_ref().map(tracing::field::display),
                "Denied: agent RPC without a certificate"
            );
            return Err(Status::unauthenticated(
                "this RPC needs an agent certificate; attest first",
            ));
        };
        let id = lanyard_spiffe::x509::spiffe_id_of(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        let serial = lanyard_spiffe::x509::serial_of(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        Ok(AgentCredentials { id, serial })
    }
}

/// What an agent's client certificate claims: checked against the agent map on every use.
#[derive(Clone, Debug)]
pub(crate) struct AgentCredentials {
    pub(crate) id: SpiffeId,
    pub(crate) serial: String,
}

impl AgentCredentials {
    /// The agent's record, if the certificate is the current SVID of a known, non-banned
    /// agent (the same rule as [`Peer::require_agent`]).
    pub(crate) async fn authorize(&self, state: &ServerState) -> Result<AttestedAgent, Status> {
        authorize_agent(state, &self.id, &self.serial).await
    }
}

async fn authorize_agent(
    state: &ServerState,
    id: &SpiffeId,
    serial: &str,
) -> Result<AttestedAgent, Status> {
    let agent = state.agent(id).ok_or_else(|| {
        tracing::info!(agent.id = %id, "Denied: unknown agent");
        agent_denied(
            Reason::AgentNotAttested,
            format!("agent {id} is not attested"),
        )
    })?;
    if agent.banned {
        tracing::info!(agent.id = %id, "Denied: banned agent");
        return Err(agent_denied(
            Reason::AgentBanned,
            format!("agent {id} is banned"),
        ));
    }
    if agent.serial == serial {
        return Ok(agent);
    }
    // After RenewAgent the agent may still use the old certificate for a while; once it
    // presents the new one, the old one stops working.
    if agent.new_serial.as_deref() == Some(serial) {
        state
            .datastore
            .promote_agent_serial(id, serial)
            .await
            .map_err(|e| Status::internal(format!("datastore: {e}")))?;
        let promoted = AttestedAgent {
            serial: serial.to_string(),
            expires_at: agent.new_expires_at,
            new_serial: None,
            new_expires_at: 0,
            ..agent
        };
        state.remember_agent(promoted.clone());
        return Ok(promoted);
    }
    tracing::info!(agent.id = %id, serial, "Denied: stale agent certificate");
    Err(agent_denied(
        Reason::AgentNotActive,
        format!("certificate serial {serial} is not the current SVID of agent {id}"),
    ))
}

/// The gRPC status details message (`google.rpc.Status`), which carries typed details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The type URL of [`PermissionDeniedDetails`] inside a `google.protobuf.Any`.
const PERMISSION_DENIED_DETAILS_URL: &str =
    "type.googleapis.com/spire.api.types.PermissionDeniedDetails";

/// `PermissionDenied` with SPIRE's `PermissionDeniedDetails` attached, so an agent can tell a
/// refusal it may cure by attesting again (evicted, stale certificate) from one it may not
/// (banned), as SPIRE's agents and Lanyard's do. The message says the same for people.
pub(crate) fn agent_denied(reason: Reason, message: String) -> Status {
    let details = PermissionDeniedDetails {
        reason: reason.into(),
    };
    let status = RpcStatus {
        code: tonic::Code::PermissionDenied as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: PERMISSION_DENIED_DETAILS_URL.into(),
            value: details.encode_to_vec(),
        }],
    };
    Status::with_details(
        tonic::Code::PermissionDenied,
        message,
        tonic::codegen::Bytes::from(status.encode_to_vec()),
    )
}

impl Peer {
    /// What the kernel tells about the process at the other end of an admin connection.
    pub(crate) fn local(stream: &UnixStream) -> Self {
        let cred = stream.peer_cred().ok();
        let pid = cred.as_ref().and_then(|c| c.pid());
        Peer::Local {
            uid: cred.as_ref().map(|c| c.uid()),
            gid: cred.as_ref().map(|c| c.gid()),
            pid,
            exe: pid.and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok()),
        }
    }
}

/// An accepted agent API connection: TLS over TCP.
pub(crate) struct TlsConn {
    pub(crate) inner: TlsStream<TcpStream>,
    pub(crate) peer: Peer,
}

/// An accepted admin API connection.
pub(crate) struct LocalConn {
    pub(crate) inner: UnixStream,
    pub(crate) peer: Peer,
}

impl Connected for TlsConn {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl Connected for LocalConn {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

macro_rules! delegate_io {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.inner).poll_read(cx, buf)
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}

delegate_io!(TlsConn);
delegate_io!(LocalConn);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_denials_carry_spires_reason_in_the_status_details() {
        let status = agent_denied(Reason::AgentBanned, "agent x is banned".into());
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "agent x is banned");
        let details = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(details.code, tonic::Code::PermissionDenied as i32);
        let [any] = details.details.as_slice() else {
            panic!("one detail expected: {details:?}");
        };
        assert_eq!(any.type_url, PERMISSION_DENIED_DETAILS_URL);
        let reason = PermissionDeniedDetails::decode(any.value.as_slice()).unwrap();
        assert_eq!(reason.reason(), Reason::AgentBanned);
    }
}
