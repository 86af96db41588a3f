//! Table tests of X509-SVID parsing and chain verification: every rule of X509-SVID §4-5 on the
//! accept and the reject side, with the error message checked.
//!
//! Each case is named after its defect, like a fixture file, and goes through both entry points
//! a workload sees: [`X509Svid::parse_der`] on the Workload API form (own SVID: concatenated DER
//! chain and PKCS#8 key) and [`parse_der_chain`] + [`verify_chain`] (a peer's chain, at an
//! injected time, against the bundle of the leaf's trust domain). The cases restate, in our own
//! words and with certificates generated here, go-spiffe's `x509svid` test files (the `good-*`,
//! `wrong-*` and `corrupt-*` fixtures of its parse tests and the cases of its verify tests), and
//! the X.509 points of the standards digest's "tricky points" list.

use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rcgen::{CustomExtension, ExtendedKeyUsagePurpose, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

use super::test_certs::{KeyKind, LeafSpec, TestCa, TestLeaf, now_secs};
use super::{
    X509Bundle, X509BundleSet, X509Error, X509Svid, certs_to_pem, concat_der, parse_der_chain,
    pkcs8_to_pem, verify_chain,
};
use crate::id::TrustDomain;
use crate::id::table_tests::Expect::{self, Accept, Reject};

const ID: &str = "spiffe://example.org/workload-1";

/// One case: the bytes a workload would receive and what each entry point must say.
pub(crate) struct Case {
    /// The defect (or `good-...`), in the style of a fixture file name.
    pub name: &'static str,
    /// Builds the input; certificates are generated afresh.
    pub build: fn() -> Input,
    /// Expected result of [`X509Svid::parse_der`] on `chain_der` and `key`.
    pub parse: Expect,
    /// Expected result of [`parse_der_chain`] then [`verify_chain`] on `chain_der`.
    pub verify: Expect,
}

/// What a workload receives: concatenated DER certificates, a PKCS#8 key, the bundles it holds,
/// and the time of validation.
pub(crate) struct Input {
    pub chain_der: Vec<u8>,
    pub key: Vec<u8>,
    pub bundles: X509BundleSet,
    pub now: SystemTime,
}

/// An SVID of `leaf` followed by `rest`, with `ca`'s bundle, validated now.
fn svid(ca: &TestCa, leaf: &TestLeaf, rest: &[&CertificateDer<'static>]) -> Input {
    let mut chain = vec![leaf.cert.clone()];
    chain.extend(rest.iter().map(|c| (*c).clone()));
    Input {
        chain_der: concat_der(&chain),
        key: leaf.key.secret_pkcs8_der().to_vec(),
        bundles: [ca.bundle()].into_iter().collect(),
        now: now_secs(),
    }
}

/// A leaf of `ID` built from the valid spec after `change`, signed by a P-256 root.
fn broken_leaf(change: fn(&mut LeafSpec)) -> Input {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let mut spec = LeafSpec::valid(ID);
    change(&mut spec);
    svid(&ca, &ca.issue(&spec, KeyKind::P256), &[])
}

/// A leaf whose only URI SAN is `uri`.
fn leaf_with_uri(uri: &'static str) -> Input {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let spec = LeafSpec {
        uris: vec![uri.to_owned()],
        ..LeafSpec::valid(ID)
    };
    svid(&ca, &ca.issue(&spec, KeyKind::P256), &[])
}

/// A good P-256 SVID whose key bytes are replaced by `key(leaf)`.
fn with_key(key: fn(&TestLeaf) -> Vec<u8>) -> Input {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let leaf = ca.leaf(ID, KeyKind::P256);
    let mut input = svid(&ca, &leaf, &[]);
    input.key = key(&leaf);
    input
}

/// A good leaf + intermediate chain, then `change` applied to the input.
fn good_with(change: fn(&mut Input, &TestLeaf)) -> Input {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let leaf = ca.leaf(ID, KeyKind::P256);
    let mut input = svid(&ca, &leaf, &[&ca.cert]);
    change(&mut input, &leaf);
    input
}

fn good_key_kinds(ca_kind: KeyKind, leaf_kind: KeyKind) -> Input {
    let ca = TestCa::new("example.org", ca_kind);
    svid(&ca, &ca.leaf(ID, leaf_kind), &[])
}

const NOT_A_CA_LEAF: &str =
    "leaf certificate is a CA (basicConstraints cA=true): an X509-SVID leaf must not be a CA";
const NO_DIGITAL_SIGNATURE: &str =
    "leaf certificate lacks key usage digitalSignature: an X509-SVID leaf must have it";

/// Every case. `good-*` cases are accepted by both entry points.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        // X509-SVID §3 key types: RSA, P-256, P-384, Ed25519 leaves under roots of each kind.
        Case {
            name: "good-leaf-only-rsa-key",
            build: || good_key_kinds(KeyKind::P256, KeyKind::Rsa2048),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-p256-root-p384",
            build: || good_key_kinds(KeyKind::P384, KeyKind::P256),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-p384-root-rsa",
            build: || good_key_kinds(KeyKind::Rsa2048, KeyKind::P384),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-ed25519-root-ed25519",
            build: || good_key_kinds(KeyKind::Ed25519, KeyKind::Ed25519),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-rsa-root-rsa",
            build: || good_key_kinds(KeyKind::Rsa2048, KeyKind::Rsa2048),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-and-intermediate-ecdsa",
            build: || {
                let root = TestCa::new("example.org", KeyKind::P384);
                let mid = root.intermediate(KeyKind::P256, true, true);
                svid(&root, &mid.leaf(ID, KeyKind::P256), &[&mid.cert])
            },
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-two-intermediates-and-root",
            build: || {
                let root = TestCa::new("example.org", KeyKind::P256);
                let mid1 = root.intermediate(KeyKind::Ed25519, true, true);
                let mid2 = mid1.intermediate(KeyKind::P384, true, true);
                let leaf = mid2.leaf(ID, KeyKind::Rsa2048);
                svid(&root, &leaf, &[&mid2.cert, &mid1.cert, &root.cert])
            },
            parse: Accept,
            verify: Accept,
        },
        // §2: other SAN types may appear any number of times next to the one URI SAN.
        Case {
            name: "good-leaf-with-dns-sans",
            build: || broken_leaf(|s| s.dns = vec!["a.example.org".into(), "b.example.org".into()]),
            parse: Accept,
            verify: Accept,
        },
        // §4.4: EKU is only a SHOULD; without it the leaf is fine.
        Case {
            name: "good-leaf-without-eku",
            build: || broken_leaf(|s| s.ekus.clear()),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-client-auth-eku-only",
            build: || broken_leaf(|s| s.ekus = vec![ExtendedKeyUsagePurpose::ClientAuth]),
            parse: Accept,
            verify: Accept,
        },
        Case {
            name: "good-leaf-digital-signature-only",
            build: || broken_leaf(|s| s.key_usages = vec![KeyUsagePurpose::DigitalSignature]),
            parse: Accept,
            verify: Accept,
        },
        // Tricky point 11: CA URI SANs are not run through the strict ID parser.
        Case {
            name: "good-ca-uri-san-with-trailing-slash",
            build: || {
                let ca = TestCa::with_uri("example.org", KeyKind::P256, "spiffe://example.org/");
                svid(&ca, &ca.leaf(ID, KeyKind::P256), &[&ca.cert])
            },
            parse: Accept,
            verify: Accept,
        },
        // X509-SVID §4.3 wants keyUsage critical; like go-spiffe, criticality is not enforced so
        // that SVIDs of issuers that leave it non-critical still interoperate.
        Case {
            name: "good-leaf-key-usage-not-critical",
            build: || {
                broken_leaf(|s| {
                    s.key_usages.clear();
                    // keyUsage (2.5.29.15) = BIT STRING, digitalSignature only, not critical.
                    let ku = vec![0x03, 0x02, 0x07, 0x80];
                    s.custom = vec![CustomExtension::from_oid_content(&[2, 5, 29, 15], ku)];
                })
            },
            parse: Accept,
            verify: Accept,
        },
        // Tricky point 9: X509-SVID §4.2 lets CAs use URI name constraints, but rustls-webpki
        // refuses every chain whose CA carries them. A known limitation, pinned here.
        Case {
            name: "ca-with-uri-name-constraints",
            build: || {
                let ca = TestCa::with_uri_name_constraint("example.org", KeyKind::P256);
                svid(&ca, &ca.leaf(ID, KeyKind::P256), &[])
            },
            parse: Accept,
            verify: Reject("bundle of 'example.org' failed: NameConstraintViolation"),
        },
        // An EKU that allows neither client nor server authentication cannot authenticate.
        Case {
            name: "leaf-code-signing-eku",
            build: || broken_leaf(|s| s.ekus = vec![ExtendedKeyUsagePurpose::CodeSigning]),
            parse: Accept,
            verify: Reject("RequiredEkuNotFound"),
        },
        // §5.1 / tricky point 10: the leaf rules beyond RFC 5280.
        Case {
            name: "wrong-leaf-ca-true",
            build: || broken_leaf(|s| s.is_ca = true),
            parse: Reject(NOT_A_CA_LEAF),
            verify: Reject(NOT_A_CA_LEAF),
        },
        Case {
            name: "wrong-leaf-cert-sign",
            build: || broken_leaf(|s| s.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            parse: Reject("leaf certificate has key usage keyCertSign: an X509-SVID leaf must not"),
            verify: Reject("leaf certificate has key usage keyCertSign"),
        },
        Case {
            name: "wrong-leaf-crl-sign",
            build: || broken_leaf(|s| s.key_usages.push(KeyUsagePurpose::CrlSign)),
            parse: Reject("leaf certificate has key usage cRLSign: an X509-SVID leaf must not"),
            verify: Reject("leaf certificate has key usage cRLSign"),
        },
        Case {
            name: "wrong-leaf-no-digital-signature",
            build: || broken_leaf(|s| s.key_usages = vec![KeyUsagePurpose::KeyEncipherment]),
            parse: Reject(NO_DIGITAL_SIGNATURE),
            verify: Reject(NO_DIGITAL_SIGNATURE),
        },
        Case {
            name: "wrong-leaf-no-key-usage",
            build: || broken_leaf(|s| s.key_usages.clear()),
            parse: Reject(NO_DIGITAL_SIGNATURE),
            verify: Reject(NO_DIGITAL_SIGNATURE),
        },
        Case {
            name: "wrong-leaf-empty-id",
            build: || {
                broken_leaf(|s| {
                    s.uris.clear();
                    s.dns = vec!["workload.example.org".into()];
                })
            },
            parse: Reject("certificate has no URI SAN: an X509-SVID must have exactly one"),
            verify: Reject("certificate has no URI SAN"),
        },
        Case {
            name: "wrong-leaf-two-uri-sans",
            build: || broken_leaf(|s| s.uris.push("spiffe://example.org/other".into())),
            parse: Reject("certificate has 2 URI SANs: an X509-SVID must have exactly one"),
            verify: Reject("certificate has 2 URI SANs"),
        },
        Case {
            name: "wrong-leaf-spiffe-and-https-uri-sans",
            build: || broken_leaf(|s| s.uris.push("https://example.org/".into())),
            parse: Reject("certificate has 2 URI SANs"),
            verify: Reject("certificate has 2 URI SANs"),
        },
        Case {
            name: "wrong-leaf-root-id",
            build: || leaf_with_uri("spiffe://example.org"),
            parse: Reject("leaf SPIFFE ID 'spiffe://example.org' has no path: an X509-SVID leaf"),
            verify: Reject("must have a non-root path"),
        },
        // The URI SAN goes through the strict ID parser: no normalising on the way.
        Case {
            name: "wrong-leaf-id-upper-case-trust-domain",
            build: || leaf_with_uri("spiffe://Example.org/a"),
            parse: Reject("is not a valid SPIFFE ID: trust domain 'Example.org' contains 'E'"),
            verify: Reject("upper case is not allowed"),
        },
        Case {
            name: "wrong-leaf-id-upper-case-scheme",
            build: || leaf_with_uri("SPIFFE://example.org/a"),
            parse: Reject("is not a valid SPIFFE ID: 'SPIFFE://example.org/a' has an upper-case"),
            verify: Reject("has an upper-case scheme"),
        },
        Case {
            name: "wrong-leaf-id-trailing-slash",
            build: || leaf_with_uri("spiffe://example.org/a/"),
            parse: Reject("is not a valid SPIFFE ID: path '/a/' ends with '/'"),
            verify: Reject("a trailing slash is not allowed"),
        },
        Case {
            name: "wrong-leaf-id-percent-encoded",
            build: || leaf_with_uri("spiffe://example.org/a%2Fb"),
            parse: Reject("(percent-encoding is not allowed)"),
            verify: Reject("(percent-encoding is not allowed)"),
        },
        Case {
            name: "wrong-leaf-id-dot-segment",
            build: || leaf_with_uri("spiffe://example.org/a/../b"),
            parse: Reject("'.' and '..' segments are not allowed"),
            verify: Reject("'.' and '..' segments are not allowed"),
        },
        Case {
            name: "wrong-leaf-id-with-port",
            build: || leaf_with_uri("spiffe://example.org:443/a"),
            parse: Reject("(ports are not allowed)"),
            verify: Reject("(ports are not allowed)"),
        },
        Case {
            name: "wrong-leaf-https-uri",
            build: || leaf_with_uri("https://example.org/a"),
            parse: Reject("is not a valid SPIFFE ID: 'https://example.org/a' does not start with"),
            verify: Reject("does not start with 'spiffe://'"),
        },
        // §4.1/§4.3: every certificate after the leaf signs, so must be a CA with keyCertSign.
        Case {
            name: "wrong-intermediate-no-ca",
            build: || {
                let root = TestCa::new("example.org", KeyKind::P256);
                let mid = root.intermediate(KeyKind::P256, false, true);
                svid(&root, &mid.leaf(ID, KeyKind::P256), &[&mid.cert])
            },
            parse: Reject("certificate 1 of the chain is not a CA (cA=true required)"),
            verify: Reject("bundle of 'example.org' failed: EndEntityUsedAsCa"),
        },
        // rustls-webpki ignores key usage; RFC 5280 §6.1.4 (n) and §4.3 require keyCertSign.
        Case {
            name: "wrong-intermediate-no-key-cert-sign",
            build: || {
                let root = TestCa::new("example.org", KeyKind::P256);
                let mid = root.intermediate(KeyKind::P256, true, false);
                svid(&root, &mid.leaf(ID, KeyKind::P256), &[&mid.cert])
            },
            parse: Reject("certificate 1 of the chain lacks key usage keyCertSign"),
            verify: Reject("certificate 1 of the chain lacks key usage keyCertSign"),
        },
        Case {
            name: "wrong-order-intermediate-before-leaf",
            build: || {
                let root = TestCa::new("example.org", KeyKind::P256);
                let mid = root.intermediate(KeyKind::P256, true, true);
                let leaf = mid.leaf(ID, KeyKind::P256);
                let mut input = svid(&root, &leaf, &[]);
                input.chain_der = concat_der(&[mid.cert.clone(), leaf.cert.clone()]);
                input
            },
            parse: Reject("leaf SPIFFE ID 'spiffe://example.org' has no path"),
            verify: Reject("has no path"),
        },
        // Tricky point 7: concatenated DER, whole certificates only, at least one, at most 32.
        Case {
            name: "corrupt-cert",
            build: || {
                good_with(|input, leaf| {
                    input.chain_der = leaf.cert[..leaf.cert.len() / 2].to_vec();
                })
            },
            parse: Reject("certificate 0 is not a valid DER X.509 certificate"),
            verify: Reject("certificate 0 is not a valid DER X.509 certificate"),
        },
        Case {
            name: "corrupt-intermediate",
            build: || {
                good_with(|input, leaf| {
                    let half = input.chain_der.len() - leaf.cert.len() / 2;
                    input.chain_der.truncate(half);
                })
            },
            parse: Reject("certificate 1 is not a valid DER X.509 certificate"),
            verify: Reject("certificate 1 is not a valid DER X.509 certificate"),
        },
        Case {
            name: "trailing-bytes-after-chain",
            build: || good_with(|input, _| input.chain_der.extend_from_slice(&[0x30, 0x03, 0x01])),
            parse: Reject("certificate 2 is not a valid DER X.509 certificate"),
            verify: Reject("certificate 2 is not a valid DER X.509 certificate"),
        },
        Case {
            name: "trailing-zero-byte-after-chain",
            build: || good_with(|input, _| input.chain_der.push(0)),
            parse: Reject("certificate 2 is not a valid DER"),
            verify: Reject("certificate 2 is not a valid DER"),
        },
        Case {
            name: "pem-instead-of-der",
            build: || {
                good_with(|input, leaf| {
                    input.chain_der = certs_to_pem(std::slice::from_ref(&leaf.cert)).into_bytes();
                })
            },
            parse: Reject("certificate 0 is not a valid DER"),
            verify: Reject("certificate 0 is not a valid DER"),
        },
        Case {
            name: "empty-chain",
            build: || good_with(|input, _| input.chain_der.clear()),
            parse: Reject("certificate chain is empty: at least the leaf certificate is required"),
            verify: Reject("certificate chain is empty"),
        },
        Case {
            name: "chain-of-33-certificates",
            build: || good_with(|input, leaf| input.chain_der = leaf.cert.repeat(33)),
            parse: Reject("input holds more than 32 certificates: at most 32 are allowed"),
            verify: Reject("at most 32 are allowed"),
        },
        // The key: PKCS#8 DER of the leaf's own key pair.
        Case {
            name: "corrupt-key",
            build: || with_key(|leaf| leaf.key.secret_pkcs8_der()[..40].to_vec()),
            parse: Reject("private key is not a valid PKCS#8 EC P-256 key"),
            verify: Accept,
        },
        Case {
            name: "empty-key",
            build: || with_key(|_| Vec::new()),
            parse: Reject("private key is not a valid PKCS#8 EC P-256 key"),
            verify: Accept,
        },
        Case {
            name: "key-sec1-not-pkcs8",
            build: || with_key(sec1_of),
            parse: Reject("private key is not a valid PKCS#8 EC P-256 key"),
            verify: Accept,
        },
        Case {
            name: "key-pem-not-der",
            build: || with_key(|leaf| pkcs8_to_pem(&leaf.key).into_bytes()),
            parse: Reject("private key is not a valid PKCS#8 EC P-256 key"),
            verify: Accept,
        },
        Case {
            name: "key-of-another-leaf",
            build: || {
                with_key(|_| {
                    let ca = TestCa::new("example.org", KeyKind::P256);
                    ca.leaf(ID, KeyKind::P256).key.secret_pkcs8_der().to_vec()
                })
            },
            parse: Reject("private key does not match the leaf certificate's public key"),
            verify: Accept,
        },
        Case {
            name: "key-of-another-type",
            build: || with_key(|_| KeyKind::Ed25519.generate().serialize_der()),
            parse: Reject("private key is not a valid PKCS#8 EC P-256 key"),
            verify: Accept,
        },
        // §5: time is injected; parsing an own SVID does not judge time (go-spiffe neither).
        Case {
            name: "expired-leaf",
            build: || good_with(|input, _| input.now += Duration::from_secs(2 * 3600)),
            parse: Accept,
            verify: Reject("CertExpired"),
        },
        Case {
            name: "not-yet-valid-leaf",
            build: || good_with(|input, _| input.now -= Duration::from_secs(2 * 60)),
            parse: Accept,
            verify: Reject("CertNotValidYet"),
        },
        Case {
            name: "validation-time-before-1970",
            build: || {
                good_with(|input, _| input.now = SystemTime::UNIX_EPOCH - Duration::from_secs(1))
            },
            parse: Accept,
            verify: Reject("validation time is before 1970"),
        },
        // §5 / tricky point 8: the bundle is the one of the leaf's trust domain, never a pool.
        Case {
            name: "unknown-authority",
            build: || {
                let ca = TestCa::new("example.org", KeyKind::P256);
                let other = TestCa::new("example.org", KeyKind::P256);
                svid(&ca, &other.leaf(ID, KeyKind::P256), &[])
            },
            parse: Accept,
            verify: Reject("validation against the bundle of 'example.org' failed: UnknownIssuer"),
        },
        Case {
            name: "no-bundle-for-trust-domain",
            build: || {
                let ca = TestCa::new("example.org", KeyKind::P256);
                let other = TestCa::new("other.org", KeyKind::P256);
                svid(&ca, &other.leaf("spiffe://other.org/w", KeyKind::P256), &[])
            },
            parse: Accept,
            verify: Reject("no X.509 bundle for trust domain 'other.org': its SVIDs cannot be"),
        },
        Case {
            name: "forged-by-another-trust-domains-ca",
            build: || {
                let ours = TestCa::new("example.org", KeyKind::P256);
                let theirs = TestCa::new("evil.org", KeyKind::P256);
                let mut input = svid(&ours, &theirs.leaf(ID, KeyKind::P256), &[&theirs.cert]);
                input.bundles.insert(theirs.bundle());
                input
            },
            parse: Accept,
            verify: Reject("validation against the bundle of 'example.org' failed: UnknownIssuer"),
        },
        Case {
            name: "empty-bundle-for-trust-domain",
            build: || {
                good_with(|input, _| {
                    let td = TrustDomain::new("example.org").unwrap();
                    input.bundles = [X509Bundle::new(td, vec![])].into_iter().collect();
                })
            },
            parse: Accept,
            verify: Reject("X.509 bundle of trust domain 'example.org' is empty"),
        },
        Case {
            name: "corrupt-bundle-authority",
            build: || {
                good_with(|input, _| {
                    let td = TrustDomain::new("example.org").unwrap();
                    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
                    input.bundles = [X509Bundle::new(td, vec![junk])].into_iter().collect();
                })
            },
            parse: Accept,
            verify: Reject(
                "authority 0 of trust domain 'example.org' is not a usable trust anchor",
            ),
        },
    ]
}

