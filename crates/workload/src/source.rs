//! What the Workload API server asks of whoever holds the identities.

use std::collections::BTreeMap;

use lanyard_spiffe::SpiffeId;
use tokio::sync::watch;

/// The calling process, as the kernel reports it for the socket connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Process ID, when the kernel reports one.
    pub pid: Option<i32>,
    /// Effective user ID.
    pub uid: u32,
    /// Effective group ID.
    pub gid: u32,
}

/// One X509-SVID with everything the Workload API sends with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509SvidItem {
    /// The identity in the leaf certificate.
    pub spiffe_id: SpiffeId,
    /// Leaf first, then intermediates, concatenated DER.
    pub chain_der: Vec<u8>,
    /// PKCS#8 DER private key.
    pub key_pkcs8: Vec<u8>,
    /// CA certificates of the SVID's own trust domain, concatenated DER.
    pub bundle_der: Vec<u8>,
    /// Operator label, or empty.
    pub hint: String,
}

/// The complete answer to `FetchX509SVID` for one caller at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct X509Snapshot {
    /// The caller's SVIDs; the first is its default identity.
    pub svids: Vec<X509SvidItem>,
    /// Foreign trust domain ID (`spiffe://td`) to its CA certificates, concatenated DER.
    pub federated_bundles: BTreeMap<String, Vec<u8>>,
}

/// The complete answer to `FetchX509Bundles` for one caller at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundlesSnapshot {
    /// Trust domain ID (`spiffe://td`) to CA certificates, concatenated DER; includes the
    /// agent's own trust domain.
    pub bundles: BTreeMap<String, Vec<u8>>,
}

/// Why a source cannot answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The caller is entitled to nothing (possibly not yet): `PermissionDenied`.
    #[error("no identity issued")]
    NoIdentity,
    /// The source cannot answer right now (attestation failed, still starting): `Unavailable`.
    #[error("{0}")]
    Unavailable(String),
}

/// Where the Workload API server gets its answers.
#[async_trait::async_trait]
pub trait IdentitySource: Send + Sync + 'static {
    /// The caller's X509-SVIDs.
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError>;

    /// The X.509 bundles the caller may use.
    async fn x509_bundles(&self, caller: &Caller) -> Result<BundlesSnapshot, SourceError>;

    /// A counter that changes whenever any answer may have changed; open streams recompute
    /// their answer and send it if it differs from the last one sent.
    fn changes(&self) -> watch::Receiver<u64>;
}
