//! The libpq `keyword=value` grammar, as lib/pq and pgx read it.
//!
//! - pairs are separated by whitespace; spaces around `=` are optional;
//! - a value is either a run of non-whitespace characters or a single-quoted string, which may
//!   hold spaces and may be empty;
//! - in both forms a backslash takes the next character literally (`\'`, `\\`, `\ `);
//! - after `=` whitespace is skipped, so `key= value` sets `key` to `value`, and `key=` at the
//!   end of the string sets it to the empty string.
//!
//! Deliberately stricter than libpq: a backslash with nothing after it is an error rather than
//! silently dropped.

use std::ops::Range;

use super::ConnStringError;

/// One `key=value` pair with the byte spans needed for errors and redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pair<'a> {
    /// The key exactly as written.
    pub key: &'a str,
    /// Byte offset of the key.
    pub key_at: usize,
    /// The value with quotes and escapes removed.
    pub value: String,
    /// Byte span of the value as written, quotes included.
    pub raw: Range<usize>,
    /// Whether the value was single-quoted.
    pub quoted: bool,
}

/// Iterates over the pairs of a libpq string; stops after the first error.
pub(super) struct Pairs<'a> {
    s: &'a str,
    pos: usize,
    failed: bool,
}

/// Starts reading `s` as a libpq `key=value` list.
pub(super) fn pairs(s: &str) -> Pairs<'_> {
    Pairs {
        s,
        pos: 0,
        failed: false,
    }
}

/// libpq splits on C `isspace`, which includes vertical tab and form feed.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

impl<'a> Pairs<'a> {
    fn skip_spaces(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn next_pair(&mut self) -> Result<Option<Pair<'a>>, ConnStringError> {
        self.skip_spaces();
        let key_at = self.pos;
        if self.pos == self.s.len() {
            return Ok(None);
        }

        let rest = &self.s[self.pos..];
        let key_len = rest.find(|c| c == '=' || is_space(c)).unwrap_or(rest.len());
        let key = &rest[..key_len];
        self.pos += key_len;
        self.skip_spaces();
        if self.peek() != Some('=') {
            return Err(ConnStringError::MissingEquals { at: key_at });
        }
        if key.is_empty() {
            return Err(ConnStringError::EmptyKey { at: self.pos });
        }
        self.pos += 1;
        self.skip_spaces();

        let start = self.pos;
        let quoted = self.peek() == Some('\'');
        let value = if quoted {
            self.pos += 1;
            self.quoted_value(start)?
        } else {
            self.bare_value()?
        };
        Ok(Some(Pair {
            key,
            key_at,
            value,
            raw: start..self.pos,
            quoted,
        }))
    }

    /// Reads up to and including the closing quote; `open` is the opening quote's offset.
    fn quoted_value(&mut self, open: usize) -> Result<String, ConnStringError> {
        let mut value = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.pos += i + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(ConnStringError::UnterminatedQuote { at: open })
    }

    /// Reads up to the next unescaped whitespace or the end of the string.
    fn bare_value(&mut self) -> Result<String, ConnStringError> {
        let mut value = String::new();
        let base = self.pos;
        let mut chars = self.s[base..].char_indices();
        while let Some((i, c)) = chars.next() {
            if is_space(c) {
                self.pos = base + i;
                return Ok(value);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => return Err(ConnStringError::DanglingBackslash { at: base + i }),
                }
            } else {
                value.push(c);
            }
        }
        self.pos = self.s.len();
        Ok(value)
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, ConnStringError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.next_pair().transpose();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

/// Whether `s` reads as a libpq list rather than a URL or a MySQL DSN: its first word is an
/// identifier followed by `=`.
pub(super) fn looks_like_kv(s: &str) -> bool {
    let s = s.trim_start_matches(is_space);
    let key_len = s.find(|c| c == '=' || is_space(c)).unwrap_or(s.len());
    let (key, rest) = s.split_at(key_len);
    !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && rest.trim_start_matches(is_space).starts_with('=')
}

/// Byte offset where the error stopped the parse, for redaction.
pub(super) fn error_offset(e: &ConnStringError) -> Option<usize> {
    match e {
        ConnStringError::UnterminatedQuote { at }
        | ConnStringError::DanglingBackslash { at }
        | ConnStringError::MissingEquals { at }
        | ConnStringError::EmptyKey { at } => Some(*at),
        _ => None,
    }
}
