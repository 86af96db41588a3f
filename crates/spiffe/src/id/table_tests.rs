//! Table tests of SPIFFE IDs and trust domain names: every rule of SPIFFE-ID §2, on the accept and
//! the reject side, with the error message checked.
//!
//! The tables restate, in our own words, the cases of go-spiffe's `spiffeid` tests (ID, trust
//! domain, path, segments, matching) and the ID points of the standards digest's "tricky points"
//! list (URL-parser habits, lowercasing, reading the charset as a regex range). The same inputs
//! feed the cross-check against the `spiffe` crate in `crosscheck_tests.rs`.

use super::{IdError, SpiffeId, TrustDomain};
use crate::tls::Authorizer;

/// What a table expects of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Accepted, and written back unchanged.
    Accept,
    /// Rejected with a message containing this text.
    Reject(&'static str),
}

use Expect::{Accept, Reject};

const NOT_SPIFFE: &str = "does not start with 'spiffe://': the scheme must be exactly spiffe";
const UPPER_SCHEME: &str = "has an upper-case scheme: upper case is not allowed";
const NO_TD: &str = "has no trust domain: the trust domain must not be empty";
const UPPER_TD: &str = "upper case is not allowed, only a-z 0-9 . - _";
const TD_CHARSET: &str = "only a-z 0-9 . - _ are allowed";
const PATH_CHARSET: &str = "only a-z A-Z 0-9 . - _ are allowed in path segments";
const TRAILING: &str = "ends with '/': a trailing slash is not allowed";
const EMPTY_SEGMENT: &str = "has an empty segment: empty segments are not allowed";
const DOT: &str = "has the segment '.': '.' and '..' segments are not allowed";
const DOT_DOT: &str = "has the segment '..': '.' and '..' segments are not allowed";

