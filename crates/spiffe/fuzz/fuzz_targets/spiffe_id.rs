//! SPIFFE ID and trust domain parsing: no panic on any input, and every accepted input is
//! canonical (written back unchanged, rebuilt identically from its parts).
#![no_main]

use lanyard_spiffe::{SpiffeId, TrustDomain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let s = input.as_ref();

    match SpiffeId::parse(s) {
        Ok(id) => {
            assert_eq!(id.to_string(), s);
            assert!(s.len() <= lanyard_spiffe::id::MAX_ID_LEN);
            let td = TrustDomain::new(id.trust_domain_name()).expect("trust domain of a valid id");
            assert_eq!(id.trust_domain(), td);
            assert!(id.is_member_of(&td));
            assert!(!id.path().ends_with('/'));
            assert_eq!(SpiffeId::from_path(&td, id.path()).as_ref(), Ok(&id));
            let segments: Vec<&str> = id.segments().collect();
            assert_eq!(SpiffeId::from_segments(&td, &segments).as_ref(), Ok(&id));
            assert_eq!(TrustDomain::from_name_or_id(s).as_ref(), Ok(&td));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    if let Ok(td) = TrustDomain::new(s) {
        assert_eq!(td.to_string(), s);
        assert!(s.len() <= lanyard_spiffe::id::MAX_TRUST_DOMAIN_LEN);
        assert_eq!(
            SpiffeId::parse(&td.id_string()).map(|id| id.trust_domain()),
            Ok(td.clone())
        );
        assert!(td.id().is_root());
    }
    let _ = TrustDomain::from_name_or_id(s);
});
