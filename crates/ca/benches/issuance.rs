//! SVID issuance micro-benchmarks, per CA key type, each next to the raw signature operations it
//! cannot avoid, measured in the same run (this machine is shared and noisy, so only ratios
//! travel).
//!
//! - X509-SVID from a PKCS#10 request, as the server's SVID APIs do it: [`parse_csr`] (DER
//!   parse and verification of the request's ECDSA P-256 self-signature; workload keys are
//!   P-256) then [`CaManager::sign_x509_svid_chain`] (profile checks, leaf encoding, signing with
//!   the active authority's key). Floor: one raw aws-lc-rs signature with the CA key type over a
//!   leaf's to-be-signed bytes, plus one raw ECDSA P-256 verification of the request.
//! - JWT-SVID: [`CaManager::sign_jwt_svid`] with a JWT key of the same type (ES256, ES384 or
//!   RS256). Floor: one raw signature over a token's signing input.
//!
//! Run with `cargo bench -p lanyard-ca --bench issuance`; the ratio table (floor time / measured
//! time, 1.0 is the floor) is printed after criterion's output. `cargo test` does not build this
//! file (`harness = false`, bench targets are not tested by default); `cargo test --benches` runs
//! each benchmark once, untimed.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and checks: a failure must stop the run loudly"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, EcdsaKeyPair, EcdsaSigningAlgorithm, RsaKeyPair,
    UnparsedPublicKey,
};
use criterion::Criterion;
use lanyard_ca::{
    CaConfig, CaManager, KeyType, ManualClock, MemoryJournalStore, MemoryKeyManager, SvidParams,
    generate_key_pair, make_csr, parse_csr,
};
use lanyard_spiffe::{SpiffeId, TrustDomain};
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

const WORKLOAD_ID: &str = "spiffe://example.org/ns/prod/sa/api";
const X509_TTL: Duration = Duration::from_secs(3600);
const JWT_TTL: Duration = Duration::from_secs(300);

/// Target of the X.509 issuance ratio (issue #6; performance reference S1).
const X509_TARGET: f64 = 0.8;

/// A raw aws-lc-rs signer of one key type: the floor every issuance is compared with.
enum RawSigner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl RawSigner {
    /// `fixed`: JWS signatures (r || s) instead of X.509's DER-encoded ECDSA signatures.
    fn new(kt: KeyType, pkcs8: &[u8], fixed: bool) -> Self {
        let ec = |asn1: &'static EcdsaSigningAlgorithm, raw: &'static EcdsaSigningAlgorithm| {
            let alg = if fixed { raw } else { asn1 };
            RawSigner::Ecdsa(EcdsaKeyPair::from_pkcs8(alg, pkcs8).unwrap())
        };
        match kt {
            KeyType::EcP256 => ec(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            KeyType::EcP384 => ec(
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
            KeyType::Rsa2048 | KeyType::Rsa4096 => {
                RawSigner::Rsa(RsaKeyPair::from_pkcs8(pkcs8).unwrap())
            }
        }
    }

    fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> usize {
        match self {
            RawSigner::Ecdsa(key) => key.sign(rng, msg).unwrap().as_ref().len(),
            RawSigner::Rsa(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, rng, msg, &mut sig)
                    .unwrap();
                sig.len()
            }
        }
    }
}

/// A CA manager whose X.509 authority and JWT key are of one type, a workload's request, and
/// what the raw floors need.
struct Fixture {
    kt: KeyType,
    ca: CaManager,
    now: SystemTime,
    id: SpiffeId,
    audience: Vec<String>,
    csr: Vec<u8>,
    rng: SystemRandom,
    /// The CA's own key, and the to-be-signed bytes of a leaf it minted.
    x509_raw: RawSigner,
    leaf_tbs: Vec<u8>,
    /// A JWT key of the same type, and the signing input of a token the manager minted.
    jwt_raw: RawSigner,
    jwt_input: Vec<u8>,
    /// The request's signed bytes, its signature and the workload's public key (P-256 point).
    csr_info: Vec<u8>,
    csr_sig: Vec<u8>,
    workload_point: Vec<u8>,
}

impl Fixture {
    fn new(kt: KeyType) -> Self {
        let now = SystemTime::now();
        let config = CaConfig {
            key_type: kt,
            jwt_key_type: kt,
            ..CaConfig::default()
        };
        let ca = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(CaManager::load_or_create(
                TrustDomain::new("example.org").unwrap(),
                config,
                Arc::new(MemoryKeyManager::new()),
                Arc::new(MemoryJournalStore::new()),
                Arc::new(ManualClock::new(now)),
            ))
            .unwrap();

        let id = SpiffeId::parse(WORKLOAD_ID).unwrap();
        let workload_key = generate_key_pair(KeyType::EcP256).unwrap();
        let csr = make_csr(&workload_key, Some(&id)).unwrap();
        let (_, req) = X509CertificationRequest::from_der(&csr).unwrap();
        let csr_info = req.certification_request_info.raw.to_vec();
        let csr_sig = req.signature_value.data.to_vec();
        let workload_point = req
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .to_vec();

        let mut f = Fixture {
            kt,
            x509_raw: RawSigner::new(kt, &ca.active().key().serialize_der(), false),
            jwt_raw: RawSigner::new(kt, &generate_key_pair(kt).unwrap().serialize_der(), true),
            ca,
            now,
            id,
            audience: vec!["spiffe://example.org/db".to_owned()],
            csr,
            rng: SystemRandom::new(),
            leaf_tbs: Vec::new(),
            jwt_input: Vec::new(),
            csr_info,
            csr_sig,
            workload_point,
        };

        let chain = f.issue_x509();
        let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
        f.leaf_tbs = leaf.tbs_certificate.as_ref().to_vec();
        let token = f.issue_jwt();
        f.jwt_input = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
        f
    }

