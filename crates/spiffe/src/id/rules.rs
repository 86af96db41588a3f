//! The byte-level rules of SPIFFE-ID §2 for trust domain names and paths.

use super::MAX_TRUST_DOMAIN_LEN;
use super::error::{IdError, Shown, ShownChar};

/// SPIFFE-ID §2.1: a trust domain byte is one of `a-z 0-9 . - _`.
pub(crate) fn is_trust_domain_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
}

/// SPIFFE-ID §2.2: a path segment byte is one of `a-z A-Z 0-9 . - _`.
pub(crate) fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// Checks a bare trust domain name (SPIFFE-ID §2.1).
pub(crate) fn check_trust_domain(name: &str) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::EmptyTrustDomain);
    }

    if let Some(i) = name.bytes().position(|b| !is_trust_domain_byte(b)) {
        let b = name.as_bytes()[i];
        let shown = Shown::new(name);
        if b.is_ascii_uppercase() {
            return Err(IdError::UpperCaseTrustDomain {
                name: shown,
                ch: char::from(b),
            });
        }
        return Err(IdError::BadTrustDomainChar {
            name: shown,
            ch: char_at(name, i),
        });
    }

    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdError::TrustDomainTooLong {
            name: Shown::new(name),
            len: name.len(),
        });
    }
    Ok(())
}

/// Checks an ID path: empty, or `/`-separated non-empty segments (SPIFFE-ID §2.2).
pub(crate) fn check_path(path: &str) -> Result<(), IdError> {
    if path.is_empty() {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(IdError::RelativePath {
            path: Shown::new(path),
        });
    };

    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() && segments.peek().is_none() {
            return Err(IdError::TrailingSlash {
                path: Shown::new(path),
            });
        }
        check_segment_in(segment, path)?;
    }
    Ok(())
}

/// Checks one path segment given on its own (for building IDs from segments).
pub(crate) fn check_segment(segment: &str) -> Result<(), IdError> {
    check_segment_in(segment, segment)
}

fn check_segment_in(segment: &str, path: &str) -> Result<(), IdError> {
    match segment {
        "" => {
            return Err(IdError::EmptySegment {
                path: Shown::new(path),
            });
        }
        "." => {
            return Err(IdError::DotSegment {
                path: Shown::new(path),
                segment: ".",
            });
        }
        ".." => {
            return Err(IdError::DotSegment {
                path: Shown::new(path),
                segment: "..",
            });
        }
        _ => {}
    }
    match segment.bytes().position(|b| !is_path_byte(b)) {
        Some(i) => Err(IdError::BadPathChar {
            path: Shown::new(path),
            ch: char_at(segment, i),
        }),
        None => Ok(()),
    }
}

/// The character starting at byte `i` (a char boundary: every byte before it was ASCII).
fn char_at(s: &str, i: usize) -> ShownChar {
    ShownChar(
        s.get(i..)
            .and_then(|t| t.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domain_charset_is_exactly_lowercase_digits_dot_dash_underscore() {
        for b in 0u8..=255 {
            let expected = b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
            assert_eq!(is_trust_domain_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn path_charset_is_exactly_letters_digits_dot_dash_underscore() {
        for b in 0u8..=255 {
            let expected = b.is_ascii_alphanumeric() || b"._-".contains(&b);
            assert_eq!(is_path_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn accepts_paths_with_dots_inside_segments() {
        for p in ["", "/a", "/.a", "/..a", "/...", "/a.b/c-d/E_F/09"] {
            assert_eq!(check_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        assert!(matches!(check_path("a"), Err(IdError::RelativePath { .. })));
        assert!(matches!(
            check_path("/"),
            Err(IdError::TrailingSlash { .. })
        ));
        assert!(matches!(
            check_path("/a/"),
            Err(IdError::TrailingSlash { .. })
        ));
        assert!(matches!(
            check_path("//"),
            Err(IdError::EmptySegment { .. })
        ));
        assert!(matches!(
            check_path("/a//b"),
            Err(IdError::EmptySegment { .. })
        ));
        assert!(matches!(
            check_path("/."),
            Err(IdError::DotSegment { segment: ".", .. })
        ));
        assert!(matches!(
            check_path("/a/../b"),
            Err(IdError::DotSegment { segment: "..", .. })
        ));
        assert!(matches!(
            check_path("/a%2fb"),
            Err(IdError::BadPathChar {
                ch: ShownChar('%'),
                ..
            })
        ));
        assert!(matches!(
            check_path("/é"),
            Err(IdError::BadPathChar {
                ch: ShownChar('é'),
                ..
            })
        ));
    }

    #[test]
    fn trust_domain_length_limit_is_255_bytes() {
        assert_eq!(check_trust_domain(&"a".repeat(255)), Ok(()));
        assert!(matches!(
            check_trust_domain(&"a".repeat(256)),
            Err(IdError::TrustDomainTooLong { len: 256, .. })
        ));
    }

    #[test]
    fn parser_rejects_every_byte_outside_the_charsets() {
        for b in 0u8..=127 {
            let c = char::from(b);
            let td_ok = b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
            let td_id = format!("spiffe://a{c}b/x");
            // '/' ends the trust domain, so it is legal there in a different role.
            if b != b'/' {
                assert_eq!(
                    crate::id::SpiffeId::parse(&td_id).is_ok(),
                    td_ok,
                    "{td_id:?}"
                );
            }
            let path_ok = b.is_ascii_alphanumeric() || b"._-".contains(&b);
            let path_id = format!("spiffe://td/a{c}b");
            if b != b'/' {
                assert_eq!(
                    crate::id::SpiffeId::parse(&path_id).is_ok(),
                    path_ok,
                    "{path_id:?}"
                );
            }
        }
        assert!(crate::id::SpiffeId::parse("spiffe://td/caf\u{e9}").is_err());
        assert!(crate::id::SpiffeId::parse("spiffe://t\u{e9}d/x").is_err());
    }
}
