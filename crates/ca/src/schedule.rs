//! The rotation schedule: when the next authority is prepared and when it takes over.
//!
//! For an authority with lifetime `L` that expires at `E`, the successor is prepared (and
//! published in the bundle) at `E - min(L/2, 30 days)` and activated (starts signing) at
//! `E - min(L/6, 7 days)`. Publishing early gives every relying party time to learn the new root
//! before anything is signed by it; activating early keeps SVIDs from being cut short.
//!
//! Once replaced and expired, an authority stays in the bundle for a grace period of
//! `min(L/6, 24 hours)` (SPIRE prunes authorities 24 hours after expiry), so that peers whose
//! clocks run behind still find the root of what it signed. The grace always ends before the
//! next activation needs the old slot again (`L/3` after the expiry).

use std::time::{Duration, SystemTime};

/// Upper bound of the preparation lead time.
pub const MAX_PREPARE_LEAD: Duration = Duration::from_secs(30 * 24 * 3600);

/// Upper bound of the activation lead time.
pub const MAX_ACTIVATE_LEAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Upper bound of how long an expired authority stays in the bundle (SPIRE's 24 hours).
pub const MAX_BUNDLE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// When the successor of an authority valid from `not_before` to `not_after` is prepared.
pub fn prepare_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    sub(not_after, (lifetime / 2).min(MAX_PREPARE_LEAD))
}

/// When the successor of an authority valid from `not_before` to `not_after` takes over signing.
pub fn activate_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    sub(not_after, (lifetime / 6).min(MAX_ACTIVATE_LEAD))
}

/// When an authority valid from `not_before` to `not_after` leaves the trust bundle:
/// `min(L/6, 24 hours)` after it expires.
pub fn prune_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let grace = (lifetime / 6).min(MAX_BUNDLE_GRACE);
    not_after.checked_add(grace).unwrap_or(not_after)
}

/// The longest SVID TTL that is never truncated by the CA's expiry under this schedule:
/// `min(ca_ttl / 6, 7 days)`. Servers should warn when the configured SVID TTL is longer.
pub fn max_untruncated_svid_ttl(ca_ttl: Duration) -> Duration {
    (ca_ttl / 6).min(MAX_ACTIVATE_LEAD)
}

fn sub(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn at(d: Duration) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + d
    }

    #[test]
    fn short_lived_authority_uses_half_and_sixth_of_its_lifetime() {
        let (nb, na) = (at(Duration::ZERO), at(24 * HOUR));
        assert_eq!(prepare_at(nb, na), at(12 * HOUR));
        assert_eq!(activate_at(nb, na), at(20 * HOUR));
    }

    #[test]
    fn long_lived_authority_is_capped_at_thirty_and_seven_days() {
        let (nb, na) = (at(Duration::ZERO), at(365 * DAY));
        assert_eq!(prepare_at(nb, na), at(335 * DAY));
        assert_eq!(activate_at(nb, na), at(358 * DAY));
    }

    #[test]
    fn expired_authority_stays_in_the_bundle_a_sixth_of_its_lifetime_up_to_a_day() {
        let (nb, na) = (at(Duration::ZERO), at(24 * HOUR));
        assert_eq!(prune_at(nb, na), at(28 * HOUR));
        let (nb, na) = (at(Duration::ZERO), at(365 * DAY));
        assert_eq!(prune_at(nb, na), at(366 * DAY));
    }

    #[test]
    fn grace_ends_before_the_next_activation_reuses_the_old_slot() {
        for lifetime in [60 * Duration::from_secs(1), 24 * HOUR, 10 * DAY, 90 * DAY] {
            let (nb, na) = (at(Duration::ZERO), at(lifetime));
            // The successor is prepared at prepare_at and lives as long.
            let successor_nb = prepare_at(nb, na);
            let successor_na = successor_nb + lifetime;
            assert!(
                prune_at(nb, na) < activate_at(successor_nb, successor_na),
                "lifetime {lifetime:?}"
            );
        }
    }

    #[test]
    fn untruncated_svid_ttl_is_a_sixth_of_the_ca_ttl_up_to_a_week() {
        assert_eq!(max_untruncated_svid_ttl(24 * HOUR), 4 * HOUR);
        assert_eq!(max_untruncated_svid_ttl(365 * DAY), 7 * DAY);
    }
}