    /// What the server does per X509-SVID: check the request, then mint from its key.
    fn issue_x509(&self) -> Vec<CertificateDer<'static>> {
        let csr = parse_csr(black_box(&self.csr)).unwrap();
        self.ca
            .sign_x509_svid_chain(&SvidParams {
                spiffe_id: self.id.clone(),
                public_key_der: csr.public_key_der,
                ttl: X509_TTL,
                dns_names: Vec::new(),
            })
            .unwrap()
    }

    fn issue_jwt(&self) -> String {
        self.ca
            .sign_jwt_svid(black_box(&self.id), &self.audience, JWT_TTL, self.now)
            .unwrap()
            .token
    }

    fn raw_csr_verify(&self) {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.workload_point)
            .verify(black_box(&self.csr_info), &self.csr_sig)
            .unwrap();
    }

    /// The X.509 floor: one CA-key signature over a leaf's TBS and one P-256 verification.
    fn raw_x509_floor(&self) {
        black_box(self.x509_raw.sign(&self.rng, black_box(&self.leaf_tbs)));
        self.raw_csr_verify();
    }

    fn raw_jwt_floor(&self) {
        black_box(self.jwt_raw.sign(&self.rng, black_box(&self.jwt_input)));
    }
}

fn bench_key_type(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group(f.kt.name());
    group.bench_function("raw_sign_plus_p256_verify", |b| {
        b.iter(|| f.raw_x509_floor())
    });
    group.bench_function("x509_svid_from_csr", |b| b.iter(|| f.issue_x509()));
    group.bench_function("raw_jwt_sign", |b| b.iter(|| f.raw_jwt_floor()));
    group.bench_function("jwt_svid", |b| b.iter(|| f.issue_jwt()));
    group.finish();
}

/// The two halves of X.509 issuance, for locating overhead (CSR side, signing side).
fn bench_parts(c: &mut Criterion, f: &Fixture) {
    let public_key_der = parse_csr(&f.csr).unwrap().public_key_der;
    let params = SvidParams {
        spiffe_id: f.id.clone(),
        public_key_der,
        ttl: X509_TTL,
        dns_names: Vec::new(),
    };
    let mut group = c.benchmark_group(format!("{}_parts", f.kt.name()));
    group.bench_function("raw_p256_verify", |b| b.iter(|| f.raw_csr_verify()));
    group.bench_function("parse_csr", |b| {
        b.iter(|| parse_csr(black_box(&f.csr)).unwrap())
    });
    group.bench_function("raw_sign", |b| {
        b.iter(|| f.x509_raw.sign(&f.rng, black_box(&f.leaf_tbs)))
    });
    group.bench_function("sign_x509_svid", |b| {
        b.iter(|| f.ca.sign_x509_svid(black_box(&params)).unwrap())
    });
    group.finish();
}