/// SPIFFE ID strings with what SPIFFE-ID §2 says of them. Long inputs are in [`id_table`].
pub(crate) const ID_CASES: &[(&str, Expect)] = &[
    // §2: the shape spiffe://<trust domain><path>, path optional.
    ("spiffe://example.org", Accept),
    ("spiffe://example.org/workload-1", Accept),
    ("spiffe://example.org/ns/prod/sa/api", Accept),
    ("spiffe://a", Accept),
    ("spiffe://a/b", Accept),
    // §2.1 trust domain charset: a-z 0-9 . - _ (a literal set, not the regex range '.'..'_').
    ("spiffe://a_b-c.d/x", Accept),
    ("spiffe://0123456789/x", Accept),
    ("spiffe://abcdefghijklmnopqrstuvwxyz/x", Accept),
    ("spiffe://.../x", Accept),
    ("spiffe://-/x", Accept),
    ("spiffe://_/x", Accept),
    ("spiffe://xn--bcher-kva.example/x", Accept),
    // §2.1: names are not treated as IP addresses or DNS names; a dotted quad is just bytes.
    ("spiffe://1.2.3.4/x", Accept),
    ("spiffe://127.0.0.1", Accept),
    ("spiffe://999.999.999.999/x", Accept),
    ("spiffe://example.org./x", Accept),
    // §2.2 path charset: a-z A-Z 0-9 . - _ (upper case allowed in the path only).
    ("spiffe://td/ABCDEFGHIJKLMNOPQRSTUVWXYZ", Accept),
    (
        "spiffe://td/abcdefghijklmnopqrstuvwxyz/0123456789/-_.",
        Accept,
    ),
    ("spiffe://td/ns/Prod/sa/API_v2", Accept),
    // §2.2: only '.' and '..' exactly are dot segments.
    ("spiffe://td/.a", Accept),
    ("spiffe://td/..a", Accept),
    ("spiffe://td/...", Accept),
    ("spiffe://td/a.", Accept),
    ("spiffe://td/a..", Accept),
    ("spiffe://td/a/.b/..c/.../d", Accept),
    // Empty input and schemes.
    ("", Reject("spiffe id is empty")),
    ("s", Reject(NOT_SPIFFE)),
    ("spiffe", Reject(NOT_SPIFFE)),
    ("spiffe:", Reject(NOT_SPIFFE)),
    ("spiffe:/", Reject(NOT_SPIFFE)),
    ("spiffe:/td/a", Reject(NOT_SPIFFE)),
    ("spiffe:td/a", Reject(NOT_SPIFFE)),
    ("spiffe//td/a", Reject(NOT_SPIFFE)),
    ("spiffe:\\\\td/a", Reject(NOT_SPIFFE)),
    ("://td/a", Reject(NOT_SPIFFE)),
    ("//td/a", Reject(NOT_SPIFFE)),
    ("td/a", Reject(NOT_SPIFFE)),
    ("http://td/a", Reject(NOT_SPIFFE)),
    ("https://example.org/a", Reject(NOT_SPIFFE)),
    ("urn:spiffe:td:a", Reject(NOT_SPIFFE)),
    ("spiffes://td/a", Reject(NOT_SPIFFE)),
    (" spiffe://td/a", Reject(NOT_SPIFFE)),
    ("spiff\u{e9}://td/a", Reject(NOT_SPIFFE)),
    // Tricky point 4: upper-case scheme is rejected, never lowercased.
    ("SPIFFE://td/a", Reject(UPPER_SCHEME)),
    ("Spiffe://td/a", Reject(UPPER_SCHEME)),
    ("spiffE://td", Reject(UPPER_SCHEME)),
    ("SPIFFE://TD/A", Reject(UPPER_SCHEME)),
    // §2: the trust domain must not be empty.
    ("spiffe://", Reject(NO_TD)),
    ("spiffe:///", Reject(NO_TD)),
    ("spiffe:///a", Reject(NO_TD)),
    ("spiffe:////", Reject(NO_TD)),
    // Tricky point 4: upper-case trust domain is rejected, never lowercased.
    ("spiffe://Example.org/a", Reject(UPPER_TD)),
    ("spiffe://example.ORG", Reject(UPPER_TD)),
    (
        "spiffe://eXample.org/a",
        Reject("contains 'X': upper case is not allowed"),
    ),
    // §2.1: no port, no userinfo, no IPv6 literal, no percent-encoding, no query or fragment.
    (
        "spiffe://td:8080/a",
        Reject("contains ':': only a-z 0-9 . - _ are allowed (ports"),
    ),
    ("spiffe://td:/a", Reject("(ports are not allowed)")),
    ("spiffe://td:8080", Reject("(ports are not allowed)")),
    (
        "spiffe://user@td/a",
        Reject("contains '@': only a-z 0-9 . - _ are allowed (userinfo"),
    ),
    ("spiffe://user:pw@td/a", Reject("(ports are not allowed)")),
    ("spiffe://@td/a", Reject("(userinfo is not allowed)")),
    ("spiffe://[::1]/a", Reject("contains '['")),
    (
        "spiffe://t%64/a",
        Reject("contains '%': only a-z 0-9 . - _ are allowed (percent"),
    ),
    (
        "spiffe://%74d/a",
        Reject("(percent-encoding is not allowed)"),
    ),
    (
        "spiffe://td?x=1",
        Reject("contains '?': only a-z 0-9 . - _ are allowed (a query"),
    ),
    (
        "spiffe://td#frag",
        Reject("contains '#': only a-z 0-9 . - _ are allowed (a fragment"),
    ),
    ("spiffe://t d/a", Reject("contains ' '")),
    ("spiffe://td\\a", Reject("contains '\\\\'")),
    ("spiffe://t\u{e9}d/a", Reject("contains '\u{e9}'")),
    ("spiffe://t~d/a", Reject(TD_CHARSET)),
    ("spiffe://t+d/a", Reject(TD_CHARSET)),
    ("spiffe://t!d/a", Reject(TD_CHARSET)),
    // Tricky point 5: '/', ',', '^', '[' lie between '.' and '_' in ASCII but are not allowed.
    ("spiffe://a,b/x", Reject("contains ','")),
    ("spiffe://a^b/x", Reject("contains '^'")),
    ("spiffe://a=b/x", Reject("contains '='")),
    ("spiffe://a;b/x", Reject("contains ';'")),
    // §2.2: no percent-encoding, query or fragment in the path either.
    (
        "spiffe://td/a%2Fb",
        Reject("contains '%': only a-z A-Z 0-9 . - _ are allowed in path"),
    ),
    (
        "spiffe://td/%2e%2e",
        Reject("(percent-encoding is not allowed)"),
    ),
    (
        "spiffe://td/%41",
        Reject("(percent-encoding is not allowed)"),
    ),
    (
        "spiffe://td/a?x=1",
        Reject("contains '?': only a-z A-Z 0-9 . - _ are allowed in path"),
    ),
    ("spiffe://td/a?", Reject("(a query is not allowed)")),
    (
        "spiffe://td/a#f",
        Reject("contains '#': only a-z A-Z 0-9 . - _ are allowed in path"),
    ),
    ("spiffe://td/a#", Reject("(a fragment is not allowed)")),
    ("spiffe://td/a:b", Reject("(ports are not allowed)")),
    ("spiffe://td/a@b", Reject("(userinfo is not allowed)")),
    ("spiffe://td/a b", Reject("contains ' '")),
    ("spiffe://td/a~b", Reject("contains '~'")),
    ("spiffe://td/a+b", Reject(PATH_CHARSET)),
    ("spiffe://td/a!b", Reject(PATH_CHARSET)),
    ("spiffe://td/a$b", Reject(PATH_CHARSET)),
    ("spiffe://td/a&b", Reject(PATH_CHARSET)),
    ("spiffe://td/a'b", Reject(PATH_CHARSET)),
    ("spiffe://td/a(b)", Reject(PATH_CHARSET)),
    ("spiffe://td/a*b", Reject(PATH_CHARSET)),
    ("spiffe://td/a,b", Reject(PATH_CHARSET)),
    ("spiffe://td/a;b", Reject(PATH_CHARSET)),
    ("spiffe://td/a=b", Reject(PATH_CHARSET)),
    ("spiffe://td/a[b]", Reject(PATH_CHARSET)),
    ("spiffe://td/a\\b", Reject("contains '\\\\'")),
    ("spiffe://td/a\0b", Reject("contains '\\0'")),
    ("spiffe://td/a\nb", Reject("contains '\\n'")),
    ("spiffe://td/a\tb", Reject("contains '\\t'")),
    ("spiffe://td/caf\u{e9}", Reject("contains '\u{e9}'")),
    ("spiffe://td/\u{1f600}", Reject(PATH_CHARSET)),
    // §2.2: no trailing slash, no empty segment, no dot segment.
    ("spiffe://td/", Reject(TRAILING)),
    ("spiffe://td/a/", Reject(TRAILING)),
    ("spiffe://td/a/b/", Reject(TRAILING)),
    ("spiffe://td//", Reject(EMPTY_SEGMENT)),
    ("spiffe://td//a", Reject(EMPTY_SEGMENT)),
    ("spiffe://td/a//b", Reject(EMPTY_SEGMENT)),
    ("spiffe://td/a///", Reject(EMPTY_SEGMENT)),
    ("spiffe://td/.", Reject(DOT)),
    ("spiffe://td/./a", Reject(DOT)),
    ("spiffe://td/a/./b", Reject(DOT)),
    ("spiffe://td/a/.", Reject(DOT)),
    ("spiffe://td/..", Reject(DOT_DOT)),
    ("spiffe://td/../a", Reject(DOT_DOT)),
    ("spiffe://td/a/../b", Reject(DOT_DOT)),
    ("spiffe://td/a/..", Reject(DOT_DOT)),
];

