//! The machine's floors, measured at the start of every run: what the hardware and kernel
//! can do at best, so each benchmark is reported as a ratio to them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};

/// Floors measured in this run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Floors {
    /// ECDSA P-256 signatures per second on one thread.
    pub(crate) sign_per_sec: f64,
    /// ECDSA P-256 verifications per second on one thread.
    pub(crate) verify_per_sec: f64,
    /// Median round trip of 64 bytes over a unix socketpair between two threads, µs.
    pub(crate) socketpair_rtt_us: f64,
    /// Cores available to this process.
    pub(crate) cores: usize,
}

impl Floors {
    /// SVIDs per second if the server did nothing but verify one CSR and sign one leaf per
    /// SVID on every core.
    pub(crate) fn issuance_per_sec(&self) -> f64 {
        let per_svid = 1.0 / self.verify_per_sec + 1.0 / self.sign_per_sec;
        self.cores as f64 / per_svid
    }
}

/// Runs every calibration kernel (about three seconds).
pub(crate) fn run() -> Floors {
    eprintln!("calibrating: ECDSA P-256 sign/verify, unix socketpair round trip");
    let (sign_per_sec, verify_per_sec) = ecdsa();
    Floors {
        sign_per_sec,
        verify_per_sec,
        socketpair_rtt_us: socketpair_rtt(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn ecdsa() -> (f64, f64) {
    let rng = SystemRandom::new();
    let Ok(pkcs8) = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng) else {
        return (f64::NAN, f64::NAN);
    };
    let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()) else {
        return (f64::NAN, f64::NAN);
    };
    // About the size of a leaf certificate's to-be-signed part.
    let message = [0x5a_u8; 400];
    let sign = rate(Duration::from_secs(1), || {
        let _ = key.sign(&rng, &message);
    });
    let Ok(signature) = key.sign(&rng, &message) else {
        return (sign, f64::NAN);
    };
    let public =
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref().to_vec());
    let verify = rate(Duration::from_secs(1), || {
        let _ = public.verify(&message, signature.as_ref());
    });
    (sign, verify)
}

/// Operations per second of `op` over about `budget`, after a short warm-up.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    for _ in 0..50 {
        op();
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget {
        for _ in 0..64 {
            op();
        }
        n += 64;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn socketpair_rtt() -> f64 {
    const ROUNDS: usize = 20_000;
    let Ok((mut a, mut b)) = UnixStream::pair() else {
        return f64::NAN;
    };
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        if a.write_all(&buf).is_err() || a.read_exact(&mut buf).is_err() {
            return f64::NAN;
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(a);
    let _ = echo.join();
    crate::report::percentile(&mut samples, 50.0)
}
