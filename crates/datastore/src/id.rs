//! [`EntryId`]: the identifier of a registration entry.

use std::fmt;
use std::str::FromStr;

/// Longest entry ID accepted, in bytes.
pub const MAX_ENTRY_ID_LEN: usize = 255;

/// Why a string is not a valid entry ID. Messages name the offending value and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryIdError {
    /// The ID is the empty string.
    #[error("entry id is empty: it must have 1 to {MAX_ENTRY_ID_LEN} bytes")]
    Empty,
    /// The ID is longer than [`MAX_ENTRY_ID_LEN`].
    #[error("entry id of {len} bytes is too long: it must have 1 to {MAX_ENTRY_ID_LEN} bytes")]
    TooLong {
        /// Length of the rejected ID in bytes.
        len: usize,
    },
    /// The ID contains a character outside `A-Z a-z 0-9 . - _`.
    #[error("entry id '{id}' contains {ch:?}: only A-Z a-z 0-9 . - _ are allowed")]
    BadChar {
        /// The rejected ID (with its bad character escaped by `{:?}` in the message).
        id: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// The ID of a registration entry: 1 to 255 bytes of `A-Z a-z 0-9 . - _`.
///
/// New entries get a random UUID v4 ([`EntryId::new`]); callers may also choose their own ID, which
/// goes through [`EntryId::parse`]. Holding an `EntryId` means it is valid, so it can be used in
/// storage keys and page tokens without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EntryId(String);

impl EntryId {
    /// A fresh random ID (UUID v4, hyphenated lowercase).
    pub fn new() -> Self {
        EntryId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Validates a caller-chosen ID.
    ///
    /// # Errors
    ///
    /// [`EntryIdError`] if `s` is empty, longer than 255 bytes, or contains a character other
    /// than `A-Z a-z 0-9 . - _`.
    pub fn parse(s: &str) -> Result<Self, EntryIdError> {
        if s.is_empty() {
            return Err(EntryIdError::Empty);
        }
        if s.len() > MAX_ENTRY_ID_LEN {
            return Err(EntryIdError::TooLong { len: s.len() });
        }
        if let Some(ch) = s.chars().find(|c| !is_id_char(*c)) {
            return Err(EntryIdError::BadChar {
                id: s.to_owned(),
                ch,
            });
        }
        Ok(EntryId(s.to_owned()))
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for EntryId {
    /// Same as [`EntryId::new`]: a fresh random ID.
    fn default() -> Self {
        Self::new()
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EntryId {
    type Err = EntryIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for EntryId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EntryId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_valid_uuids_and_differ() {
        let a = EntryId::new();
        let b = EntryId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(EntryId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn accepts_caller_chosen_ids_of_allowed_characters() {
        for s in ["a", "entry-1", "A.b_C-9", &"x".repeat(MAX_ENTRY_ID_LEN)] {
            assert_eq!(EntryId::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn rejects_empty_too_long_and_bad_characters() {
        assert_eq!(EntryId::parse(""), Err(EntryIdError::Empty));
        let long = "x".repeat(MAX_ENTRY_ID_LEN + 1);
        assert_eq!(
            EntryId::parse(&long),
            Err(EntryIdError::TooLong { len: 256 })
        );
        for (s, ch) in [
            ("a/b", '/'),
            ("a b", ' '),
            ("é", 'é'),
            ("a%", '%'),
            ("a\n", '\n'),
        ] {
            let err = EntryId::parse(s).unwrap_err();
            assert_eq!(
                err,
                EntryIdError::BadChar {
                    id: s.to_owned(),
                    ch
                }
            );
            assert!(err.to_string().contains("only A-Z a-z 0-9 . - _"), "{err}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id = EntryId::parse("my-entry").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"my-entry\"");
        assert_eq!(serde_json::from_str::<EntryId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<EntryId>("\"a/b\"").is_err());
    }
}