/// [`ID_CASES`] plus the length limits (§2.1: 255-byte trust domains; §2.3: 2048-byte IDs).
pub(crate) fn id_table() -> Vec<(String, Expect)> {
    let mut table: Vec<(String, Expect)> = ID_CASES
        .iter()
        .map(|(s, e)| ((*s).to_owned(), *e))
        .collect();
    let id_of_len = |n: usize| format!("spiffe://td/{}", "a".repeat(n - "spiffe://td/".len()));
    table.extend([
        (format!("spiffe://{}", "a".repeat(255)), Accept),
        (format!("spiffe://{}/x", "a".repeat(255)), Accept),
        (
            format!("spiffe://{}/x", "a".repeat(256)),
            Reject("is 256 bytes long: at most 255 bytes are allowed"),
        ),
        (id_of_len(2047), Accept),
        (id_of_len(2048), Accept),
        (
            id_of_len(2049),
            Reject("is 2049 bytes long: at most 2048 bytes are allowed"),
        ),
        (
            format!("spiffe://td{}", "/a".repeat(1018)),
            Accept, // 2047 bytes of many short segments
        ),
        (
            format!("spiffe://td/{}/", "a".repeat(2000)),
            Reject(TRAILING),
        ),
    ]);
    table
}

/// Bare trust domain names for [`TrustDomain::new`].
const TRUST_DOMAIN_CASES: &[(&str, Expect)] = &[
    ("example.org", Accept),
    ("a", Accept),
    ("1.2.3.4", Accept),
    ("my_td-1.local", Accept),
    ("...", Accept),
    ("-", Accept),
    ("", Reject("trust domain name is empty")),
    (
        "Example.org",
        Reject("contains 'E': upper case is not allowed"),
    ),
    ("EXAMPLE", Reject(UPPER_TD)),
    ("td:8080", Reject("(ports are not allowed)")),
    ("user@td", Reject("(userinfo is not allowed)")),
    ("[::1]", Reject("contains '['")),
    ("td%41", Reject("(percent-encoding is not allowed)")),
    ("t d", Reject("contains ' '")),
    ("td/", Reject("contains '/'")),
    ("td/a", Reject("contains '/'")),
    ("spiffe://example.org", Reject("contains ':'")),
    ("t\u{e9}d", Reject("contains '\u{e9}'")),
];

