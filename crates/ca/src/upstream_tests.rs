//! Tests of upstream authorities, with the operator's CA written out as PEM files.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::X509Bundle;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

use super::*;
use crate::encoding::cert_time;
use crate::key::{KeyType, generate_key_pair};
use crate::manager::{CaConfig, CaManager};
use crate::test_support::{HOUR, Harness, params_for, parse, t0, td};

/// An operator's CA: its certificate and key.
struct OperatorCa {
    cert: CertificateDer<'static>,
    key: KeyPair,
    params: CertificateParams,
}

impl OperatorCa {
    fn root(name: &str, not_after: SystemTime) -> Self {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let params = ca_params(name, not_after, true);
        let cert = params.self_signed(&key).unwrap().der().clone();
        Self { cert, key, params }
    }

    /// A CA signed by `self`, with the given profile.
    fn issue(&self, name: &str, not_after: SystemTime, is_ca: bool) -> Self {
        let key = generate_key_pair(KeyType::EcP384).unwrap();
        let params = ca_params(name, not_after, is_ca);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap().der().clone();
        Self { cert, key, params }
    }
}

fn ca_params(name: &str, not_after: SystemTime, is_ca: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = cert_time(t0() - 24 * HOUR).unwrap();
    params.not_after = cert_time(not_after).unwrap();
    params.use_authority_key_identifier_extension = true;
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    params
}

