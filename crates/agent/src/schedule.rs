//! When an SVID is renewed: at half its lifetime, moved by a small random jitter so that
//! many agents (and many entries) do not hit the server at the same instant.
//!
//! The lifetime counts from when the agent received the SVID, not from its `notBefore`:
//! servers backdate `notBefore` (by 10 s, against clock skew), which for lifetimes of a few
//! seconds would put the half-life point in the past and renew on every sync.

use std::time::{Duration, SystemTime};

/// The largest jitter, as a fraction of the half life (so renewal falls between 45% and 55%
/// of the lifetime).
const MAX_JITTER: f64 = 0.1;

/// When to renew an SVID valid from `not_before` to `not_after` that arrived at `received`:
/// half way from the later of `not_before` and `received` to `not_after`, moved by `jitter`
/// (from -1.0 to 1.0) times a tenth of that half.
pub(crate) fn renew_at(
    not_before: SystemTime,
    not_after: SystemTime,
    received: SystemTime,
    jitter: f64,
) -> SystemTime {
    let start = not_before.max(received);
    let lifetime = not_after.duration_since(start).unwrap_or(Duration::ZERO);
    let half = lifetime / 2;
    let shift = half.mul_f64(MAX_JITTER * jitter.abs().min(1.0));
    if jitter < 0.0 {
        start + half - shift
    } else {
        start + half + shift
    }
}

/// Whether an SVID scheduled for `renew_at` and expiring at `not_after` must be replaced now.
pub(crate) fn is_due(renew_at: SystemTime, not_after: SystemTime, now: SystemTime) -> bool {
    now >= renew_at || now >= not_after
}

/// A uniformly random jitter from -1.0 to 1.0.
pub(crate) fn random_jitter() -> f64 {
    // The top 53 random bits of a v4 UUID give a uniform fraction; unpredictability is not
    // needed here, only spread.
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    let unit = bits as f64 / (1u64 << 53) as f64;
    unit * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn renews_at_half_life_without_jitter() {
        assert_eq!(renew_at(t(0), t(3600), t(0), 0.0), t(1800));
    }

    #[test]
    fn jitter_moves_renewal_by_at_most_a_tenth_of_the_half_life() {
        assert_eq!(renew_at(t(0), t(3600), t(0), 1.0), t(1980));
        assert_eq!(renew_at(t(0), t(3600), t(0), -1.0), t(1620));
        assert_eq!(
            renew_at(t(0), t(3600), t(0), 7.0),
            t(1980),
            "jitter is clamped"
        );
        for _ in 0..100 {
            let j = random_jitter();
            assert!((-1.0..=1.0).contains(&j), "{j}");
            let at = renew_at(t(0), t(3600), t(0), j);
            assert!(at >= t(1620) && at <= t(1980));
        }
    }

    #[test]
    fn svid_is_due_from_its_renewal_time_or_once_expired() {
        let at = renew_at(t(0), t(100), t(0), 0.0);
        assert!(!is_due(at, t(100), t(49)));
        assert!(is_due(at, t(100), t(50)));
        assert!(is_due(at, t(100), t(101)));
        // A renewal time past expiry (a clock jump) still renews at expiry.
        assert!(is_due(t(500), t(100), t(100)));
    }

    #[test]
    fn backdated_not_before_counts_from_receipt() {
        // notBefore 10 s in the past, 4 s left: renew 2 s after receipt, not at once.
        let at = renew_at(t(0), t(14), t(10), 0.0);
        assert_eq!(at, t(12));
        assert!(!is_due(at, t(14), t(10)));
    }

    #[test]
    fn inverted_validity_is_due_immediately() {
        let at = renew_at(t(100), t(0), t(100), 0.0);
        assert!(is_due(at, t(0), t(100)));
    }
}
