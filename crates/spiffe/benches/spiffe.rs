//! Micro-benchmarks of lanyard-spiffe's hot paths, each next to the raw signature verification it
//! contains, measured in the same run (this machine is shared and noisy, so only ratios travel).
//!
//! - SPIFFE ID parsing (no crypto; reported in ns).
//! - X509-SVID chain validation: a P-256 leaf and a P-256 intermediate against a bundle with a
//!   P-256 root. It holds two ECDSA P-256 verifications (leaf by intermediate, intermediate by
//!   root), so the floor ratio is 2.0; what lies above is parsing and policy.
//! - JWT-SVID validation (ES256): one ECDSA P-256 verification, floor ratio 1.0.
//!
//! Run with `cargo bench -p lanyard-spiffe`; the ratio table is printed after criterion's output.
//! `cargo test` does not build this file (`harness = false`, bench targets are not tested by
//! default); `cargo test --benches` runs each benchmark once, untimed.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and checks: a failure must stop the run loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use criterion::{Criterion, criterion_group};
use lanyard_spiffe::jwt::{
    JwtAlgorithm, JwtBundle, JwtBundleSet, JwtSigningKey, JwtSvid, JwtSvidClaims, sign_jwt_svid,
};
use lanyard_spiffe::x509::{X509Bundle, X509Svid, verify_chain};
use lanyard_spiffe::{SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair as RcgenKeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::FromDer;

const SHORT_ID: &str = "spiffe://example.org/ns/prod/sa/api";

/// A root, an intermediate and a leaf, all P-256, plus what a raw verification needs.
struct ChainFixture {
    chain: Vec<CertificateDer<'static>>,
    leaf_key: Vec<u8>,
    bundle: X509Bundle,
    /// The leaf's to-be-signed bytes, its signature and the intermediate's public key.
    tbs: Vec<u8>,
    sig: Vec<u8>,
    issuer_point: Vec<u8>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())];
    params
}

fn chain_fixture() -> ChainFixture {
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let root_key = RcgenKeyPair::generate_for(alg).unwrap();
    let root_params = ca_params("root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);

    let mid_key = RcgenKeyPair::generate_for(alg).unwrap();
    let mid_point = mid_key.public_key_raw().to_vec();
    let mid_params = ca_params("intermediate");
    let mid = mid_params.signed_by(&mid_key, &root_issuer).unwrap();
    let mid_issuer = Issuer::new(mid_params, mid_key);

    let leaf_key = RcgenKeyPair::generate_for(alg).unwrap();
    let mut leaf_params = CertificateParams::default();
    leaf_params.subject_alt_names = vec![SanType::URI(SHORT_ID.try_into().unwrap())];
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf = leaf_params.signed_by(&leaf_key, &mid_issuer).unwrap();

    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(leaf.der()).unwrap();
    let tbs = parsed.tbs_certificate.as_ref().to_vec();
    let sig = parsed.signature_value.data.to_vec();

    let td = TrustDomain::new("example.org").unwrap();
    ChainFixture {
        chain: vec![leaf.der().clone(), mid.der().clone()],
        leaf_key: leaf_key.serialize_der(),
        bundle: X509Bundle::new(td, vec![root.der().clone()]),
        tbs,
        sig,
        issuer_point: mid_point,
    }
}

/// A signed ES256 JWT-SVID, its bundle, and what a raw verification of its signature needs.
struct JwtFixture {
    token: String,
    bundles: JwtBundleSet,
    signing_input: Vec<u8>,
    sig: Vec<u8>,
    point: Vec<u8>,
}

fn jwt_fixture(now: SystemTime) -> JwtFixture {
    let pkcs8 = RcgenKeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_der();
    let point = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let key = JwtSigningKey::from_pkcs8(&pkcs8).unwrap();
    let claims = JwtSvidClaims {
        subject: SpiffeId::parse(SHORT_ID).unwrap(),
        audience: vec!["spiffe://example.org/db".into()],
        issued_at: now,
        expiry: now + Duration::from_secs(300),
        extra: Default::default(),
    };
    let token = sign_jwt_svid(&key, "kid-1", JwtAlgorithm::ES256, &claims).unwrap();
    let mut bundle = JwtBundle::new(TrustDomain::new("example.org").unwrap());
    bundle.insert("kid-1", key.public_key().clone());
    let mut bundles = JwtBundleSet::new();
    bundles.insert(bundle);

    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig_b64)
        .unwrap();
    JwtFixture {
        signing_input: signing_input.as_bytes().to_vec(),
        token,
        bundles,
        sig,
        point,
    }
}

fn raw_x509_verify(f: &ChainFixture) {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &f.issuer_point)
        .verify(black_box(&f.tbs), &f.sig)
        .unwrap();
}

fn raw_jwt_verify(f: &JwtFixture) {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &f.point)
        .verify(black_box(&f.signing_input), &f.sig)
        .unwrap();
}

