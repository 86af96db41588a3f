//! Table tests of JWT-SVID validation: every rule on its accept and reject side, with the
//! message checked, including the JWT items of the reference's "mistakes" list (§10.8, 12-14).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::test_keys::{Kind, bundle_of, claims, forge, now, signer, td, unix};
use super::*;
use rcgen::PublicKeyData;

const HEADER: &str = r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#;

/// Claims valid now for spiffe://example.org/w and audience "svc".
fn good_claims() -> serde_json::Value {
    let now = unix(now());
    json!({"sub": "spiffe://example.org/w", "aud": ["svc"], "exp": now + 300, "iat": now})
}

/// Signs `header` and `claims` with the P-256 key and validates against example.org's bundle.
fn validate(header: &str, claims: &str) -> Result<JwtSvid, JwtError> {
    let token = forge(header, claims, &Kind::P256.key(), JwtAlgorithm::ES256);
    let bundle = bundle_of("example.org", &[&signer(JwtAlgorithm::ES256, "k1")]);
    JwtSvid::parse_and_validate(&token, &bundle, &["svc"], now())
}

fn with_claim(name: &str, value: serde_json::Value) -> String {
    let mut c = good_claims();
    c[name] = value;
    c.to_string()
}

fn without_claim(name: &str) -> String {
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove(name);
    c.to_string()
}

fn assert_rejected(result: Result<JwtSvid, JwtError>, needle: &str, case: &str) {
    match result {
        Ok(_) => panic!("{case}: accepted, expected an error containing {needle:?}"),
        Err(e) => assert!(
            e.to_string().contains(needle),
            "{case}: {e:?} lacks {needle:?}: {e}"
        ),
    }
}

#[test]
fn accepts_a_valid_token_and_exposes_its_parts() {
    let svid = validate(HEADER, &good_claims().to_string()).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/w");
    assert_eq!(svid.audience(), ["svc"]);
    assert_eq!(svid.kid(), "k1");
    assert_eq!(svid.algorithm(), JwtAlgorithm::ES256);
    assert_eq!(svid.expiry(), now() + Duration::from_secs(300));
    assert!(svid.claims().contains_key("iat"));
    assert_eq!(svid.token().split('.').count(), 3);
}

#[test]
fn header_rules_accept_side() {
    for header in [
        r#"{"alg":"ES256","kid":"k1"}"#,
        r#"{"alg":"ES256","kid":"k1","typ":"JOSE"}"#,
        r#"{"typ":"JWT","kid":"k1","alg":"ES256"}"#,
    ] {
        validate(header, &good_claims().to_string()).unwrap_or_else(|e| panic!("{header}: {e}"));
    }
}

