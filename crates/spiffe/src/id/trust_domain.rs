//! [`TrustDomain`]: a validated trust domain name.

use std::fmt;
use std::str::FromStr;

use super::error::IdError;
use super::rules::check_trust_domain;
use super::{SCHEME_PREFIX, SpiffeId};

/// A trust domain name such as `example.org` (SPIFFE-ID §2.1).
///
/// Holding one means the name is non-empty, at most 255 bytes and made of `a-z 0-9 . - _` only.
/// Names are compared byte for byte; nothing treats them as DNS names or IP addresses.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates a bare trust domain name (`example.org`, not `spiffe://example.org`).
    ///
    /// # Errors
    ///
    /// [`IdError`] naming the first broken rule; upper case is rejected, never lowercased.
    pub fn new(name: &str) -> Result<Self, IdError> {
        check_trust_domain(name)?;
        Ok(TrustDomain(name.to_owned()))
    }

    /// Accepts either a bare name (`example.org`) or a SPIFFE ID (`spiffe://example.org/x`) and
    /// returns the trust domain. Workload API map keys come in the ID form.
    ///
    /// # Errors
    ///
    /// [`IdError`] when the input is neither a valid name nor a valid SPIFFE ID.
    pub fn from_name_or_id(s: &str) -> Result<Self, IdError> {
        if s.contains(":/") {
            Ok(SpiffeId::parse(s)?.trust_domain())
        } else {
            Self::new(s)
        }
    }

    /// The bare name, e.g. `example.org`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The SPIFFE ID of the trust domain itself, `spiffe://<name>` (the root ID, empty path).
    pub fn id(&self) -> SpiffeId {
        SpiffeId::from_validated(self.id_string(), self.0.len() + SCHEME_PREFIX.len())
    }

    /// The ID form `spiffe://<name>` as a string (the form of Workload API map keys).
    pub fn id_string(&self) -> String {
        format!("{SCHEME_PREFIX}{}", self.0)
    }

    /// Wraps a name that the caller has already checked.
    pub(crate) fn from_validated(name: &str) -> Self {
        TrustDomain(name.to_owned())
    }
}

impl fmt::Display for TrustDomain {
    /// Writes the bare name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = IdError;

    /// Same as [`TrustDomain::new`]: a bare name only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for TrustDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for TrustDomain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TrustDomain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bare_names() {
        for name in ["example.org", "a", "1.2.3.4", "my_td-1.local", "..."] {
            let td = TrustDomain::new(name).unwrap();
            assert_eq!(td.name(), name);
            assert_eq!(td.to_string(), name);
            assert_eq!(td.id_string(), format!("spiffe://{name}"));
            assert_eq!(td.id().as_str(), format!("spiffe://{name}"));
            assert!(td.id().is_root());
        }
    }

    #[test]
    fn rejects_upper_case_with_a_message_saying_so() {
        let err = TrustDomain::new("Example.org").unwrap_err();
        assert!(matches!(err, IdError::UpperCaseTrustDomain { ch: 'E', .. }));
        assert!(
            err.to_string().contains("upper case is not allowed"),
            "{err}"
        );
    }

    #[test]
    fn rejects_ports_userinfo_ipv6_and_percent() {
        for (name, ch) in [
            ("td:8080", ':'),
            ("user@td", '@'),
            ("[::1]", '['),
            ("td%41", '%'),
            ("t d", ' '),
        ] {
            match TrustDomain::new(name) {
                Err(IdError::BadTrustDomainChar { ch: c, .. }) => assert_eq!(c.0, ch, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(TrustDomain::new(""), Err(IdError::EmptyTrustDomain));
    }

    #[test]
    fn bare_constructor_rejects_the_id_form() {
        assert!(TrustDomain::new("spiffe://example.org").is_err());
        assert!("spiffe://example.org".parse::<TrustDomain>().is_err());
    }

    #[test]
    fn from_name_or_id_accepts_both_forms() {
        let expected = TrustDomain::new("example.org").unwrap();
        for s in [
            "example.org",
            "spiffe://example.org",
            "spiffe://example.org/a/b",
        ] {
            assert_eq!(TrustDomain::from_name_or_id(s).unwrap(), expected, "{s}");
        }
        for s in [
            "spiffe://example.org/",
            "SPIFFE://example.org",
            "spiffe:/example.org",
            "",
        ] {
            assert!(TrustDomain::from_name_or_id(s).is_err(), "{s}");
        }
    }

    #[test]
    fn serde_uses_the_bare_name() {
        let td = TrustDomain::new("example.org").unwrap();
        let json = serde_json::to_string(&td).unwrap();
        assert_eq!(json, "\"example.org\"");
        assert_eq!(serde_json::from_str::<TrustDomain>(&json).unwrap(), td);
        assert!(serde_json::from_str::<TrustDomain>("\"Example.org\"").is_err());
    }
}
