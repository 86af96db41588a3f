use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA256_ASN1, RSA_PSS_2048_8192_SHA256, RsaParameters,
    UnparsedPublicKey,
};
use rcgen::{CertificateParams, DnType, KeyPair, KeyUsagePurpose, SignatureAlgorithm};

use super::*;

/// A self-signed agent certificate and its key, written to `dir`.
fn credentials(dir: &Path, alg: &'static SignatureAlgorithm) -> (X509popAgentConfig, KeyPair) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "node-1");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).unwrap();
    let config = X509popAgentConfig {
        private_key_path: dir.join("agent.key.pem"),
        certificate_path: dir.join("agent.crt.pem"),
        intermediates_path: None,
    };
    std::fs::write(&config.private_key_path, key.serialize_pem()).unwrap();
    std::fs::write(&config.certificate_path, cert.pem()).unwrap();
    (config, key)
}

fn challenge(member: &str, nonce: &[u8]) -> Vec<u8> {
    json!({ member: { "nonce": STANDARD.encode(nonce) } })
        .to_string()
        .into_bytes()
}

fn field(answer: &Value, member: &str, name: &str) -> Vec<u8> {
    STANDARD
        .decode(answer[member][name].as_str().unwrap())
        .unwrap()
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` for P-384's 48-byte integers.
fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if v[0] & 0x80 == 0 { vec![] } else { vec![0] };
        body.extend_from_slice(&v);
        let mut out = vec![0x02, u8::try_from(body.len()).unwrap()];
        out.extend(body);
        out
    };
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

static RSA_MAX_SALT: RsaParameters =
    RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);

#[test]
fn payload_is_the_chain_in_spires_json() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = credentials(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
    let creds = X509popCredentials::load(&config).unwrap();
    let payload: Value = serde_json::from_slice(&creds.payload()).unwrap();
    let certs = payload["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    let pem = std::fs::read(&config.certificate_path).unwrap();
    let der = lanyard_spiffe::x509::parse_pem_certs(&pem).unwrap();
    assert_eq!(
        STANDARD.decode(certs[0].as_str().unwrap()).unwrap(),
        der[0].to_vec()
    );
}

#[test]
fn answers_verify_for_every_key_type_as_spire_checks_them() {
    let theirs = [5u8; 32];
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_RSA_SHA256,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (config, key) = credentials(dir.path(), alg);
        let creds = X509popCredentials::load(&config).unwrap();
        let is_rsa = alg == &rcgen::PKCS_RSA_SHA256;
        let member = if is_rsa {
            "rsa_signature"
        } else {
            "ecdsa_signature"
        };
        let answer: Value =
            serde_json::from_slice(&creds.respond(&challenge(member, &theirs)).unwrap()).unwrap();
        let ours = field(&answer, member, "nonce");
        assert_eq!(ours.len(), NONCE_LEN);
        let message = [theirs.as_slice(), &ours].concat();
        let public = key.public_key_raw();
        let verified = if is_rsa {
            UnparsedPublicKey::new(&RSA_MAX_SALT, public)
                .verify(&message, &field(&answer, member, "signature"))
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            let sig = [field(&answer, member, "r"), field(&answer, member, "s")].concat();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public).verify(&message, &sig)
        } else {
            let sig = der(&field(&answer, member, "r"), &field(&answer, member, "s"));
            UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, public).verify(&message, &sig)
        };
        assert!(verified.is_ok(), "{alg:?}");
    }
}

#[test]
fn refuses_a_challenge_for_another_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = credentials(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
    let creds = X509popCredentials::load(&config).unwrap();
    let err = creds
        .respond(&challenge("rsa_signature", &[5; 32]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x509pop challenge from the server: it has no ecdsa_signature.nonce of 32 bytes, which \
         our key needs"
    );
}

#[test]
fn refuses_a_key_that_does_not_belong_to_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = credentials(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
    let other = KeyPair::generate().unwrap();
    std::fs::write(&config.private_key_path, other.serialize_pem()).unwrap();
    let err = X509popCredentials::load(&config).err().unwrap().to_string();
    assert_eq!(
        err,
        format!(
            "x509pop private_key_path {}: it is not the key of the first certificate in {}",
            config.private_key_path.display(),
            config.certificate_path.display()
        )
    );
}

#[test]
fn names_the_missing_file_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _) = credentials(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
    config.intermediates_path = Some(dir.path().join("missing.pem"));
    let err = X509popCredentials::load(&config).err().unwrap().to_string();
    assert_eq!(
        err,
        format!(
            "x509pop intermediates_path {}: cannot read it",
            dir.path().join("missing.pem").display()
        )
    );
}
