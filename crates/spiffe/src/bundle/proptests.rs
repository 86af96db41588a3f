//! Property tests: no input makes bundle parsing panic; built bundles round-trip.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::jwt::JwtBundle;
use crate::jwt::test_keys::{Kind, td};

/// JSON values built from the bundle vocabulary, so that parsing gets past the first checks.
fn bundle_like() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "EC",
            "RSA",
            "OKP",
            "P-256",
            "P-384",
            "x509-svid",
            "jwt-svid",
            "AQAB",
            "",
            "AAAA"
        ])
        .prop_map(Value::from),
        "[A-Za-z0-9_-]{0,90}".prop_map(Value::from),
    ];
    let member = prop::sample::select(vec![
        "kty",
        "crv",
        "x",
        "y",
        "n",
        "e",
        "kid",
        "use",
        "x5c",
        "keys",
        "spiffe_sequence",
        "spiffe_refresh_hint",
    ]);
    scalar.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((member.clone(), inner), 0..8).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SpiffeBundle::parse(td("a"), &bytes);
        let _ = parse_jwks(td("a"), &bytes);
    }

    #[test]
    fn parsing_never_panics_on_bundle_like_json(keys in prop::collection::vec(bundle_like(), 0..6), top in bundle_like()) {
        let mut doc = json!({"keys": keys});
        if let Value::Object(extra) = top {
            for (k, v) in extra {
                if k != "keys" {
                    doc[k] = v;
                }
            }
        }
        let text = doc.to_string();
        let _ = SpiffeBundle::parse(td("a"), text.as_bytes());
        let _ = parse_jwks(td("a"), text.as_bytes());
    }

    #[test]
    fn built_bundles_round_trip(
        kids in prop::collection::btree_map("[ -~]{1,20}", 0..4usize, 0..6),
        sequence in proptest::option::of(any::<u64>()),
        hint in proptest::option::of(0u64..10_000_000),
    ) {
        let mut jwt = JwtBundle::new(td("example.org"));
        for (kid, kind) in &kids {
            jwt.insert(kid.clone(), Kind::ALL[*kind].key().public_key().clone());
        }
        let mut bundle = SpiffeBundle::from_parts(crate::x509::X509Bundle::new(td("example.org"), vec![]), jwt.clone()).unwrap();
        bundle.set_sequence(sequence);
        bundle.set_refresh_hint(hint.map(Duration::from_secs));
        let json = bundle.to_json().unwrap();
        prop_assert_eq!(SpiffeBundle::parse(td("example.org"), json.as_bytes()).unwrap(), bundle);
        prop_assert_eq!(parse_jwks(td("example.org"), &jwt_bundle_to_jwks(&jwt)).unwrap(), jwt);
    }
}
