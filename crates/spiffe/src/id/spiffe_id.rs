//! [`SpiffeId`]: a validated `spiffe://<trust domain><path>` identifier.

use std::fmt;
use std::str::FromStr;

use super::error::{IdError, Shown};
use super::rules::{check_path, check_segment, check_trust_domain};
use super::{MAX_ID_LEN, SCHEME_PREFIX, TrustDomain};

/// A SPIFFE ID such as `spiffe://example.org/ns/prod/sa/api` (SPIFFE-ID §2).
///
/// Holding one means every rule of SPIFFE-ID §2 holds: lowercase `spiffe://` scheme, a trust
/// domain of `a-z 0-9 . - _`, no port, userinfo, query, fragment or percent-encoding, and a path
/// that is empty or a sequence of `/segment` with segments of `a-z A-Z 0-9 . - _` that are neither
/// `.` nor `..`. IDs are at most 2048 bytes. Valid IDs are canonical, so equality is byte equality.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SpiffeId {
    id: String,
    /// Byte offset where the path starts (= length of `spiffe://<trust domain>`).
    path_start: usize,
}

impl SpiffeId {
    /// Parses a SPIFFE ID byte by byte. Nothing is decoded or normalised: what is accepted is
    /// returned unchanged by [`as_str`](Self::as_str) and `to_string`.
    ///
    /// # Errors
    ///
    /// [`IdError`] naming the first broken rule; `SPIFFE://` and upper-case trust domains are
    /// rejected, never lowercased.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong {
                input: Shown::new(s),
                len: s.len(),
            });
        }

        let Some(rest) = s.strip_prefix(SCHEME_PREFIX) else {
            let looks_upper = s
                .get(..SCHEME_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(SCHEME_PREFIX));
            return Err(if looks_upper {
                IdError::UpperCaseScheme {
                    input: Shown::new(s),
                }
            } else {
                IdError::WrongScheme {
                    input: Shown::new(s),
                }
            });
        };

        let td_len = rest.find('/').unwrap_or(rest.len());
        let (td, path) = rest.split_at(td_len);
        if td.is_empty() {
            return Err(IdError::MissingTrustDomain {
                input: Shown::new(s),
            });
        }
        check_trust_domain(td)?;
        check_path(path)?;

        Ok(SpiffeId {
            id: s.to_owned(),
            path_start: SCHEME_PREFIX.len() + td_len,
        })
    }

    /// Builds an ID from a trust domain and a path that is either empty or `/seg/seg...`.
    ///
    /// # Errors
    ///
    /// [`IdError`] when the path breaks a rule or the result would exceed 2048 bytes.
    pub fn from_path(td: &TrustDomain, path: &str) -> Result<Self, IdError> {
        check_path(path)?;
        Self::assemble(td, path.to_owned())
    }

    /// Builds an ID from a trust domain and path segments (each without `/`); no segments gives
    /// the root ID `spiffe://<td>`.
    ///
    /// # Errors
    ///
    /// [`IdError`] when a segment is empty, `.` or `..`, holds a character outside
    /// `a-z A-Z 0-9 . - _` (including `/`), or the result would exceed 2048 bytes.
    pub fn from_segments(td: &TrustDomain, segments: &[&str]) -> Result<Self, IdError> {
        let mut path = String::new();
        for segment in segments {
            check_segment(segment)?;
            path.push('/');
            path.push_str(segment);
        }
        Self::assemble(td, path)
    }

    /// The trust domain of this ID.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain::from_validated(self.trust_domain_name())
    }

    /// The bare trust domain name, e.g. `example.org`.
    pub fn trust_domain_name(&self) -> &str {
        &self.id[SCHEME_PREFIX.len()..self.path_start]
    }

    /// The path: empty for the root ID, otherwise starting with `/`.
    pub fn path(&self) -> &str {
        &self.id[self.path_start..]
    }

    /// The path segments, in order (none for the root ID).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').skip(1)
    }

    /// The whole ID as written.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// True for the ID of the trust domain itself (empty path), which X509-SVID leaves must not
    /// carry.
    pub fn is_root(&self) -> bool {
        self.path_start == self.id.len()
    }

    /// True when this ID belongs to `td`.
    pub fn is_member_of(&self, td: &TrustDomain) -> bool {
        self.trust_domain_name() == td.name()
    }

    /// Wraps an ID the caller has already validated.
    pub(crate) fn from_validated(id: String, path_start: usize) -> Self {
        SpiffeId { id, path_start }
    }

    fn assemble(td: &TrustDomain, path: String) -> Result<Self, IdError> {
        let id = format!("{SCHEME_PREFIX}{}{path}", td.name());
        if id.len() > MAX_ID_LEN {
            return Err(IdError::TooLong {
                len: id.len(),
                input: Shown::new(&id),
            });
        }
        Ok(SpiffeId {
            path_start: id.len() - path.len(),
            id,
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for SpiffeId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

impl serde::Serialize for SpiffeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id)
    }
}

