//! Time values in request filters. SPIRE's `by_expires_before` is a string in Go's layout
//! `2006-01-02 15:04:05 -0700 -07` (what `time.Time.String()` prints, minus the zone name);
//! Lanyard also takes plain unix seconds and RFC 3339 (`2006-01-02T15:04:05Z` or with an
//! offset).

/// What a time string must look like, for error messages.
const RULE: &str = "give unix seconds, RFC 3339 (2026-01-02T15:04:05Z) or SPIRE's layout \
                    (2026-01-02 15:04:05 +0000 UTC)";

/// Unix seconds of `s`.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let s = s.trim();
    if s.len() < 19 || !s.is_char_boundary(19) {
        return Err(RULE.into());
    }
    let (date_time, rest) = s.split_at(19);
    let local = date_time_seconds(date_time).ok_or_else(|| RULE.to_string())?;
    let rest = rest.trim_start();
    let offset = if rest.is_empty() || rest == "Z" {
        0
    } else {
        let token = rest.split_whitespace().next().unwrap_or_default();
        offset_seconds(token).ok_or_else(|| RULE.to_string())?
    };
    Ok(local - offset)
}

/// `YYYY-MM-DD?HH:MM:SS` (any separator in the middle) as seconds since the epoch, UTC.
fn date_time_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(13) != Some(&b':') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `+0100`, `-07:00` or `Z` as seconds east of UTC.
fn offset_seconds(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unix_seconds_rfc3339_and_spire_layout() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("2023-11-14 23:13:20 +0100 CET").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T15:13:20-07:00").unwrap(),
            1_700_000_000
        );
    }

    #[test]
    fn refuses_other_shapes_naming_the_accepted_ones() {
        for bad in [
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14",
            "2023-11-14 10:00:00 CET",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("unix seconds"), "{bad}: {err}");
        }
    }
}
