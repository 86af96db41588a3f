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

use rustls_pki_types::CertificateDer;

use crate::error::CaError;
use crate::upstream::UpstreamChain;

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

/// The journal format version this build writes (version 3 adds each authority's `tainted`
/// flag). Versions 1 (X.509 authorities only; its servers gain a JWT key at the first load) and
/// 2 (no taint flags: nothing was tainted) are still read.
pub(crate) const JOURNAL_VERSION: u32 = 3;

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
    /// Marked for replacement by an operator (only an old authority can be).
    pub(crate) tainted: bool,
    /// Set when an upstream authority signed the certificate.
    pub(crate) upstream: Option<UpstreamChain>,
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
    /// Marked for replacement by an operator (only an old key can be).
    pub(crate) tainted: bool,
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
struct JournalV3 {
    version: u32,
    x509_authorities: Vec<RecordV3>,
    jwt_keys: Vec<JwtRecordV3>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordV3 {
    status: Status,
    key_id: String,
    /// Standard base64 of the certificate DER.
    cert_der: String,
    tainted: bool,
    /// Only for authorities an upstream signed; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamChainV3>,
}

/// Standard base64 of each certificate's DER.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamChainV3 {
    intermediates: Vec<String>,
    roots: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtRecordV3 {
    status: Status,
    key_id: String,
    kid: String,
    /// Standard base64 of the SubjectPublicKeyInfo DER.
    public_key: String,
    not_before: u64,
    not_after: u64,
    tainted: bool,
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
    let journal = JournalV3 {
        version: JOURNAL_VERSION,
        x509_authorities: journal
            .x509
            .iter()
            .map(|r| RecordV3 {
                status: r.status,
                key_id: r.key_id.clone(),
                cert_der: STANDARD.encode(&r.cert_der),
                tainted: r.tainted,
                upstream: r.upstream.as_ref().map(|u| UpstreamChainV3 {
                    intermediates: u.intermediates.iter().map(|c| STANDARD.encode(c)).collect(),
                    roots: u.roots.iter().map(|c| STANDARD.encode(c)).collect(),
                }),
            })
            .collect(),
        jwt_keys: journal
            .jwt
            .iter()
            .map(|r| JwtRecordV3 {
                status: r.status,
                key_id: r.key_id.clone(),
                kid: r.kid.clone(),
                public_key: STANDARD.encode(&r.public_key_der),
                not_before: r.not_before,
                not_after: r.not_after,
                tainted: r.tainted,
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&journal).map_err(|e| CaError::CorruptJournal(e.to_string()))
}

/// Parses a journal blob of version 1, 2 or 3.
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
            (
                v1.x509_authorities
                    .into_iter()
                    .map(RecordV3::from)
                    .collect(),
                Vec::new(),
            )
        }
        2 => {
            let v2: JournalV2 = serde_json::from_slice(blob).map_err(corrupt)?;
            (
                v2.x509_authorities
                    .into_iter()
                    .map(RecordV3::from)
                    .collect(),
                v2.jwt_keys.into_iter().map(JwtRecordV3::from).collect(),
            )
        }
        JOURNAL_VERSION => {
            let v3: JournalV3 = serde_json::from_slice(blob).map_err(corrupt)?;
            (v3.x509_authorities, v3.jwt_keys)
        }
        other => {
            return Err(CaError::CorruptJournal(format!(
                "version {other} is not supported: this build reads versions 1 to \
                 {JOURNAL_VERSION}"
            )));
        }
    };

    let x509 = x509
        .into_iter()
        .map(|r: RecordV3| {
            let cert_der = STANDARD.decode(&r.cert_der).map_err(|e| {
                CaError::CorruptJournal(format!("certificate of key id '{}': {e}", r.key_id))
            })?;
            let upstream = r
                .upstream
                .map(|u| decode_upstream(&r.key_id, u))
                .transpose()?;
            Ok(Record {
                status: r.status,
                key_id: r.key_id,
                cert_der,
                tainted: r.tainted,
                upstream,
            })
        })
        .collect::<Result<_, CaError>>()?;
    let jwt = jwt
        .into_iter()
        .map(|r: JwtRecordV3| {
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
                tainted: r.tainted,
            })
        })
        .collect::<Result<_, CaError>>()?;
    Ok(Journal { x509, jwt })
}

fn decode_upstream(key_id: &str, u: UpstreamChainV3) -> Result<UpstreamChain, CaError> {
    let certs = |list: Vec<String>| {
        list.iter()
            .map(|c| STANDARD.decode(c).map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                CaError::CorruptJournal(format!("upstream chain of key id '{key_id}': {e}"))
            })
    };
    Ok(UpstreamChain {
        intermediates: certs(u.intermediates)?,
        roots: certs(u.roots)?,
    })
}

/// Versions before 3 had no taint: every authority they hold is untainted.
impl From<RecordV1> for RecordV3 {
    fn from(r: RecordV1) -> Self {
        Self {
            status: r.status,
            key_id: r.key_id,
            cert_der: r.cert_der,
            tainted: false,
            upstream: None,
        }
    }
}

impl From<JwtRecordV2> for JwtRecordV3 {
    fn from(r: JwtRecordV2) -> Self {
        Self {
            status: r.status,
            key_id: r.key_id,
            kid: r.kid,
            public_key: r.public_key,
            not_before: r.not_before,
            not_after: r.not_after,
            tainted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, key_id: &str) -> Record {
        Record {
            status,
            key_id: key_id.to_owned(),
            cert_der: vec![0x30, 0x03, 1, 2, 3],
            tainted: false,
            upstream: None,
        }
    }

    #[test]
    fn journal_round_trips() {
        let records = vec![
            Record {
                tainted: true,
                ..record(Status::Old, "x509-CA-A")
            },
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
                tainted: false,
            }],
        };
        let blob = encode(&journal).unwrap();
        assert_eq!(decode(&blob).unwrap(), journal);

        let text = String::from_utf8(blob).unwrap();
        assert!(text.contains("\"version\": 3"), "{text}");
        assert!(text.contains("\"tainted\": true"), "{text}");
        assert!(text.contains("\"kid\": \"k1\""), "{text}");
        assert!(text.contains("\"status\": \"prepared\""), "{text}");
        assert!(text.contains("\"cert_der\": \"MAMBAgM=\""), "{text}");
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let err = decode(br#"{"version": 4, "x509_authorities": []}"#).unwrap_err();
        assert!(
            err.to_string().contains("version 4 is not supported"),
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

    #[test]
    fn reads_version_2_journals_as_untainted() {
        let v2 = br#"{"version":2,"x509_authorities":[{"status":"old","key_id":"x509-CA-A","cert_der":"MAMBAgM="}],
            "jwt_keys":[{"status":"old","key_id":"JWT-Signer-A","kid":"k1","public_key":"MAA=","not_before":1,"not_after":2}]}"#;
        let journal = decode(v2).unwrap();
        assert_eq!(journal.x509, vec![record(Status::Old, "x509-CA-A")]);
        assert_eq!(journal.jwt.len(), 1);
        assert!(!journal.jwt[0].tainted);

        let v2_with_taint = br#"{"version":2,"x509_authorities":[{"status":"old","key_id":"k","cert_der":"MAMBAgM=","tainted":true}],"jwt_keys":[]}"#;
        assert!(matches!(
            decode(v2_with_taint),
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