fn write_pem(dir: &Path, name: &str, certs: &[&CertificateDer<'static>]) -> std::path::PathBuf {
    let path = dir.join(name);
    let owned: Vec<CertificateDer<'static>> = certs.iter().map(|c| (*c).clone()).collect();
    std::fs::write(&path, lanyard_spiffe::x509::certs_to_pem(&owned)).unwrap();
    path
}

/// Writes the upstream files: `signer`'s key, the certificate file `chain` (signer first) and,
/// when given, the bundle `roots`.
fn paths(
    dir: &Path,
    signer: &OperatorCa,
    chain: &[&CertificateDer<'static>],
    roots: Option<&[&CertificateDer<'static>]>,
) -> DiskUpstreamPaths {
    let key = dir.join("upstream.key");
    std::fs::write(&key, signer.key.serialize_pem()).unwrap();
    DiskUpstreamPaths {
        cert: write_pem(dir, "upstream.crt", chain),
        key,
        bundle: roots.map(|r| write_pem(dir, "bundle.crt", r)),
    }
}

async fn load(h: &Harness, upstream: DiskUpstream, config: CaConfig) -> CaManager {
    CaManager::load_or_create_with_upstream(
        td(),
        config,
        Arc::clone(&h.km),
        Some(Arc::new(upstream)),
        h.journal.clone(),
        h.clock.clone(),
    )
    .await
    .unwrap()
}

/// Verifies an SVID chain with the SPIFFE verifier against a bundle of `roots` only.
fn verify(chain: &[CertificateDer<'static>], roots: &[CertificateDer<'static>], now: SystemTime) {
    let bundle = X509Bundle::new(td(), roots.to_vec());
    lanyard_spiffe::x509::verify_chain(chain, &bundle, now).unwrap();
}

fn ski(cert: &CertificateDer<'_>) -> Vec<u8> {
    let x = parse(cert);
    x.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("subject key identifier")
}

fn aki(cert: &CertificateDer<'_>) -> Vec<u8> {
    let x = parse(cert);
    x.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(k) => {
                k.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("authority key identifier")
}

#[tokio::test]
async fn a_self_signed_upstream_is_the_only_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let upstream = DiskUpstream::open(paths(dir.path(), &root, &[&root.cert], None), t0()).unwrap();
    let h = Harness::new();
    let ca = load(&h, upstream, CaConfig::default()).await;

    let active = ca.active();
    let cert = parse(active.cert());
    assert_eq!(cert.issuer().to_string(), "CN=Operator Root");
    assert_eq!(cert.subject().to_string(), "O=Lanyard, CN=Lanyard CA");
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert_eq!(aki(active.cert()), ski(&root.cert));
    assert_ne!(ski(active.cert()), ski(&root.cert));
    assert_eq!(active.not_after(), t0() + 24 * HOUR);

    assert_eq!(ca.authorities(), vec![root.cert.clone()]);
    let chain = ca
        .sign_x509_svid_chain(&params_for(&h.leaf_key, "/w", HOUR))
        .unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(&chain[1], active.cert());
    verify(&chain, &ca.authorities(), h.now());
}

#[tokio::test]
async fn an_intermediate_upstream_chains_svids_to_the_bundle_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let mid = root.issue("Operator Intermediate", t0() + 500 * HOUR, true);
    let files = paths(dir.path(), &mid, &[&mid.cert], Some(&[&root.cert]));
    let h = Harness::new();
    let ca = load(
        &h,
        DiskUpstream::open(files, t0()).unwrap(),
        CaConfig::default(),
    )
    .await;

    assert_eq!(ca.authorities(), vec![root.cert.clone()], "only the root");
    assert_eq!(aki(ca.active().cert()), ski(&mid.cert));
    let chain = ca
        .sign_x509_svid_chain(&params_for(&h.leaf_key, "/w", HOUR))
        .unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(&chain[1], ca.active().cert());
    assert_eq!(chain[2], mid.cert);
    verify(&chain, std::slice::from_ref(&root.cert), h.now());

    let without_intermediate = X509Bundle::new(td(), vec![root.cert.clone()]);
    assert!(
        lanyard_spiffe::x509::verify_chain(&chain[..2], &without_intermediate, h.now()).is_err(),
        "the upstream intermediate is needed"
    );
}

#[tokio::test]
async fn the_ca_never_outlives_the_upstream_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let short = root.issue("Short-lived Intermediate", t0() + 2 * HOUR, true);
    let files = paths(dir.path(), &short, &[&short.cert], Some(&[&root.cert]));
    let h = Harness::new();
    let ca = load(
        &h,
        DiskUpstream::open(files, t0()).unwrap(),
        CaConfig::default(),
    )
    .await;

    let upstream_not_after = crate::encoding::validity_of(&short.cert).unwrap().1;
    assert_eq!(ca.active().not_after(), upstream_not_after);
    assert!(ca.active().not_after() < t0() + 24 * HOUR);
    let chain = ca
        .sign_x509_svid_chain(&params_for(&h.leaf_key, "/w", 10 * HOUR))
        .unwrap();
    let leaf_not_after = lanyard_spiffe::x509::not_after_of(&chain[0]).unwrap();
    assert!(leaf_not_after <= upstream_not_after);
}

#[tokio::test]
async fn reload_keeps_the_upstream_chain_and_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let mid = root.issue("Operator Intermediate", t0() + 500 * HOUR, true);
    let files = paths(dir.path(), &mid, &[&mid.cert], Some(&[&root.cert]));
    let h = Harness::new();
    let ca = load(
        &h,
        DiskUpstream::open(files, t0()).unwrap(),
        CaConfig::default(),
    )
    .await;
    h.clock
        .set(crate::test_support::schedule_of(&ca.active()).0);
    ca.rotate().await.unwrap();
    assert!(ca.prepared().is_some());
    let before = ca.authorities();
    let serial = ca.active().serial_hex().to_owned();
    drop(ca);
    let blob = String::from_utf8(h.journal.blob().unwrap()).unwrap();
    assert!(blob.contains("\"upstream\""), "{blob}");

    // Restored without an upstream configured: what the journal holds still chains.
    let again = h.load().await.unwrap();
    assert_eq!(again.active().serial_hex(), serial);
    assert_eq!(again.authorities(), before);
    assert_eq!(again.authorities(), vec![root.cert.clone()]);
    let chain = again
        .sign_x509_svid_chain(&params_for(&h.leaf_key, "/w", HOUR))
        .unwrap();
    verify(&chain, &again.authorities(), h.now());
}

#[test]
fn refuses_a_key_that_is_not_the_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let other = OperatorCa::root("Other", t0() + 1000 * HOUR);
    let mut files = paths(dir.path(), &other, &[&root.cert], None);
    files.cert = write_pem(dir.path(), "root.crt", &[&root.cert]);
    let err = DiskUpstream::open(files, t0()).unwrap_err();
    assert!(matches!(err, UpstreamError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match the public key"),
        "{err}"
    );
}