/// Inputs for [`TrustDomain::from_name_or_id`]: a bare name or any valid ID, as go-spiffe's
/// `TrustDomainFromString` reads Workload API map keys. `Ok` holds the expected name.
const NAME_OR_ID_CASES: &[(&str, Result<&str, &str>)] = &[
    ("example.org", Ok("example.org")),
    ("spiffe://example.org", Ok("example.org")),
    ("spiffe://example.org/a/b", Ok("example.org")),
    ("spiffe://1.2.3.4/x", Ok("1.2.3.4")),
    ("", Err("trust domain name is empty")),
    ("Example.org", Err(UPPER_TD)),
    ("spiffe://example.org/", Err(TRAILING)),
    ("spiffe://example.org//a", Err(EMPTY_SEGMENT)),
    ("spiffe://Example.org", Err(UPPER_TD)),
    ("SPIFFE://example.org", Err(UPPER_SCHEME)),
    ("spiffe:/example.org", Err(NOT_SPIFFE)),
    ("spiffe://", Err(NO_TD)),
    ("http://example.org", Err(NOT_SPIFFE)),
    ("example.org:443", Err("(ports are not allowed)")),
];

/// Paths for [`SpiffeId::from_path`].
const PATH_CASES: &[(&str, Expect)] = &[
    ("", Accept),
    ("/a", Accept),
    ("/a/b/c", Accept),
    ("/.a/..b/...", Accept),
    ("/A_b-c.9", Accept),
    (
        "a",
        Reject("does not start with '/': a path is empty or starts with '/'"),
    ),
    ("a/b", Reject("does not start with '/'")),
    ("/", Reject(TRAILING)),
    ("/a/", Reject(TRAILING)),
    ("//", Reject(EMPTY_SEGMENT)),
    ("//a", Reject(EMPTY_SEGMENT)),
    ("/./a", Reject(DOT)),
    ("/a/..", Reject(DOT_DOT)),
    ("/a b", Reject("contains ' '")),
    ("/a%20", Reject("(percent-encoding is not allowed)")),
    ("/a?b", Reject("(a query is not allowed)")),
    ("/a#b", Reject("(a fragment is not allowed)")),
];

