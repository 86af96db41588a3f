//! Cross-check of ID and trust domain parsing against the `spiffe` crate (rust-spiffe), an
//! independent implementation, over the inputs of our tables.
//!
//! Our tables state what SPIFFE-ID §2 says of each input. Where the `spiffe` crate agrees with the
//! spec, Lanyard must agree with both. Where it departs from the spec, the input is listed in
//! [`ID_DEVIATIONS`] or [`TRUST_DOMAIN_DEVIATIONS`] with the reason; a listed input on which the
//! crates agree again fails the test, so the lists stay current when the crate changes.

use super::table_tests::{Expect, id_table};
use super::{SpiffeId, TrustDomain};

/// Inputs the `spiffe` crate (0.19) judges differently from SPIFFE-ID §2, and why.
const ID_DEVIATIONS: &[(&str, &str)] = &[
    (
        "SPIFFE://td/a",
        "spiffe crate accepts an upper-case scheme and lowercases it; §2 and go-spiffe reject",
    ),
    (
        "Spiffe://td/a",
        "spiffe crate lowercases the scheme instead of rejecting",
    ),
    (
        "spiffE://td",
        "spiffe crate lowercases the scheme instead of rejecting",
    ),
    (
        "SPIFFE://TD/A",
        "spiffe crate lowercases scheme and trust domain; §2.1 says the trust domain must be lowercase",
    ),
    (
        "spiffe://Example.org/a",
        "spiffe crate lowercases the trust domain; §2.1 requires lowercase, go-spiffe rejects",
    ),
    (
        "spiffe://example.ORG",
        "spiffe crate lowercases the trust domain instead of rejecting",
    ),
    (
        "spiffe://eXample.org/a",
        "spiffe crate lowercases the trust domain instead of rejecting",
    ),
];

/// Inputs longer than this are compared separately (see [`LONG_ID_DEVIATION`]).
const MAX_ID_LEN: usize = super::MAX_ID_LEN;

/// The `spiffe` crate enforces 2048 bytes only when building IDs from segments, not when parsing.
/// §2.3 requires accepting 2048 bytes and says implementations should not generate longer IDs;
/// Lanyard refuses longer ones everywhere so that no component passes on what others may refuse.
const LONG_ID_DEVIATION: &str = "spiffe crate parses IDs over 2048 bytes; Lanyard refuses them";

/// Trust domain inputs (bare names) the `spiffe` crate judges differently from §2.1, and why.
const TRUST_DOMAIN_DEVIATIONS: &[(&str, &str)] = &[
    (
        "Example.org",
        "spiffe crate lowercases the name instead of rejecting upper case",
    ),
    (
        "EXAMPLE",
        "spiffe crate lowercases the name instead of rejecting upper case",
    ),
    (
        "SPIFFE://example.org",
        "spiffe crate reads any case of the scheme in the ID form, and lowercases",
    ),
    (
        "spiffe://Example.org",
        "spiffe crate lowercases the trust domain of the ID form",
    ),
    (
        "spiffe://example.org/",
        "spiffe crate ignores the path of the ID form; go-spiffe parses the whole ID and rejects it",
    ),
    (
        "spiffe://example.org//a",
        "spiffe crate ignores the path of the ID form",
    ),
    (
        "spiffe://example.org/a?b",
        "spiffe crate ignores the path of the ID form",
    ),
];

