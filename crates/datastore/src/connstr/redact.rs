//! Password redaction for every connection-string form [`to_url`](super::to_url) reads.
//!
//! Redaction errs towards hiding too much: when a string is malformed, everything from the
//! point where parsing stopped is hidden, because that is where a mistyped password tends to be.

use super::{kv, mysql, postgres};

/// What replaces a password.
const MASK: &str = "***";

/// Returns `s` with its password replaced by `***`, for logs and error messages.
///
/// Handles `postgres://`, `postgresql://` and `mysql://` URLs (the user-info password and any
/// `password=` query parameter), libpq `key=value` lists and go-sql-driver DSNs. Strings
/// without a password are returned unchanged.
pub fn redact(s: &str) -> String {
    if postgres::is_url(s) || mysql::is_url(s) {
        redact_url(s)
    } else if kv::looks_like_kv(s) {
        redact_kv(s)
    } else {
        redact_dsn(s)
    }
}

fn redact_url(s: &str) -> String {
    let Some(authority) = s.find("://").map(|i| i + 3) else {
        return MASK.to_owned();
    };

    // The user info ends at the last '@' anywhere, not at the first '/', so a password with an
    // unescaped '/' or '?' is still covered. A '@' in a query value makes this hide too much,
    // never too little.
    let mut out = match s[authority..].rfind('@').map(|at| authority + at) {
        Some(at) => match s[authority..at].find(':') {
            Some(colon) => format!("{}{MASK}{}", &s[..=authority + colon], &s[at..]),
            None => s.to_owned(),
        },
        None => s.to_owned(),
    };

    if let Some(q) = out.find('?') {
        let query: Vec<String> = out[q + 1..]
            .split('&')
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                    .map(|(k, _)| k.into_owned())
                    .collect();
                if decoded.eq_ignore_ascii_case("password") {
                    format!("{key}={MASK}")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        out = format!("{}?{}", &out[..q], query.join("&"));
    }
    out
}

fn redact_kv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut after_bare_password = false;

    for pair in kv::pairs(s) {
        match pair {
            Ok(pair) if pair.key == "password" => {
                out.push_str(&s[copied..pair.raw.start]);
                out.push_str(MASK);
                copied = pair.raw.end;
                after_bare_password = !pair.quoted;
            }
            Ok(pair) => {
                // `password=sec ret=x`: the pair after an unquoted password may be its tail.
                if after_bare_password {
                    out.push_str(&s[copied..pair.key_at]);
                    out.push_str(MASK);
                    copied = pair.raw.end;
                }
                after_bare_password = false;
            }
            Err(e) => {
                let stop = kv::error_offset(&e).unwrap_or(copied).max(copied);
                out.push_str(&s[copied..stop]);
                out.push_str(MASK);
                return out;
            }
        }
    }
    out.push_str(&s[copied..]);
    out
}

fn redact_dsn(s: &str) -> String {
    // Credentials end at the last '@' before the database '/'; when the only '/' is inside the
    // password, at the last '@' overall.
    let slash = s.rfind('/').unwrap_or(s.len());
    let at = s[..slash].rfind('@').or_else(|| s.rfind('@'));
    match at {
        Some(at) => match s[..at].find(':') {
            Some(colon) => format!("{}{MASK}{}", &s[..=colon], &s[at..]),
            None => s.to_owned(),
        },
        None => s.to_owned(),
    }
}