/// One operation of the same-run comparison.
struct Op<'a> {
    name: &'static str,
    per_round: u32,
    run: Box<dyn Fn() + 'a>,
}

impl<'a> Op<'a> {
    /// Runs `run` as many times per round as fit in about 5 ms (at least once), so that cheap and
    /// dear operations get comparable slices of each round.
    fn new(name: &'static str, run: impl Fn() + 'a) -> Self {
        for _ in 0..3 {
            run();
        }
        let start = Instant::now();
        run();
        let once = start.elapsed().as_nanos().max(1);
        let per_round = u32::try_from(5_000_000 / once)
            .unwrap_or(u32::MAX)
            .clamp(1, 1000);
        Op {
            name,
            per_round,
            run: Box::new(run),
        }
    }
}

/// Times each operation in rounds interleaved with the others, so that all share the machine's
/// state over the same stretch of time. Returns ns/op per round, per operation.
fn interleaved(ops: &[Op<'_>], rounds: u32) -> Vec<Vec<f64>> {
    let mut per_round = vec![Vec::new(); ops.len()];
    for _ in 0..rounds {
        for (times, op) in per_round.iter_mut().zip(ops) {
            let start = Instant::now();
            for _ in 0..op.per_round {
                (op.run)();
            }
            times.push(start.elapsed().as_nanos() as f64 / f64::from(op.per_round));
        }
    }
    per_round
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The median and the quartiles of floor / measured, taken round by round: a burst of load from
/// another process lands in one slice of one round and moves these less than a total would.
fn ratio_quartiles(floor: &[f64], measured: &[f64]) -> [f64; 3] {
    let mut ratios: Vec<f64> = floor.iter().zip(measured).map(|(f, m)| f / m).collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    [at(1), at(2), at(3)]
}

const ROUNDS: u32 = 40;

/// Prints, per key type, each issuance next to its raw floor measured in the same loop.
fn ratio_report(fixtures: &[Fixture]) {
    println!();
    println!(
        "same-run ratios ({ROUNDS} interleaved rounds per key type, one thread; ratio = floor / \
         measured, median of the rounds with the quartiles in brackets):"
    );
    println!("| CA key type | operation | us/op | ops/s per core | floor us/op | ratio | target |");
    println!("|---|---|---|---|---|---|---|");
    for f in fixtures {
        let ops = [
            Op::new("raw sign + raw P-256 verify (X.509 floor)", || {
                f.raw_x509_floor()
            }),
            Op::new("X509-SVID from CSR", || {
                black_box(f.issue_x509());
            }),
            Op::new("raw sign (JWT floor)", || f.raw_jwt_floor()),
            Op::new("JWT-SVID (sign_jwt_svid)", || {
                black_box(f.issue_jwt());
            }),
        ];
        let ns = interleaved(&ops, ROUNDS);
        let jwt_target = match f.kt {
            KeyType::EcP256 => ">= 35000/s (S3)",
            _ => "-",
        };
        let x509_target = format!(">= {X509_TARGET:.2}");
        for (i, floor, target) in [(1, 0, x509_target.as_str()), (3, 2, jwt_target)] {
            let [low, median, high] = ratio_quartiles(&ns[floor], &ns[i]);
            let measured = mean(&ns[i]);
            println!(
                "| {} | {} | {:.1} | {:.0} | {:.1} | {median:.2} ({low:.2}-{high:.2}) | {target} |",
                f.kt,
                ops[i].name,
                measured / 1e3,
                1e9 / measured,
                mean(&ns[floor]) / 1e3,
            );
        }
    }
}

fn main() {
    let fixtures: Vec<Fixture> = KeyType::ALL.into_iter().map(Fixture::new).collect();

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for f in &fixtures {
        bench_key_type(&mut c, f);
    }
    bench_parts(&mut c, &fixtures[0]);
    c.final_summary();

    // `cargo bench` passes --bench; `cargo test --benches` does not, and then criterion only
    // checks that each benchmark runs once, so the timed comparison is skipped too. So it is
    // under a profiler (`--profile-time`), which should see only the benchmark it was given.
    let has = |flag: &str| std::env::args().any(|arg| arg == flag);
    if has("--bench") && !has("--profile-time") {
        ratio_report(&fixtures);
    }
}
