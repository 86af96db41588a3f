//! X.509 chain parsing and verification: no panic on any input, and what is accepted keeps the
//! X509-SVID rules.
//!
//! Input: a 2-byte big-endian length `n`, then `n` bytes of concatenated DER certificates (the
//! chain), then the PKCS#8 key. The chain is parsed, verified against a fixed example.org bundle
//! (`fixtures/bundle.der`, see `make-seeds.sh`) at a fixed time, and parsed as an own SVID with
//! the key.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use lanyard_spiffe::TrustDomain;
use lanyard_spiffe::x509::{
    X509Bundle, X509Svid, concat_der, parse_der_chain, parse_pem_certs, spiffe_id_of, verify_chain,
};
use libfuzzer_sys::fuzz_target;

/// 2027-06-01T00:00:00Z, inside the validity of the seed certificates.
const NOW_SECS: u64 = 1_811_808_000;

static BUNDLE: LazyLock<X509Bundle> = LazyLock::new(|| {
    let td = TrustDomain::new("example.org").expect("valid trust domain");
    X509Bundle::from_der(td, include_bytes!("../fixtures/bundle.der")).expect("fixture bundle")
});

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let (chain_der, key) = split(data);

    if let Ok(chain) = parse_der_chain(chain_der) {
        assert!(!chain.is_empty());
        assert_eq!(concat_der(&chain), chain_der);
        for cert in &chain {
            let _ = spiffe_id_of(cert);
        }
        if let Ok(id) = verify_chain(&chain, &*BUNDLE, now) {
            assert!(!id.is_root());
            assert_eq!(id.trust_domain_name(), "example.org");
        }
    }

    if let Ok(svid) = X509Svid::parse_der(chain_der, key) {
        assert_eq!(concat_der(svid.chain()), chain_der);
        assert!(!svid.spiffe_id().is_root());
        let _ = verify_chain(svid.chain(), &*BUNDLE, now);
    }

    let td = BUNDLE.trust_domain().clone();
    if let Ok(bundle) = X509Bundle::from_der(td, data) {
        assert_eq!(bundle.to_der(), data);
    }
    let _ = parse_pem_certs(data);
});

fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let [hi, lo, rest @ ..] = data else {
        return (data, &[]);
    };
    let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    rest.split_at(n)
}
