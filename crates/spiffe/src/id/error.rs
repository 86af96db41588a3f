//! The error type of SPIFFE ID and trust domain parsing.

use std::fmt;

/// Why a string is not a valid SPIFFE ID, trust domain name or ID path.
///
/// Every message names the offending value (shortened when long) and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The input was empty.
    #[error("spiffe id is empty: expected spiffe://<trust domain>[/<path>]")]
    Empty,

    /// The input does not start with `spiffe://`.
    #[error("{input} does not start with 'spiffe://': the scheme must be exactly spiffe")]
    WrongScheme {
        /// The input, quoted and shortened.
        input: Shown,
    },

    /// The scheme is `spiffe` in the wrong case, e.g. `SPIFFE://`.
    #[error("{input} has an upper-case scheme: upper case is not allowed, write 'spiffe://'")]
    UpperCaseScheme {
        /// The input, quoted and shortened.
        input: Shown,
    },

    /// Nothing between `spiffe://` and the path.
    #[error("{input} has no trust domain: the trust domain must not be empty")]
    MissingTrustDomain {
        /// The input, quoted and shortened.
        input: Shown,
    },

    /// A trust domain name was empty.
    #[error("trust domain name is empty: it must have at least one byte of a-z 0-9 . - _")]
    EmptyTrustDomain,

    /// The trust domain holds an upper-case ASCII letter.
    #[error("trust domain {name} contains '{ch}': upper case is not allowed, only a-z 0-9 . - _")]
    UpperCaseTrustDomain {
        /// The trust domain, quoted and shortened.
        name: Shown,
        /// The first upper-case letter.
        ch: char,
    },

    /// The trust domain holds a character outside `a-z 0-9 . - _`.
    #[error("trust domain {name} contains {ch}: only a-z 0-9 . - _ are allowed{}", hint(*ch))]
    BadTrustDomainChar {
        /// The trust domain, quoted and shortened.
        name: Shown,
        /// The first offending character.
        ch: ShownChar,
    },

    /// The trust domain is longer than [`MAX_TRUST_DOMAIN_LEN`](super::MAX_TRUST_DOMAIN_LEN).
    #[error("trust domain {name} is {len} bytes long: at most 255 bytes are allowed")]
    TrustDomainTooLong {
        /// The trust domain, quoted and shortened.
        name: Shown,
        /// Its length in bytes.
        len: usize,
    },

    /// The whole ID is longer than [`MAX_ID_LEN`](super::MAX_ID_LEN).
    #[error("spiffe id {input} is {len} bytes long: at most 2048 bytes are allowed")]
    TooLong {
        /// The input, quoted and shortened.
        input: Shown,
        /// Its length in bytes.
        len: usize,
    },

    /// A non-empty path does not start with `/`.
    #[error("path {path} does not start with '/': a path is empty or starts with '/'")]
    RelativePath {
        /// The path, quoted and shortened.
        path: Shown,
    },

    /// The path has an empty segment (`//`), or a segment given to `from_segments` is empty.
    #[error("path {path} has an empty segment: empty segments are not allowed")]
    EmptySegment {
        /// The path, quoted and shortened.
        path: Shown,
    },

    /// The path has a `.` or `..` segment.
    #[error("path {path} has the segment '{segment}': '.' and '..' segments are not allowed")]
    DotSegment {
        /// The path, quoted and shortened.
        path: Shown,
        /// The dot segment.
        segment: &'static str,
    },

    /// The path ends with `/`.
    #[error("path {path} ends with '/': a trailing slash is not allowed")]
    TrailingSlash {
        /// The path, quoted and shortened.
        path: Shown,
    },

    /// The path holds a character outside `a-z A-Z 0-9 . - _` (besides the `/` separators).
    #[error("path {path} contains {ch}: only a-z A-Z 0-9 . - _ are allowed in path segments{}", hint(*ch))]
    BadPathChar {
        /// The path, quoted and shortened.
        path: Shown,
        /// The first offending character.
        ch: ShownChar,
    },
}

/// An input value as shown in an error message: quoted, escaped and cut after 100 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    pub(crate) fn new(s: &str) -> Self {
        const LIMIT: usize = 100;
        let mut out = String::from("'");
        for (n, c) in s.chars().enumerate() {
            if n == LIMIT {
                out.push_str("...");
                break;
            }
            out.extend(c.escape_debug());
        }
        out.push('\'');
        Shown(out)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A character as shown in an error message: quoted, escaped when not printable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShownChar(pub char);

impl fmt::Display for ShownChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.escape_debug())
    }
}

/// Extra words for characters that usually mean the input was meant as something else.
fn hint(ch: ShownChar) -> &'static str {
    match ch.0 {
        ':' => " (ports are not allowed)",
        '@' => " (userinfo is not allowed)",
        '?' => " (a query is not allowed)",
        '#' => " (a fragment is not allowed)",
        '%' => " (percent-encoding is not allowed)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_values_are_quoted_escaped_and_cut() {
        assert_eq!(Shown::new("a\nb").to_string(), "'a\\nb'");
        let long = "x".repeat(300);
        let shown = Shown::new(&long).to_string();
        assert!(shown.ends_with("...'"));
        assert!(shown.len() < 110);
    }

    #[test]
    fn messages_name_the_value_and_the_rule() {
        let e = IdError::BadTrustDomainChar {
            name: Shown::new("a%b"),
            ch: ShownChar('%'),
        };
        assert_eq!(
            e.to_string(),
            "trust domain 'a%b' contains '%': only a-z 0-9 . - _ are allowed \
             (percent-encoding is not allowed)"
        );
    }
}
