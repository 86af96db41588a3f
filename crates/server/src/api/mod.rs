//! gRPC handlers of the SPIRE server API. One [`Api`] value implements every service; each
//! RPC first decides whether its caller is allowed (see [`crate::caller::Peer`]).

mod agent;
mod agent_admin;
mod bundle;
mod bundle_federated;
mod entry;
mod entry_sync;
mod entry_write;
mod localauthority;
mod notify;
mod relationship;
mod svid;
mod time;
mod trustdomain;

use std::sync::Arc;

use lanyard_ca::{SvidParams, parse_csr};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::SpiffeId;
use lanyard_telemetry::SvidKind;
use tonic::Status;

use crate::convert::wire_id;
use crate::state::{ServerState, unix_seconds};

pub(crate) use notify::NotifyService;

/// The handlers, sharing the server state.
#[derive(Clone)]
pub(crate) struct Api {
    state: Arc<ServerState>,
}

impl Api {
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }

    /// Signs an X509-SVID for `id` with the public key of `csr`, after checking the CSR's
    /// own signature. The CSR's subject and extensions are ignored: the server decides
    /// what goes into the certificate.
    fn sign_from_csr(
        &self,
        id: &SpiffeId,
        csr: &[u8],
        ttl: std::time::Duration,
        dns_names: Vec<String>,
        hint: String,
        kind: SvidKind,
    ) -> Result<types::X509svid, Status> {
        let csr = parse_csr(csr).map_err(|e| Status::invalid_argument(format!("csr: {e}")))?;
        self.sign_x509(id, csr.public_key_der, ttl, dns_names, hint, kind)
    }

    /// Signs an X509-SVID for `id` with a public key whose possession was already proven.
    fn sign_x509(
        &self,
        id: &SpiffeId,
        public_key_der: Vec<u8>,
        ttl: std::time::Duration,
        dns_names: Vec<String>,
        hint: String,
        kind: SvidKind,
    ) -> Result<types::X509svid, Status> {
        let chain = self
            .state
            .ca
            .sign_x509_svid_chain(&SvidParams {
                spiffe_id: id.clone(),
                public_key_der,
                ttl,
                dns_names,
            })
            .map_err(ca_status)?;
        self.state.metrics.svid_signed(kind);
        let leaf = chain
            .first()
            .ok_or_else(|| Status::internal("signing returned no certificate"))?;
        let expires_at = lanyard_spiffe::x509::not_after_of(leaf)
            .map(unix_seconds)
            .map_err(|e| Status::internal(format!("signed certificate: {e}")))?;
        // The leaf, then (under an upstream authority) the server's CA and the upstream
        // intermediates, so the chain validates against the upstream roots in the bundle.
        let cert_chain = chain.iter().map(|c| c.to_vec()).collect();
        Ok(types::X509svid {
            cert_chain,
            id: Some(wire_id(id)),
            expires_at,
            hint,
        })
    }
}

/// Maps a CA failure to a gRPC status: faults in the request are `InvalidArgument`, the rest
/// (the CA's own state, signing) `Internal`.
fn ca_status(e: lanyard_ca::CaError) -> Status {
    use lanyard_ca::CaError as E;
    match e {
        E::MalformedCsr(_)
        | E::CsrSignatureAlgorithm(_)
        | E::CsrSignature(_)
        | E::UnsupportedPublicKey(_)
        | E::ForeignSpiffeId { .. }
        | E::RootSpiffeId(_)
        | E::InvalidDnsName(_)
        | E::EmptyAudience(_)
        | E::InvalidTtl { .. }
        // Claims the caller chose (audiences, extra claims) that no token can carry, such as a
        // token over the validators' size limit.
        | E::Jwt(lanyard_spiffe::jwt::JwtError::InvalidClaims { .. }) => {
            Status::invalid_argument(e.to_string())
        }
        other => {
            tracing::warn!(error = %other, "Signing failed");
            Status::internal(format!("signing failed: {other}"))
        }
    }
}

/// Maps a datastore failure to a gRPC status without losing its message.
fn datastore_status(e: lanyard_datastore::DatastoreError) -> Status {
    tracing::warn!(error = %e, "Datastore request failed");
    Status::internal(format!("datastore: {e}"))
}

/// A count for the wire (`int32`), saturating.
fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A wire page request: the size (0 asks for everything, as SPIRE; larger sizes are capped at
/// `max`) and the token of the page to continue from (none when empty).
fn page(raw_size: i32, token: &str, max: u32) -> Result<(u32, Option<&str>), Status> {
    let size = u32::try_from(raw_size).map_err(|_| {
        Status::invalid_argument(format!("page_size {raw_size}: must not be negative"))
    })?;
    Ok((size.min(max), (!token.is_empty()).then_some(token)))
}

/// Maps a datastore failure of a list call: a page token it did not issue is the caller's
/// fault.
fn list_status(e: lanyard_datastore::DatastoreError) -> Status {
    match e {
        lanyard_datastore::DatastoreError::InvalidInput(msg) => Status::invalid_argument(msg),
        other => datastore_status(other),
    }
}