#[test]
fn refuses_a_fifo_or_device_as_an_upstream_file_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let mut files = paths(dir.path(), &root, &[&root.cert], None);
    let fifo = dir.path().join("fifo.crt");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    files.cert = fifo.clone();
    let err = DiskUpstream::open(files.clone(), t0()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read upstream certificate {}: it is a FIFO: only a regular file is read",
            fifo.display()
        )
    );

    files.cert = write_pem(dir.path(), "root.crt", &[&root.cert]);
    files.key = "/dev/zero".into();
    let err = DiskUpstream::open(files, t0()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read upstream key /dev/zero: it is a character device: only a regular file is read"
    );
}

#[test]
fn refuses_a_certificate_that_is_not_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let leaf = root.issue("Not A CA", t0() + 100 * HOUR, false);
    let files = paths(dir.path(), &leaf, &[&leaf.cert], Some(&[&root.cert]));
    let err = DiskUpstream::open(files, t0()).unwrap_err();
    assert!(matches!(err, UpstreamError::NotCa { .. }), "{err}");
    assert!(err.to_string().contains("cA true"), "{err}");
}

#[test]
fn refuses_an_expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + HOUR);
    let files = paths(dir.path(), &root, &[&root.cert], None);
    let err = DiskUpstream::open(files, t0() + 2 * HOUR).unwrap_err();
    assert!(matches!(err, UpstreamError::NotValid { .. }), "{err}");
}

#[test]
fn refuses_an_intermediate_without_a_bundle_and_a_bundle_that_did_not_issue_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let mid = root.issue("Operator Intermediate", t0() + 500 * HOUR, true);
    let err = DiskUpstream::open(paths(dir.path(), &mid, &[&mid.cert], None), t0()).unwrap_err();
    assert!(err.to_string().contains("not self-signed"), "{err}");

    let stranger = OperatorCa::root("Stranger Root", t0() + 1000 * HOUR);
    let files = paths(dir.path(), &mid, &[&mid.cert], Some(&[&stranger.cert]));
    let err = DiskUpstream::open(files, t0()).unwrap_err();
    assert!(matches!(err, UpstreamError::Chain { .. }), "{err}");
}

#[test]
fn accepts_a_full_chain_in_the_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = OperatorCa::root("Operator Root", t0() + 1000 * HOUR);
    let mid = root.issue("Operator Intermediate", t0() + 500 * HOUR, true);
    let issuing = mid.issue("Operator Issuing CA", t0() + 400 * HOUR, true);
    let files = paths(
        dir.path(),
        &issuing,
        &[&issuing.cert, &mid.cert, &root.cert],
        Some(&[&root.cert]),
    );
    let upstream = DiskUpstream::open(files, t0()).unwrap();
    assert_eq!(
        upstream.chain(),
        UpstreamChain {
            intermediates: vec![issuing.cert.clone(), mid.cert.clone()],
            roots: vec![root.cert.clone()],
        }
    );

    let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
    let authority =
        X509Authority::signed_by_upstream(&td(), key, &upstream, 24 * HOUR, t0()).unwrap();
    let leaf_key = generate_key_pair(KeyType::EcP256).unwrap();
    let leaf = authority
        .sign_x509_svid(&params_for(&leaf_key, "/w", HOUR), t0())
        .unwrap();
    let chain: Vec<_> = std::iter::once(leaf).chain(authority.chain()).collect();
    assert_eq!(chain.len(), 4);
    verify(&chain, &authority.bundle_certs(), t0());
}

#[test]
fn a_replaced_upstream_takes_effect_and_broken_files_keep_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = OperatorCa::root("First Root", t0() + 1000 * HOUR);
    let upstream =
        DiskUpstream::open(paths(dir.path(), &first, &[&first.cert], None), t0()).unwrap();
    let key = generate_key_pair(KeyType::EcP256)
        .unwrap()
        .subject_public_key_info();

    let second = OperatorCa::root("Second Root", t0() + 1000 * HOUR);
    paths(dir.path(), &second, &[&second.cert], None);
    let signed = upstream.mint_x509_ca(&td(), &key, HOUR, t0()).unwrap();
    assert_eq!(parse(&signed.cert).issuer().to_string(), "CN=Second Root");

    std::fs::write(dir.path().join("upstream.key"), "garbage").unwrap();
    let signed = upstream.mint_x509_ca(&td(), &key, HOUR, t0()).unwrap();
    assert_eq!(parse(&signed.cert).issuer().to_string(), "CN=Second Root");
    assert_eq!(
        upstream.not_after(),
        crate::encoding::validity_of(&second.cert).unwrap().1
    );
}
