//! SPIFFE bundle documents and plain JWKS: no panic on any JSON, and an accepted document
//! serialises to JSON that parses back to the same bundle.
#![no_main]

use lanyard_spiffe::TrustDomain;
use lanyard_spiffe::bundle::{SpiffeBundle, parse_jwks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let td = TrustDomain::new("example.org").expect("valid trust domain");

    if let Ok(bundle) = SpiffeBundle::parse(td.clone(), data) {
        assert_eq!(bundle.trust_domain(), &td);
        if let Ok(json) = bundle.to_json() {
            let again =
                SpiffeBundle::parse(td.clone(), json.as_bytes()).expect("own output parses");
            assert_eq!(again.x509_bundle(), bundle.x509_bundle());
            assert_eq!(again.sequence(), bundle.sequence());
            assert_eq!(again.refresh_hint(), bundle.refresh_hint());
        }
    }
    if let Ok(jwt) = parse_jwks(td.clone(), data) {
        assert_eq!(jwt.trust_domain(), &td);
    }
});
