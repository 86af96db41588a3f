//! JWT-SVID parsing: no panic on any token, and an accepted token has a valid `sub` and holds the
//! expected audience. Signatures are not the point here (`parse_insecure` skips them); the
//! decoder, the JSON claims and the time and audience rules are.
#![no_main]

use std::time::{Duration, SystemTime};

use lanyard_spiffe::jwt::{JwtBundleSet, JwtSvid};
use libfuzzer_sys::fuzz_target;

/// 2027-06-01T00:00:00Z.
const NOW_SECS: u64 = 1_811_808_000;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let token = String::from_utf8_lossy(data);

    for audience in [&["spiffe://example.org/service"][..], &["a", "b"], &[]] {
        if let Ok(svid) = JwtSvid::parse_insecure(&token, audience, now) {
            assert!(!audience.is_empty());
            assert!(
                svid.audience()
                    .iter()
                    .any(|a| audience.contains(&a.as_str()))
            );
            assert!(svid.expiry() > now - Duration::from_secs(3600));
        }
    }
    // With no bundle at all, nothing may validate.
    let empty = JwtBundleSet::new();
    assert!(JwtSvid::parse_and_validate(&token, &empty, &["a"], now).is_err());
});
