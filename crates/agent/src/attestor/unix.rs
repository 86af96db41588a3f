//! The `unix` workload attestor: selectors from the caller's kernel credentials.
//!
//! `unix:uid:<n>`, `unix:gid:<n>`, and, when the account databases know them,
//! `unix:user:<name>` and `unix:group:<name>`. The IDs come from the socket's peer
//! credentials (`SO_PEERCRED`), which the kernel fills in at connect time, so a workload
//! cannot claim somebody else's. Supplementary groups and the binary's path and hash
//! (SPIRE's `supplementary_gid`, `path`, `sha256`) are not collected yet.

use std::collections::BTreeSet;

use lanyard_spiffe::Selector;
use lanyard_spiffe::selector::SelectorError;
use nix::unistd::{Gid, Group, Uid, User};

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
    #[error("a user or group name is not a valid unix selector value")]
    Selector(#[from] SelectorError),
    /// The blocking lookup task did not finish.
    #[error("unix attestor task failed: {0}")]
    Task(String),
}

/// The selectors of a caller with these credentials. Name lookups may block (NSS), so async
/// callers use [`attest`].
pub(crate) fn selectors(uid: u32, gid: u32) -> Result<BTreeSet<Selector>, UnixAttestorError> {
    let mut set = BTreeSet::new();
    set.insert(Selector::new(UNIX, &format!("uid:{uid}"))?);
    set.insert(Selector::new(UNIX, &format!("gid:{gid}"))?);
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|source| UnixAttestorError::UserLookup { uid, source })?;
    if let Some(user) = user {
        set.insert(Selector::new(UNIX, &format!("user:{}", user.name))?);
    }
    let group = Group::from_gid(Gid::from_raw(gid))
        .map_err(|source| UnixAttestorError::GroupLookup { gid, source })?;
    if let Some(group) = group {
        set.insert(Selector::new(UNIX, &format!("group:{}", group.name))?);
    }
    Ok(set)
}

/// [`selectors`] on the blocking thread pool.
pub(crate) async fn attest(uid: u32, gid: u32) -> Result<BTreeSet<Selector>, UnixAttestorError> {
    tokio::task::spawn_blocking(move || selectors(uid, gid))
        .await
        .map_err(|e| UnixAttestorError::Task(e.to_string()))?
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

    #[tokio::test]
    async fn async_attestation_matches_the_blocking_one() {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        assert_eq!(
            attest(uid, gid).await.unwrap(),
            selectors(uid, gid).unwrap()
        );
    }

    #[test]
    fn never_produces_spiffe_id_selectors() {
        let set = selectors(0, 0).unwrap();
        assert!(set.iter().all(|s| s.kind() != "spiffe_id"));
    }
}