impl<'de> serde::Deserialize<'de> for SpiffeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::error::ShownChar;

    fn td(name: &str) -> TrustDomain {
        TrustDomain::new(name).unwrap()
    }

    #[test]
    fn parses_valid_ids_and_keeps_them_verbatim() {
        let cases = [
            ("spiffe://example.org", "example.org", ""),
            (
                "spiffe://example.org/workload-1",
                "example.org",
                "/workload-1",
            ),
            ("spiffe://td/ns/Prod/sa/API_v2", "td", "/ns/Prod/sa/API_v2"),
            ("spiffe://1.2.3.4/.a/..b/...", "1.2.3.4", "/.a/..b/..."),
            ("spiffe://a_b-c.d/x", "a_b-c.d", "/x"),
        ];
        for (s, name, path) in cases {
            let id = SpiffeId::parse(s).unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
            assert_eq!(id.trust_domain_name(), name);
            assert_eq!(id.trust_domain(), td(name));
            assert_eq!(id.path(), path);
            assert_eq!(id.is_root(), path.is_empty());
            assert!(id.is_member_of(&td(name)));
        }
    }

    #[test]
    fn rejects_bad_schemes() {
        assert_eq!(SpiffeId::parse(""), Err(IdError::Empty));
        for s in [
            "s",
            "spiffe",
            "spiffe:",
            "spiffe:/td",
            "spiffe:td",
            "http://td/a",
            "://td",
        ] {
            assert!(
                matches!(SpiffeId::parse(s), Err(IdError::WrongScheme { .. })),
                "{s}"
            );
        }
        for s in ["SPIFFE://td/a", "Spiffe://td", "spiffE://td"] {
            let err = SpiffeId::parse(s).unwrap_err();
            assert!(matches!(err, IdError::UpperCaseScheme { .. }), "{s}");
            assert!(
                err.to_string().contains("upper case is not allowed"),
                "{err}"
            );
        }
    }

    #[test]
    fn rejects_missing_trust_domain() {
        for s in ["spiffe://", "spiffe:///", "spiffe:///path"] {
            assert!(
                matches!(SpiffeId::parse(s), Err(IdError::MissingTrustDomain { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_upper_case_trust_domain() {
        let err = SpiffeId::parse("spiffe://Example.org/a").unwrap_err();
        assert!(matches!(err, IdError::UpperCaseTrustDomain { ch: 'E', .. }));
        assert!(err.to_string().contains("upper case is not allowed"));
    }

    #[test]
    fn rejects_port_userinfo_query_fragment_and_percent() {
        let cases = [
            ("spiffe://td:8080/a", ':'),
            ("spiffe://user@td/a", '@'),
            ("spiffe://user:pw@td/a", ':'),
            ("spiffe://td?x=1", '?'),
            ("spiffe://td#frag", '#'),
            ("spiffe://t%64/a", '%'),
        ];
        for (s, ch) in cases {
            match SpiffeId::parse(s) {
                Err(IdError::BadTrustDomainChar { ch: c, .. }) => assert_eq!(c, ShownChar(ch)),
                other => panic!("{s}: {other:?}"),
            }
        }
        for (s, ch) in [
            ("spiffe://td/a?x=1", '?'),
            ("spiffe://td/a#f", '#'),
            ("spiffe://td/%41", '%'),
        ] {
            match SpiffeId::parse(s) {
                Err(IdError::BadPathChar { ch: c, .. }) => assert_eq!(c, ShownChar(ch)),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_empty_dot_and_trailing_segments() {
        type Check = fn(&IdError) -> bool;
        let cases: [(&str, Check); 7] = [
            ("spiffe://td/", |e| {
                matches!(e, IdError::TrailingSlash { .. })
            }),
            ("spiffe://td/a/", |e| {
                matches!(e, IdError::TrailingSlash { .. })
            }),
            ("spiffe://td//", |e| {
                matches!(e, IdError::EmptySegment { .. })
            }),
            ("spiffe://td//a", |e| {
                matches!(e, IdError::EmptySegment { .. })
            }),
            ("spiffe://td/a//b", |e| {
                matches!(e, IdError::EmptySegment { .. })
            }),
            ("spiffe://td/./a", |e| {
                matches!(e, IdError::DotSegment { segment: ".", .. })
            }),
            ("spiffe://td/a/..", |e| {
                matches!(e, IdError::DotSegment { segment: "..", .. })
            }),
        ];
        for (s, check) in cases {
            let err = SpiffeId::parse(s).unwrap_err();
            assert!(check(&err), "{s}: {err:?}");
        }
    }

    #[test]
    fn accepts_2048_bytes_and_rejects_2049() {
        let prefix = "spiffe://td/";
        let ok = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
        assert_eq!(ok.len(), 2048);
        assert_eq!(SpiffeId::parse(&ok).unwrap().as_str(), ok);
        let too_long = format!("{ok}a");
        assert!(matches!(
            SpiffeId::parse(&too_long),
            Err(IdError::TooLong { len: 2049, .. })
        ));
    }

    #[test]
    fn builds_from_path() {
        let t = td("example.org");
        assert_eq!(
            SpiffeId::from_path(&t, "").unwrap().as_str(),
            "spiffe://example.org"
        );
        assert_eq!(
            SpiffeId::from_path(&t, "/a/b").unwrap().as_str(),
            "spiffe://example.org/a/b"
        );
        assert_eq!(SpiffeId::from_path(&t, "/a/b").unwrap().path(), "/a/b");
        for bad in ["a", "/", "/a/", "//a", "/./a", "/a b"] {
            assert!(SpiffeId::from_path(&t, bad).is_err(), "{bad}");
        }
        let long = format!("/{}", "a".repeat(2048));
        assert!(matches!(
            SpiffeId::from_path(&t, &long),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn builds_from_segments() {
        let t = td("example.org");
        let id = SpiffeId::from_segments(&t, &["ns", "prod", "sa", "api"]).unwrap();
        assert_eq!(id.as_str(), "spiffe://example.org/ns/prod/sa/api");
        assert_eq!(
            id.segments().collect::<Vec<_>>(),
            ["ns", "prod", "sa", "api"]
        );
        assert!(SpiffeId::from_segments(&t, &[]).unwrap().is_root());
        assert_eq!(
            SpiffeId::from_segments(&t, &[]).unwrap().segments().count(),
            0
        );
        for bad in [&["a", ""][..], &["."], &[".."], &["a/b"], &["a%20"]] {
            assert!(SpiffeId::from_segments(&t, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn membership_is_exact_trust_domain_equality() {
        let id = SpiffeId::parse("spiffe://example.org/a").unwrap();
        assert!(id.is_member_of(&td("example.org")));
        assert!(!id.is_member_of(&td("example.or")));
        assert!(!id.is_member_of(&td("sub.example.org")));
    }

    #[test]
    fn serde_uses_the_id_string() {
        let id = SpiffeId::parse("spiffe://example.org/a").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"spiffe://example.org/a\"");
        assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SpiffeId>("\"spiffe://example.org/\"").is_err());
    }
}
