//! The change feed: one row per write to an entry, agent, bundle or federation relationship.

use std::fmt;

/// What kind of object a [`Change`] touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A registration entry; the key is its entry ID.
    Entry,
    /// An attested agent; the key is its SPIFFE ID.
    Agent,
    /// A bundle; the key is its trust domain.
    Bundle,
    /// A federation relationship; the key is its trust domain.
    FederationRelationship,
}

impl ChangeKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Entry => "entry",
            ChangeKind::Agent => "agent",
            ChangeKind::Bundle => "bundle",
            ChangeKind::FederationRelationship => "federation_relationship",
        }
    }

    /// The kind stored as `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ChangeKind::Entry,
            ChangeKind::Agent,
            ChangeKind::Bundle,
            ChangeKind::FederationRelationship,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One write recorded in the change feed. A reader that saw everything up to `seq - 1` reloads
/// the object named by `kind` and `key` (which may since have been deleted); applying the same
/// change twice is harmless.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// Position in the feed: grows in commit order, starting at 1.
    pub seq: u64,
    /// What kind of object changed.
    pub kind: ChangeKind,
    /// Which object: entry ID, agent SPIFFE ID, or trust domain.
    pub key: String,
}
