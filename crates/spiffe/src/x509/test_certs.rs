//! Test-only certificate factory: CAs and leaves of every supported key type, built with rcgen,
//! plus knobs to produce each malformed variant the SPIFFE rules must reject.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::X509Bundle;
use crate::id::TrustDomain;

/// Key types the crate supports for SVIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    P256,
    P384,
    Rsa2048,
    Ed25519,
}

impl KeyKind {
    pub(crate) const ALL: [KeyKind; 4] = [
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::Rsa2048,
        KeyKind::Ed25519,
    ];

    pub(crate) fn generate(self) -> KeyPair {
        let alg = match self {
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        };
        KeyPair::generate_for(alg).unwrap()
    }
}

/// Now, truncated to whole seconds (the resolution of certificate times).
pub(crate) fn now_secs() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// What goes into a leaf (or a deliberately broken one).
#[derive(Clone, Debug)]
pub(crate) struct LeafSpec {
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    pub is_ca: bool,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub ekus: Vec<ExtendedKeyUsagePurpose>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub serial: Option<Vec<u8>>,
    /// Extensions written as given (e.g. a hand-encoded keyUsage that is not critical).
    pub custom: Vec<CustomExtension>,
}

impl LeafSpec {
    /// A valid X509-SVID leaf for `id`, valid from a minute ago for an hour.
    pub(crate) fn valid(id: &str) -> Self {
        let now = now_secs();
        LeafSpec {
            uris: vec![id.to_owned()],
            dns: vec![],
            is_ca: false,
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            ekus: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(3600),
            serial: None,
            custom: vec![],
        }
    }
}

/// A leaf certificate with its PKCS#8 key.
pub(crate) struct TestLeaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
}

/// A CA (root or intermediate) able to issue certificates.
pub(crate) struct TestCa {
    pub cert: CertificateDer<'static>,
    pub td: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A self-signed root for `td`: cA, keyCertSign + cRLSign, URI SAN `spiffe://td`.
    pub(crate) fn new(td: &str, kind: KeyKind) -> Self {
        Self::with_uri(td, kind, &format!("spiffe://{td}"))
    }

    /// A self-signed root for `td` whose URI SAN is `uri` (need not be a valid SPIFFE ID).
    pub(crate) fn with_uri(td: &str, kind: KeyKind, uri: &str) -> Self {
        let key = kind.generate();
        let params = ca_params(td, uri, true, true);
        let cert = params.self_signed(&key).unwrap().der().clone();
        TestCa {
            cert,
            td: td.to_owned(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A self-signed root for `td` carrying a critical name constraints extension that permits
    /// the URI subtree `td` (X509-SVID §4.2 allows it; rustls-webpki refuses URI constraints).
    pub(crate) fn with_uri_name_constraint(td: &str, kind: KeyKind) -> Self {
        let key = kind.generate();
        let mut params = ca_params(td, &format!("spiffe://{td}"), true, true);
        // NameConstraints ::= SEQUENCE { permittedSubtrees [0] SEQUENCE OF GeneralSubtree },
        // GeneralSubtree ::= SEQUENCE { base GeneralName }, here uniformResourceIdentifier [6].
        let host = td.as_bytes();
        let base = [&[0x86, host.len() as u8][..], host].concat();
        let subtree = [&[0x30, base.len() as u8][..], &base].concat();
        let permitted = [&[0xa0, subtree.len() as u8][..], &subtree].concat();
        let content = [&[0x30, permitted.len() as u8][..], &permitted].concat();
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], content);
        ext.set_criticality(true);
        params.custom_extensions = vec![ext];
        let cert = params.self_signed(&key).unwrap().der().clone();
        TestCa {
            cert,
            td: td.to_owned(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate signed by this CA; `is_ca` / `key_cert_sign` allow broken ones.
    pub(crate) fn intermediate(&self, kind: KeyKind, is_ca: bool, key_cert_sign: bool) -> Self {
        let key = kind.generate();
        let params = ca_params(
            &self.td,
            &format!("spiffe://{}", self.td),
            is_ca,
            key_cert_sign,
        );
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        TestCa {
            cert,
            td: self.td.clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A valid leaf for `id`.
    pub(crate) fn leaf(&self, id: &str, kind: KeyKind) -> TestLeaf {
        self.issue(&LeafSpec::valid(id), kind)
    }

    /// A leaf built from `spec`.
    pub(crate) fn issue(&self, spec: &LeafSpec, kind: KeyKind) -> TestLeaf {
        let key = kind.generate();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Lanyard test");
        params.subject_alt_names = spec
            .uris
            .iter()
            .map(|u| SanType::URI(u.as_str().try_into().unwrap()))
            .chain(
                spec.dns
                    .iter()
                    .map(|d| SanType::DnsName(d.as_str().try_into().unwrap())),
            )
            .collect();
        params.is_ca = if spec.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = spec.key_usages.clone();
        params.extended_key_usages = spec.ekus.clone();
        params.not_before = spec.not_before.into();
        params.not_after = spec.not_after.into();
        params.serial_number = spec.serial.as_deref().map(SerialNumber::from_slice);
        params.custom_extensions = spec.custom.clone();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        TestLeaf {
            cert,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// A bundle holding just this CA, for its trust domain.
    pub(crate) fn bundle(&self) -> X509Bundle {
        X509Bundle::new(TrustDomain::new(&self.td).unwrap(), vec![self.cert.clone()])
    }
}

fn ca_params(td: &str, uri: &str, is_ca: bool, key_cert_sign: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Lanyard test CA");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{td} CA {}", rand_suffix()));
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.is_ca = if is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    params.key_usages = if key_cert_sign {
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    let now = now_secs();
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + Duration::from_secs(24 * 3600)).into();
    params
}

/// A distinct name per CA so that two CAs of one trust domain are told apart by subject.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
