//! Cross-check against an independent implementation (the `jsonwebtoken` crate on aws-lc-rs,
//! default features off so that no other crypto provider enters the graph): tokens we sign
//! validate there, and tokens it signs validate here. Keys are generated at test time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::test_keys::{Kind, bundle_of, claims, now, signer, td, unix};
use super::*;

/// The algorithms both implementations support (jsonwebtoken has no ES512).
const SHARED: [(JwtAlgorithm, Algorithm); 8] = [
    (JwtAlgorithm::ES256, Algorithm::ES256),
    (JwtAlgorithm::ES384, Algorithm::ES384),
    (JwtAlgorithm::RS256, Algorithm::RS256),
    (JwtAlgorithm::RS384, Algorithm::RS384),
    (JwtAlgorithm::RS512, Algorithm::RS512),
    (JwtAlgorithm::PS256, Algorithm::PS256),
    (JwtAlgorithm::PS384, Algorithm::PS384),
    (JwtAlgorithm::PS512, Algorithm::PS512),
];

fn their_decoding_key(key: &JwtPublicKey) -> DecodingKey {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match (key.ec_coordinates(), key.rsa_components()) {
        (Some((_, x, y)), _) => DecodingKey::from_ec_components(&b64(x), &b64(y)).unwrap(),
        (_, Some((n, e))) => DecodingKey::from_rsa_components(&b64(n), &b64(e)).unwrap(),
        _ => unreachable!(),
    }
}

fn their_encoding_key(kind: Kind) -> EncodingKey {
    match kind {
        Kind::Rsa2048 => EncodingKey::from_rsa_der(&pkcs1_of(kind.pkcs8())),
        _ => EncodingKey::from_ec_der(kind.pkcs8()),
    }
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (its third element, an OCTET STRING).
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, hdr) = match b[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let k = (n & 0x7f) as usize;
                (
                    b[2..2 + k].iter().fold(0usize, |a, x| a << 8 | *x as usize),
                    2 + k,
                )
            }
        };
        (b[0], &b[hdr..hdr + len], &b[hdr + len..])
    }
    let (_, info, _) = tlv(pkcs8);
    let (_, _, rest) = tlv(info); // version
    let (_, _, rest) = tlv(rest); // algorithm
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}

#[test]
fn tokens_we_sign_validate_in_jsonwebtoken() {
    for (ours, theirs) in SHARED {
        let s = signer(ours, "k1");
        let token = s.sign(&claims("spiffe://example.org/w", &["svc"])).unwrap();

        let mut validation = Validation::new(theirs);
        validation.set_audience(&["svc"]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let data =
            jsonwebtoken::decode::<Value>(&token, &their_decoding_key(s.public_key()), &validation)
                .unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert_eq!(data.claims["sub"], "spiffe://example.org/w");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));

        // And they, too, reject it for another audience.
        let mut other = Validation::new(theirs);
        other.set_audience(&["nope"]);
        assert!(
            jsonwebtoken::decode::<Value>(&token, &their_decoding_key(s.public_key()), &other)
                .is_err()
        );
    }
}

#[test]
fn tokens_jsonwebtoken_signs_validate_here() {
    for (ours, theirs) in SHARED {
        let kind = Kind::for_alg(ours);
        let mut header = Header::new(theirs);
        header.kid = Some("k1".into());
        let now = unix(now());
        let claims =
            json!({"sub": "spiffe://example.org/w", "aud": "svc", "exp": now + 60, "iat": now});
        let token = jsonwebtoken::encode(&header, &claims, &their_encoding_key(kind)).unwrap();

        let mut bundle = JwtBundle::new(td("example.org"));
        bundle.insert("k1", kind.key().public_key().clone());
        let svid = JwtSvid::parse_and_validate(&token, &bundle, &["svc"], super::test_keys::now())
            .unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert_eq!(svid.algorithm(), ours);
        assert_eq!(svid.audience(), ["svc"]);

        // A header member the JWT-SVID spec forbids is refused even with a good signature.
        let mut header = Header::new(theirs);
        header.kid = Some("k1".into());
        header.cty = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &their_encoding_key(kind)).unwrap();
        let e = JwtSvid::parse_and_validate(&token, &bundle, &["svc"], super::test_keys::now())
            .unwrap_err();
        assert!(e.to_string().contains(r#"header "cty" is present"#), "{e}");

        // Without kid (jsonwebtoken's default) the token is refused, as documented.
        let token =
            jsonwebtoken::encode(&Header::new(theirs), &claims, &their_encoding_key(kind)).unwrap();
        let e = JwtSvid::parse_and_validate(&token, &bundle, &["svc"], super::test_keys::now())
            .unwrap_err();
        assert!(matches!(e, JwtError::BadKid { .. }), "{e}");
    }
}

#[test]
fn both_reject_a_token_signed_by_another_key() {
    let s = signer(JwtAlgorithm::ES256, "k1");
    let fresh = JwtSigner::new(
        JwtSigningKey::from_pkcs8(&Kind::P256.generate()).unwrap(),
        "k1",
        JwtAlgorithm::ES256,
    )
    .unwrap();
    let token = fresh
        .sign(&claims("spiffe://example.org/w", &["svc"]))
        .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["svc"]);
    assert!(
        jsonwebtoken::decode::<Value>(&token, &their_decoding_key(s.public_key()), &validation)
            .is_err()
    );
    let bundle = bundle_of("example.org", &[&s]);
    assert!(matches!(
        JwtSvid::parse_and_validate(&token, &bundle, &["svc"], now()),
        Err(JwtError::BadSignature { .. })
    ));
}