/// Segment lists for [`SpiffeId::from_segments`]; `Ok` holds the expected ID.
const SEGMENT_CASES: &[(&[&str], Result<&str, &str>)] = &[
    (&[], Ok("spiffe://example.org")),
    (&["a"], Ok("spiffe://example.org/a")),
    (
        &["ns", "prod", "sa", "api"],
        Ok("spiffe://example.org/ns/prod/sa/api"),
    ),
    (&[".a", "..b", "..."], Ok("spiffe://example.org/.a/..b/...")),
    (&["UPPER"], Ok("spiffe://example.org/UPPER")),
    (&[""], Err("path '' has an empty segment")),
    (&["a", ""], Err(EMPTY_SEGMENT)),
    (&["."], Err(DOT)),
    (&[".."], Err(DOT_DOT)),
    (&["a/b"], Err("path 'a/b' contains '/'")),
    (&["/a"], Err("contains '/'")),
    (&["a b"], Err("contains ' '")),
    (&["a%2F"], Err("(percent-encoding is not allowed)")),
    (&["\u{e9}"], Err("contains '\u{e9}'")),
];

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// Checks one result against an expectation; returns a description of the mismatch, if any.
fn mismatch<T>(input: &str, got: Result<T, IdError>, want: Expect) -> Option<String> {
    match (got, want) {
        (Ok(_), Accept) => None,
        (Err(e), Reject(fragment)) if e.to_string().contains(fragment) => None,
        (Err(e), Reject(fragment)) => Some(format!(
            "{input:?}: message {:?} lacks {fragment:?}",
            e.to_string()
        )),
        (Err(e), Accept) => Some(format!("{input:?}: rejected ({e}), expected accepted")),
        (Ok(_), Reject(fragment)) => Some(format!(
            "{input:?}: accepted, expected rejected with {fragment:?}"
        )),
    }
}

