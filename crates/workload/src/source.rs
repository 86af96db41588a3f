//! What the Workload API server asks of whoever holds the identities.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::{JwtBundleSet, SpiffeId};
use tokio::sync::watch;

/// The calling process, as the kernel reports it for the socket connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Process ID, when the kernel reports one.
    pub pid: Option<i32>,
    /// Effective user ID.
    pub uid: u32,
    /// Effective group ID.
    pub gid: u32,
    /// The caller's `/proc/<pid>` directory, opened when the connection was accepted; `None`
    /// when there is no PID or the directory could not be opened (the process is gone, or
    /// `/proc` is not mounted). Attestors that look at the process read through it.
    pub process: Option<ProcessDir>,
}

/// An open handle on one process's `/proc/<pid>` directory.
///
/// Why this is safe against PID reuse: the kernel binds an open `/proc/<pid>` directory to the
/// process it was opened for, not to the number. Once that process has exited, every lookup
/// below the handle (`status`, `exe`, ...) fails with `ESRCH`/`ENOENT`, even when a new process
/// has been given the same PID. Reads relative to the handle (`openat`) therefore either see
/// the original caller or fail. The remaining window is between the peer's `connect` (when
/// `SO_PEERCRED` was recorded) and the `accept` that opens the handle: the caller would have to
/// exit and its PID be recycled in between, while its socket stays connected.
#[derive(Clone, Debug)]
pub struct ProcessDir(Arc<File>);

impl ProcessDir {
    /// Opens `/proc/<pid>` as a directory handle.
    ///
    /// # Errors
    ///
    /// The I/O error of opening it: the process is gone, or `/proc` is not available.
    pub fn open(pid: i32) -> io::Result<Self> {
        Self::open_path(&Path::new("/proc").join(pid.to_string()))
    }

    /// Opens a directory laid out like `/proc/<pid>` (tests use a fake one).
    ///
    /// # Errors
    ///
    /// The I/O error of opening it, or `NotADirectory` when `path` is not a directory.
    pub fn open_path(path: &Path) -> io::Result<Self> {
        let dir = File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Self(Arc::new(dir)))
    }
}

impl AsFd for ProcessDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Two handles are equal when they are clones of the same open directory.
impl PartialEq for ProcessDir {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ProcessDir {}

/// One X509-SVID with everything the Workload API sends with it. Its `Debug` form leaves the
/// private key out.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for X509SvidItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509SvidItem")
            .field("spiffe_id", &self.spiffe_id.as_str())
            .field("chain_der", &format_args!("{} bytes", self.chain_der.len()))
            .field("key_pkcs8", &format_args!("<redacted>"))
            .field(
                "bundle_der",
                &format_args!("{} bytes", self.bundle_der.len()),
            )
            .field("hint", &self.hint)
            .finish()
    }
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

/// One JWT-SVID for the Workload API. Its `Debug` form leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSvidItem {
    /// The identity in `sub`.
    pub spiffe_id: SpiffeId,
    /// The compact JWS.
    pub token: String,
    /// Operator label, or empty.
    pub hint: String,
}

impl std::fmt::Debug for JwtSvidItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSvidItem")
            .field("spiffe_id", &self.spiffe_id.as_str())
            .field("token", &format_args!("<redacted>"))
            .field("hint", &self.hint)
            .finish()
    }
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
    /// The caller asked for a SPIFFE ID that is not one of its identities: `PermissionDenied`.
    #[error("no identity {0} issued to the caller")]
    NotEntitled(SpiffeId),
}

/// Where the Workload API server gets its answers.
///
/// The server asks once when a stream opens and again after every change notification, for
/// each open stream; answers should be cheap (a lookup in a cache, not a round trip).
#[async_trait::async_trait]
pub trait IdentitySource: Send + Sync + 'static {
    /// The caller's X509-SVIDs. An answer without SVIDs is treated as
    /// [`SourceError::NoIdentity`]; of SVIDs sharing a non-empty hint only the first is sent.
    async fn x509_svids(&self, caller: &Caller) -> Result<X509Snapshot, SourceError>;

    /// The X.509 bundles the caller may use. An empty answer is treated as
    /// [`SourceError::Unavailable`]: the map must hold at least the own trust domain.
    async fn x509_bundles(&self, caller: &Caller) -> Result<BundlesSnapshot, SourceError>;

    /// A counter that changes whenever any answer may have changed; open streams recompute
    /// their answer and send it if it differs from the last one sent. Once the sender is
    /// dropped, open streams stay open with their last answer.
    fn changes(&self) -> watch::Receiver<u64>;

    /// JWT-SVIDs for `audience` (never empty): for `spiffe_id` only, which must be one of the
    /// caller's identities ([`SourceError::NotEntitled`] otherwise), or else one per identity of
    /// the caller (Workload API §6.2: all of them). An empty answer is
    /// [`SourceError::NoIdentity`].
    async fn jwt_svids(
        &self,
        caller: &Caller,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidItem>, SourceError>;

    /// The JWT bundles the caller may use, to hand out and to validate JWT-SVIDs with. An
    /// empty set is treated as [`SourceError::Unavailable`].
    async fn jwt_bundles(&self, caller: &Caller) -> Result<JwtBundleSet, SourceError>;

    /// The time JWT-SVIDs are validated at; the system clock unless the source has its own.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn debug_form_leaves_the_private_key_out() {
        let item = X509SvidItem {
            spiffe_id: SpiffeId::parse("spiffe://example.org/web").unwrap(),
            chain_der: vec![0x30; 3],
            key_pkcs8: vec![0xAB; 40],
            bundle_der: vec![0x30; 2],
            hint: "internal".into(),
        };
        let shown = format!("{item:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("spiffe://example.org/web"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
