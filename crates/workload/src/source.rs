//! What the Workload API server asks of whoever holds the identities.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::SystemTime;

use lanyard_spiffe::{JwtBundleSet, SpiffeId};
use tokio::sync::watch;

/// The calling process, as the kernel reports it for the socket connection.
///
/// Two callers are equal when their credentials and process handle are; the memo is not
/// compared.
#[derive(Clone, Debug)]
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
    /// What the source worked out about this caller for the current call; see [`CallMemo`].
    pub memo: CallMemo,
}

impl Caller {
    /// A caller with these credentials and an empty memo.
    #[must_use]
    pub fn new(pid: Option<i32>, uid: u32, gid: u32, process: Option<ProcessDir>) -> Self {
        Self {
            pid,
            uid,
            gid,
            process,
            memo: CallMemo::default(),
        }
    }
}

impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        (self.pid, self.uid, self.gid, &self.process)
            == (other.pid, other.uid, other.gid, &other.process)
    }
}

impl Eq for Caller {}

/// A slot a source may fill once per call with what it learned about the caller (typically
/// the workload attestor's selectors).
///
/// The server gives every RPC a fresh memo, and a stream keeps its own for its whole life, so
/// a stream attests its caller once, when it opens, instead of on every change it is
/// recomputed for (which is also what SPIRE does). A new call, even on the same connection,
/// starts empty: a process that `exec`s another binary and keeps the socket is attested again
/// on its next call.
#[derive(Clone, Default)]
pub struct CallMemo(Arc<std::sync::OnceLock<Arc<dyn Any + Send + Sync>>>);

impl CallMemo {
    /// The remembered value, or the result of `init`, remembered when it succeeds. A value of
    /// another type than `T` already in the slot stays; `init`'s result is then returned
    /// without being remembered.
    ///
    /// # Errors
    ///
    /// The error of `init`; nothing is remembered then.
    pub async fn get_or_try_init<T, E, F, Fut>(&self, init: F) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(stored) = self.0.get()
            && let Ok(value) = stored.clone().downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(init().await?);
        // Calls sharing a memo run one after the other; were two to race, both values are
        // equally fresh and the loser's is simply not kept.
        let _ = self.0.set(value.clone());
        Ok(value)
    }
}

impl std::fmt::Debug for CallMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "CallMemo(set)"
        } else {
            "CallMemo(empty)"
        })
    }
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

impl ProcessDir {
    /// Whether the process the handle was opened for still exists (its `status` entry can be
    /// reached through the handle).
    fn is_alive(&self) -> bool {
        Path::new("/proc/self/fd")
            .join(self.0.as_raw_fd().to_string())
            .join("status")
            .metadata()
            .is_ok()
    }
}

/// The `/proc/<pid>` handles of the processes connected now, so that the connections of one
/// process share one descriptor instead of holding one each: a process with thousands of
/// connections would otherwise double the agent's descriptors.
///
/// A handle is shared only while its process is alive. Once that process is gone, a new
/// process given the same PID gets a handle of its own, never the dead one.
#[derive(Debug, Default)]
pub(crate) struct ProcessDirs {
    open: Mutex<HashMap<i32, Weak<File>>>,
}

impl ProcessDirs {
    /// The handle of `pid`: the one its other connections hold, or a new one.
    ///
    /// # Errors
    ///
    /// As [`ProcessDir::open`].
    pub(crate) fn open(&self, pid: i32) -> io::Result<ProcessDir> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = open.get(&pid).and_then(Weak::upgrade) {
            let dir = ProcessDir(file);
            if dir.is_alive() {
                return Ok(dir);
            }
        }
        let dir = ProcessDir::open(pid)?;
        // Entries of processes whose connections are all closed are dropped now and then;
        // the map stays within twice the processes connected.
        if open.len() >= 1024 && open.len().is_power_of_two() {
            open.retain(|_, file| file.strong_count() > 0);
        }
        open.insert(pid, Arc::downgrade(&dir.0));
        Ok(dir)
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
    /// The request itself cannot be served, however often it is repeated (a JWT whose audiences
    /// make it larger than validators accept): `InvalidArgument`, so clients stop retrying.
    #[error("{0}")]
    InvalidRequest(String),
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

    #[tokio::test]
    async fn memo_keeps_a_success_and_retries_after_a_failure() {
        let memo = CallMemo::default();
        let failed: Result<Arc<u32>, &str> = memo.get_or_try_init(|| async { Err("no") }).await;
        assert_eq!(failed.unwrap_err(), "no");
        let first = memo
            .get_or_try_init(|| async { Ok::<_, ()>(7_u32) })
            .await
            .unwrap();
        let again = memo
            .get_or_try_init(|| async { Ok::<_, ()>(8_u32) })
            .await
            .unwrap();
        assert_eq!((*first, *again), (7, 7), "the first success is kept");
        let clone = memo.clone();
        let shared = clone
            .get_or_try_init(|| async { Ok::<_, ()>(9_u32) })
            .await
            .unwrap();
        assert_eq!(*shared, 7, "clones share the slot");
        let other_type = memo
            .get_or_try_init(|| async { Ok::<_, ()>("text") })
            .await
            .unwrap();
        assert_eq!(
            *other_type, "text",
            "another type is computed, not confused"
        );
    }

    #[test]
    fn connections_of_one_live_process_share_its_handle() {
        let dirs = ProcessDirs::default();
        let me = i32::try_from(std::process::id()).unwrap();
        let a = dirs.open(me).unwrap();
        let b = dirs.open(me).unwrap();
        assert_eq!(a, b, "one descriptor for both");
        drop((a, b));
        let c = dirs.open(me).unwrap();
        assert!(c.is_alive());
    }

    #[test]
    fn a_dead_process_handle_is_not_handed_to_a_new_connection() {
        let dirs = ProcessDirs::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let held = dirs.open(pid).unwrap();
        assert!(held.is_alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!held.is_alive(), "the handle outlives its process");
        // The PID is free now; whatever opens it next must not get the dead handle.
        match dirs.open(pid) {
            Ok(fresh) => assert_ne!(fresh, held),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        }
    }

    #[test]
    fn callers_compare_without_their_memo() {
        let a = Caller::new(Some(1), 2, 3, None);
        let b = a.clone();
        let fresh = Caller::new(Some(1), 2, 3, None);
        assert_eq!(a, b);
        assert_eq!(a, fresh);
        assert_ne!(a, Caller::new(Some(1), 4, 3, None));
    }

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
