//! Fills a server's data directory with entries through the datastore crate itself, without
//! a server: batches of [`BATCH`] in one transaction each, far faster than the admin API.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lanyard_datastore::{Datastore, Entry, NewEntry, SqlDatastore};
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

use crate::procs::TD;
use crate::progress::Progress;

/// Entries per `create_entries` transaction.
const BATCH: usize = 10_000;
/// Entries per parent agent ID.
const PER_AGENT: usize = 100;

/// A server data directory whose datastore holds `entries` benchmark entries.
pub(crate) struct DataDir {
    pub(crate) path: PathBuf,
    pub(crate) entries: usize,
    /// Sum of [`payload_bytes`] over every entry stored.
    pub(crate) payload: u64,
}

impl DataDir {
    /// An empty data directory at `path`, owner-only as the server wants it.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        std::fs::DirBuilder::new().mode(0o700).create(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            entries: 0,
            payload: 0,
        })
    }

    /// The SQLite file the server opens (`datastore.sqlite3` in the data directory).
    pub(crate) fn database(&self) -> PathBuf {
        self.path.join("datastore.sqlite3")
    }

    /// Adds entries until the datastore holds `total`; returns entries added per second. The
    /// server must not be running on this directory.
    pub(crate) async fn grow_to(&mut self, total: usize) -> anyhow::Result<f64> {
        let store = SqlDatastore::open(&self.database()).await?;
        let td = TrustDomain::new(TD)?;
        let mut progress = Progress::new("S5 populating the datastore", total);
        let started = Instant::now();
        let added = total.saturating_sub(self.entries);
        while self.entries < total {
            let end = (self.entries + BATCH).min(total);
            let batch = (self.entries..end)
                .map(|i| new_entry(&td, i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for (i, created) in (self.entries..end).zip(store.create_entries(batch).await?) {
                let entry = created.map_err(|e| anyhow::anyhow!("entry {i} refused: {e}"))?;
                self.payload += payload_bytes(&entry);
            }
            self.entries = end;
            progress.update(self.entries);
        }
        progress.finish();
        let rate = added as f64 / started.elapsed().as_secs_f64();
        store.close().await;
        Ok(rate)
    }
}

/// Entry `i`: `/bench/workload/<i>` under agent `/spire/agent/bench/<i / 100>`, with two
/// selectors (a `unix:uid` and a `k8s:ns`), as in the performance reference's data set.
fn new_entry(td: &TrustDomain, i: usize) -> anyhow::Result<NewEntry> {
    Ok(NewEntry::new(
        SpiffeId::from_path(td, &format!("/bench/workload/{i}"))?,
        SpiffeId::from_path(td, &format!("/spire/agent/bench/{}", i / PER_AGENT))?,
        vec![
            Selector::new("unix", &format!("uid:{i}"))?,
            Selector::new("k8s", &format!("ns:ns-{}", i % 100))?,
        ],
    ))
}

/// What an entry carries, in bytes: its strings (ID, SPIFFE ID, parent ID, selector types and
/// values, DNS names, federated trust domains, hint) plus its fixed fields (two `i32` TTLs,
/// three `i64` times and revision, three flags). No pointers, no index: the least any
/// in-memory copy of it can take.
pub(crate) fn payload_bytes(e: &Entry) -> u64 {
    let strings = e.id.as_str().len()
        + e.spiffe_id.as_str().len()
        + e.parent_id.as_str().len()
        + e.selectors
            .iter()
            .map(|s| s.kind().len() + s.value().len())
            .sum::<usize>()
        + e.dns_names.iter().map(String::len).sum::<usize>()
        + e.federates_with
            .iter()
            .map(|t| t.name().len())
            .sum::<usize>()
        + e.hint.len();
    let fixed = 2 * 4 + 3 * 8 + 3;
    (strings + fixed) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_counts_every_string_and_the_fixed_fields() {
        let td = TrustDomain::new(TD).unwrap();
        let new = new_entry(&td, 7).unwrap();
        let entry = Entry {
            id: lanyard_datastore::EntryId::parse("abc").unwrap(),
            spiffe_id: new.spiffe_id,
            parent_id: new.parent_id,
            selectors: new.selectors,
            x509_svid_ttl: 0,
            jwt_svid_ttl: 0,
            federates_with: Vec::new(),
            admin: false,
            downstream: false,
            expires_at: 0,
            dns_names: vec!["a.example".into()],
            store_svid: false,
            hint: "h".into(),
            revision_number: 0,
            created_at: 0,
        };
        // "abc", the two IDs, "unix" + "uid:7", "k8s" + "ns:ns-7", the DNS name, the hint.
        let strings = 3
            + "spiffe://example.org/bench/workload/7".len()
            + "spiffe://example.org/spire/agent/bench/0".len()
            + 4
            + 5
            + 3
            + 7
            + 9
            + 1;
        assert_eq!(payload_bytes(&entry), (strings + 35) as u64);
    }
}
