//! Table tests of the SPIFFE bundle document, the plain JWKS and bundle maps: lenient where the
//! spec says to skip, strict otherwise, strict when producing (reference §4, §10.12, 20, 21).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::jwt::test_keys::{Kind, td};
use crate::jwt::{JwtBundle, JwtPublicKey};
use crate::x509::X509Bundle;
use crate::x509::test_certs::{KeyKind, TestCa};

fn jwt_key(kind: Kind) -> JwtPublicKey {
    kind.key().public_key().clone()
}

/// A bundle with one CA of every X.509 key kind, a JWT key of every kind, and metadata.
fn full_bundle() -> SpiffeBundle {
    let cas: Vec<_> = KeyKind::ALL
        .iter()
        .map(|k| TestCa::new("example.org", *k).cert)
        .collect();
    let mut jwt = JwtBundle::new(td("example.org"));
    for (i, kind) in Kind::ALL.iter().enumerate() {
        jwt.insert(format!("kid-{i}"), jwt_key(*kind));
    }
    let mut bundle =
        SpiffeBundle::from_parts(X509Bundle::new(td("example.org"), cas), jwt).unwrap();
    bundle.set_sequence(Some(u64::MAX));
    bundle.set_refresh_hint(Some(Duration::from_secs(300)));
    bundle
}

/// The JWK of a P-256 JWT key under `kid`.
fn jwt_jwk(kid: &str) -> Value {
    let key = jwt_key(Kind::P256);
    let (_, x, y) = key.ec_coordinates().unwrap();
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y), "kid": kid, "use": "jwt-svid"})
}

/// The JWK of an x509-svid entry for a fresh P-256 CA.
fn x509_jwk() -> (Value, TestCa) {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let one = SpiffeBundle::from_parts(ca.bundle(), JwtBundle::new(td("example.org"))).unwrap();
    let doc: Value = serde_json::from_str(&one.to_json().unwrap()).unwrap();
    (doc["keys"][0].clone(), ca)
}

fn parse(doc: &Value) -> Result<SpiffeBundle, BundleDocError> {
    SpiffeBundle::parse(td("example.org"), doc.to_string().as_bytes())
}

#[test]
fn round_trips_every_key_kind_and_the_metadata() {
    let bundle = full_bundle();
    let json = bundle.to_json().unwrap();
    let back = SpiffeBundle::parse(td("example.org"), json.as_bytes()).unwrap();
    assert_eq!(back, bundle);
    assert!(back.skipped().is_empty());
}

#[test]
fn produces_the_strict_form() {
    let doc: Value = serde_json::from_str(&full_bundle().to_json().unwrap()).unwrap();
    assert_eq!(doc["spiffe_sequence"], json!(u64::MAX));
    assert_eq!(doc["spiffe_refresh_hint"], 300);
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 8);
    for key in keys {
        assert!(key["kty"].is_string(), "{key}");
        match key["use"].as_str().unwrap() {
            "x509-svid" => {
                let x5c = key["x5c"].as_array().unwrap();
                assert_eq!(x5c.len(), 1);
                STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
                assert!(key.get("kid").is_none(), "{key}");
            }
            "jwt-svid" => assert!(key["kid"].is_string(), "{key}"),
            other => panic!("use {other}"),
        }
    }
    let kinds: Vec<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["EC", "EC", "RSA", "OKP", "EC", "EC", "EC", "RSA"]);

    let empty = SpiffeBundle::new(td("example.org"));
    assert_eq!(empty.to_json().unwrap(), r#"{"keys":[]}"#);
    let mut hinted = SpiffeBundle::new(td("example.org"));
    hinted.set_refresh_hint(Some(Duration::from_millis(1500)));
    assert_eq!(
        hinted.to_json().unwrap(),
        r#"{"keys":[],"spiffe_refresh_hint":2}"#
    );
}