#[test]
fn id_table_accepts_and_rejects_with_the_expected_messages() {
    let failures: Vec<String> = id_table()
        .into_iter()
        .filter_map(|(s, want)| mismatch(&s, SpiffeId::parse(&s), want))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_accepted_id_is_written_back_unchanged_and_splits_into_its_parts() {
    for (s, want) in id_table() {
        if want != Accept {
            continue;
        }
        let parsed = id(&s);
        assert_eq!(parsed.to_string(), s);
        assert_eq!(parsed.as_str(), s);
        assert_eq!(s.parse::<SpiffeId>().unwrap(), parsed);

        let rest = s.strip_prefix("spiffe://").unwrap();
        let td_len = rest.find('/').unwrap_or(rest.len());
        assert_eq!(parsed.trust_domain_name(), &rest[..td_len]);
        assert_eq!(parsed.path(), &rest[td_len..]);
        assert_eq!(parsed.is_root(), td_len == rest.len());
        assert!(parsed.is_member_of(&parsed.trust_domain()));
        assert_eq!(
            SpiffeId::from_path(&parsed.trust_domain(), parsed.path()).unwrap(),
            parsed
        );
        let segments: Vec<&str> = parsed.segments().collect();
        assert_eq!(
            SpiffeId::from_segments(&parsed.trust_domain(), &segments).unwrap(),
            parsed
        );
        assert_eq!(
            TrustDomain::from_name_or_id(&s).unwrap(),
            parsed.trust_domain()
        );
    }
}

#[test]
fn every_rejected_id_is_rejected_by_from_str_serde_and_from_name_or_id_too() {
    for (s, want) in id_table() {
        if want == Accept {
            continue;
        }
        assert!(s.parse::<SpiffeId>().is_err(), "{s:?}");
        let json = serde_json::to_string(&s).unwrap();
        assert!(serde_json::from_str::<SpiffeId>(&json).is_err(), "{s:?}");
        if s.contains(":/") {
            assert!(TrustDomain::from_name_or_id(&s).is_err(), "{s:?}");
        }
    }
}

#[test]
fn every_ascii_byte_in_the_trust_domain_is_judged_by_the_literal_charset() {
    for b in 0u8..=127 {
        if b == b'/' {
            continue; // ends the trust domain
        }
        let c = char::from(b);
        let s = format!("spiffe://a{c}b/x");
        let allowed = b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        let want = match () {
            _ if allowed => Accept,
            _ if b.is_ascii_uppercase() => Reject(UPPER_TD),
            _ => Reject(TD_CHARSET),
        };
        assert_eq!(mismatch(&s, SpiffeId::parse(&s), want), None);
        let name = format!("a{c}b");
        assert_eq!(mismatch(&name, TrustDomain::new(&name), want), None);
    }
}

#[test]
fn every_ascii_byte_in_a_path_segment_is_judged_by_the_literal_charset() {
    for b in 0u8..=127 {
        if b == b'/' {
            continue; // separates segments
        }
        let c = char::from(b);
        let s = format!("spiffe://td/a{c}b");
        let allowed = b.is_ascii_alphanumeric() || b"._-".contains(&b);
        let want = if allowed {
            Accept
        } else {
            Reject(PATH_CHARSET)
        };
        assert_eq!(mismatch(&s, SpiffeId::parse(&s), want), None);
        let segment = format!("a{c}b");
        assert_eq!(
            mismatch(
                &segment,
                SpiffeId::from_segments(&td("td"), &[&segment]),
                want
            ),
            None
        );
    }
}

#[test]
fn every_non_ascii_character_is_rejected_in_both_parts() {
    for c in [
        '\u{80}',
        '\u{a0}',
        '\u{e9}',
        '\u{130}',
        '\u{212a}',
        '\u{ff0f}',
        '\u{1f600}',
    ] {
        let in_td = format!("spiffe://a{c}b/x");
        assert_eq!(
            mismatch(&in_td, SpiffeId::parse(&in_td), Reject(TD_CHARSET)),
            None
        );
        let in_path = format!("spiffe://td/a{c}b");
        assert_eq!(
            mismatch(&in_path, SpiffeId::parse(&in_path), Reject(PATH_CHARSET)),
            None
        );
    }
}

#[test]
fn trust_domain_table() {
    let mut cases: Vec<(String, Expect)> = TRUST_DOMAIN_CASES
        .iter()
        .map(|(s, e)| ((*s).to_owned(), *e))
        .collect();
    cases.push(("a".repeat(255), Accept));
    cases.push((
        "a".repeat(256),
        Reject("is 256 bytes long: at most 255 bytes are allowed"),
    ));
    for (name, want) in cases {
        assert_eq!(mismatch(&name, TrustDomain::new(&name), want), None);
        if want == Accept {
            let parsed = td(&name);
            assert_eq!(parsed.to_string(), name);
            assert_eq!(parsed.name(), name);
            assert_eq!(parsed.id().as_str(), format!("spiffe://{name}"));
            assert_eq!(parsed.id_string(), format!("spiffe://{name}"));
            assert_eq!(name.parse::<TrustDomain>().unwrap(), parsed);
        }
    }
}

#[test]
fn trust_domain_from_name_or_id_table() {
    for (input, want) in NAME_OR_ID_CASES {
        match (TrustDomain::from_name_or_id(input), want) {
            (Ok(got), Ok(name)) => assert_eq!(got.name(), *name, "{input:?}"),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{input:?}: {e}")
            }
            (got, want) => panic!("{input:?}: got {got:?}, expected {want:?}"),
        }
    }
}

#[test]
fn from_path_table() {
    let example = td("example.org");
    for (path, want) in PATH_CASES {
        let got = SpiffeId::from_path(&example, path);
        assert_eq!(mismatch(path, got.clone(), *want), None);
        if let Ok(built) = got {
            assert_eq!(built.as_str(), format!("spiffe://example.org{path}"));
            assert_eq!(built.path(), *path);
        }
    }
}

#[test]
fn from_segments_table() {
    let example = td("example.org");
    for (segments, want) in SEGMENT_CASES {
        match (SpiffeId::from_segments(&example, segments), want) {
            (Ok(got), Ok(expected)) => {
                assert_eq!(got.as_str(), *expected);
                assert_eq!(got.segments().collect::<Vec<_>>(), *segments);
            }
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{segments:?}: {e}")
            }
            (got, want) => panic!("{segments:?}: got {got:?}, expected {want:?}"),
        }
    }
}

