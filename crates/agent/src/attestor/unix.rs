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

use lanyard_spiffe::Selector;
use lanyard_spiffe::selector::SelectorError;
use lanyard_workload::{Caller, ProcessDir};
use nix::unistd::{Gid, Group, Uid, User};

use super::proc::{self, HashError, ProcError};
use super::{AttestorError, WorkloadAttestor};
use crate::config::{UnixAttestorConfig, WorkloadSizeLimit};

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
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UnixAttestor {
    config: UnixAttestorConfig,
}

impl UnixAttestor {
    pub(crate) fn new(config: UnixAttestorConfig) -> Self {
        Self { config }
    }

    /// Every selector of `caller`; blocks (NSS lookups, `/proc` reads, hashing).
    fn attest_blocking(&self, caller: &Caller) -> Result<BTreeSet<Selector>, UnixAttestorError> {
        let pid = caller.pid;
        let dir = caller
            .process
            .as_ref()
            .ok_or(UnixAttestorError::NoProcess { pid })?;
        let proc_error = |source| UnixAttestorError::Proc { pid, source };

        let mut set = selectors(caller.uid, caller.gid)?;
        let status = proc::status(dir).map_err(proc_error)?;
        let groups = proc::supplementary_gids(&status).map_err(proc_error)?;
        set.extend(supplementary_selectors(&groups)?);

        if self.config.discover_workload_path {
            set.extend(self.path_selectors(dir, pid)?);
        }

        // The caller must still be the process the handle was opened for when it is done.
        proc::status(dir).map_err(proc_error)?;
        Ok(set)
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
        let this = *self;
        let caller = caller.clone();
        let set = tokio::task::spawn_blocking(move || this.attest_blocking(&caller))
            .await
            .map_err(|e| UnixAttestorError::Task(e.to_string()))??;
        Ok(set)
    }
}

/// The selectors of a caller with these credentials. Name lookups may block (NSS).
pub(crate) fn selectors(uid: u32, gid: u32) -> Result<BTreeSet<Selector>, UnixAttestorError> {
    let mut set = BTreeSet::new();
    set.insert(Selector::new(UNIX, &format!("uid:{uid}"))?);
    set.insert(Selector::new(UNIX, &format!("gid:{gid}"))?);
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|source| UnixAttestorError::UserLookup { uid, source })?;
    if let Some(user) = user {
        set.insert(Selector::new(UNIX, &format!("user:{}", user.name))?);
    }
    if let Some(name) = group_name(gid)? {
        set.insert(Selector::new(UNIX, &format!("group:{name}"))?);
    }
    Ok(set)
}

/// `supplementary_gid` and, when the group database knows it, `supplementary_group` for
/// every gid.
fn supplementary_selectors(gids: &[u32]) -> Result<Vec<Selector>, UnixAttestorError> {
    let mut out = Vec::with_capacity(gids.len() * 2);
    for &gid in gids {
        out.push(Selector::new(UNIX, &format!("supplementary_gid:{gid}"))?);
        if let Some(name) = group_name(gid)? {
            out.push(Selector::new(UNIX, &format!("supplementary_group:{name}"))?);
        }
    }
    Ok(out)
}

fn group_name(gid: u32) -> Result<Option<String>, UnixAttestorError> {
    let group = Group::from_gid(Gid::from_raw(gid))
        .map_err(|source| UnixAttestorError::GroupLookup { gid, source })?;
    Ok(group.map(|g| g.name))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        Caller {
            pid: Some(pid),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            process: Some(ProcessDir::open(pid).unwrap()),
        }
    }

    fn attestor(discover_workload_path: bool, limit: WorkloadSizeLimit) -> UnixAttestor {
        UnixAttestor::new(UnixAttestorConfig {
            discover_workload_path,
            workload_size_limit: limit,
        })
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
        let caller = Caller {
            pid: Some(pid),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            process: Some(ProcessDir::open(pid).unwrap()),
        };
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
