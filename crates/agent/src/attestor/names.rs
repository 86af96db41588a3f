//! User and group names by ID, remembered for a short while.
//!
//! Asking the account databases (NSS) may block for as long as a directory service takes, so
//! it has to happen off the async runtime, which costs every Workload API call a thread hand-off
//! and most of a first fetch's latency. Names change rarely, so the `unix` attestor remembers
//! each answer (a missing account too) for [`NAME_TTL`] and attests callers whose names are all
//! remembered without leaving the runtime. A renamed user or group keeps its old name in new
//! selectors for at most that long.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Group, Uid, User};

use super::unix::UnixAttestorError;

/// How long an account name is trusted without asking again.
pub(crate) const NAME_TTL: Duration = Duration::from_secs(30);

/// Remembered answers of the user and group databases.
#[derive(Debug, Default)]
pub(crate) struct Names {
    users: Mutex<HashMap<u32, Remembered>>,
    groups: Mutex<HashMap<u32, Remembered>>,
}

/// One answer: the name, or `None` for an ID the database does not know.
#[derive(Debug, Clone)]
struct Remembered {
    name: Option<String>,
    at: Instant,
}

/// Which database.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Db {
    User,
    Group,
}

impl Names {
    fn table(&self, db: Db) -> std::sync::MutexGuard<'_, HashMap<u32, Remembered>> {
        match db {
            Db::User => &self.users,
            Db::Group => &self.groups,
        }
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered name of `id`, if it was looked up less than [`NAME_TTL`] ago: `Some(None)`
    /// for an ID without an account, `None` when it has to be looked up.
    pub(crate) fn remembered(&self, db: Db, id: u32) -> Option<Option<String>> {
        self.table(db)
            .get(&id)
            .filter(|r| r.at.elapsed() < NAME_TTL)
            .map(|r| r.name.clone())
    }

    /// The name of `id`, remembered or looked up (which may block) and then remembered.
    ///
    /// # Errors
    ///
    /// The database could not be asked; nothing is remembered then.
    pub(crate) fn lookup(&self, db: Db, id: u32) -> Result<Option<String>, UnixAttestorError> {
        if let Some(name) = self.remembered(db, id) {
            return Ok(name);
        }
        let name = match db {
            Db::User => User::from_uid(Uid::from_raw(id))
                .map_err(|source| UnixAttestorError::UserLookup { uid: id, source })?
                .map(|u| u.name),
            Db::Group => Group::from_gid(Gid::from_raw(id))
                .map_err(|source| UnixAttestorError::GroupLookup { gid: id, source })?
                .map(|g| g.name),
        };
        let mut table = self.table(db);
        // Bounded by the IDs in use on the node; expired answers go when it grows past that.
        if table.len() >= 4096 {
            table.retain(|_, r| r.at.elapsed() < NAME_TTL);
        }
        table.insert(
            id,
            Remembered {
                name: name.clone(),
                at: Instant::now(),
            },
        );
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_is_remembered_including_a_missing_account() {
        let names = Names::default();
        let uid = nix::unistd::getuid().as_raw();
        assert!(names.remembered(Db::User, uid).is_none());
        let name = names.lookup(Db::User, uid).unwrap();
        assert_eq!(names.remembered(Db::User, uid), Some(name));

        // Far above any real account on a test machine.
        let ghost = 3_999_999_917;
        assert_eq!(names.lookup(Db::Group, ghost).unwrap(), None);
        assert_eq!(names.remembered(Db::Group, ghost), Some(None));
        assert!(
            names.remembered(Db::User, ghost).is_none(),
            "tables are apart"
        );
    }

    #[test]
    fn an_old_answer_is_not_used() {
        let names = Names::default();
        names.table(Db::User).insert(
            7,
            Remembered {
                name: Some("renamed-since".into()),
                at: Instant::now() - NAME_TTL - Duration::from_secs(1),
            },
        );
        assert!(names.remembered(Db::User, 7).is_none());
    }
}
