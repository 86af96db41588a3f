//! Durations as SPIRE writes them (whole seconds, `3600`) or with a unit (`1h`, `5m`, `90s`).

use std::time::Duration;

/// Parses a duration flag; the error names the value and the accepted forms.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(format!(
            "{s:?} is not a duration: use seconds (3600) or a unit (1h, 5m, 30s)"
        ));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{s:?} is too large a number of seconds"));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        format!("{s:?} is not a duration ({e}): use seconds (3600) or a unit (1h, 5m, 30s)")
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seconds_and_units() {
        assert_eq!(parse("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn rejects_garbage_naming_it() {
        let err = parse("ten").unwrap_err();
        assert!(err.starts_with("\"ten\" is not a duration"), "{err}");
        assert!(parse("-5").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn refuses_ttls_beyond_int32() {
        assert!(to_i32_seconds("--x509-svid-ttl", Duration::from_secs(1 << 40)).is_err());
    }
}
