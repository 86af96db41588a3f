use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, RSA_PSS_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};

use super::*;

/// A CA that signs agent certificates, written to `<dir>/<name>.pem`.
struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { params, key, der }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        Self { params, key, der }
    }

    fn leaf(&self, alg: &'static SignatureAlgorithm, cn: &str, usages: &[KeyUsagePurpose]) -> Leaf {
        self.leaf_with(alg, cn, usages, Vec::new())
    }

    fn leaf_with(
        &self,
        alg: &'static SignatureAlgorithm,
        cn: &str,
        usages: &[KeyUsagePurpose],
        sans: Vec<String>,
    ) -> Leaf {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans
            .into_iter()
            .map(|uri| rcgen::SanType::URI(uri.try_into().unwrap()))
            .collect();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = usages.to_vec();
        params.serial_number = Some(vec![0x0a, 0x1b, 0x2c].into());
        let issuer = Issuer::from_params(&self.params, &self.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        Leaf { der, key }
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let pem = lanyard_spiffe::x509::certs_to_pem(&[CertificateDer::from(self.der.clone())]);
        std::fs::write(&path, pem).unwrap();
        path
    }
}

struct Leaf {
    der: Vec<u8>,
    key: KeyPair,
}

fn payload(chain: &[&[u8]]) -> Vec<u8> {
    let certs: Vec<String> = chain.iter().map(|c| STANDARD.encode(c)).collect();
    serde_json::to_vec(&serde_json::json!({ "certificates": certs })).unwrap()
}

/// RSA-PSS as SPIRE's agent signs: SHA-256, largest salt.
static MAX_SALT: aws_lc_rs::signature::RsaSignatureEncoding =
    RSA_PSS_SHA256.with_pss_salt_length(aws_lc_rs::signature::RsaPssSaltLength::Max);

/// The agent's side as SPIRE's computes it, for each key type.
fn answer(key: &KeyPair, challenge: &[u8]) -> Vec<u8> {
    let challenge: serde_json::Value = serde_json::from_slice(challenge).unwrap();
    let nonce = |member: &str| {
        STANDARD
            .decode(challenge[member]["nonce"].as_str().unwrap())
            .unwrap()
    };
    let mine = [42u8; 32];
    let pkcs8 = key.serialize_der();
    let rng = SystemRandom::new();
    let response = if challenge["rsa_signature"].is_null() {
        let message = [nonce("ecdsa_signature").as_slice(), &mine].concat();
        let sig = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
            k.sign(&rng, &message).unwrap().as_ref().to_vec()
        } else {
            // P-384 over a SHA-256 digest: the digest, left-padded, as a 48-byte hash value.
            let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8).unwrap();
            let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
            let padded = [[0u8; 16].as_slice(), sha.as_ref()].concat();
            let digest =
                aws_lc_rs::digest::Digest::import_less_safe(&padded, &aws_lc_rs::digest::SHA384)
                    .unwrap();
            k.sign_digest(&digest).unwrap().as_ref().to_vec()
        };
        let (r, s) = sig.split_at(sig.len() / 2);
        serde_json::json!({ "ecdsa_signature": {
            "nonce": STANDARD.encode(mine), "r": STANDARD.encode(r), "s": STANDARD.encode(s)
        }})
    } else {
        let message = [nonce("rsa_signature").as_slice(), &mine].concat();
        let k = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        let mut sig = vec![0; k.public_modulus_len()];
        k.sign(&MAX_SALT, &rng, &message, &mut sig).unwrap();
        serde_json::json!({ "rsa_signature": {
            "nonce": STANDARD.encode(mine), "signature": STANDARD.encode(sig)
        }})
    };
    serde_json::to_vec(&response).unwrap()
}

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn config(dir: &Path, ca: &TestCa, template: Option<&str>) -> X509popConfig {
    let path = ca.write(dir, "ca.pem");
    let template = template.map(|t| AgentPathTemplate::parse(t).unwrap());
    X509popConfig::load(vec![path], template, None).unwrap()
}

fn attest(config: &X509popConfig, chain: &[&[u8]], key: &KeyPair) -> Result<Attested, AttestError> {
    let pending = config.begin(&td(), &payload(chain), SystemTime::now())?;
    let challenge = pending.challenge_json()?;
    pending.finish(&answer(key, &challenge))
}

const SIGN: &[KeyUsagePurpose] = &[KeyUsagePurpose::DigitalSignature];

#[test]
fn attests_p256_p384_and_rsa_leaves_with_spires_default_id() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("agent CA");
    let config = config(dir.path(), &ca, None);
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_RSA_SHA256,
    ] {
        let leaf = ca.leaf(alg, "node-1", SIGN);
        let attested = attest(&config, &[&leaf.der], &leaf.key).unwrap();
        assert_eq!(
            attested.agent_id.as_str(),
            format!(
                "spiffe://example.org/spire/agent/x509pop/{}",
                fingerprint(&leaf.der)
            ),
            "{alg:?}"
        );
    }
}