#[test]
fn ids_agree_with_the_spiffe_crate_except_listed_deviations() {
    let mut failures = Vec::new();
    let mut deviations_seen = Vec::new();
    for (input, want) in id_table() {
        let spec_accepts = want == Expect::Accept;
        let ours = SpiffeId::parse(&input);
        let theirs = spiffe::SpiffeId::new(&input);

        if ours.is_ok() != spec_accepts {
            failures.push(format!("{input:?}: Lanyard disagrees with the spec table"));
        }
        if let (Ok(ours), Ok(theirs)) = (&ours, &theirs)
            && ours.to_string() != theirs.to_string()
            && spec_accepts
        {
            failures.push(format!(
                "{input:?}: written back as {theirs} by the spiffe crate"
            ));
        }

        let listed = ID_DEVIATIONS.iter().any(|(s, _)| *s == input) || input.len() > MAX_ID_LEN;
        let crate_agrees = theirs.is_ok() == spec_accepts;
        match (crate_agrees, listed) {
            (true, false) => {}
            (false, true) => deviations_seen.push(input),
            (false, false) => failures.push(format!(
                "{input:?}: spiffe crate {} it, the spec {} it; list it in ID_DEVIATIONS with a reason",
                verdict(theirs.is_ok()),
                verdict(spec_accepts)
            )),
            (true, true) => failures.push(format!(
                "{input:?}: listed as a deviation but the spiffe crate now agrees; drop it from the list"
            )),
        }
    }
    for (listed, _) in ID_DEVIATIONS {
        if !deviations_seen.iter().any(|s| s == listed) {
            failures.push(format!("{listed:?}: listed deviation not in the ID table"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ids_over_2048_bytes_are_the_documented_length_deviation() {
    let long = format!("spiffe://td/{}", "a".repeat(2049 - "spiffe://td/".len()));
    assert!(SpiffeId::parse(&long).is_err(), "{LONG_ID_DEVIATION}");
    assert!(spiffe::SpiffeId::new(&long).is_ok(), "{LONG_ID_DEVIATION}");
}

#[test]
fn every_printable_ascii_byte_is_judged_alike_except_upper_case_trust_domains() {
    for b in 0x20u8..0x7f {
        if b == b'/' {
            continue;
        }
        let c = char::from(b);
        let in_td = format!("spiffe://a{c}b/x");
        let ours = SpiffeId::parse(&in_td).is_ok();
        let theirs = spiffe::SpiffeId::new(&in_td).is_ok();
        if b.is_ascii_uppercase() {
            // Listed deviation: the spiffe crate lowercases upper-case trust domains.
            assert!(!ours && theirs, "{in_td:?}");
        } else {
            assert_eq!(ours, theirs, "{in_td:?}");
        }
        let in_path = format!("spiffe://td/a{c}b");
        assert_eq!(
            SpiffeId::parse(&in_path).is_ok(),
            spiffe::SpiffeId::new(&in_path).is_ok(),
            "{in_path:?}"
        );
    }
}

#[test]
fn trust_domains_agree_with_the_spiffe_crate_except_listed_deviations() {
    // The spiffe crate's TrustDomain::new takes a bare name or an ID, like from_name_or_id.
    let mut inputs: Vec<String> = [
        "example.org",
        "a",
        "1.2.3.4",
        "...",
        "my_td-1.local",
        "",
        "td:8080",
        "user@td",
        "[::1]",
        "td%41",
        "t d",
        "t\u{e9}d",
        "spiffe://example.org",
        "spiffe://example.org/a/b",
        "spiffe://",
        "spiffe:/example.org",
        "http://example.org",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    inputs.extend(TRUST_DOMAIN_DEVIATIONS.iter().map(|(s, _)| (*s).to_owned()));
    inputs.push("a".repeat(255));
    inputs.push("a".repeat(256));

    let mut failures = Vec::new();
    for input in &inputs {
        let ours = TrustDomain::from_name_or_id(input);
        let theirs = spiffe::TrustDomain::new(input);
        let listed = TRUST_DOMAIN_DEVIATIONS.iter().any(|(s, _)| s == input);
        let agree = ours.is_ok() == theirs.is_ok()
            && match (&ours, &theirs) {
                (Ok(o), Ok(t)) => o.name() == t.as_str(),
                _ => true,
            };
        if agree == listed {
            failures.push(format!(
                "{input:?}: Lanyard {ours:?}, spiffe crate {theirs:?}, listed: {listed}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ids_built_from_segments_agree_with_the_spiffe_crate() {
    let segment_lists: &[&[&str]] = &[
        &[],
        &["a"],
        &["ns", "prod"],
        &[".a", "..b", "..."],
        &[""],
        &["."],
        &[".."],
        &["a/b"],
        &["a b"],
        &["a%2F"],
    ];
    let ours_td = TrustDomain::new("example.org").unwrap();
    for segments in segment_lists {
        let theirs_td = spiffe::TrustDomain::new("example.org").unwrap();
        let ours = SpiffeId::from_segments(&ours_td, segments);
        let theirs = spiffe::SpiffeId::from_segments(theirs_td, segments);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{segments:?}");
        if let (Ok(o), Ok(t)) = (ours, theirs) {
            assert_eq!(o.to_string(), t.to_string());
        }
    }
}

fn verdict(accepts: bool) -> &'static str {
    if accepts { "accepts" } else { "rejects" }
}
