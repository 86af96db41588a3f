use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_spiffe::jwt::{JwtAlgorithm, JwtSvid};

use super::*;
use crate::journal::{self, JournalStore};
use crate::key::KeyType;
use crate::manager::{CaConfig, CaManager};
use crate::schedule::{activate_at, prepare_at};
use crate::test_support::{HOUR, Harness, id};

const AUD: &str = "spiffe://example.org/db";

fn sign(ca: &CaManager, now: SystemTime, ttl: Duration) -> SignedJwtSvid {
    ca.sign_jwt_svid(&id("spiffe://example.org/w"), &[AUD.to_owned()], ttl, now)
        .unwrap()
}

fn validate(token: &str, ca: &CaManager, now: SystemTime) -> Result<JwtSvid, String> {
    JwtSvid::parse_and_validate(token, &ca.jwt_bundle(), &[AUD], now).map_err(|e| e.to_string())
}

fn kids(ca: &CaManager) -> Vec<String> {
    ca.jwt_authorities()
        .iter()
        .map(|k| k.kid().to_owned())
        .collect()
}

fn header(token: &str) -> serde_json::Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn claims(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn jwt_statuses(h: &Harness) -> Vec<(Status, String)> {
    let saved = journal::decode(&h.journal.blob().unwrap()).unwrap();
    saved
        .jwt
        .into_iter()
        .map(|r| (r.status, r.key_id))
        .collect()
}

#[tokio::test]
async fn every_jwt_svid_validates_against_the_published_bundle_until_it_expires() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let mut issued: Vec<SignedJwtSvid> = Vec::new();
    let mut seen = BTreeSet::new();

    // Three days in 20-minute ticks: several rotations, each token asking for 4 h (the
    // longest that the schedule never cuts short with a 24 h ca_ttl).
    for _ in 0..(3 * 24 * 3) {
        h.clock.advance(Duration::from_secs(20 * 60));
        ca.rotate().await.unwrap();
        let published = kids(&ca);
        assert!((1..=3).contains(&published.len()), "{published:?}");
        seen.extend(published.iter().cloned());

        let svid = sign(&ca, h.now(), 4 * HOUR);
        assert_eq!(svid.kid, ca.active_jwt_authority().kid());
        assert_eq!(svid.expires_at, svid.issued_at + 4 * HOUR);
        issued.push(svid);

        issued.retain(|s| h.now() < s.expires_at);
        for s in &issued {
            let v = validate(&s.token, &ca, h.now())
                .unwrap_or_else(|e| panic!("kid {} at {:?}: {e}", s.kid, h.now()));
            assert_eq!(v.kid(), s.kid);
        }
    }
    assert!(
        seen.len() >= 4,
        "only {} jwt keys over three days",
        seen.len()
    );
}

#[tokio::test]
async fn prepared_key_is_published_before_it_signs_and_keys_alternate_ids() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = ca.active_jwt_authority();
    assert_eq!(kids(&ca), vec![first.kid().to_owned()]);
    assert_eq!(
        jwt_statuses(&h),
        vec![(Status::Active, "JWT-Signer-A".to_owned())]
    );

    h.clock
        .set(prepare_at(first.not_before(), first.not_after()));
    assert!(ca.rotate().await.unwrap(), "preparing changes the bundle");
    let published = kids(&ca);
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], first.kid());
    assert_eq!(
        sign(&ca, h.now(), HOUR).kid,
        first.kid(),
        "prepared does not sign yet"
    );

    h.clock
        .set(activate_at(first.not_before(), first.not_after()));
    ca.rotate().await.unwrap();
    let second = ca.active_jwt_authority();
    assert_eq!(second.kid(), published[1]);
    assert_eq!(kids(&ca), published, "the old key stays published");
    assert_eq!(
        jwt_statuses(&h),
        vec![
            (Status::Old, "JWT-Signer-A".to_owned()),
            (Status::Active, "JWT-Signer-B".to_owned())
        ]
    );

    // The second key's successor is prepared a few seconds before the first expires; the
    // expired first key stays published for its grace period.
    h.clock.set(first.not_after());
    ca.rotate().await.unwrap();
    let published = kids(&ca);
    assert_eq!(published.len(), 3);
    assert_eq!(published[0], first.kid());

    h.clock.set(prune_at(first.not_before(), first.not_after()));
    assert!(
        ca.rotate().await.unwrap(),
        "pruning the expired key changes the bundle"
    );
    let published = kids(&ca);
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], second.kid());
    assert!(!published.contains(&first.kid().to_owned()));
}

#[tokio::test]
async fn jwt_svid_never_outlives_its_key() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let key = ca.active_jwt_authority();
    h.clock.set(key.not_after() - HOUR);
    // Deliberately no rotate(): the active key has one hour left.
    let svid = sign(&ca, h.now(), 10 * HOUR);
    assert_eq!(svid.expires_at, key.not_after());
    assert_eq!(
        claims(&svid.token)["exp"],
        unix_secs(key.not_after()),
        "exp is capped at the key's expiry"
    );
    validate(&svid.token, &ca, h.now()).unwrap();
}

#[tokio::test]
async fn restart_mid_rotation_resumes_from_the_journal() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let first = ca.active_jwt_authority();
    h.clock
        .set(prepare_at(first.not_before(), first.not_after()));
    ca.rotate().await.unwrap();
    let before = kids(&ca);
    let token = sign(&ca, h.now(), HOUR).token;
    drop(ca);

    let ca = h.load().await.unwrap();
    assert_eq!(kids(&ca), before, "same keys after reload");
    assert_eq!(ca.active_jwt_authority(), first);
    validate(&token, &ca, h.now()).unwrap();

    h.clock
        .set(activate_at(first.not_before(), first.not_after()));
    ca.rotate().await.unwrap();
    assert_eq!(
        ca.active_jwt_authority().kid(),
        before[1],
        "the prepared key takes over"
    );
    let after = sign(&ca, h.now(), HOUR);
    validate(&after.token, &ca, h.now()).unwrap();
}

