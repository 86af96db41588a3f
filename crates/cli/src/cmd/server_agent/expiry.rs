//! `agent list --expires-before`: a point in time from the command line, and its wire form.
//!
//! SPIRE's filter field is a string in Go's layout `2006-01-02 15:04:05 -0700 -07`; the CLI
//! accepts that, RFC 3339 (`2026-12-04T18:00:00Z`) or Unix seconds, and always sends SPIRE's
//! layout in UTC so a SPIRE-compatible server reads it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a time flag to Unix seconds; the error names the value and the accepted forms.
pub(crate) fn parse(s: &str) -> Result<i64, String> {
    parse_time(s).ok_or_else(|| {
        format!(
            "{s:?} is not a time: use Unix seconds, RFC 3339 (2026-12-04T18:00:00Z) or SPIRE's \
             form (2026-12-04 18:00:00 +0000 UTC)"
        )
    })
}

/// `seconds` in SPIRE's layout, UTC: `2026-12-04 18:00:00 +0000 +00`.
pub(crate) fn spire_layout(seconds: i64) -> String {
    format!("{} +0000 +00", utc_date_time(seconds))
}

/// `2026-12-04 18:00:00` (UTC), for display; times before 1970 show as Unix seconds.
pub(crate) fn utc_date_time(seconds: i64) -> String {
    match u64::try_from(seconds) {
        Ok(s) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s))
            .to_string()
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_string(),
        Err(_) => seconds.to_string(),
    }
}

fn parse_time(s: &str) -> Option<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    // SPIRE's layout: date, time, numeric offset, then a zone name that Go also ignores when
    // the offset is given.
    let parts: Vec<&str> = s.split_whitespace().collect();
    if let [date, time, offset, rest @ ..] = parts.as_slice()
        && rest.len() <= 1
    {
        let local = unix(humantime::parse_rfc3339_weak(&format!("{date} {time}")).ok()?)?;
        return Some(local - offset_seconds(offset)?);
    }
    unix(humantime::parse_rfc3339_weak(s).ok()?)
}

/// `+0130` → 5400, `-0700` → -25200.
fn offset_seconds(offset: &str) -> Option<i64> {
    let (sign, digits) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    (minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

fn unix(t: SystemTime) -> Option<i64> {
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unix_rfc3339_and_spire_layout() {
        assert_eq!(parse("1900000000"), Ok(1_900_000_000));
        assert_eq!(parse("2026-12-04T18:00:00Z"), Ok(1_796_407_200));
        assert_eq!(parse("2026-12-04 18:00:00 +0000 UTC"), Ok(1_796_407_200));
        assert_eq!(parse("2026-12-04 19:30:00 +0130 +0130"), Ok(1_796_407_200));
        assert_eq!(parse("2026-12-04 11:00:00 -0700 MST"), Ok(1_796_407_200));
    }

    #[test]
    fn names_the_bad_value() {
        for bad in [
            "tomorrow",
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-04 18:00:00 0000 UTC",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn wire_form_round_trips() {
        let wire = spire_layout(1_796_407_200);
        assert_eq!(wire, "2026-12-04 18:00:00 +0000 +00");
        assert_eq!(parse(&wire), Ok(1_796_407_200));
    }
}
