//! Shared test helpers: fixed times, SVID requests, and independent verification of what the
//! crate signs (rustls-webpki for path validation, x509-parser for profile bits).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard_spiffe::{SpiffeId, TrustDomain};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::authority::X509Authority;
use crate::clock::{Clock, ManualClock};
use crate::error::CaError;
use crate::journal::{self, MemoryJournalStore, Status};
use crate::key::{KeyManager, MemoryKeyManager};
use crate::key::{KeyType, generate_key_pair};
use crate::manager::{CaConfig, CaManager};
use crate::schedule::{activate_at, prepare_at};
use crate::svid::SvidParams;

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// A fixed, round start time (2023-11-14T22:13:20Z).
pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub(crate) fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

pub(crate) fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub(crate) fn params_for(key: &KeyPair, path: &str, ttl: Duration) -> SvidParams {
    SvidParams {
        spiffe_id: id(&format!("spiffe://example.org{path}")),
        public_key_der: key.subject_public_key_info(),
        ttl,
        dns_names: Vec::new(),
    }
}

/// Validates `leaf` (RFC 5280 path validation, both TLS usages) against `authorities` at `now`.
pub(crate) fn verify_leaf(
    leaf: &CertificateDer<'_>,
    authorities: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<(), webpki::Error> {
    let anchors = authorities
        .iter()
        .map(|c| anchor_from_trusted_cert(c).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    let ee = EndEntityCert::try_from(leaf)?;
    let time = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap());
    for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            time,
            usage,
            None,
            None,
        )?;
    }
    Ok(())
}

/// Index of the one authority in `authorities` that `leaf` chains to at `now`.
pub(crate) fn issuer_index(
    leaf: &CertificateDer<'_>,
    authorities: &[CertificateDer<'_>],
    now: SystemTime,
) -> Option<usize> {
    let hits: Vec<usize> = (0..authorities.len())
        .filter(|&i| verify_leaf(leaf, &authorities[i..=i], now).is_ok())
        .collect();
    match hits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

pub(crate) fn ca(kt: KeyType) -> X509Authority {
    let key = Arc::new(generate_key_pair(kt).unwrap());
    X509Authority::self_signed(&td(), key, 24 * HOUR, t0()).unwrap()
}

pub(crate) fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

pub(crate) fn uri_and_dns_sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(u) => uris.push((*u).to_owned()),
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (uris, dns)
}

pub(crate) fn assert_random_positive_16_byte_serial(cert: &X509Certificate<'_>) {
    let raw = cert.raw_serial();
    assert_eq!(raw.len(), 16, "{raw:02x?}");
    assert_eq!(raw[0] & 0x80, 0, "serial must be positive");
}

/// A CA manager's surroundings: manual clock, key manager, journal store, and a leaf key.
pub(crate) struct Harness {
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) km: Arc<dyn KeyManager>,
    pub(crate) journal: Arc<MemoryJournalStore>,
    pub(crate) leaf_key: KeyPair,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self {
            clock: Arc::new(ManualClock::new(t0())),
            km: Arc::new(MemoryKeyManager::new()),
            journal: Arc::new(MemoryJournalStore::new()),
            leaf_key: generate_key_pair(KeyType::EcP256).unwrap(),
        }
    }

    pub(crate) async fn load(&self) -> Result<CaManager, CaError> {
        self.load_with(CaConfig::default()).await
    }

    pub(crate) async fn load_with(&self, config: CaConfig) -> Result<CaManager, CaError> {
        CaManager::load_or_create(
            td(),
            config,
            Arc::clone(&self.km),
            self.journal.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(crate) fn sign(&self, ca: &CaManager, ttl: Duration) -> CertificateDer<'static> {
        ca.sign_x509_svid(&params_for(&self.leaf_key, "/w", ttl))
            .unwrap()
    }

    pub(crate) fn statuses(&self) -> Vec<(Status, String)> {
        let records = journal::decode(&self.journal.blob().unwrap()).unwrap();
        records
            .x509
            .into_iter()
            .map(|r| (r.status, r.key_id))
            .collect()
    }
}

pub(crate) fn serials(certs: &[CertificateDer<'_>]) -> Vec<String> {
    certs
        .iter()
        .map(|c| {
            let (_, x) = x509_parser::parse_x509_certificate(c).unwrap();
            x.raw_serial_as_string().replace(':', "")
        })
        .collect()
}

pub(crate) fn schedule_of(a: &X509Authority) -> (SystemTime, SystemTime) {
    (
        prepare_at(a.not_before(), a.not_after()),
        activate_at(a.not_before(), a.not_after()),
    )
}