#[test]
fn header_rules_reject_side() {
    let allowed = "only RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512 are allowed";
    let cases = [
        (
            r#"{"alg":"none","kid":"k1"}"#,
            r#"header "alg" is "none": "#,
        ),
        (
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"header "alg" is "HS256": "#,
        ),
        (r#"{"alg":"HS512","kid":"k1"}"#, allowed),
        (r#"{"alg":"EdDSA","kid":"k1"}"#, r#""EdDSA""#),
        (r#"{"alg":"es256","kid":"k1"}"#, r#""es256""#),
        (r#"{"alg":7,"kid":"k1"}"#, r#"header "alg" is 7"#),
        (r#"{"kid":"k1"}"#, r#"header "alg" is missing"#),
        // alg is judged before anything else in the header.
        (
            r#"{"alg":"none","jku":"https://x"}"#,
            r#"header "alg" is "none""#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","jku":"https://x"}"#,
            r#"header "jku" is present: only "alg", "kid" and "typ" are allowed"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","jwk":{}}"#,
            r#"header "jwk" is present"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","x5u":"u"}"#,
            r#"header "x5u" is present"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","x5c":[]}"#,
            r#"header "x5c" is present"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","crit":["b64"],"b64":false}"#,
            r#"is present"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","cty":"JWT"}"#,
            r#"header "cty" is present"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","typ":"jwt"}"#,
            r#"header "typ" is "jwt": only "JWT" or "JOSE" are allowed"#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"header "typ" is "at+jwt""#,
        ),
        (
            r#"{"alg":"ES256","kid":"k1","typ":null}"#,
            r#"header "typ" is null"#,
        ),
        (
            r#"{"alg":"ES256"}"#,
            r#"header "kid" is missing: a non-empty string key ID is required"#,
        ),
        (r#"{"alg":"ES256","kid":""}"#, r#"header "kid" is """#),
        (r#"{"alg":"ES256","kid":1}"#, r#"header "kid" is 1"#),
        (
            r#"{"alg":"ES256","kid":"k1","kid":"k2"}"#,
            r#"member "kid" appears twice"#,
        ),
        (r#"["alg","ES256"]"#, "token header is not a JSON object"),
        ("not json", "token header is not a JSON object"),
    ];
    for (header, needle) in cases {
        assert_rejected(validate(header, &good_claims().to_string()), needle, header);
    }
}

#[test]
fn claim_rules_reject_side() {
    let now = unix(now());
    let cases = [
        (
            without_claim("sub"),
            r#"claim "sub" is missing: a JWT-SVID must have it"#,
        ),
        (
            with_claim("sub", json!(1)),
            r#"claim "sub" is 1: it must be a string"#,
        ),
        (
            with_claim("sub", json!("spiffe://EXAMPLE.org/w")),
            r#"claim "sub" "spiffe://EXAMPLE.org/w" is not a valid SPIFFE ID"#,
        ),
        (
            with_claim("sub", json!("https://example.org/w")),
            "is not a valid SPIFFE ID",
        ),
        (
            with_claim("sub", json!("spiffe://example.org/w/")),
            "trailing slash",
        ),
        (without_claim("aud"), r#"claim "aud" is missing"#),
        (
            with_claim("aud", json!([])),
            r#"claim "aud" is empty: at least one audience is required"#,
        ),
        (
            with_claim("aud", json!(5)),
            r#"claim "aud" is 5: it must be a string or a non-empty array of strings"#,
        ),
        (
            with_claim("aud", json!(["svc", 5])),
            r#"it must be a string or a non-empty array"#,
        ),
        (
            with_claim("aud", json!(["other"])),
            r#"claim "aud" is ["other"]: it must contain one of ["svc"]"#,
        ),
        (with_claim("aud", json!("SVC")), r#"claim "aud" is ["SVC"]"#),
        (without_claim("exp"), r#"claim "exp" is missing"#),
        (
            with_claim("exp", json!((now + 300).to_string())),
            r#"claim "exp" is "#,
        ),
        (with_claim("exp", json!(null)), r#"it must be a number"#),
        (
            with_claim("exp", json!(now - 31)),
            "s ago: at most 30 s of clock skew is accepted",
        ),
        (
            with_claim("exp", json!(-5)),
            "token expired at -5 (unix seconds)",
        ),
        (
            with_claim("exp", json!(1e300)),
            r#"claim "exp" is 1e+300: it is out of the representable time range"#,
        ),
        (
            with_claim("nbf", json!(now + 31)),
            "s from now: at most 30 s of clock skew is accepted",
        ),
        (
            with_claim("nbf", json!("soon")),
            r#"claim "nbf" is "soon": it must be a number"#,
        ),
    ];
    for (claims, needle) in cases {
        assert_rejected(validate(HEADER, &claims), needle, &claims);
    }
}

#[test]
fn claim_rules_accept_side() {
    let now = unix(now());
    let cases = [
        with_claim("aud", json!("svc")),
        with_claim("aud", json!(["a", "svc", "b"])),
        with_claim("exp", json!(now - 29)),
        with_claim("exp", json!(now as f64 + 100.5)),
        with_claim("nbf", json!(now + 29)),
        with_claim("nbf", json!(now - 1000)),
        // iat is not checked, even in the future or of another type.
        with_claim("iat", json!(now + 100_000)),
        with_claim("iat", json!("yesterday")),
        with_claim("sub", json!("spiffe://example.org")),
        with_claim("jti", json!("x")),
    ];
    for claims in cases {
        validate(HEADER, &claims).unwrap_or_else(|e| panic!("{claims}: {e}"));
    }
}

#[test]
fn duplicate_claims_are_rejected() {
    let now = unix(now());
    let claims = format!(
        r#"{{"sub":"spiffe://example.org/w","aud":"svc","exp":{},"sub":"spiffe://example.org/admin"}}"#,
        now + 300
    );
    assert_rejected(
        validate(HEADER, &claims),
        r#"member "sub" appears twice"#,
        "dup sub",
    );
}

#[test]
fn structure_rules() {
    let good = forge(
        HEADER,
        &good_claims().to_string(),
        &Kind::P256.key(),
        JwtAlgorithm::ES256,
    );
    let bundle = bundle_of("example.org", &[&signer(JwtAlgorithm::ES256, "k1")]);
    let run = |t: &str| JwtSvid::parse_and_validate(t, &bundle, &["svc"], now());
    let parts: Vec<&str> = good.split('.').collect();

    let cases = [
        (format!("{}.{}", parts[0], parts[1]), "token has 2 dot-separated parts"),
        (format!("{good}.x.y"), "token has 5 dot-separated parts"),
        (format!("{good}."), "token has 4 dot-separated parts"),
        (
            json!({"payload": parts[1], "signatures": [{"protected": parts[0], "signature": parts[2]}]}).to_string(),
            "JWE and JWS JSON serialization are not allowed",
        ),
        (String::new(), "token has 1 dot-separated parts"),
        (format!("{}=.{}.{}", parts[0], parts[1], parts[2]), "token header is not unpadded base64url"),
        (format!("{}.{}+.{}", parts[0], parts[1], parts[2]), "token claims is not unpadded base64url"),
        (format!("{}.{}.{}*", parts[0], parts[1], parts[2]), "token signature is not unpadded base64url"),
        ("a".repeat(MAX_TOKEN_LEN + 1), "is 65537 bytes long: at most 65536 bytes are allowed"),
    ];
    for (token, needle) in cases {
        assert_rejected(
            run(&token),
            needle,
            &token.chars().take(80).collect::<String>(),
        );
    }
    run(&good).unwrap();
}

#[test]
fn signature_and_key_rules() {
    let es256 = signer(JwtAlgorithm::ES256, "k1");
    let bundle = bundle_of("example.org", &[&es256]);
    let run = |t: &str| JwtSvid::parse_and_validate(t, &bundle, &["svc"], now());
    let claims = good_claims().to_string();

    // A claim changed after signing.
    let good = es256
        .sign(&super::test_keys::claims(
            "spiffe://example.org/w",
            &["svc"],
        ))
        .unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode(with_claim("sub", json!("spiffe://example.org/admin")));
    let altered = format!("{}.{}.{}", parts[0], other, parts[2]);
    assert_rejected(
        run(&altered),
        r#"signature does not verify with key "k1" (ES256)"#,
        "altered",
    );
    assert_rejected(
        run(&format!("{}.{}.", parts[0], parts[1])),
        "signature does not verify",
        "empty sig",
    );

    // Same kid, another key.
    let fresh = JwtSigningKey::from_pkcs8(&Kind::P256.generate()).unwrap();
    let forged = forge(HEADER, &claims, &fresh, JwtAlgorithm::ES256);
    assert_rejected(run(&forged), "signature does not verify", "other key");

    // Unknown kid.
    let header = r#"{"alg":"ES256","kid":"k2"}"#;
    let t = forge(header, &claims, &Kind::P256.key(), JwtAlgorithm::ES256);
    assert_rejected(
        run(&t),
        r#"key ID "k2" is not in the JWT bundle of 'example.org'"#,
        "kid",
    );

    // alg and key type must fit (ES384 against a P-256 key, RS256 against EC, ES256 against RSA).
    let t = forge(
        r#"{"alg":"ES384","kid":"k1"}"#,
        &claims,
        &Kind::P384.key(),
        JwtAlgorithm::ES384,
    );
    assert_rejected(
        run(&t),
        r#"key "k1" is an EC P-256 key: it cannot verify ES384"#,
        "ES384",
    );
    let t = forge(
        r#"{"alg":"RS256","kid":"k1"}"#,
        &claims,
        &Kind::Rsa2048.key(),
        JwtAlgorithm::RS256,
    );
    assert_rejected(run(&t), "it cannot verify RS256", "RS256 vs EC");
    let rsa = signer(JwtAlgorithm::RS256, "r1");
    let rsa_bundle = bundle_of("example.org", &[&rsa]);
    let t = forge(
        r#"{"alg":"ES256","kid":"r1"}"#,
        &claims,
        &Kind::P256.key(),
        JwtAlgorithm::ES256,
    );
    let e = JwtSvid::parse_and_validate(&t, &rsa_bundle, &["svc"], now()).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"key "r1" is an RSA 2048-bit key: it cannot verify ES256"#),
        "{e}"
    );

    // PKCS#1 v1.5 signature presented as PSS (and the reverse) does not verify.
    let t = forge(
        r#"{"alg":"PS256","kid":"r1"}"#,
        &claims,
        &Kind::Rsa2048.key(),
        JwtAlgorithm::RS256,
    );
    assert!(matches!(
        JwtSvid::parse_and_validate(&t, &rsa_bundle, &["svc"], now()),
        Err(JwtError::BadSignature { .. })
    ));
    let t = forge(
        r#"{"alg":"RS256","kid":"r1"}"#,
        &claims,
        &Kind::Rsa2048.key(),
        JwtAlgorithm::PS256,
    );
    assert!(matches!(
        JwtSvid::parse_and_validate(&t, &rsa_bundle, &["svc"], now()),
        Err(JwtError::BadSignature { .. })
    ));
}

#[test]
fn bundle_is_chosen_by_the_subjects_trust_domain_only() {
    // Reference §10.8: a key trusted for a.org must not vouch for b.org, even under the same kid.
    let s = signer(JwtAlgorithm::ES256, "k1");
    let mut set = JwtBundleSet::new();
    set.insert(bundle_of("a.org", &[&s]));
    let token = s.sign(&claims("spiffe://b.org/w", &["svc"])).unwrap();
    let e = JwtSvid::parse_and_validate(&token, &set, &["svc"], now()).unwrap_err();
    assert!(
        e.to_string().contains(
            "no JWT bundle for trust domain 'b.org': the token of spiffe://b.org/w is untrusted"
        ),
        "{e}"
    );

    set.insert(JwtBundle::new(td("b.org")));
    let e = JwtSvid::parse_and_validate(&token, &set, &["svc"], now()).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"key ID "k1" is not in the JWT bundle of 'b.org'"#),
        "{e}"
    );

    // A single bundle answers for its own trust domain only.
    let a = bundle_of("a.org", &[&s]);
    assert!(matches!(
        JwtSvid::parse_and_validate(&token, &a, &["svc"], now()),
        Err(JwtError::NoBundle { .. })
    ));
    let ok = s.sign(&claims("spiffe://a.org/w", &["svc"])).unwrap();
    JwtSvid::parse_and_validate(&ok, &set, &["svc"], now()).unwrap();
    let dynamic: &dyn JwtBundleSource = &set;
    JwtSvid::parse_and_validate(&ok, dynamic, &["svc"], now()).unwrap();
}

#[test]
fn expected_audience_must_be_given() {
    // Reference §10.13: an empty expected list is not "accept any audience".
    let s = signer(JwtAlgorithm::ES256, "k1");
    let token = s.sign(&claims("spiffe://example.org/w", &["svc"])).unwrap();
    let bundle = bundle_of("example.org", &[&s]);
    for expected in [&[][..], &[""][..], &["svc", ""][..]] {
        let e = JwtSvid::parse_and_validate(&token, &bundle, expected, now()).unwrap_err();
        assert!(matches!(e, JwtError::NoExpectedAudience), "{expected:?}");
        assert!(e.to_string().contains("no expected audience given"));
        assert!(matches!(
            JwtSvid::parse_insecure(&token, expected, now()),
            Err(JwtError::NoExpectedAudience)
        ));
    }
    JwtSvid::parse_and_validate(&token, &bundle, &["x", "svc"], now()).unwrap();
}

#[test]
fn every_algorithm_signs_and_validates() {
    for alg in JwtAlgorithm::ALL {
        let s = signer(alg, "k");
        let mut c = claims("spiffe://example.org/w", &["svc", "other"]);
        c.extra.insert("iss".into(), json!("lanyard"));
        let token = s.sign(&c).unwrap();
        let bundle = bundle_of("example.org", &[&s]);
        let svid = JwtSvid::parse_and_validate(&token, &bundle, &["other"], now())
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(svid.algorithm(), alg);
        assert_eq!(svid.audience(), ["svc", "other"]);
        assert_eq!(svid.expiry(), c.expiry);
        assert_eq!(svid.claims()["iss"], "lanyard");
        assert_eq!(svid.claims()["iat"], unix(c.issued_at));
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(
            header,
            json!({"alg": alg.as_str(), "kid": "k", "typ": "JWT"})
        );
    }
}

#[test]
fn parse_insecure_skips_only_the_signature() {
    let fresh = JwtSigningKey::from_pkcs8(&Kind::P256.generate()).unwrap();
    let forged = forge(
        HEADER,
        &good_claims().to_string(),
        &fresh,
        JwtAlgorithm::ES256,
    );
    let svid = JwtSvid::parse_insecure(&forged, &["svc"], now()).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/w");

    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(good_claims().to_string())
    );
    let e = JwtSvid::parse_insecure(&none, &["svc"], now()).unwrap_err();
    assert!(e.to_string().contains(r#"header "alg" is "none""#), "{e}");
    let expired = forge(
        HEADER,
        &with_claim("exp", json!(1)),
        &fresh,
        JwtAlgorithm::ES256,
    );
    assert!(matches!(
        JwtSvid::parse_insecure(&expired, &["svc"], now()),
        Err(JwtError::Expired { exp: 1, .. })
    ));
    assert!(matches!(
        JwtSvid::parse_insecure(&forged, &["nope"], now()),
        Err(JwtError::AudienceMismatch { .. })
    ));
}

#[test]
fn signer_refuses_bad_requests() {
    let e = JwtSigner::new(Kind::P256.key(), "k", JwtAlgorithm::ES384).unwrap_err();
    assert!(
        e.to_string()
            .contains("it is an EC P-256 key: it cannot sign ES384"),
        "{e}"
    );
    let e = JwtSigner::new(Kind::P256.key(), "", JwtAlgorithm::ES256).unwrap_err();
    assert!(e.to_string().contains("key ID is empty"), "{e}");
    let e = JwtSigner::new(Kind::Rsa2048.key(), "k", JwtAlgorithm::ES256).unwrap_err();
    assert!(
        e.to_string()
            .contains("RSA 2048-bit key: it cannot sign ES256"),
        "{e}"
    );

    let s = signer(JwtAlgorithm::ES256, "k");
    let mut c = claims("spiffe://example.org/w", &[]);
    assert!(
        s.sign(&c)
            .unwrap_err()
            .to_string()
            .contains("at least one non-empty value")
    );
    c.audience = vec!["".into()];
    assert!(s.sign(&c).is_err());
    let mut c = claims("spiffe://example.org/w", &["a"]);
    c.expiry = c.issued_at;
    assert!(
        s.sign(&c)
            .unwrap_err()
            .to_string()
            .contains("must expire after it is issued")
    );
    let mut c = claims("spiffe://example.org/w", &["a"]);
    c.extra.insert("sub".into(), json!("spiffe://evil.org/x"));
    let e = s.sign(&c).unwrap_err();
    assert!(
        e.to_string().contains(r#"extra claim "sub" is reserved"#),
        "{e}"
    );

    let e = JwtSigningKey::from_pkcs8(b"garbage").unwrap_err();
    assert!(
        e.to_string()
            .contains("not a PKCS#8 EC P-256, P-384, P-521 or RSA private key"),
        "{e}"
    );
}

#[test]
fn public_keys_round_trip_through_spki_and_components() {
    for kind in Kind::ALL {
        let key = kind.key();
        let public = key.public_key();
        let der = public.to_spki_der();
        assert_eq!(
            &JwtPublicKey::from_spki_der(&der).unwrap(),
            public,
            "{kind:?}"
        );
        if let Some((curve, x, y)) = public.ec_coordinates() {
            assert_eq!(
                &JwtPublicKey::from_ec_coordinates(curve, x, y).unwrap(),
                public
            );
        }
        if let Some((n, e)) = public.rsa_components() {
            let mut padded = vec![0, 0];
            padded.extend_from_slice(n);
            assert_eq!(
                &JwtPublicKey::from_rsa_components(&padded, e).unwrap(),
                public
            );
        }
    }
    // Our SPKI encoding is byte-identical to rcgen's.
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_RSA_SHA256,
    ] {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        let spki = pair.subject_public_key_info();
        assert_eq!(
            JwtPublicKey::from_spki_der(&spki).unwrap().to_spki_der(),
            spki
        );
    }
}

#[test]
fn public_keys_reject_bad_material() {
    let (curve, x, y) = {
        let k = Kind::P256.key();
        let (c, x, y) = k
            .public_key()
            .ec_coordinates()
            .map(|(c, x, y)| (c, x.to_vec(), y.to_vec()))
            .unwrap();
        (c, x, y)
    };
    let e = JwtPublicKey::from_ec_coordinates(curve, &x[1..], &y).unwrap_err();
    assert!(
        e.to_string()
            .contains("EC P-256 coordinate x is 31 bytes: exactly 32 are required"),
        "{e}"
    );
    let mut off = y.clone();
    off[31] ^= 1;
    let e = JwtPublicKey::from_ec_coordinates(curve, &x, &off).unwrap_err();
    assert!(
        e.to_string().contains("EC P-256 point is not on the curve"),
        "{e}"
    );
    let e = JwtPublicKey::from_rsa_components(&[0xc1; 128], &[1, 0, 1]).unwrap_err();
    assert!(
        e.to_string()
            .contains("RSA modulus is 1024 bits: 2048 to 8192 bits are required"),
        "{e}"
    );
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let e = JwtPublicKey::from_spki_der(&ed.subject_public_key_info()).unwrap_err();
    assert!(
        e.to_string()
            .contains("key algorithm 1.3.101.112 is not supported"),
        "{e}"
    );
    let mut der = Kind::P256.key().public_key().to_spki_der();
    der.push(0);
    assert!(
        JwtPublicKey::from_spki_der(&der)
            .unwrap_err()
            .to_string()
            .contains("1 bytes follow")
    );
}
