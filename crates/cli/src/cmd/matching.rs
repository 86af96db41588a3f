//! The set-matching modes of SPIRE's list filters (`--match-selectors-on`,
//! `--match-federates-with-on`) and the trust domain flag parser the filters share.

use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, TrustDomain};

/// How a stored set (an entry's or agent's selectors, an entry's federated trust domains) must
/// relate to the set given on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MatchMode {
    /// The same set.
    Exact,
    /// The stored set lies within the given one.
    Subset,
    /// The stored set contains the given one (SPIRE's default).
    #[default]
    Superset,
    /// The sets share at least one member.
    Any,
}

impl MatchMode {
    fn selector_behavior(self) -> types::selector_match::MatchBehavior {
        use types::selector_match::MatchBehavior as B;
        match self {
            MatchMode::Exact => B::MatchExact,
            MatchMode::Subset => B::MatchSubset,
            MatchMode::Superset => B::MatchSuperset,
            MatchMode::Any => B::MatchAny,
        }
    }

    fn federates_with_behavior(self) -> types::federates_with_match::MatchBehavior {
        use types::federates_with_match::MatchBehavior as B;
        match self {
            MatchMode::Exact => B::MatchExact,
            MatchMode::Subset => B::MatchSubset,
            MatchMode::Superset => B::MatchSuperset,
            MatchMode::Any => B::MatchAny,
        }
    }
}

/// The wire form of a selector.
pub(crate) fn wire_selector(s: &Selector) -> types::Selector {
    types::Selector {
        r#type: s.kind().to_string(),
        value: s.value().to_string(),
    }
}

/// A selector filter, or none when no selector was given.
pub(crate) fn selector_match(
    selectors: &[Selector],
    mode: MatchMode,
) -> Option<types::SelectorMatch> {
    (!selectors.is_empty()).then(|| types::SelectorMatch {
        selectors: selectors.iter().map(wire_selector).collect(),
        r#match: mode.selector_behavior() as i32,
    })
}

/// A federates-with filter, or none when no trust domain was given.
pub(crate) fn federates_with_match(
    trust_domains: &[TrustDomain],
    mode: MatchMode,
) -> Option<types::FederatesWithMatch> {
    (!trust_domains.is_empty()).then(|| types::FederatesWithMatch {
        trust_domains: trust_domains
            .iter()
            .map(|td| td.name().to_string())
            .collect(),
        r#match: mode.federates_with_behavior() as i32,
    })
}

/// Parses a trust domain flag: a bare name (`example.org`) or its ID form
/// (`spiffe://example.org`), as SPIRE's CLI accepts both.
pub(crate) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    TrustDomain::from_name_or_id(s).map_err(|e| format!("{s:?} is not a valid trust domain: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_selectors_means_no_filter() {
        assert_eq!(selector_match(&[], MatchMode::Exact), None);
        assert_eq!(federates_with_match(&[], MatchMode::Any), None);
    }

    #[test]
    fn modes_map_to_spire_enum_values() {
        let s = Selector::parse("unix:uid:1").unwrap();
        let numbers: Vec<i32> = [
            MatchMode::Exact,
            MatchMode::Subset,
            MatchMode::Superset,
            MatchMode::Any,
        ]
        .into_iter()
        .map(|m| selector_match(std::slice::from_ref(&s), m).unwrap().r#match)
        .collect();
        // SPIRE's numbering: MATCH_EXACT 0, MATCH_SUBSET 1, MATCH_SUPERSET 2, MATCH_ANY 3.
        assert_eq!(numbers, [0, 1, 2, 3]);
        let td = TrustDomain::new("other.org").unwrap();
        let f = federates_with_match(&[td], MatchMode::Subset).unwrap();
        assert_eq!(
            (f.trust_domains.as_slice(), f.r#match),
            (&["other.org".to_string()][..], 1)
        );
    }

    #[test]
    fn trust_domain_accepts_name_or_id_and_names_bad_values() {
        assert_eq!(
            parse_trust_domain("spiffe://a.org").unwrap().name(),
            "a.org"
        );
        assert_eq!(parse_trust_domain("a.org").unwrap().name(), "a.org");
        let err = parse_trust_domain("Bad%TD").unwrap_err();
        assert!(err.contains("\"Bad%TD\""), "{err}");
    }
}
