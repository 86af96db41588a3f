//! Key types, key generation, and the [`KeyManager`] abstraction that hides where private keys
//! live.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::KeyPair;

/// The key algorithms Lanyard can generate, named as in SPIRE's `ca_key_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on NIST P-256, signing with SHA-256 (the default).
    #[default]
    EcP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    EcP384,
    /// RSA with a 2048-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    Rsa2048,
    /// RSA with a 4096-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    Rsa4096,
}

impl KeyType {
    /// Every key type, in the order they are listed to users.
    pub const ALL: [KeyType; 4] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa4096,
    ];

    /// The configuration name: `ec-p256`, `ec-p384`, `rsa-2048` or `rsa-4096`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|kt| kt.name() == s)
            .ok_or_else(|| KeyError::UnknownKeyType(s.to_owned()))
    }
}

impl serde::Serialize for KeyType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Errors from key generation and key storage.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key type name that is not one of the four supported ones.
    #[error("unknown key type '{0}': expected one of ec-p256, ec-p384, rsa-2048, rsa-4096")]
    UnknownKeyType(String),
    /// A key id that could name a file outside the key directory, or is otherwise malformed.
    #[error(
        "invalid key id '{0}': expected 1 to 128 characters of A-Z a-z 0-9 . _ - not starting with '.'"
    )]
    InvalidKeyId(String),
    /// The crypto library failed to generate a key.
    #[error("generating a {key_type} key failed: {source}")]
    Generate {
        /// The key type asked for.
        key_type: KeyType,
        /// What the crypto library reported.
        source: rcgen::Error,
    },
    /// A stored key could not be decoded as a PKCS#8 private key of a supported type.
    #[error("key '{id}' is not a usable PKCS#8 private key: {source}")]
    Corrupt {
        /// The key id.
        id: String,
        /// What the decoder reported.
        source: rcgen::Error,
    },
    /// A file system operation of the disk key manager failed.
    #[error("{op} {path} failed: {source}", path = path.display())]
    Io {
        /// What was being done ("creating key directory", "writing key file", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },
    /// The key directory or a key file is readable by other users.
    #[error("{path} has mode {mode:o}: keys must not be accessible to group or others", path = path.display())]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Generates a fresh key pair of the given type.
///
/// # Errors
///
/// [`KeyError::Generate`] if the crypto library fails (for example, no entropy).
pub fn generate_key_pair(kt: KeyType) -> Result<KeyPair, KeyError> {
    let generated = match kt {
        KeyType::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        KeyType::Rsa4096 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
        }
    };
    generated.map_err(|source| KeyError::Generate {
        key_type: kt,
        source,
    })
}

/// Decodes a PKCS#8 DER private key (EC P-256, EC P-384 or RSA).
///
/// # Errors
///
/// [`KeyError::Corrupt`] naming `id` if the bytes are not such a key.
pub fn key_pair_from_pkcs8(id: &str, pkcs8_der: &[u8]) -> Result<KeyPair, KeyError> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8_der);
    KeyPair::try_from(&der).map_err(|source| KeyError::Corrupt {
        id: id.to_owned(),
        source,
    })
}

/// A key that can sign as an rcgen issuer and be shared across threads. Every
/// `rcgen::KeyPair` is one; key managers hand out `Arc<rcgen::KeyPair>`.
pub trait SigningKey: rcgen::SigningKey + Send + Sync {}

impl<T: rcgen::SigningKey + Send + Sync> SigningKey for T {}

/// Where private keys live. CA code asks for keys by logical id (`x509-CA-A`) and never learns
/// whether they sit in memory, on disk, or (later) in a KMS.
pub trait KeyManager: Send + Sync {
    /// Generates a new key of type `kt` under `id`, replacing any key already stored there.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKeyId`] for a malformed id, [`KeyError::Generate`] or storage errors.
    fn generate_key(&self, id: &str, kt: KeyType) -> Result<Arc<KeyPair>, KeyError>;

    /// The key stored under `id`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKeyId`] for a malformed id, storage or decoding errors.
    fn get_key(&self, id: &str) -> Result<Option<Arc<KeyPair>>, KeyError>;
}

/// Checks that `id` is safe to use as a file name: 1 to 128 bytes of `[A-Za-z0-9._-]`, not
/// starting with `.` (which also rules out `.` and `..`).
///
/// # Errors
///
/// [`KeyError::InvalidKeyId`] naming the id.
pub fn validate_key_id(id: &str) -> Result<(), KeyError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    let ok = !id.is_empty() && id.len() <= 128 && !id.starts_with('.') && id.bytes().all(allowed);
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKeyId(id.to_owned()))
    }
}

