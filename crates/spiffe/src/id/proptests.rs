//! Property tests of the ID parser: generated valid IDs round-trip, arbitrary input never panics.

use proptest::prelude::*;

use super::{IdError, SpiffeId, TrustDomain};

/// Strategy for valid trust domain names (1..=255 bytes of the trust domain charset).
fn trust_domain_name() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,64}"
}

/// Strategy for valid path segments: charset bytes, but never exactly `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,20}".prop_filter("dot segment", |s| s != "." && s != "..")
}

/// Strategy for valid IDs as strings.
fn valid_id() -> impl Strategy<Value = String> {
    (trust_domain_name(), prop::collection::vec(segment(), 0..8)).prop_map(|(td, segs)| {
        let mut s = format!("spiffe://{td}");
        for seg in segs {
            s.push('/');
            s.push_str(&seg);
        }
        s
    })
}

/// Strategy for strings close to IDs: the prefix and structure bytes show up often.
fn id_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("spiffe://".to_owned()),
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(":".to_owned()),
        Just("%2F".to_owned()),
        "[a-zA-Z0-9._~@?#%-]{0,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn generated_valid_ids_round_trip(s in valid_id()) {
        let id = SpiffeId::parse(&s).unwrap();
        prop_assert_eq!(id.to_string(), s.clone());
        let again = SpiffeId::from_path(&id.trust_domain(), id.path()).unwrap();
        prop_assert_eq!(&again, &id);
        let segments: Vec<&str> = id.segments().collect();
        prop_assert_eq!(SpiffeId::from_segments(&id.trust_domain(), &segments).unwrap(), id);
    }

    #[test]
    fn generated_trust_domains_round_trip(name in trust_domain_name()) {
        let td = TrustDomain::new(&name).unwrap();
        prop_assert_eq!(td.to_string(), name.clone());
        prop_assert_eq!(TrustDomain::from_name_or_id(&td.id_string()).unwrap(), td.clone());
        prop_assert_eq!(td.id().trust_domain(), td);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_input_round_trips(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        let s = String::from_utf8_lossy(&bytes);
        if let Ok(id) = SpiffeId::parse(&s) {
            prop_assert_eq!(id.to_string(), s.to_string());
        }
        if let Ok(td) = TrustDomain::new(&s) {
            prop_assert_eq!(td.to_string(), s.to_string());
        }
        let _ = TrustDomain::from_name_or_id(&s);
    }

    #[test]
    fn id_like_strings_never_panic_and_accepted_input_round_trips(s in id_like()) {
        match SpiffeId::parse(&s) {
            Ok(id) => {
                prop_assert_eq!(id.to_string(), s.clone());
                prop_assert!(!id.path().ends_with('/'));
                prop_assert!(!id.path().contains("//"));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn upper_case_trust_domains_are_rejected_not_lowercased(
        name in "[a-z0-9.]{0,10}[A-Z][a-zA-Z0-9.]{0,10}"
    ) {
        let is_upper_case_error = matches!(
            TrustDomain::new(&name), Err(IdError::UpperCaseTrustDomain { .. })
        );
        prop_assert!(is_upper_case_error);
        let id = format!("spiffe://{name}/a");
        prop_assert!(SpiffeId::parse(&id).is_err());
    }
}
