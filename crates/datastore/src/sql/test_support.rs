//! Fixtures for the crate's unit tests (behaviour on every engine is tested in tests/engines).

use crate::model::NewEntry;
use lanyard_spiffe::{Selector, SpiffeId};

pub(super) fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub(super) fn sels(list: &[&str]) -> Vec<Selector> {
    list.iter().map(|s| Selector::parse(s).unwrap()).collect()
}

/// A workload entry `spiffe://example.org/<name>` under the agent `.../agent/<parent>`.
pub(super) fn entry(name: &str, parent: &str, selectors: &[&str]) -> NewEntry {
    NewEntry::new(
        id(&format!("spiffe://example.org/{name}")),
        id(&format!("spiffe://example.org/agent/{parent}")),
        sels(selectors),
    )
}
