use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};

use super::*;

fn p256() -> EcdsaKeyPair {
    EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()
}

/// An answer as SPIRE's agent computes it: ECDSA over SHA-256(challenge || response).
fn ecdsa_answer(key: &EcdsaKeyPair, challenge: &[u8], nonce: &[u8]) -> Response {
    let sig = key
        .sign(&SystemRandom::new(), &[challenge, nonce].concat())
        .unwrap();
    let (r, s) = sig.as_ref().split_at(32);
    Response {
        rsa_signature: None,
        ecdsa_signature: Some(EcdsaResponse {
            nonce: nonce.to_vec(),
            r: r.to_vec(),
            s: s.to_vec(),
        }),
    }
}

fn leaf_key(key: &EcdsaKeyPair) -> LeafKey {
    LeafKey::EcP256(key.public_key().as_ref().to_vec())
}

#[test]
fn challenge_carries_a_fresh_nonce_of_the_key_kind() {
    let key = leaf_key(&p256());
    let a = key.challenge().unwrap();
    let b = key.challenge().unwrap();
    let (a, b) = (a.ecdsa_signature.unwrap(), b.ecdsa_signature.unwrap());
    assert_eq!(a.nonce.len(), NONCE_LEN);
    assert_ne!(a.nonce, b.nonce);
    let rsa = LeafKey::Rsa(vec![1]).challenge().unwrap();
    assert!(rsa.rsa_signature.is_some() && rsa.ecdsa_signature.is_none());
}

#[test]
fn challenge_json_has_go_field_names_and_base64() {
    let challenge = Challenge {
        rsa_signature: None,
        ecdsa_signature: Some(NonceChallenge {
            nonce: vec![0xff; 3],
        }),
    };
    assert_eq!(
        serde_json::to_string(&challenge).unwrap(),
        r#"{"rsa_signature":null,"ecdsa_signature":{"nonce":"////"}}"#
    );
    let data: AttestationData =
        serde_json::from_str(r#"{"certificates":["AQI=","Aw=="]}"#).unwrap();
    assert_eq!(data.certificates, vec![vec![1, 2], vec![3]]);
}

#[test]
fn accepts_a_signature_over_both_nonces() {
    let key = p256();
    let response = ecdsa_answer(&key, &[7; 32], &[9; 32]);
    leaf_key(&key).verify(&[7; 32], &response).unwrap();
}

#[test]
fn accepts_integers_without_leading_zeros_as_go_sends_them() {
    let key = p256();
    let mut response = ecdsa_answer(&key, &[7; 32], &[9; 32]);
    let ecdsa = response.ecdsa_signature.as_mut().unwrap();
    ecdsa.r = ecdsa.r.iter().copied().skip_while(|b| *b == 0).collect();
    ecdsa.s = ecdsa.s.iter().copied().skip_while(|b| *b == 0).collect();
    leaf_key(&key).verify(&[7; 32], &response).unwrap();
}

#[test]
fn refuses_a_signature_over_another_challenge() {
    let key = p256();
    let response = ecdsa_answer(&key, &[8; 32], &[9; 32]);
    assert_eq!(
        leaf_key(&key).verify(&[7; 32], &response),
        Err(PopError::BadSignature)
    );
}

#[test]
fn refuses_a_signature_by_another_key() {
    let response = ecdsa_answer(&p256(), &[7; 32], &[9; 32]);
    assert_eq!(
        leaf_key(&p256()).verify(&[7; 32], &response),
        Err(PopError::BadSignature)
    );
}

#[test]
fn refuses_short_nonce_and_wrong_kind() {
    let key = p256();
    let response = ecdsa_answer(&key, &[7; 32], &[9; 16]);
    assert_eq!(
        leaf_key(&key).verify(&[7; 32], &response),
        Err(PopError::NonceLength(16))
    );
    let err = LeafKey::Rsa(vec![1])
        .verify(&[7; 32], &response)
        .unwrap_err();
    assert_eq!(err, PopError::WrongKind("rsa_signature"));
    assert_eq!(
        err.to_string(),
        "the response has no rsa_signature member, which the challenge asked for"
    );
}

#[test]
fn der_integers_get_a_sign_byte_and_lose_leading_zeros() {
    assert_eq!(
        ecdsa_der(&[0, 0, 0x80], &[0x01]).unwrap(),
        vec![0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01]
    );
    assert_eq!(
        ecdsa_der(&[], &[0]).unwrap(),
        vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
    );
    assert_eq!(
        ecdsa_der(&[1; 67], &[1]),
        Err(PopError::IntegerLength("r", 67))
    );
}