#[test]
fn constructors_refuse_ids_over_2048_bytes() {
    let t = td("td");
    // "spiffe://td" is 11 bytes, so a 2037-byte path makes exactly 2048.
    let fits = "a".repeat(2036);
    assert_eq!(
        SpiffeId::from_segments(&t, &[&fits])
            .unwrap()
            .as_str()
            .len(),
        2048
    );
    assert_eq!(
        SpiffeId::from_path(&t, &format!("/{fits}"))
            .unwrap()
            .as_str()
            .len(),
        2048
    );
    let over = "a".repeat(2037);
    for err in [
        SpiffeId::from_segments(&t, &[&over]).unwrap_err(),
        SpiffeId::from_path(&t, &format!("/{over}")).unwrap_err(),
    ] {
        assert!(matches!(err, IdError::TooLong { len: 2049, .. }), "{err}");
        assert!(err.to_string().contains("at most 2048 bytes are allowed"));
    }
}

#[test]
fn ids_compare_byte_for_byte_and_path_case_matters() {
    assert_ne!(id("spiffe://td/a"), id("spiffe://td/A"));
    assert_ne!(id("spiffe://td/a"), id("spiffe://td/a/b"));
    assert_ne!(id("spiffe://td"), id("spiffe://td/a"));
    assert_eq!(
        id("spiffe://td/a").trust_domain(),
        id("spiffe://td").trust_domain()
    );
}

#[test]
fn membership_is_exact_trust_domain_equality() {
    let cases = [
        ("spiffe://example.org/a", "example.org", true),
        ("spiffe://example.org", "example.org", true),
        ("spiffe://example.org/a", "example.or", false),
        ("spiffe://example.org/a", "sub.example.org", false),
        ("spiffe://sub.example.org/a", "example.org", false),
        ("spiffe://example.org/a", "example.org.", false),
    ];
    for (s, name, member) in cases {
        assert_eq!(id(s).is_member_of(&td(name)), member, "{s} in {name}");
    }
}

/// A caller's own rule: IDs of `a.org` under `/billing`.
fn billing() -> Authorizer {
    Authorizer::Predicate(crate::tls::Predicate::new(
        "an ID of a.org under /billing",
        |id: &SpiffeId| {
            id.trust_domain().name() == "a.org"
                && (id.path() == "/billing" || id.path().starts_with("/billing/"))
        },
    ))
}

#[test]
fn predicate_refusals_say_what_the_rule_expects() {
    let err = billing().authorize(&id("spiffe://a.org/web")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "peer SPIFFE ID 'spiffe://a.org/web' is not authorized: expected an ID of a.org under /billing"
    );
}

#[test]
fn matching_table() {
    let a = id("spiffe://a.org/a");
    let cases: Vec<(Authorizer, &str, bool)> = vec![
        (Authorizer::Any, "spiffe://a.org/a", true),
        (Authorizer::Any, "spiffe://b.org/b", true),
        (Authorizer::Exact(a.clone()), "spiffe://a.org/a", true),
        (Authorizer::Exact(a.clone()), "spiffe://a.org/A", false),
        (Authorizer::Exact(a.clone()), "spiffe://a.org/a/b", false),
        (Authorizer::Exact(a.clone()), "spiffe://b.org/a", false),
        (Authorizer::MemberOf(td("a.org")), "spiffe://a.org/x", true),
        (Authorizer::MemberOf(td("a.org")), "spiffe://a.org", true),
        (Authorizer::MemberOf(td("a.org")), "spiffe://b.org/x", false),
        (
            Authorizer::MemberOf(td("a.org")),
            "spiffe://x.a.org/x",
            false,
        ),
        (
            Authorizer::OneOf(vec![a.clone(), id("spiffe://b.org/b")]),
            "spiffe://b.org/b",
            true,
        ),
        (
            Authorizer::OneOf(vec![a.clone()]),
            "spiffe://b.org/b",
            false,
        ),
        (Authorizer::OneOf(vec![]), "spiffe://a.org/a", false),
        (billing(), "spiffe://a.org/billing/api", true),
        (billing(), "spiffe://a.org/billingx", false),
        (billing(), "spiffe://b.org/billing/api", false),
    ];
    for (policy, s, allowed) in cases {
        let result = policy.authorize(&id(s));
        assert_eq!(result.is_ok(), allowed, "{policy:?} / {s}");
        if let Err(e) = result {
            let message = e.to_string();
            assert!(
                message.contains(s) && message.contains("is not authorized"),
                "{message}"
            );
        }
    }
}