/// A key manager that keeps keys in process memory only: every restart means new keys (and so a
/// new CA). Meant for tests and throwaway servers.
#[derive(Default)]
pub struct MemoryKeyManager {
    keys: Mutex<HashMap<String, Arc<KeyPair>>>,
}

impl MemoryKeyManager {
    /// An empty key manager.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryKeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<&String> = keys.keys().collect();
        ids.sort();
        f.debug_struct("MemoryKeyManager")
            .field("key_ids", &ids)
            .finish()
    }
}

impl KeyManager for MemoryKeyManager {
    fn generate_key(&self, id: &str, kt: KeyType) -> Result<Arc<KeyPair>, KeyError> {
        validate_key_id(id)?;
        let key = Arc::new(generate_key_pair(kt)?);
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.insert(id.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    fn get_key(&self, id: &str) -> Result<Option<Arc<KeyPair>>, KeyError> {
        validate_key_id(id)?;
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(keys.get(id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    #[test]
    fn key_type_names_round_trip() {
        for kt in KeyType::ALL {
            assert_eq!(kt.to_string().parse::<KeyType>().unwrap(), kt);
        }
        assert_eq!(KeyType::default(), KeyType::EcP256);
    }

    #[test]
    fn unknown_key_type_error_lists_the_allowed_names() {
        let err = "ed25519".parse::<KeyType>().unwrap_err().to_string();
        assert!(err.contains("'ed25519'"), "{err}");
        for kt in KeyType::ALL {
            assert!(err.contains(kt.name()), "{err}");
        }
    }

    #[test]
    fn key_type_serde_uses_the_names() {
        let json = serde_json::to_string(&KeyType::Rsa4096).unwrap();
        assert_eq!(json, "\"rsa-4096\"");
        let back: KeyType = serde_json::from_str("\"ec-p384\"").unwrap();
        assert_eq!(back, KeyType::EcP384);
        assert!(serde_json::from_str::<KeyType>("\"rsa-1024\"").is_err());
    }

    #[test]
    fn generates_every_key_type_and_reloads_it_from_pkcs8() {
        for kt in KeyType::ALL {
            let key = generate_key_pair(kt).unwrap();
            let again = key_pair_from_pkcs8("k", &key.serialize_der()).unwrap();
            assert_eq!(key.der_bytes(), again.der_bytes(), "{kt}");
            assert_eq!(key.algorithm(), again.algorithm(), "{kt}");
        }
    }

    #[test]
    fn rsa_key_sizes_match_the_key_type() {
        // The public key is a DER RSAPublicKey; its length tracks the modulus size.
        let small = generate_key_pair(KeyType::Rsa2048).unwrap();
        let large = generate_key_pair(KeyType::Rsa4096).unwrap();
        assert!((260..300).contains(&small.der_bytes().len()));
        assert!((520..560).contains(&large.der_bytes().len()));
    }

    #[test]
    fn rejects_key_ids_that_could_escape_the_directory() {
        for bad in [
            "", ".", "..", "../x", "a/b", ".hidden", "a\\b", "a b", "é", "a\0b",
        ] {
            assert!(
                matches!(validate_key_id(bad), Err(KeyError::InvalidKeyId(_))),
                "{bad:?}"
            );
        }
        assert!(validate_key_id(&"a".repeat(129)).is_err());
        for good in ["x509-CA-A", "agent-svid", "JWT.Signer_B", "a..b"] {
            validate_key_id(good).unwrap();
        }
    }

    #[test]
    fn corrupt_pkcs8_is_reported_with_its_id() {
        let err = key_pair_from_pkcs8("x509-CA-A", b"not a key").unwrap_err();
        assert!(err.to_string().starts_with("key 'x509-CA-A'"), "{err}");
    }

    #[test]
    fn memory_key_manager_replaces_and_returns_keys() {
        let km = MemoryKeyManager::new();
        assert!(km.get_key("x509-CA-A").unwrap().is_none());

        let first = km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
        let got = km.get_key("x509-CA-A").unwrap().unwrap();
        assert_eq!(first.der_bytes(), got.der_bytes());

        let second = km.generate_key("x509-CA-A", KeyType::EcP384).unwrap();
        let got = km.get_key("x509-CA-A").unwrap().unwrap();
        assert_ne!(first.der_bytes(), got.der_bytes());
        assert_eq!(second.der_bytes(), got.der_bytes());

        assert!(km.get_key("../etc/passwd").is_err());
    }
}
