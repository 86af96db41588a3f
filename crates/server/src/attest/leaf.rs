//! What x509pop reads from the agent's leaf certificate: the rules it must meet, its key, and
//! the values that become the agent ID and node selectors (as SPIRE derives them).

use lanyard_spiffe::{Selector, TrustDomain};
use x509_parser::prelude::X509Certificate;

use super::pop::LeafKey;
use super::x509pop::{AttestError, X509POP};

/// "subject CN=..., serial ..." for messages.
pub(super) fn describe(leaf: &X509Certificate<'_>) -> String {
    format!(
        "(subject {:?}, serial {})",
        leaf.subject().to_string(),
        serial_hex(leaf.raw_serial())
    )
}

pub(super) fn check_key_usage(leaf: &X509Certificate<'_>) -> Result<(), String> {
    match leaf.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        Ok(Some(_)) => Err("its key usage lacks digitalSignature, which x509pop requires".into()),
        Ok(None) => {
            Err("it has no key usage extension: x509pop requires one with digitalSignature".into())
        }
        Err(e) => Err(format!("its key usage extension does not parse: {e}")),
    }
}

pub(super) fn leaf_key(leaf: &X509Certificate<'_>) -> Result<LeafKey, String> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    };
    let spki = leaf.public_key();
    let bits = spki.subject_public_key.data.to_vec();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(LeafKey::Rsa(bits));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if curve.as_ref() == Some(&OID_EC_P256) {
            return Ok(LeafKey::EcP256(bits));
        }
        if curve.as_ref() == Some(&OID_NIST_EC_P384) {
            return Ok(LeafKey::EcP384(bits));
        }
        return Err("its EC key is not on P-256 or P-384, the curves x509pop supports".into());
    }
    Err(format!(
        "its key algorithm {algorithm} is not supported: x509pop takes EC P-256, EC P-384 or RSA"
    ))
}

/// SHA-1 of the DER certificate, lowercase hex (SPIRE's fingerprint).
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    hex::encode(digest.as_ref())
}

/// The serial as lowercase hex with an even number of digits and no leading zero bytes.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let trimmed: Vec<u8> = raw.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.is_empty() {
        return "00".into();
    }
    hex::encode(trimmed)
}

/// The subject's common name; with several, the last, as Go's parser keeps.
pub(super) fn common_name(leaf: &X509Certificate<'_>) -> String {
    leaf.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// SPIRE's x509pop selectors: subject CN, the fingerprint of every certificate above the leaf,
/// the serial number, and `san:<key>:<value>` for URI SANs `x509pop://<td>/<key>/<value>`.
pub(super) fn selectors(
    td: &TrustDomain,
    leaf: &X509Certificate<'_>,
    common_name: &str,
    serial: &str,
    above: &[Vec<u8>],
) -> Result<Vec<Selector>, AttestError> {
    let mut values = Vec::new();
    if !common_name.is_empty() {
        values.push(format!("subject:cn:{common_name}"));
    }
    for der in above {
        values.push(format!("ca:fingerprint:{}", fingerprint(der)));
    }
    values.push(format!("serialnumber:{serial}"));
    let prefix = format!("x509pop://{}/", td.name());
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name
                && let Some(rest) = uri.strip_prefix(&prefix)
                && let Some((key, value)) = rest.trim_matches('/').split_once('/')
            {
                values.push(format!("san:{key}:{value}"));
            }
        }
    }
    let mut selectors = values
        .into_iter()
        .map(|v| {
            Selector::new(X509POP, &v).map_err(|e| {
                AttestError::Leaf(describe(leaf), format!("selector x509pop:{v}: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    selectors.sort();
    selectors.dedup();
    Ok(selectors)
}