fn bench_ids(c: &mut Criterion) {
    let long = format!("spiffe://example.org/{}", "a1/".repeat(674) + "end");
    assert!(long.len() <= 2048);
    let mut group = c.benchmark_group("id");
    group.bench_function("parse_short", |b| {
        b.iter(|| SpiffeId::parse(black_box(SHORT_ID)).unwrap())
    });
    group.bench_function("parse_2048_bytes", |b| {
        b.iter(|| SpiffeId::parse(black_box(&long)).unwrap())
    });
    group.bench_function("trust_domain_new", |b| {
        b.iter(|| TrustDomain::new(black_box("example.org")).unwrap())
    });
    group.finish();
}

fn bench_x509(c: &mut Criterion) {
    let f = chain_fixture();
    let now = SystemTime::now();
    let mut group = c.benchmark_group("x509");
    group.bench_function("raw_ecdsa_p256_verify", |b| b.iter(|| raw_x509_verify(&f)));
    group.bench_function("verify_chain_leaf_intermediate", |b| {
        b.iter(|| verify_chain(black_box(&f.chain), &f.bundle, now).unwrap())
    });
    group.bench_function("parse_der_svid_with_key_check", |b| {
        let der = lanyard_spiffe::x509::concat_der(&f.chain);
        b.iter(|| X509Svid::parse_der(black_box(&der), &f.leaf_key).unwrap())
    });
    group.finish();
}

fn bench_jwt(c: &mut Criterion) {
    let now = SystemTime::now();
    let f = jwt_fixture(now);
    let audience = ["spiffe://example.org/db"];
    let mut group = c.benchmark_group("jwt");
    group.bench_function("raw_ecdsa_p256_verify", |b| b.iter(|| raw_jwt_verify(&f)));
    group.bench_function("parse_and_validate_es256", |b| {
        b.iter(|| {
            JwtSvid::parse_and_validate(black_box(&f.token), &f.bundles, &audience, now).unwrap()
        })
    });
    group.finish();
}

/// Times each operation in rounds interleaved with the others, so that all share the machine's
/// state; each runs its own number of times per round (cheap ones more often). Returns ns/op.
fn interleaved(ops: &mut [Op<'_>], rounds: u32) -> Vec<f64> {
    let mut totals = vec![Duration::ZERO; ops.len()];
    for _ in 0..rounds {
        for (i, op) in ops.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..op.per_round {
                (op.run)();
            }
            totals[i] += start.elapsed();
        }
    }
    totals
        .iter()
        .zip(ops.iter())
        .map(|(t, op)| t.as_nanos() as f64 / f64::from(rounds * op.per_round))
        .collect()
}

/// One operation of the same-run comparison.
struct Op<'a> {
    name: &'static str,
    per_round: u32,
    run: &'a mut dyn FnMut(),
}

/// Prints each figure next to the raw ECDSA P-256 verification measured in the same loop.
fn ratio_report() {
    let f = chain_fixture();
    let now = SystemTime::now();
    let j = jwt_fixture(now);
    let audience = ["spiffe://example.org/db"];

    let mut raw_x = || raw_x509_verify(&f);
    let mut chain = || {
        verify_chain(black_box(&f.chain), &f.bundle, now).unwrap();
    };
    let mut raw_j = || raw_jwt_verify(&j);
    let mut jwt = || {
        JwtSvid::parse_and_validate(black_box(&j.token), &j.bundles, &audience, now).unwrap();
    };
    let mut id = || {
        SpiffeId::parse(black_box(SHORT_ID)).unwrap();
    };
    let mut ops = [
        Op {
            name: "raw ECDSA P-256 verify (X.509 TBS)",
            per_round: 200,
            run: &mut raw_x,
        },
        Op {
            name: "X509-SVID chain validation (leaf + intermediate)",
            per_round: 100,
            run: &mut chain,
        },
        Op {
            name: "raw ECDSA P-256 verify (JWT signing input)",
            per_round: 200,
            run: &mut raw_j,
        },
        Op {
            name: "JWT-SVID parse_and_validate (ES256)",
            per_round: 200,
            run: &mut jwt,
        },
        Op {
            name: "SPIFFE ID parse (35 bytes)",
            per_round: 100_000,
            run: &mut id,
        },
    ];
    let ns = interleaved(&mut ops, 20);

    println!();
    println!("same-run ratios (20 interleaved rounds):");
    println!("| operation | ns/op | ratio to raw P-256 verify | floor |");
    println!("|---|---|---|---|");
    let rows = [
        (0, 0, "1"),
        (1, 0, "2 (two verifies)"),
        (2, 2, "1"),
        (3, 2, "1 (one verify)"),
    ];
    for (i, base, floor) in rows {
        println!(
            "| {} | {:.0} | {:.2} | {floor} |",
            ops[i].name,
            ns[i],
            ns[i] / ns[base]
        );
    }
    println!(
        "| {} | {:.0} | {:.5} | no crypto |",
        ops[4].name,
        ns[4],
        ns[4] / ns[0]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_ids, bench_x509, bench_jwt
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` does not, and then criterion only
    // checks that each benchmark runs once, so the timed comparison is skipped too.
    if std::env::args().any(|arg| arg == "--bench") {
        ratio_report();
    }
}