/// The leaf's P-256 key as SEC1 `ECPrivateKey` DER instead of PKCS#8.
fn sec1_of(leaf: &TestLeaf) -> Vec<u8> {
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, leaf.key.secret_pkcs8_der())
            .unwrap();
    let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
        pair.private_key().as_der().unwrap();
    sec1.as_ref().to_vec()
}

/// Runs both entry points on one input.
pub(crate) fn run(input: &Input) -> (Result<X509Svid, X509Error>, Result<String, X509Error>) {
    let parsed = X509Svid::parse_der(&input.chain_der, &input.key);
    let verified = parse_der_chain(&input.chain_der)
        .and_then(|chain| verify_chain(&chain, &input.bundles, input.now))
        .map(|id| id.to_string());
    (parsed, verified)
}

fn judge<T>(name: &str, step: &str, got: &Result<T, X509Error>, want: Expect) -> Option<String> {
    match (got, want) {
        (Ok(_), Accept) => None,
        (Err(e), Reject(fragment)) if e.to_string().contains(fragment) => None,
        (Err(e), _) => Some(format!(
            "{name}: {step}: got error {e:?} ({e}), expected {want:?}"
        )),
        (Ok(_), Reject(_)) => Some(format!("{name}: {step}: accepted, expected {want:?}")),
    }
}

