//! Property tests: no input makes JWT parsing panic; whatever we sign validates.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use super::test_keys::{bundle_of, id, now, signer};
use super::*;

/// Strings shaped like tokens: three base64url parts of arbitrary bytes or JSON-ish text.
fn token_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        r#"\{("(alg|kid|typ|sub|aud|exp|nbf)":("ES256"|"none"|[0-9.e-]{1,8}|\[\]|null|"spiffe://a/b"),?){0,5}\}"#
            .prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
        "[A-Za-z0-9_=+/-]{0,40}",
    ];
    prop::collection::vec(part, 1..6).prop_map(|parts| parts.join("."))
}

proptest! {
    #[test]
    fn parse_insecure_never_panics_on_arbitrary_strings(s in ".{0,300}") {
        let _ = JwtSvid::parse_insecure(&s, &["svc"], now());
    }

    #[test]
    fn parse_never_panics_on_token_like_strings(s in token_like()) {
        let _ = JwtSvid::parse_insecure(&s, &["svc"], now());
        let bundle = bundle_of("a", &[&signer(JwtAlgorithm::ES256, "k")]);
        let _ = JwtSvid::parse_and_validate(&s, &bundle, &["svc"], now());
    }

    #[test]
    fn what_we_sign_validates(
        alg in prop::sample::select(vec![JwtAlgorithm::ES256, JwtAlgorithm::ES384, JwtAlgorithm::ES512, JwtAlgorithm::RS256, JwtAlgorithm::PS256]),
        path in "(/[a-zA-Z0-9._-]{1,10}){0,4}",
        aud in prop::collection::vec("[ -~]{1,20}", 1..4),
        ttl in 1u64..100_000,
        kid in "[ -~]{1,30}",
    ) {
        prop_assume!(!path.split('/').any(|s| s == "." || s == ".."));
        let s = signer(alg, &kid);
        let now = now();
        let claims = JwtSvidClaims {
            subject: id(&format!("spiffe://example.org{path}")),
            audience: aud.clone(),
            issued_at: now,
            expiry: now + Duration::from_secs(ttl),
            extra: serde_json::Map::new(),
        };
        let token = s.sign(&claims).unwrap();
        let bundle = bundle_of("example.org", &[&s]);
        let svid = JwtSvid::parse_and_validate(&token, &bundle, &[aud[0].as_str()], now).unwrap();
        prop_assert_eq!(svid.spiffe_id(), &claims.subject);
        prop_assert_eq!(svid.audience(), &aud[..]);
        prop_assert_eq!(svid.expiry(), claims.expiry);
        prop_assert_eq!(svid.kid(), kid.as_str());
    }
}
