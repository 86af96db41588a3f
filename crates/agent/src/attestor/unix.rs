//! The `unix` workload attestor: selectors from the caller's kernel credentials and process.
//!
//! `unix:uid:<n>`, `unix:gid:<n>`, and, when the account databases know them,
//! `unix:user:<name>` and `unix:group:<name>`. The IDs come from the socket's peer
//! credentials (`SO_PEERCRED`), which the kernel fills in at connect time, so a workload
//! cannot claim somebody else's. `unix:supplementary_gid:<n>` and
//! `unix:supplementary_group:<name>` come from the `Groups:` line of `/proc/<pid>/status`.
//! With `discover_workload_path`, `unix:path:<exe>` and `unix:sha256:<hex>` describe the
//! running binary (read through `/proc/<pid>/exe`, so a deleted binary still hashes; its path
//! then ends in ` (deleted)` as the kernel reports it).
//!
//! All process reads go through the `/proc/<pid>` handle opened at accept time, and a last read
//! after all others checks that the caller is still there: a caller that exits while it is
//! attested gets nothing, and a recycled PID is never attested in its place.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::names::{Db, Names};
use super::proc::{self, HashError, ProcError};
use super::{AttestorError, WorkloadAttestor};
use crate::config::{UnixAttestorConfig, WorkloadSizeLimit};
use lanyard_spiffe::Selector;
use lanyard_spiffe::selector::SelectorError;
use lanyard_workload::{Caller, ProcessDir};

/// The selector type of this attestor.
pub(crate) const UNIX: &str = "unix";

/// Failures of the `unix` attestor.
#[derive(Debug, thiserror::Error)]
pub enum UnixAttestorError {
    /// The user database could not be asked (a missing user is not an error).
    #[error("looking up the user of uid {uid} failed")]
    UserLookup {
        /// The caller's uid.
        uid: u32,
        /// The system error.
        source: nix::Error,
    },
    /// The group database could not be asked (a missing group is not an error).
    #[error("looking up the group of gid {gid} failed")]
    GroupLookup {
        /// The caller's gid.
        gid: u32,
        /// The system error.
        source: nix::Error,
    },
    /// A user or group name that is not a valid selector value.
    #[error("a user, group or path is not a valid unix selector value")]
    Selector(#[from] SelectorError),
    /// The connection came without a process handle (no PID, or `/proc` could not be opened
    /// at accept time): the process cannot be read.
    #[error("the caller (pid {pid:?}) has no open /proc entry: its process cannot be read")]
    NoProcess {
        /// The caller's PID, when known.
        pid: Option<i32>,
    },
    /// Reading the caller's `/proc` entries failed, or it exited.
    #[error("reading the caller's process (pid {pid:?}) failed")]
    Proc {
        /// The caller's PID, when known.
        pid: Option<i32>,
        /// What failed.
        source: ProcError,
    },
    /// The binary's path is not UTF-8, so it cannot be a selector.
    #[error("the caller's binary path {path:?} is not UTF-8: selectors are text")]
    NonUtf8Path {
        /// The path, lossily shown.
        path: String,
    },
    /// The binary could not be hashed (other than for being too big).
    #[error("hashing the caller's binary {path:?} failed")]
    Hash {
        /// The binary's path.
        path: String,
        /// What failed.
        source: HashError,
    },
    /// The blocking task did not finish.
    #[error("unix attestor task failed: {0}")]
    Task(String),
}

/// The `unix` attestor with its settings.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnixAttestor {
    config: UnixAttestorConfig,
    names: Arc<Names>,
}

/// Whether an attestation may ask the account databases (and so block).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookups {
    Allowed,
    /// Only remembered names; a missing one ends the attempt with `None`.
    RememberedOnly,
}

impl UnixAttestor {
    pub(crate) fn new(config: UnixAttestorConfig) -> Self {
        Self {
            config,
            names: Arc::default(),
        }
    }

    /// Every selector of `caller`; blocks (NSS lookups, `/proc` reads, hashing).
    fn attest_blocking(&self, caller: &Caller) -> Result<BTreeSet<Selector>, UnixAttestorError> {
        let set = self.id_selectors(caller, Lookups::Allowed)?;
        // With lookups allowed every name is found or known missing.
        set.ok_or(UnixAttestorError::Task("names left unresolved".into()))
    }

    /// The selectors of a caller whose account names are all remembered, without blocking
    /// (reads of `/proc` do not wait on devices); `None` when a name must be looked up or the
    /// binary hashed, which [`attest_blocking`](Self::attest_blocking) does off the runtime.
    fn attest_without_blocking(
        &self,
        caller: &Caller,
    ) -> Result<Option<BTreeSet<Selector>>, UnixAttestorError> {
        if self.config.discover_workload_path {
            return Ok(None);
        }
        self.id_selectors(caller, Lookups::RememberedOnly)
    }

