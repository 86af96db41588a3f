//! Durations as SPIRE writes them (whole seconds, `3600`) or as Go writes them: numbers with a
//! unit, optionally fractional and chained (`1h30m`, `1.5h`, `90s`, `500ms`). Lanyard also
//! accepts `d` for days. Nothing else: no spaces, no signs, no other units.

use std::time::Duration;

/// The units accepted after a number, with their length in nanoseconds; longest spelling first
/// so that `ms` is not read as `m`.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// Why a string is not a duration; each reads after the quoted value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Not a number of seconds nor numbers with units.
    Malformed,
    /// Leading, trailing or inner whitespace.
    Spaces,
    /// More than `Duration` holds.
    TooLarge,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => {
                "is not a duration: use whole seconds (3600) or numbers with units: ns, us (or \
                 µs), ms, s, m, h, d (1h30m, 500ms)"
            }
            Self::Spaces => "is not a duration: write it without spaces, such as 1h30m",
            Self::TooLarge => "is too large for a duration",
        })
    }
}

/// Parses a duration flag; the error names the value and the accepted forms.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    parse_typed(s).map_err(|e| format!("{} {e}", shown(s)))
}

/// Parses a duration.
///
/// # Errors
///
/// [`DurationError`] saying what is wrong.
pub(crate) fn parse_typed(s: &str) -> Result<Duration, DurationError> {
    if s.chars().any(char::is_whitespace) {
        return Err(DurationError::Spaces);
    }
    if s.is_empty() {
        return Err(DurationError::Malformed);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::TooLarge);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or(DurationError::Malformed)?;
        let (number, after) = rest.split_at(number_len);
        let (unit, nanos_per) = UNITS
            .iter()
            .filter(|(u, _)| after.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .ok_or(DurationError::Malformed)?;
        total = total
            .checked_add(scaled(number, *nanos_per)?)
            .ok_or(DurationError::TooLarge)?;
        rest = &after[unit.len()..];
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (`12`, `1.5`, `.5`) times `nanos_per`, truncated to whole nanoseconds.
fn scaled(number: &str, nanos_per: u128) -> Result<u128, DurationError> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(DurationError::Malformed);
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| DurationError::TooLarge)?
    };
    let mut value = whole
        .checked_mul(nanos_per)
        .ok_or(DurationError::TooLarge)?;
    let mut scale = nanos_per;
    for digit in fraction.bytes().take(30) {
        scale /= 10;
        value += u128::from(digit - b'0') * scale;
    }
    Ok(value)
}

/// The value quoted for a message, cut to a readable length.
pub(crate) fn shown(s: &str) -> String {
    crate::config::clip(s)
}

/// The longest TTL the server accepts for an entry or a token: ten years.
pub(crate) const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A duration as whole seconds for the SPIRE API's `int32` TTL fields, within the server's
/// bound.
pub(crate) fn to_i32_seconds(flag: &str, d: Duration) -> Result<i32, String> {
    if d.as_secs() > MAX_TTL_SECONDS {
        return Err(format!(
            "{flag} {}s is too long: at most {MAX_TTL_SECONDS} seconds (ten years) are allowed",
            d.as_secs()
        ));
    }
    i32::try_from(d.as_secs()).map_err(|_| format!("{flag} {}s is out of range", d.as_secs()))
}

/// A TTL flag bounded like `token generate --ttl`: at most ten years.
pub(crate) fn parse_bounded_ttl(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.as_secs() > MAX_TTL_SECONDS {
        return Err(format!(
            "{} is too long: at most {MAX_TTL_SECONDS} seconds (ten years) are allowed",
            shown(s)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seconds_and_go_durations() {
        assert_eq!(parse("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse("1m0.5s").unwrap(), Duration::from_millis(60_500));
    }

    #[test]
    fn rejects_garbage_naming_it_and_the_forms() {
        assert_eq!(
            parse("1x").unwrap_err(),
            "\"1x\" is not a duration: use whole seconds (3600) or numbers with units: ns, us \
             (or µs), ms, s, m, h, d (1h30m, 500ms)"
        );
        for bad in ["ten", "-5", "", "h", "1..5h", "1h-"] {
            assert_eq!(parse_typed(bad), Err(DurationError::Malformed), "{bad}");
        }
    }

    #[test]
    fn refuses_spaces() {
        assert_eq!(parse_typed(" 1h"), Err(DurationError::Spaces));
        assert_eq!(parse_typed("1h 30m"), Err(DurationError::Spaces));
    }

    #[test]
    fn says_when_a_number_is_too_large() {
        assert_eq!(
            parse("18446744073709551616").unwrap_err(),
            "\"18446744073709551616\" is too large for a duration"
        );
        assert_eq!(
            parse_typed("99999999999999999999999999999999h"),
            Err(DurationError::TooLarge)
        );
    }

    #[test]
    fn caps_bounded_ttls_at_ten_years() {
        let err = parse_bounded_ttl("3651d").unwrap_err();
        assert!(
            err.contains("at most 315360000 seconds (ten years)"),
            "{err}"
        );
        assert!(parse_bounded_ttl("3650d").is_ok());
    }

    #[test]
    fn refuses_ttls_beyond_int32() {
        assert!(to_i32_seconds("--x509-svid-ttl", Duration::from_secs(1 << 40)).is_err());
    }
}