#[test]
fn selectors_name_cn_serial_and_every_ca_above_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("root");
    let mid = root.intermediate("intermediate");
    let config = config(dir.path(), &root, None);
    let leaf = mid.leaf_with(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        "node-1",
        SIGN,
        vec!["x509pop://example.org/datacenter/us-east-1".into()],
    );
    let attested = attest(&config, &[&leaf.der, &mid.der], &leaf.key).unwrap();
    let shown: Vec<String> = attested.selectors.iter().map(ToString::to_string).collect();
    let mut expected = vec![
        format!("x509pop:ca:fingerprint:{}", fingerprint(&mid.der)),
        format!("x509pop:ca:fingerprint:{}", fingerprint(&root.der)),
        "x509pop:san:datacenter:us-east-1".to_owned(),
        "x509pop:serialnumber:0a1b2c".to_owned(),
        "x509pop:subject:cn:node-1".to_owned(),
    ];
    expected.sort();
    assert_eq!(shown, expected);
}

#[test]
fn template_builds_the_id_from_the_common_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("agent CA");
    let config = config(dir.path(), &ca, Some("/cn/{{ .Subject.CommonName }}"));
    let leaf = ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "node-1", SIGN);
    let attested = attest(&config, &[&leaf.der], &leaf.key).unwrap();
    assert_eq!(
        attested.agent_id.as_str(),
        "spiffe://example.org/spire/agent/cn/node-1"
    );

    let leaf = ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "two words", SIGN);
    let err = attest(&config, &[&leaf.der], &leaf.key).err().unwrap();
    assert!(matches!(err, AttestError::AgentId { .. }), "{err}");
    assert!(
        err.to_string().contains("gives the path \"/cn/two words\""),
        "{err}"
    );
}

#[test]
fn refuses_a_leaf_from_another_ca_naming_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &TestCa::new("agent CA"), None);
    let stranger = TestCa::new("stranger");
    let leaf = stranger.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "node-1", SIGN);
    let err = config
        .begin(&td(), &payload(&[&leaf.der]), SystemTime::now())
        .err()
        .unwrap();
    assert!(matches!(err, AttestError::Untrusted { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("CN=node-1"), "{text}");
    let bundle = dir.path().join("ca.pem").display().to_string();
    assert!(
        text.contains(&format!(
            "does not chain to the x509pop CA bundle ({bundle})"
        )),
        "{text}"
    );

    // The unauthenticated agent learns why, but not where the server keeps its CA files.
    let status = err.status();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("does not chain to the x509pop CA bundle of the server: no certificate"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains(&bundle), "{}", status.message());
}

#[test]
fn refuses_a_leaf_without_digital_signature() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("agent CA");
    let config = config(dir.path(), &ca, None);
    for (usages, rule) in [
        (
            &[KeyUsagePurpose::KeyEncipherment][..],
            "lacks digitalSignature",
        ),
        (&[][..], "has no key usage extension"),
    ] {
        let leaf = ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "node-1", usages);
        let err = config
            .begin(&td(), &payload(&[&leaf.der]), SystemTime::now())
            .err()
            .unwrap();
        assert_eq!(err.status().code(), tonic::Code::InvalidArgument);
        assert!(
            err.to_string().contains(rule),
            "{rule:?} missing from {err}"
        );
    }
}

#[test]
fn refuses_a_response_signed_by_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("agent CA");
    let config = config(dir.path(), &ca, None);
    let leaf = ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "node-1", SIGN);
    let other = KeyPair::generate().unwrap();
    let err = attest(&config, &[&leaf.der], &other).err().unwrap();
    assert!(
        matches!(err, AttestError::Pop(PopError::BadSignature)),
        "{err}"
    );
    assert_eq!(err.status().code(), tonic::Code::PermissionDenied);
}

#[test]
fn refuses_more_intermediates_than_allowed_and_empty_chains() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("agent CA");
    let path = ca.write(dir.path(), "ca.pem");
    let config = X509popConfig::load(vec![path], None, Some(1)).unwrap();
    let leaf = ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, "node-1", SIGN);
    let err = config
        .begin(
            &td(),
            &payload(&[&leaf.der, &ca.der, &ca.der]),
            SystemTime::now(),
        )
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("2 intermediate certificates: at most 1"),
        "{err}"
    );
    let err = config
        .begin(&td(), &payload(&[]), SystemTime::now())
        .err()
        .unwrap();
    assert!(err.to_string().contains("holds no certificate"), "{err}");
}

#[test]
fn config_names_the_unreadable_or_empty_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = X509popConfig::load(vec![missing.clone()], None, None).unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "x509pop CA bundle {}: cannot read it: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no pem here").unwrap();
    let err = X509popConfig::load(vec![empty], None, None).unwrap_err();
    assert!(matches!(err, X509popConfigError::Parse { .. }), "{err}");
    assert!(matches!(
        X509popConfig::load(Vec::new(), None, None).unwrap_err(),
        X509popConfigError::NoBundle
    ));
}

#[test]
fn serial_hex_has_even_digits_without_sign_byte() {
    assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
    assert_eq!(serial_hex(&[0x0a]), "0a");
    assert_eq!(serial_hex(&[0x00]), "00");
}
