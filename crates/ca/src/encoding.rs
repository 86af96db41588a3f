//! Encoding helpers shared by the authority code: public keys, names, serials and times.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard_spiffe::{SpiffeId, TrustDomain};
use rcgen::{
    DistinguishedName, DnType, KeyPair, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::authority::SUBJECT_ORGANIZATION;
use crate::error::CaError;

/// Decodes a DER SubjectPublicKeyInfo into a key rcgen can put into a certificate, checking it
/// re-encodes to exactly the same bytes (so the certificate carries the key that was asked for).
///
/// # Errors
///
/// [`CaError::UnsupportedPublicKey`] for malformed or unsupported keys.
pub fn public_key_from_spki(der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, CaError> {
    let spki = rcgen::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| CaError::UnsupportedPublicKey(e.to_string()))?;
    if spki.subject_public_key_info() != der {
        return Err(CaError::UnsupportedPublicKey(
            "SubjectPublicKeyInfo is not in canonical DER form".to_owned(),
        ));
    }
    Ok(spki)
}

/// A shared key pair usable as an rcgen signer.
pub(crate) struct SharedKey(pub(crate) Arc<KeyPair>);

impl PublicKeyData for SharedKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for SharedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// The trust domain of an authority: its single URI SAN must be a SPIFFE ID without a path
/// (X509-SVID §3.2: a signing certificate's ID must not have a path).
pub(crate) fn authority_trust_domain(x509: &X509Certificate<'_>) -> Result<TrustDomain, String> {
    let san = x509
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .ok_or("no subjectAltName extension: expected the URI SAN spiffe://<trust domain>")?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    let [uri] = uris.as_slice() else {
        return Err(format!("{} URI SANs: expected exactly one", uris.len()));
    };
    let id = SpiffeId::parse(uri).map_err(|e| format!("URI SAN '{uri}': {e}"))?;
    if !id.is_root() {
        return Err(format!(
            "URI SAN '{uri}' has a path: an authority's id must not"
        ));
    }
    Ok(id.trust_domain())
}

pub(crate) fn subject(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, SUBJECT_ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

pub(crate) fn subject_for_leaf(first_dns: Option<&String>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, SUBJECT_ORGANIZATION);
    if let Some(name) = first_dns {
        dn.push(DnType::CommonName, name.as_str());
    }
    dn
}

/// Host-name syntax for DNS SANs, with an optional leading wildcard label.
pub(crate) fn validate_dns_name(name: &str) -> Result<(), CaError> {
    let label_ok = |(i, l): (usize, &str)| {
        (i == 0 && l == "*")
            || (!l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    };
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').enumerate().all(label_ok);
    if ok && name != "*" {
        Ok(())
    } else {
        Err(CaError::InvalidDnsName(name.to_owned()))
    }
}

/// A random positive serial of exactly 16 bytes (top bit clear, next bit set).
pub(crate) fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Converts to whole seconds; certificates cannot carry sub-second times.
pub(crate) fn cert_time(t: SystemTime) -> Result<time::OffsetDateTime, CaError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CaError::InvalidTime(t))?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|_| CaError::InvalidTime(t))?;
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| CaError::InvalidTime(t))
}

/// The validity period of a DER certificate, for records whose key is not (or no longer) at hand.
pub(crate) fn validity_of(der: &[u8]) -> Result<(SystemTime, SystemTime), String> {
    let (_, x509) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok((
        system_time(x509.validity().not_before.timestamp()),
        system_time(x509.validity().not_after.timestamp()),
    ))
}

pub(crate) fn system_time(unix_secs: i64) -> SystemTime {
    if unix_secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix_secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(unix_secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyType, generate_key_pair};

    #[test]
    fn accepts_host_names_and_leading_wildcards() {
        for good in [
            "example.org",
            "a-b.c_d.org",
            "*.web.example.org",
            "localhost",
            "x1",
        ] {
            validate_dns_name(good).unwrap();
        }
        validate_dns_name(&format!("{}.org", "a".repeat(63))).unwrap();
    }

    #[test]
    fn rejects_malformed_dns_names() {
        let long_label = format!("{}.org", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "", "a..b", ".a", "a.", "-a.org", "a-.org", "a b.org", "*", "a.*.org", "ü.org",
        ]
        .into_iter()
        .chain([long_label.as_str(), long_name.as_str()])
        {
            assert!(
                matches!(validate_dns_name(bad), Err(CaError::InvalidDnsName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serials_are_random_positive_and_sixteen_bytes() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_ne!(a, b);
        for s in [a, b] {
            assert_eq!(s.len(), 16);
            assert_eq!(s[0] & 0xc0, 0x40);
        }
    }

    #[test]
    fn certificate_times_are_whole_seconds_after_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(cert_time(t).unwrap().unix_timestamp(), 1_700_000_000);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(cert_time(before), Err(CaError::InvalidTime(_))));
        assert_eq!(system_time(-1), before);
    }

    #[test]
    fn public_keys_round_trip_and_garbage_is_rejected() {
        for kt in KeyType::ALL {
            let key = generate_key_pair(kt).unwrap();
            let spki = key.subject_public_key_info();
            let parsed = public_key_from_spki(&spki).unwrap();
            assert_eq!(parsed.der_bytes(), key.der_bytes(), "{kt}");
        }
        assert!(matches!(
            public_key_from_spki(b"\x30\x00"),
            Err(CaError::UnsupportedPublicKey(_))
        ));
    }
}