    /// The name of `id` in `db`: `Some(None)` for an ID without an account, `None` when it is
    /// not remembered and `lookups` forbids asking.
    fn name(
        &self,
        db: Db,
        id: u32,
        lookups: Lookups,
    ) -> Result<Option<Option<String>>, UnixAttestorError> {
        match lookups {
            Lookups::Allowed => self.names.lookup(db, id).map(Some),
            Lookups::RememberedOnly => Ok(self.names.remembered(db, id)),
        }
    }

    /// `uid`, `gid` and, when the account databases know them, `user` and `group`; `None`
    /// when a name is not remembered and `lookups` forbids asking.
    fn account_selectors(
        &self,
        uid: u32,
        gid: u32,
        lookups: Lookups,
    ) -> Result<Option<BTreeSet<Selector>>, UnixAttestorError> {
        let mut set = BTreeSet::new();
        set.insert(Selector::new(UNIX, &format!("uid:{uid}"))?);
        set.insert(Selector::new(UNIX, &format!("gid:{gid}"))?);
        let (Some(user), Some(group)) = (
            self.name(Db::User, uid, lookups)?,
            self.name(Db::Group, gid, lookups)?,
        ) else {
            return Ok(None);
        };
        if let Some(user) = user {
            set.insert(Selector::new(UNIX, &format!("user:{user}"))?);
        }
        if let Some(group) = group {
            set.insert(Selector::new(UNIX, &format!("group:{group}"))?);
        }
        Ok(Some(set))
    }

    /// uid, gid, user, group, supplementary groups and (when configured) path and hash, with
    /// the caller checked to be still there at the end.
    fn id_selectors(
        &self,
        caller: &Caller,
        lookups: Lookups,
    ) -> Result<Option<BTreeSet<Selector>>, UnixAttestorError> {
        let pid = caller.pid;
        let dir = caller
            .process
            .as_ref()
            .ok_or(UnixAttestorError::NoProcess { pid })?;
        let proc_error = |source| UnixAttestorError::Proc { pid, source };

        let Some(mut set) = self.account_selectors(caller.uid, caller.gid, lookups)? else {
            return Ok(None);
        };
        let status = proc::status(dir).map_err(proc_error)?;
        for gid in proc::supplementary_gids(&status).map_err(proc_error)? {
            set.insert(Selector::new(UNIX, &format!("supplementary_gid:{gid}"))?);
            let Some(group) = self.name(Db::Group, gid, lookups)? else {
                return Ok(None);
            };
            if let Some(group) = group {
                set.insert(Selector::new(
                    UNIX,
                    &format!("supplementary_group:{group}"),
                )?);
            }
        }

        if self.config.discover_workload_path {
            set.extend(self.path_selectors(dir, pid)?);
        }

        // The caller must still be the process the handle was opened for when it is done.
        proc::status(dir).map_err(proc_error)?;
        Ok(Some(set))
    }

