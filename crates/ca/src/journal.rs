//! Persistence of the CA manager's state: the [`JournalStore`] trait and the versioned JSON
//! journal format.
//!
//! The journal records which authority certificates exist, which key id holds each one's key, and
//! each one's status. Private keys never go into the journal; they stay in the key manager.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::CaError;

/// Boxed error of a journal storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of a [`JournalStore`] backend.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The backend failed to read or write the journal.
    #[error("ca journal storage failed: {0}")]
    Storage(#[source] BoxError),
}

impl JournalError {
    /// Wraps a backend error.
    pub fn storage(err: impl Into<BoxError>) -> Self {
        JournalError::Storage(err.into())
    }
}

/// Where the CA journal is kept (the datastore implements this). The blob is opaque to the
/// store; only the CA manager reads it.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// The last saved journal, or `None` if none was ever saved.
    ///
    /// # Errors
    ///
    /// [`JournalError::Storage`] if the backend fails.
    async fn load_journal(&self) -> Result<Option<Vec<u8>>, JournalError>;

    /// Replaces the saved journal with `blob`. Must be durable when it returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`JournalError::Storage`] if the backend fails.
    async fn save_journal(&self, blob: &[u8]) -> Result<(), JournalError>;
}

/// A journal store in process memory, for tests and throwaway servers.
#[derive(Debug, Default)]
pub struct MemoryJournalStore {
    blob: Mutex<Option<Vec<u8>>>,
}

impl MemoryJournalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The currently saved blob, if any.
    pub fn blob(&self) -> Option<Vec<u8>> {
        self.blob
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl JournalStore for MemoryJournalStore {
    async fn load_journal(&self) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.blob())
    }

    async fn save_journal(&self, blob: &[u8]) -> Result<(), JournalError> {
        *self.blob.lock().unwrap_or_else(PoisonError::into_inner) = Some(blob.to_vec());
        Ok(())
    }
}

/// The journal format version this build writes and reads.
pub(crate) const JOURNAL_VERSION: u32 = 1;

/// Status of an authority in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// In the bundle, not yet signing.
    Prepared,
    /// Signing.
    Active,
    /// Replaced; kept in the bundle until it expires. Its key may already be reused.
    Old,
}

/// One authority as recorded in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) status: Status,
    pub(crate) key_id: String,
    pub(crate) cert_der: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalV1 {
    version: u32,
    x509_authorities: Vec<RecordV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordV1 {
    status: Status,
    key_id: String,
    /// Standard base64 of the certificate DER.
    cert_der: String,
}

/// Serializes records into a journal blob.
pub(crate) fn encode(records: &[Record]) -> Result<Vec<u8>, CaError> {
    let journal = JournalV1 {
        version: JOURNAL_VERSION,
        x509_authorities: records
            .iter()
            .map(|r| RecordV1 {
                status: r.status,
                key_id: r.key_id.clone(),
                cert_der: STANDARD.encode(&r.cert_der),
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&journal).map_err(|e| CaError::CorruptJournal(e.to_string()))
}

/// Parses a journal blob, checking the version.
pub(crate) fn decode(blob: &[u8]) -> Result<Vec<Record>, CaError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version = serde_json::from_slice(blob)
        .map_err(|e| CaError::CorruptJournal(format!("not a journal: {e}")))?;
    if version.version != JOURNAL_VERSION {
        return Err(CaError::CorruptJournal(format!(
            "version {} is not supported: this build reads version {JOURNAL_VERSION}",
            version.version
        )));
    }

    let journal: JournalV1 =
        serde_json::from_slice(blob).map_err(|e| CaError::CorruptJournal(e.to_string()))?;
    journal
        .x509_authorities
        .into_iter()
        .map(|r| {
            let cert_der = STANDARD.decode(&r.cert_der).map_err(|e| {
                CaError::CorruptJournal(format!("certificate of key id '{}': {e}", r.key_id))
            })?;
            Ok(Record {
                status: r.status,
                key_id: r.key_id,
                cert_der,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, key_id: &str) -> Record {
        Record {
            status,
            key_id: key_id.to_owned(),
            cert_der: vec![0x30, 0x03, 1, 2, 3],
        }
    }

    #[test]
    fn journal_round_trips() {
        let records = vec![
            record(Status::Old, "x509-CA-A"),
            record(Status::Active, "x509-CA-B"),
            record(Status::Prepared, "x509-CA-A"),
        ];
        let blob = encode(&records).unwrap();
        assert_eq!(decode(&blob).unwrap(), records);

        let text = String::from_utf8(blob).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains("\"status\": \"prepared\""), "{text}");
        assert!(text.contains("\"cert_der\": \"MAMBAgM=\""), "{text}");
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let err = decode(br#"{"version": 2, "x509_authorities": []}"#).unwrap_err();
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
        assert!(matches!(
            decode(b"\x00\x01"),
            Err(CaError::CorruptJournal(_))
        ));
        let bad_b64 = br#"{"version":1,"x509_authorities":[{"status":"active","key_id":"k","cert_der":"%%"}]}"#;
        assert!(matches!(decode(bad_b64), Err(CaError::CorruptJournal(_))));
    }

    #[tokio::test]
    async fn memory_store_keeps_the_last_blob() {
        let store = MemoryJournalStore::new();
        assert!(store.load_journal().await.unwrap().is_none());
        store.save_journal(b"one").await.unwrap();
        store.save_journal(b"two").await.unwrap();
        assert_eq!(store.load_journal().await.unwrap().unwrap(), b"two");
    }
}
