//! Persistence of the CA manager's state: the [`JournalStore`] trait and the versioned JSON
//! journal format.
//!
//! The journal records which authority certificates and JWT signing keys (`kid`, public key,
//! validity) exist, which key id holds each one's private key, and each one's status. Private
//! keys never go into the journal; they stay in the key manager.

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

/// The journal format version this build writes. Version 1 (X.509 authorities only) is still
/// read; its servers gain a JWT key at the first load.
pub(crate) const JOURNAL_VERSION: u32 = 2;

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

/// One JWT signing key as recorded in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JwtRecord {
    pub(crate) status: Status,
    pub(crate) key_id: String,
    pub(crate) kid: String,
    /// SubjectPublicKeyInfo DER.
    pub(crate) public_key_der: Vec<u8>,
    /// Unix seconds.
    pub(crate) not_before: u64,
    /// Unix seconds.
    pub(crate) not_after: u64,
}

/// Everything the journal holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Journal {
    pub(crate) x509: Vec<Record>,
    pub(crate) jwt: Vec<JwtRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalV1 {
    version: u32,
    x509_authorities: Vec<RecordV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalV2 {
    version: u32,
    x509_authorities: Vec<RecordV1>,
    jwt_keys: Vec<JwtRecordV2>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordV1 {
    status: Status,
    key_id: String,
    /// Standard base64 of the certificate DER.
    cert_der: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtRecordV2 {
    status: Status,
    key_id: String,
    kid: String,
    /// Standard base64 of the SubjectPublicKeyInfo DER.
    public_key: String,
    not_before: u64,
    not_after: u64,
}

/// Serializes the journal into a blob of the current version.
pub(crate) fn encode(journal: &Journal) -> Result<Vec<u8>, CaError> {
    let journal = JournalV2 {
        version: JOURNAL_VERSION,
        x509_authorities: journal
            .x509
            .iter()
            .map(|r| RecordV1 {
                status: r.status,
                key_id: r.key_id.clone(),
                cert_der: STANDARD.encode(&r.cert_der),
            })
            .collect(),
        jwt_keys: journal
            .jwt
            .iter()
            .map(|r| JwtRecordV2 {
                status: r.status,
                key_id: r.key_id.clone(),
                kid: r.kid.clone(),
                public_key: STANDARD.encode(&r.public_key_der),
                not_before: r.not_before,
                not_after: r.not_after,
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&journal).map_err(|e| CaError::CorruptJournal(e.to_string()))
}

/// Parses a journal blob of version 1 or 2.
pub(crate) fn decode(blob: &[u8]) -> Result<Journal, CaError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version = serde_json::from_slice(blob)
        .map_err(|e| CaError::CorruptJournal(format!("not a journal: {e}")))?;
    let corrupt = |e: serde_json::Error| CaError::CorruptJournal(e.to_string());
    let (x509, jwt) = match version.version {
        1 => {
            let v1: JournalV1 = serde_json::from_slice(blob).map_err(corrupt)?;
            (v1.x509_authorities, Vec::new())
        }
        JOURNAL_VERSION => {
            let v2: JournalV2 = serde_json::from_slice(blob).map_err(corrupt)?;
            (v2.x509_authorities, v2.jwt_keys)
        }
        other => {
            return Err(CaError::CorruptJournal(format!(
                "version {other} is not supported: this build reads versions 1 and \
                 {JOURNAL_VERSION}"
            )));
        }
    };

    let x509 = x509
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
        .collect::<Result<_, CaError>>()?;
    let jwt = jwt
        .into_iter()
        .map(|r| {
            let public_key_der = STANDARD.decode(&r.public_key).map_err(|e| {
                CaError::CorruptJournal(format!("public key of jwt kid '{}': {e}", r.kid))
            })?;
            Ok(JwtRecord {
                status: r.status,
                key_id: r.key_id,
                kid: r.kid,
                public_key_der,
                not_before: r.not_before,
                not_after: r.not_after,
            })
        })
        .collect::<Result<_, CaError>>()?;
    Ok(Journal { x509, jwt })
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
        let journal = Journal {
            x509: records,
            jwt: vec![JwtRecord {
                status: Status::Active,
                key_id: "JWT-Signer-A".into(),
                kid: "k1".into(),
                public_key_der: vec![0x30, 0x00],
                not_before: 1_700_000_000,
                not_after: 1_700_086_400,
            }],
        };
        let blob = encode(&journal).unwrap();
        assert_eq!(decode(&blob).unwrap(), journal);

        let text = String::from_utf8(blob).unwrap();
        assert!(text.contains("\"version\": 2"), "{text}");
        assert!(text.contains("\"kid\": \"k1\""), "{text}");
        assert!(text.contains("\"status\": \"prepared\""), "{text}");
        assert!(text.contains("\"cert_der\": \"MAMBAgM=\""), "{text}");
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let err = decode(br#"{"version": 3, "x509_authorities": []}"#).unwrap_err();
        assert!(
            err.to_string().contains("version 3 is not supported"),
            "{err}"
        );
        assert!(matches!(
            decode(b"\x00\x01"),
            Err(CaError::CorruptJournal(_))
        ));
        let bad_b64 = br#"{"version":1,"x509_authorities":[{"status":"active","key_id":"k","cert_der":"%%"}]}"#;
        assert!(matches!(decode(bad_b64), Err(CaError::CorruptJournal(_))));
    }

    #[test]
    fn reads_version_1_journals_without_jwt_keys() {
        let v1 = br#"{"version":1,"x509_authorities":[{"status":"active","key_id":"x509-CA-A","cert_der":"MAMBAgM="}]}"#;
        let journal = decode(v1).unwrap();
        assert_eq!(journal.x509, vec![record(Status::Active, "x509-CA-A")]);
        assert!(journal.jwt.is_empty());

        let v1_with_jwt = br#"{"version":1,"x509_authorities":[],"jwt_keys":[]}"#;
        assert!(matches!(
            decode(v1_with_jwt),
            Err(CaError::CorruptJournal(_))
        ));
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