    /// `path` and, within `workload_size_limit`, `sha256` of the running binary.
    fn path_selectors(
        &self,
        dir: &ProcessDir,
        pid: Option<i32>,
    ) -> Result<Vec<Selector>, UnixAttestorError> {
        let proc_error = |source| UnixAttestorError::Proc { pid, source };
        let exe = proc::exe_path(dir).map_err(proc_error)?;
        let path = exe
            .to_str()
            .ok_or_else(|| UnixAttestorError::NonUtf8Path {
                path: exe.to_string_lossy().into_owned(),
            })?
            .to_owned();
        let mut out = vec![Selector::new(UNIX, &format!("path:{path}"))?];

        let limit = match self.config.workload_size_limit {
            WorkloadSizeLimit::NeverHash => return Ok(out),
            WorkloadSizeLimit::Unlimited => None,
            WorkloadSizeLimit::Bytes(n) => Some(n),
        };
        let file = proc::open_exe(dir).map_err(proc_error)?;
        match proc::sha256(file, limit) {
            Ok(digest) => {
                out.push(Selector::new(
                    UNIX,
                    &format!("sha256:{}", proc::hex(&digest)),
                )?);
            }
            Err(e @ HashError::TooBig { .. }) => {
                tracing::warn!(peer.pid = pid, path, error = %e, "Not hashing the workload binary: no unix:sha256 selector");
            }
            Err(source) => return Err(UnixAttestorError::Hash { path, source }),
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl WorkloadAttestor for UnixAttestor {
    fn kind(&self) -> &'static str {
        UNIX
    }

    async fn attest(&self, caller: &Caller) -> Result<BTreeSet<Selector>, AttestorError> {
        if let Some(set) = self.attest_without_blocking(caller)? {
            return Ok(set);
        }
        let this = self.clone();
        let caller = caller.clone();
        let set = tokio::task::spawn_blocking(move || this.attest_blocking(&caller))
            .await
            .map_err(|e| UnixAttestorError::Task(e.to_string()))??;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use nix::unistd::{Group, User};

    use super::*;

    fn selectors(uid: u32, gid: u32) -> Result<BTreeSet<Selector>, UnixAttestorError> {
        let set = UnixAttestor::default().account_selectors(uid, gid, Lookups::Allowed)?;
        Ok(set.expect("lookups allowed"))
    }

    fn values(set: &BTreeSet<Selector>) -> Vec<String> {
        set.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn current_process_gets_uid_gid_user_and_group_selectors() {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let set = selectors(uid.as_raw(), gid.as_raw()).unwrap();
        let got = values(&set);
        assert!(got.contains(&format!("unix:uid:{uid}")), "{got:?}");
        assert!(got.contains(&format!("unix:gid:{gid}")), "{got:?}");
        if let Some(user) = User::from_uid(uid).unwrap() {
            assert!(got.contains(&format!("unix:user:{}", user.name)), "{got:?}");
        }
        if let Some(group) = Group::from_gid(gid).unwrap() {
            assert!(
                got.contains(&format!("unix:group:{}", group.name)),
                "{got:?}"
            );
        }
        assert!(set.iter().all(|s| s.kind() == UNIX));
    }

    #[test]
    fn unknown_ids_still_get_numeric_selectors() {
        // Far above any real account on a test machine.
        let set = selectors(3_999_999_917, 3_999_999_917).unwrap();
        assert_eq!(values(&set), ["unix:gid:3999999917", "unix:uid:3999999917"]);
    }

    fn own_caller() -> Caller {
        let pid = i32::try_from(std::process::id()).unwrap();
        Caller::new(
            Some(pid),
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
            Some(ProcessDir::open(pid).unwrap()),
        )
    }

    fn attestor(discover_workload_path: bool, limit: WorkloadSizeLimit) -> UnixAttestor {
        UnixAttestor::new(UnixAttestorConfig {
            discover_workload_path,
            workload_size_limit: limit,
        })
    }

    #[tokio::test]
    async fn a_caller_whose_names_are_remembered_is_attested_without_blocking() {
        let caller = own_caller();
        let unix = UnixAttestor::default();
        assert!(
            unix.attest_without_blocking(&caller).unwrap().is_none(),
            "names are looked up the first time"
        );
        let first = unix.attest(&caller).await.unwrap();
        let again = unix.attest_without_blocking(&caller).unwrap();
        assert_eq!(
            again,
            Some(first),
            "the same selectors, from remembered names"
        );

        let with_path = attestor(true, WorkloadSizeLimit::NeverHash);
        with_path.attest(&caller).await.unwrap();
        assert!(
            with_path
                .attest_without_blocking(&caller)
                .unwrap()
                .is_none(),
            "path discovery reads the binary, off the runtime"
        );
    }

    #[tokio::test]
    async fn attests_ids_and_supplementary_groups_without_path_by_default() {
        let caller = own_caller();
        let set = UnixAttestor::default().attest(&caller).await.unwrap();
        let got = values(&set);
        assert!(set.is_superset(&selectors(caller.uid, caller.gid).unwrap()));
        for gid in nix::unistd::getgroups().unwrap() {
            assert!(
                got.contains(&format!("unix:supplementary_gid:{gid}")),
                "{got:?}"
            );
        }
        assert!(
            got.iter()
                .all(|s| !s.starts_with("unix:path:") && !s.starts_with("unix:sha256:")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn discovers_the_path_and_hash_of_the_binary() {
        let set = attestor(true, WorkloadSizeLimit::Unlimited)
            .attest(&own_caller())
            .await
            .unwrap();
        let got = values(&set);
        let exe = std::env::current_exe().unwrap();
        assert!(
            got.contains(&format!("unix:path:{}", exe.display())),
            "{got:?}"
        );
        let file = std::fs::File::open(&exe).unwrap();
        let hash = proc::hex(&proc::sha256(file, None).unwrap());
        assert!(got.contains(&format!("unix:sha256:{hash}")), "{got:?}");
    }

    #[tokio::test]
    async fn binaries_over_the_size_limit_get_a_path_but_no_hash() {
        for limit in [WorkloadSizeLimit::Bytes(16), WorkloadSizeLimit::NeverHash] {
            let set = attestor(true, limit).attest(&own_caller()).await.unwrap();
            let got = values(&set);
            assert!(got.iter().any(|s| s.starts_with("unix:path:")), "{got:?}");
            assert!(
                got.iter().all(|s| !s.starts_with("unix:sha256:")),
                "{limit:?}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_caller_without_a_process_handle_is_not_attested() {
        let caller = Caller {
            process: None,
            ..own_caller()
        };
        let err = UnixAttestor::default().attest(&caller).await.unwrap_err();
        assert!(
            matches!(
                err,
                AttestorError::Unix(UnixAttestorError::NoProcess { .. })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_caller_that_has_exited_is_not_attested() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let caller = Caller::new(
            Some(pid),
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
            Some(ProcessDir::open(pid).unwrap()),
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let err = attestor(true, WorkloadSizeLimit::Unlimited)
            .attest(&caller)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AttestorError::Unix(UnixAttestorError::Proc {
                    source: ProcError::Gone { .. },
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn never_produces_spiffe_id_selectors() {
        let set = selectors(0, 0).unwrap();
        assert!(set.iter().all(|s| s.kind() != "spiffe_id"));
    }
}