#[test]
fn x509_table_accepts_and_rejects_with_the_expected_messages() {
    let mut failures = Vec::new();
    for case in cases() {
        let input = (case.build)();
        let (parsed, verified) = run(&input);
        failures.extend(judge(case.name, "parse_der", &parsed, case.parse));
        failures.extend(judge(case.name, "verify_chain", &verified, case.verify));
        if let (Ok(svid), Ok(id)) = (&parsed, &verified)
            && svid.spiffe_id().as_str() != id
        {
            failures.push(format!(
                "{}: parse and verify read different IDs",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn case_names_are_unique_and_name_the_defect() {
    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        assert!(
            cases[..i].iter().all(|c| c.name != case.name),
            "{} twice",
            case.name
        );
        let accepted = case.parse == Accept && case.verify == Accept;
        assert_eq!(case.name.starts_with("good-"), accepted, "{}", case.name);
    }
}

#[test]
fn good_chains_are_accepted_from_pem_in_either_order_of_blocks() {
    let root = TestCa::new("example.org", KeyKind::P384);
    let mid = root.intermediate(KeyKind::P256, true, true);
    let leaf = mid.leaf(ID, KeyKind::P256);
    let certs = certs_to_pem(&[leaf.cert.clone(), mid.cert.clone()]);
    let key = pkcs8_to_pem(&leaf.key);

    for (name, chain, key) in [
        ("good-leaf-and-intermediate", certs.clone(), key.clone()),
        (
            "good-cert-and-key",
            format!("{certs}{key}"),
            format!("{certs}{key}"),
        ),
        (
            "good-key-and-cert",
            format!("{key}{certs}"),
            format!("{key}{certs}"),
        ),
    ] {
        let svid = X509Svid::parse_pem(chain.as_bytes(), key.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(svid.spiffe_id().as_str(), ID, "{name}");
        assert_eq!(svid.chain().len(), 2, "{name}");
        assert_eq!(
            verify_chain(svid.chain(), &root.bundle(), now_secs())
                .unwrap()
                .as_str(),
            ID
        );
    }
}

#[test]
fn bad_pem_is_rejected_with_the_expected_messages() {
    let ca = TestCa::new("example.org", KeyKind::P256);
    let leaf = ca.leaf(ID, KeyKind::P256);
    let certs = certs_to_pem(std::slice::from_ref(&leaf.cert));
    let key = pkcs8_to_pem(&leaf.key);
    let other_key = pkcs8_to_pem(&ca.leaf(ID, KeyKind::P256).key);
    let corrupt_cert = "-----BEGIN CERTIFICATE-----\nMIIBIjAN\n-----END CERTIFICATE-----\n";
    let corrupt_key = "-----BEGIN PRIVATE KEY-----\nMIIBIjAN\n-----END PRIVATE KEY-----\n";
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIBIjAN\n";

    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "not-pem",
            "not pem at all",
            &key,
            "no CERTIFICATE block found in PEM input",
        ),
        ("key-only", &key, &key, "no CERTIFICATE block found"),
        (
            "cert-only",
            &certs,
            &certs,
            "no PRIVATE KEY block found in PEM input",
        ),
        (
            "corrupt-cert",
            corrupt_cert,
            &key,
            "certificate 0 is not a valid DER X.509",
        ),
        (
            "corrupt-key",
            &certs,
            corrupt_key,
            "private key is not a valid PKCS#8 EC P-256 key",
        ),
        ("unterminated-cert", unterminated, &key, "invalid PEM input"),
        (
            "key-of-another-leaf",
            &certs,
            &other_key,
            "private key does not match",
        ),
    ];
    for (name, chain, key, fragment) in cases {
        let err = X509Svid::parse_pem(chain.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(fragment), "{name}: {err}");
    }
}

#[test]
fn every_key_type_pairs_with_every_root_type() {
    for ca_kind in KeyKind::ALL {
        let ca = TestCa::new("example.org", ca_kind);
        for leaf_kind in KeyKind::ALL {
            let (parsed, verified) = run(&svid(&ca, &ca.leaf(ID, leaf_kind), &[]));
            assert!(parsed.is_ok(), "{ca_kind:?}/{leaf_kind:?}: {parsed:?}");
            assert_eq!(verified.unwrap(), ID, "{ca_kind:?}/{leaf_kind:?}");
        }
    }
}

#[test]
fn an_intermediate_outside_the_validated_path_is_not_judged() {
    // Peers sometimes send spare certificates; only those on the path built to the bundle count.
    let root = TestCa::new("example.org", KeyKind::P256);
    let stray = TestCa::new("example.org", KeyKind::P256).intermediate(KeyKind::P256, true, false);
    let leaf = root.leaf(ID, KeyKind::P256);
    let chain = [leaf.cert.clone(), stray.cert.clone()];
    assert_eq!(
        verify_chain(&chain, &root.bundle(), now_secs())
            .unwrap()
            .as_str(),
        ID
    );
}

#[test]
fn a_bundle_with_several_roots_verifies_leaves_of_each() {
    let old = TestCa::new("example.org", KeyKind::P256);
    let new = TestCa::new("example.org", KeyKind::P384);
    let td = TrustDomain::new("example.org").unwrap();
    let bundle = X509Bundle::new(td, vec![old.cert.clone(), new.cert.clone()]);
    for ca in [&old, &new] {
        let leaf = ca.leaf(ID, KeyKind::P256);
        assert_eq!(
            verify_chain(&[leaf.cert], &bundle, now_secs())
                .unwrap()
                .as_str(),
            ID
        );
    }
}

#[test]
fn fuzz_seeds_reach_the_accepting_paths_of_the_x509_chain_target() {
    // The x509_chain fuzz target validates at 2027-06-01 against fuzz/fixtures/bundle.der; its
    // seeds must get through parsing and verification so the fuzzer starts from deep paths.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_811_808_000);
    let td = TrustDomain::new("example.org").unwrap();
    let bundle =
        X509Bundle::from_der(td, include_bytes!("../../fuzz/fixtures/bundle.der")).unwrap();
    let seed: &[u8] = include_bytes!("../../fuzz/corpus/x509_chain/leaf-and-intermediate");
    let n = usize::from(u16::from_be_bytes([seed[0], seed[1]]));
    let (chain, key) = seed[2..].split_at(n);

    let svid = X509Svid::parse_der(chain, key).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/workload");
    let id = verify_chain(svid.chain(), &bundle, now).unwrap();
    assert_eq!(id.as_str(), "spiffe://example.org/workload");
}
