//! Bundles on the command line: reading PEM or SPIFFE bundle documents into the wire bundle,
//! and rendering the wire bundle in either form.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use lanyard_proto::spire::api::types;
use lanyard_spiffe::bundle::{SkipReason, SkippedKey};
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, SpiffeBundle, TrustDomain, X509Bundle};
use rustls::pki_types::CertificateDer;

/// How a bundle is written in a file or on the terminal (SPIRE's `-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum BundleFormat {
    /// X.509 authorities as PEM `CERTIFICATE` blocks (JWT authorities are left out).
    #[default]
    Pem,
    /// A SPIFFE bundle document (JWK Set with `x509-svid` and `jwt-svid` keys).
    Spiffe,
}

/// Reads a bundle for `td` from `path` (`-` is stdin).
///
/// # Errors
///
/// The file cannot be read or does not hold a bundle in `format`.
pub(crate) fn read(
    td: &TrustDomain,
    path: &Path,
    format: BundleFormat,
) -> anyhow::Result<types::Bundle> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the bundle from stdin")?;
        buf
    } else {
        std::fs::read(path).with_context(|| format!("cannot read the bundle {}", path.display()))?
    };
    parse(td, &bytes, format).with_context(|| {
        format!(
            "{} is not a {} bundle",
            path.display(),
            match format {
                BundleFormat::Pem => "PEM",
                BundleFormat::Spiffe => "SPIFFE",
            }
        )
    })
}

/// Parses a bundle for `td` held in `bytes`.
pub(crate) fn parse(
    td: &TrustDomain,
    bytes: &[u8],
    format: BundleFormat,
) -> anyhow::Result<types::Bundle> {
    match format {
        BundleFormat::Pem => {
            let x509 = X509Bundle::from_pem(td.clone(), bytes)?;
            Ok(types::Bundle {
                trust_domain: td.name().to_string(),
                x509_authorities: x509_authorities(x509.authorities()),
                ..Default::default()
            })
        }
        BundleFormat::Spiffe => {
            let doc = SpiffeBundle::parse(td.clone(), bytes)?;
            // Keys the spec says to skip are not an error; the operator still hears of them.
            for skipped in doc.skipped() {
                eprintln!("warning: {}", skip_warning(skipped));
            }
            Ok(from_spiffe(&doc))
        }
    }
}

/// The bundle in `format`, ready to print or write.
///
/// # Errors
///
/// The server sent a trust domain, certificate or key that the format cannot carry.
pub(crate) fn render(b: &types::Bundle, format: BundleFormat) -> anyhow::Result<String> {
    let certs: Vec<CertificateDer<'static>> = b
        .x509_authorities
        .iter()
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    for cert in &certs {
        lanyard_spiffe::x509::not_after_of(cert)
            .context("the server returned a malformed bundle certificate")?;
    }
    match format {
        BundleFormat::Pem => Ok(lanyard_spiffe::x509::certs_to_pem(&certs)),
        BundleFormat::Spiffe => {
            let td = TrustDomain::new(&b.trust_domain).with_context(|| {
                format!("the server returned a bundle for {:?}", b.trust_domain)
            })?;
            let mut jwt = JwtBundle::new(td.clone());
            for key in &b.jwt_authorities {
                let public = JwtPublicKey::from_spki_der(&key.public_key).with_context(|| {
                    format!("the server returned an unusable JWT key {:?}", key.key_id)
                })?;
                jwt.insert(key.key_id.clone(), public);
            }
            let mut doc = SpiffeBundle::from_parts(X509Bundle::new(td, certs), jwt)?;
            // As SPIRE, a zero sequence number or refresh hint is left out of the document.
            doc.set_sequence((b.sequence_number > 0).then_some(b.sequence_number));
            let hint = u64::try_from(b.refresh_hint).unwrap_or(0);
            doc.set_refresh_hint((hint > 0).then(|| Duration::from_secs(hint)));
            let mut json = super::go_order::indent(&doc.to_json()?)?;
            json.push('\n');
            Ok(json)
        }
    }
}

/// What to tell the operator about a key the parser left out or cut down. The parser lists a
/// key whose `x5c` holds extra certificates among the ignored ones although it keeps the key
/// with its first certificate; saying "ignored" there would contradict "the first is used".
fn skip_warning(skipped: &SkippedKey) -> String {
    match &skipped.reason {
        SkipReason::ExtraX5cCertificates(n) => format!(
            "bundle key {}: \"x5c\" holds {n} certificates: the key is kept with the first \
             one, the other {} are ignored",
            skipped.index,
            n - 1
        ),
        _ => skipped.to_string(),
    }
}

/// The wire form of a parsed SPIFFE bundle document.
fn from_spiffe(doc: &SpiffeBundle) -> types::Bundle {
    types::Bundle {
        trust_domain: doc.trust_domain().name().to_string(),
        x509_authorities: x509_authorities(doc.x509_bundle().authorities()),
        jwt_authorities: doc
            .jwt_bundle()
            .iter()
            .map(|(kid, key)| types::JwtKey {
                public_key: key.to_spki_der(),
                key_id: kid.to_string(),
                // A bundle document carries no key expiry.
                expires_at: 0,
                tainted: false,
            })
            .collect(),
        refresh_hint: doc
            .refresh_hint()
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        sequence_number: doc.sequence().unwrap_or(0),
    }
}

fn x509_authorities(certs: &[CertificateDer<'_>]) -> Vec<types::X509Certificate> {
    certs
        .iter()
        .map(|c| types::X509Certificate {
            asn1: c.to_vec(),
            tainted: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::new("other.org").unwrap()
    }

    #[test]
    fn extra_x5c_warning_says_the_key_is_kept() {
        let kept = SkippedKey {
            index: 0,
            reason: SkipReason::ExtraX5cCertificates(2),
        };
        let text = skip_warning(&kept);
        assert!(
            text.contains("kept with the first") && text.contains("other 1"),
            "{text}"
        );
        assert!(!text.contains("key 0 ignored"), "{text}");
        let dropped = SkippedKey {
            index: 1,
            reason: SkipReason::NoX5c,
        };
        assert!(skip_warning(&dropped).contains("ignored"));
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let err = parse(&td(), b"hello", BundleFormat::Pem).unwrap_err();
        assert!(format!("{err:#}").contains("CERTIFICATE"), "{err:#}");
    }

    #[test]
    fn spiffe_document_without_keys_member_is_refused() {
        let err = parse(&td(), b"{}", BundleFormat::Spiffe).unwrap_err();
        assert!(format!("{err:#}").contains("keys"), "{err:#}");
    }

    #[test]
    fn empty_spiffe_document_keeps_sequence_and_hint() {
        let b = parse(
            &td(),
            br#"{"keys": [], "spiffe_sequence": 7, "spiffe_refresh_hint": 300}"#,
            BundleFormat::Spiffe,
        )
        .unwrap();
        assert_eq!((b.sequence_number, b.refresh_hint), (7, 300));
        let again = parse(
            &td(),
            render(&b, BundleFormat::Spiffe).unwrap().as_bytes(),
            BundleFormat::Spiffe,
        )
        .unwrap();
        assert_eq!(again, b);
    }
}
