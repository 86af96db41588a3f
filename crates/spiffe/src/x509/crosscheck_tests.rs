//! Cross-check of X509-SVID parsing against the `spiffe` crate (rust-spiffe) over the cases of
//! `table_tests.rs`.
//!
//! The crate's `X509Svid::parse_from_der` is the counterpart of [`X509Svid::parse_der`]: both read
//! the Workload API form and apply the X509-SVID §4-5 leaf and signing certificate rules. Where
//! the crate's verdict matches the spec (our table), ours must match too; where it departs from
//! the spec, the case is listed in [`PARSE_DEVIATIONS`] with the reason. A listed case on which
//! the verdicts agree again fails the test, so the list stays current. The crate has no chain
//! verification without its Workload API client, so only parsing is compared.

use super::table_tests::{cases, run};
use crate::id::table_tests::Expect;

/// Cases the `spiffe` crate (0.19, feature `x509`) judges differently from the spec, and why.
const PARSE_DEVIATIONS: &[(&str, &str)] = &[
    (
        "key-of-another-leaf",
        "spiffe crate does not check that the private key belongs to the leaf; go-spiffe and \
         Lanyard do",
    ),
    (
        "key-of-another-type",
        "spiffe crate only checks that the key is PKCS#8, not that it is of the leaf's algorithm",
    ),
    (
        "wrong-leaf-id-upper-case-trust-domain",
        "spiffe crate lowercases the trust domain of the URI SAN instead of rejecting it",
    ),
    (
        "wrong-leaf-id-upper-case-scheme",
        "spiffe crate accepts any case of the scheme in the URI SAN and lowercases it",
    ),
];

#[test]
fn x509_svid_parsing_agrees_with_the_spiffe_crate_except_listed_deviations() {
    let mut failures = Vec::new();
    for case in cases() {
        let input = (case.build)();
        let (ours, _) = run(&input);
        let theirs = spiffe::X509Svid::parse_from_der(&input.chain_der, &input.key);
        let spec_accepts = case.parse == Expect::Accept;
        let listed = PARSE_DEVIATIONS.iter().any(|(name, _)| *name == case.name);

        if ours.is_ok() != spec_accepts {
            failures.push(format!("{}: Lanyard disagrees with the table", case.name));
        }
        let crate_agrees = theirs.is_ok() == spec_accepts;
        if crate_agrees == listed {
            failures.push(format!(
                "{}: spiffe crate says {:?}, table expects {:?}, listed as deviation: {listed}",
                case.name,
                theirs.as_ref().map(|s| s.spiffe_id().to_string()),
                case.parse
            ));
        }
        if let (Ok(ours), Ok(theirs)) = (&ours, &theirs)
            && ours.spiffe_id().as_str() != theirs.spiffe_id().to_string()
        {
            failures.push(format!("{}: the crates read different IDs", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