#[test]
fn skips_what_the_spec_says_to_ignore_and_keeps_the_rest() {
    let (x509, ca) = x509_jwk();
    let mut two_certs = x509.clone();
    two_certs["x5c"] = json!([
        x509["x5c"][0],
        STANDARD.encode(TestCa::new("o", KeyKind::P256).cert)
    ]);
    let mut no_x5c = x509.clone();
    no_x5c.as_object_mut().unwrap().remove("x5c");
    let mut empty_x5c = x509.clone();
    empty_x5c["x5c"] = json!([]);
    let mut no_use = jwt_jwk("a");
    no_use.as_object_mut().unwrap().remove("use");
    let mut no_kty = jwt_jwk("b");
    no_kty.as_object_mut().unwrap().remove("kty");
    let small_rsa = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xc1; 128]), "e": "AQAB", "kid": "r", "use": "jwt-svid"});

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"kty": "oct", "k": "AAAA", "kid": "h", "use": "jwt-svid"}),
            r#""kty" "oct" is not supported: only EC and RSA are"#,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "e", "use": "jwt-svid"}),
            r#""kty" "OKP" is not supported"#,
        ),
        (no_kty, r#""kty" is missing"#),
        (no_use, r#""use" is missing"#),
        (
            json!({"kty": "EC", "use": "wit-svid", "kid": "w"}),
            r#""use" "wit-svid" is not supported"#,
        ),
        (
            json!({"kty": "EC", "use": "JWT-SVID", "kid": "w"}),
            r#""use" "JWT-SVID" is not supported"#,
        ),
        (
            json!({"kty": "EC", "use": 5}),
            r#""use" 5 is not supported"#,
        ),
        (
            json!({"kty": "EC", "crv": "secp256k1", "x": "", "y": "", "kid": "k", "use": "jwt-svid"}),
            r#""crv" "secp256k1" is not supported"#,
        ),
        (small_rsa, "RSA modulus is 1024 bits"),
        (no_x5c, r#""x5c" is missing or empty"#),
        (empty_x5c, r#""x5c" is missing or empty"#),
        (
            json!({"kty": "oct", "use": "x509-svid", "x5c": []}),
            r#""kty" "oct" is not supported: only EC, RSA and OKP are"#,
        ),
        (
            two_certs,
            r#""x5c" holds 2 certificates: only the first is used"#,
        ),
    ];
    for (skipped, needle) in cases {
        let doc = json!({"keys": [jwt_jwk("good"), skipped, x509]});
        let bundle = parse(&doc).unwrap_or_else(|e| panic!("{needle}: {e}"));
        assert_eq!(bundle.skipped().len(), 1, "{needle}");
        let message = bundle.skipped()[0].to_string();
        assert!(message.starts_with("bundle key 1 ignored: "), "{message}");
        assert!(message.contains(needle), "{message} lacks {needle}");
        assert!(bundle.jwt_bundle().get("good").is_some(), "{needle}");
        assert_eq!(
            bundle.x509_bundle().authorities(),
            std::slice::from_ref(&ca.cert),
            "{needle}"
        );
    }
}

#[test]
fn accepts_an_empty_key_list_and_unknown_top_level_members() {
    let bundle = parse(&json!({"keys": [], "other": {"x": 1}, "spiffe_sequence": 0})).unwrap();
    assert!(bundle.x509_bundle().is_empty() && bundle.jwt_bundle().is_empty());
    assert_eq!(bundle.sequence(), Some(0));
    assert_eq!(bundle.refresh_hint(), None);
}

#[test]
fn rejects_malformed_documents() {
    let (x509, _) = x509_jwk();
    let other_ca = TestCa::new("example.org", KeyKind::P256);
    let mut mismatched = x509.clone();
    mismatched["x5c"] = json!([STANDARD.encode(&other_ca.cert)]);
    let mut params_missing = x509.clone();
    params_missing.as_object_mut().unwrap().remove("x");
    let mut url_b64 = x509.clone();
    url_b64["x5c"] = json!([URL_SAFE_NO_PAD.encode(&other_ca.cert)]);
    let mut trailing = x509.clone();
    let mut der = STANDARD.decode(x509["x5c"][0].as_str().unwrap()).unwrap();
    der.push(0);
    trailing["x5c"] = json!([STANDARD.encode(der)]);
    let mut bad_x = jwt_jwk("k");
    bad_x["x"] = json!("!!");
    let mut short_x = jwt_jwk("k");
    short_x["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 31]));
    let mut off_curve = jwt_jwk("k");
    off_curve["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
    let mut no_kid = jwt_jwk("k");
    no_kid.as_object_mut().unwrap().remove("kid");

    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "bundle document is []: it must be a JSON object"),
        (
            json!({}),
            r#"bundle document has no "keys" member: it is required"#,
        ),
        (json!({"keys": null}), r#"has no "keys" member"#),
        (
            json!({"keys": {}}),
            r#"bundle "keys" is {}: it must be an array of JWKs"#,
        ),
        (
            json!({"keys": [1]}),
            r#"key 0 is 1: every entry of "keys" must be a JSON object"#,
        ),
        (
            json!({"keys": [], "spiffe_sequence": -1}),
            r#""spiffe_sequence" is -1: it must be an integer from 0 to 18446744073709551615"#,
        ),
        (
            json!({"keys": [], "spiffe_sequence": 1.5}),
            r#""spiffe_sequence" is 1.5"#,
        ),
        (
            json!({"keys": [], "spiffe_sequence": "1"}),
            r#""spiffe_sequence" is "1""#,
        ),
        (
            json!({"keys": [], "spiffe_refresh_hint": -5}),
            r#""spiffe_refresh_hint" is -5: it must be a non-negative integer of seconds"#,
        ),
        (
            json!({"keys": [], "spiffe_refresh_hint": 2.5}),
            r#""spiffe_refresh_hint" is 2.5"#,
        ),
        (
            json!({"keys": [no_kid]}),
            r#"key 0 has no "kid": a JWT-SVID key must have a non-empty string key ID"#,
        ),
        (json!({"keys": [jwt_jwk("")]}), r#"key 0 has no "kid""#),
        (
            json!({"keys": [jwt_jwk("k"), jwt_jwk("k")]}),
            r#"key ID "k" appears twice"#,
        ),
        (
            json!({"keys": [bad_x]}),
            r#"key 0 member "x" is not unpadded base64url"#,
        ),
        (
            json!({"keys": [short_x]}),
            "key 0 is not a valid JWT-SVID key: public key is invalid: EC P-256 coordinate x is 31 bytes",
        ),
        (json!({"keys": [off_curve]}), "point is not on the curve"),
        (
            json!({"keys": [{"kty": "EC", "kid": "k", "use": "jwt-svid"}]}),
            r#"key 0 member "crv" is missing: a string is required"#,
        ),
        (
            json!({"keys": [mismatched]}),
            r#"key 0 parameters do not match its "x5c" certificate ("x" is"#,
        ),
        (
            json!({"keys": [params_missing]}),
            r#"("x" is missing, the certificate has"#,
        ),
        (
            json!({"keys": [{"kty": "EC", "use": "x509-svid", "x5c": "abc"}]}),
            r#"key 0 "x5c" certificate is invalid: "abc": an array is required"#,
        ),
        (
            json!({"keys": [{"kty": "EC", "use": "x509-svid", "x5c": [1]}]}),
            "the first entry is not a string",
        ),
        (
            json!({"keys": [{"kty": "EC", "use": "x509-svid", "x5c": ["AAAA"]}]}),
            "not DER X.509",
        ),
        (json!({"keys": [url_b64]}), "not standard base64"),
        (
            json!({"keys": [trailing]}),
            "1 bytes follow the certificate",
        ),
    ];
    for (doc, needle) in cases {
        let e = parse(&doc).unwrap_err();
        assert!(e.to_string().contains(needle), "{doc}: {e} lacks {needle}");
    }

    let seq_overflow = br#"{"keys":[],"spiffe_sequence":18446744073709551616}"#;
    let e = SpiffeBundle::parse(td("a"), seq_overflow).unwrap_err();
    assert!(e.to_string().contains("spiffe_sequence"), "{e}");
    let dup = br#"{"keys":[],"keys":[]}"#;
    let e = SpiffeBundle::parse(td("a"), dup).unwrap_err();
    assert!(
        e.to_string().contains(r#"member "keys" appears twice"#),
        "{e}"
    );
    let e = SpiffeBundle::parse(td("a"), b"{").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bundle document is not valid JSON"),
        "{e}"
    );
}

#[test]
fn enforces_the_input_caps() {
    let big = vec![b' '; MAX_DOCUMENT_LEN + 1];
    let e = SpiffeBundle::parse(td("a"), &big).unwrap_err();
    assert!(
        e.to_string()
            .contains("is 1048577 bytes long: at most 1048576 bytes are allowed"),
        "{e}"
    );
    let keys = vec![json!({}); MAX_KEYS + 1];
    let e = parse(&json!({ "keys": keys })).unwrap_err();
    assert!(
        e.to_string()
            .contains("bundle has 1025 keys: at most 1024 are allowed"),
        "{e}"
    );
    let e = parse_jwks(td("a"), &big).unwrap_err();
    assert!(matches!(e, BundleDocError::TooLarge { .. }));
}

#[test]
fn plain_jwks_round_trips_without_use() {
    let mut jwt = JwtBundle::new(td("example.org"));
    for (i, kind) in Kind::ALL.iter().enumerate() {
        jwt.insert(format!("k{i}"), jwt_key(*kind));
    }
    let bytes = jwt_bundle_to_jwks(&jwt);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("use").is_none() && k["kid"].is_string())
    );
    assert_eq!(parse_jwks(td("example.org"), &bytes).unwrap(), jwt);
    assert_eq!(
        jwt_bundle_to_jwks(&JwtBundle::new(td("a"))),
        br#"{"keys":[]}"#
    );
}

#[test]
fn plain_jwks_rules() {
    let (x509, _) = x509_jwk();
    let doc = json!({"keys": [jwt_jwk("a"), x509, {"kty": "oct", "kid": "h"}]});
    let (bundle, skipped) =
        parse_jwks_reporting(td("example.org"), doc.to_string().as_bytes()).unwrap();
    assert_eq!(bundle.len(), 1);
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0]
            .to_string()
            .contains(r#""use" "x509-svid" is not supported"#),
        "{}",
        skipped[0]
    );
    assert!(
        skipped[1]
            .to_string()
            .contains(r#""kty" "oct" is not supported"#),
        "{}",
        skipped[1]
    );

    let mut no_kid = jwt_jwk("a");
    no_kid.as_object_mut().unwrap().remove("kid");
    no_kid.as_object_mut().unwrap().remove("use");
    let e = parse_jwks(td("a"), json!({"keys": [no_kid]}).to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains(r#"key 0 has no "kid""#), "{e}");
    let e = parse_jwks(td("a"), b"{}").unwrap_err();
    assert!(matches!(e, BundleDocError::MissingKeys), "{e}");
}

#[test]
fn bundle_maps_accept_both_key_forms_and_refuse_duplicates() {
    let mut a = JwtBundle::new(td("a.org"));
    a.insert("k", jwt_key(Kind::P256));
    let jwks = jwt_bundle_to_jwks(&a);
    let set = jwt_bundle_set_from_map([("spiffe://a.org", &jwks), ("b.org", &jwks)]).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.get(&td("a.org")), Some(&a));
    assert_eq!(set.get(&td("b.org")).unwrap().trust_domain(), &td("b.org"));

    type Entries<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Entries, &str)> = vec![
        (
            vec![("spiffe://a.org", &jwks), ("a.org", &jwks)],
            "trust domain 'a.org' appears twice in the bundle map",
        ),
        (
            vec![("A.org", &jwks)],
            r#"bundle map key "A.org" is not a trust domain"#,
        ),
        (
            vec![("spiffe://a.org/x", &jwks)],
            r#"bundle map key "spiffe://a.org/x" has a path"#,
        ),
        (vec![("", &jwks)], "is not a trust domain"),
        (
            vec![("a.org", b"{}")],
            r#"bundle of trust domain 'a.org': bundle document has no "keys" member"#,
        ),
    ];
    for (entries, needle) in cases {
        let e = jwt_bundle_set_from_map(entries).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
    }
}

#[test]
fn from_parts_requires_one_trust_domain() {
    let e = SpiffeBundle::from_parts(X509Bundle::new(td("a"), vec![]), JwtBundle::new(td("b")))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("X.509 bundle is for 'a' but JWT bundle is for 'b'"),
        "{e}"
    );
}