#[tokio::test]
async fn version_1_journal_loads_and_gains_a_jwt_key() {
    let h = Harness::new();
    let serial = h.load().await.unwrap().active().serial_hex().to_owned();

    // Rewrite the journal as a version 1 build saved it: X.509 authorities only.
    let mut v2: serde_json::Value = serde_json::from_slice(&h.journal.blob().unwrap()).unwrap();
    let mut x509 = v2["x509_authorities"].take();
    for record in x509.as_array_mut().unwrap() {
        record.as_object_mut().unwrap().remove("tainted");
    }
    let v1 = serde_json::json!({"version": 1, "x509_authorities": x509});
    h.journal
        .save_journal(&serde_json::to_vec(&v1).unwrap())
        .await
        .unwrap();

    let ca = h.load().await.unwrap();
    assert_eq!(ca.active().serial_hex(), serial, "the X.509 CA is kept");
    assert_eq!(ca.jwt_authorities().len(), 1);
    let saved: serde_json::Value = serde_json::from_slice(&h.journal.blob().unwrap()).unwrap();
    assert_eq!(saved["version"], 3);
    assert_eq!(
        jwt_statuses(&h),
        vec![(Status::Active, "JWT-Signer-A".to_owned())]
    );
    validate(&sign(&ca, h.now(), HOUR).token, &ca, h.now()).unwrap();
}

#[tokio::test]
async fn signs_with_the_algorithm_of_each_key_type() {
    for (kt, alg) in [
        (KeyType::EcP256, JwtAlgorithm::ES256),
        (KeyType::EcP384, JwtAlgorithm::ES384),
        (KeyType::Rsa2048, JwtAlgorithm::RS256),
        (KeyType::Rsa4096, JwtAlgorithm::RS256),
    ] {
        let h = Harness::new();
        let ca = h
            .load_with(CaConfig {
                jwt_key_type: kt,
                ..CaConfig::default()
            })
            .await
            .unwrap();
        let svid = sign(&ca, h.now(), HOUR);
        let hdr = header(&svid.token);
        assert_eq!(hdr["alg"], alg.as_str(), "{kt}");
        assert_eq!(hdr["typ"], "JWT");
        assert_eq!(hdr["kid"], svid.kid.as_str());
        let v = validate(&svid.token, &ca, h.now()).unwrap();
        assert_eq!(v.algorithm(), alg);
    }
}

#[tokio::test]
async fn claims_carry_sub_aud_iat_exp_and_the_configured_issuer() {
    let h = Harness::new();
    let plain = h.load().await.unwrap();
    let c = claims(&sign(&plain, h.now(), HOUR).token);
    assert_eq!(c["sub"], "spiffe://example.org/w");
    assert_eq!(c["aud"], serde_json::json!([AUD]));
    assert_eq!(c["iat"], unix_secs(h.now()));
    assert_eq!(c["exp"], unix_secs(h.now() + HOUR));
    assert!(c.get("iss").is_none(), "{c}");

    let h = Harness::new();
    let ca = h
        .load_with(CaConfig {
            jwt_issuer: Some("https://oidc.example.org".into()),
            ..CaConfig::default()
        })
        .await
        .unwrap();
    let c = claims(&sign(&ca, h.now(), HOUR).token);
    assert_eq!(c["iss"], "https://oidc.example.org");
}

#[tokio::test]
async fn refuses_foreign_ids_empty_audiences_and_zero_ttl() {
    let h = Harness::new();
    let ca = h.load().await.unwrap();
    let aud = [AUD.to_owned()];

    let err = ca
        .sign_jwt_svid(&id("spiffe://other.org/w"), &aud, HOUR, h.now())
        .unwrap_err();
    assert!(matches!(err, CaError::ForeignSpiffeId { .. }), "{err}");

    for bad in [vec![], vec![String::new()]] {
        let err = ca
            .sign_jwt_svid(&id("spiffe://example.org/w"), &bad, HOUR, h.now())
            .unwrap_err();
        assert!(matches!(err, CaError::EmptyAudience(_)), "{err}");
        assert!(
            err.to_string().contains("at least one non-empty audience"),
            "{err}"
        );
    }

    let err = ca
        .sign_jwt_svid(&id("spiffe://example.org/w"), &aud, Duration::ZERO, h.now())
        .unwrap_err();
    assert!(err.to_string().contains("ttl of jwt-svid is zero"), "{err}");
}

#[tokio::test]
async fn refuses_a_journal_whose_jwt_key_was_replaced() {
    let h = Harness::new();
    h.load().await.unwrap();
    h.km.generate_key("JWT-Signer-A", KeyType::EcP256).unwrap();
    let err = h.load().await.unwrap_err();
    assert!(matches!(err, CaError::JwtKeyMismatch { .. }), "{err}");
}

#[test]
fn kids_are_random_letters_and_digits() {
    // Never '-' first: a command line would read `--authority-id -x...` as a flag.
    let kids: Vec<String> = (0..200).map(|_| random_kid().unwrap()).collect();
    for kid in &kids {
        assert_eq!(kid.len(), 32);
        assert!(kid.bytes().all(|c| c.is_ascii_alphanumeric()), "{kid}");
    }
    let distinct: std::collections::HashSet<&String> = kids.iter().collect();
    assert_eq!(distinct.len(), kids.len());
}
