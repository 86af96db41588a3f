//! A self-signed X.509 signing authority (X509-SVID §3.2, §4: signing certificate profile). Minting
//! leaves is in [`crate::svid`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanyard_spiffe::TrustDomain;
use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType,
};
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::encoding::{
    SharedKey, authority_trust_domain, cert_time, random_serial, subject, system_time,
};
use crate::error::CaError;
use crate::upstream::UpstreamChain;

/// How far `notBefore` is back-dated, to tolerate clock skew between signer and verifier.
pub const BACKDATE: Duration = Duration::from_secs(10);

/// Subject organization of every certificate Lanyard mints.
pub const SUBJECT_ORGANIZATION: &str = "Lanyard";

/// Subject common name of Lanyard's self-signed authorities.
pub const CA_COMMON_NAME: &str = "Lanyard CA";

/// An X.509 signing authority: a CA certificate and its private key.
pub struct X509Authority {
    cert: CertificateDer<'static>,
    key: Arc<KeyPair>,
    issuer: Issuer<'static, SharedKey>,
    trust_domain: TrustDomain,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
    /// Set when an upstream authority signed the certificate.
    upstream: Option<UpstreamChain>,
}

impl X509Authority {
    /// Creates a self-signed root for `td`, valid from `now` − 10 s to `now + ttl`.
    ///
    /// Profile (X509-SVID §3.2, §4.1, §4.3): basicConstraints cA true (critical), keyUsage keyCertSign
    /// and cRLSign (critical), the single URI SAN `spiffe://<td>`, subject O=Lanyard,
    /// CN=Lanyard CA, a random positive 16-byte serial, and a subject key identifier.
    ///
    /// # Errors
    ///
    /// [`CaError::InvalidTtl`] for a zero ttl, [`CaError::Encoding`] if signing fails.
    pub fn self_signed(
        td: &TrustDomain,
        key: Arc<KeyPair>,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Self, CaError> {
        if ttl.is_zero() {
            return Err(CaError::InvalidTtl { what: "ca" });
        }

        let mut params = CertificateParams::default();
        params.not_before = cert_time(now.checked_sub(BACKDATE).unwrap_or(now))?;
        params.not_after = cert_time(now.checked_add(ttl).ok_or(CaError::InvalidTime(now))?)?;
        params.serial_number = Some(random_serial()?);
        params.distinguished_name = subject(CA_COMMON_NAME);
        params.subject_alt_names = vec![SanType::URI(td.id_string().try_into()?)];
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];

        let cert = params.self_signed(&SharedKey(Arc::clone(&key)))?;
        Self::from_parts(cert.der().clone(), key)
    }

    /// Rebuilds an authority from a stored certificate and its key.
    ///
    /// # Errors
    ///
    /// [`CaError::InvalidAuthority`] if the certificate is not a CA for a single trust domain
    /// (or a self-signed one whose signature does not verify), [`CaError::KeyMismatch`] if `key`
    /// is not the certificate's key.
    pub fn from_parts(cert: CertificateDer<'static>, key: Arc<KeyPair>) -> Result<Self, CaError> {
        let invalid = |why: String| CaError::InvalidAuthority(why);
        let (rest, x509) =
            X509Certificate::from_der(&cert).map_err(|e| invalid(format!("not DER X.509: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid(format!("{} trailing bytes", rest.len())));
        }
        let serial = x509.raw_serial_as_string().replace(':', "");

        let is_ca = x509
            .basic_constraints()
            .map_err(|e| invalid(e.to_string()))?
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(invalid(format!(
                "{serial} does not have basicConstraints cA true"
            )));
        }
        let can_sign = x509
            .key_usage()
            .map_err(|e| invalid(e.to_string()))?
            .is_some_and(|ku| ku.value.key_cert_sign());
        if !can_sign {
            return Err(invalid(format!(
                "{serial} does not have keyUsage keyCertSign"
            )));
        }
        let trust_domain = authority_trust_domain(&x509).map_err(invalid)?;

        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(CaError::KeyMismatch { serial });
        }
        if x509.subject() == x509.issuer() {
            x509.verify_signature(None)
                .map_err(|e| invalid(format!("{serial} self-signature does not verify: {e}")))?;
        }

        let not_before = system_time(x509.validity().not_before.timestamp());
        let not_after = system_time(x509.validity().not_after.timestamp());
        let issuer = Issuer::from_ca_cert_der(&cert, SharedKey(Arc::clone(&key)))?;
        Ok(Self {
            cert,
            key,
            issuer,
            trust_domain,
            serial,
            not_before,
            not_after,
            upstream: None,
        })
    }

    /// Records the chain of an authority an upstream signed (see [`crate::upstream`]).
    pub(crate) fn with_upstream(mut self, upstream: Option<UpstreamChain>) -> Self {
        self.upstream = upstream;
        self
    }

    /// The upstream chain, if an upstream authority signed this one.
    pub fn upstream(&self) -> Option<&UpstreamChain> {
        self.upstream.as_ref()
    }

    /// The certificates that follow a leaf this authority signed in an X509-SVID chain: none for
    /// a self-signed authority (validators hold it in their bundle), else this certificate and
    /// the upstream intermediates.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        match &self.upstream {
            None => Vec::new(),
            Some(up) => std::iter::once(self.cert.clone())
                .chain(up.intermediates.iter().cloned())
                .collect(),
        }
    }

    /// What the trust bundle must hold for leaves of this authority to validate: the upstream
    /// roots, or this certificate when it is self-signed.
    pub fn bundle_certs(&self) -> Vec<CertificateDer<'static>> {
        match &self.upstream {
            None => vec![self.cert.clone()],
            Some(up) => up.roots.clone(),
        }
    }

    /// The authority certificate (DER).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The authority's private key.
    pub fn key(&self) -> &Arc<KeyPair> {
        &self.key
    }

    /// The trust domain named by the authority's URI SAN.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The certificate serial number, lowercase hex without separators (for logs).
    pub fn serial_hex(&self) -> &str {
        &self.serial
    }

    /// Start of validity (already back-dated).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of validity. No SVID signed by this authority outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The validity period, `not_after - not_before`.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// The rcgen issuer (subject name, key identifier, signing key) for minting.
    pub(crate) fn issuer(&self) -> &Issuer<'static, SharedKey> {
        &self.issuer
    }
}

impl fmt::Debug for X509Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Authority")
            .field("trust_domain", &self.trust_domain)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyType, generate_key_pair};
    use crate::test_support::{
        HOUR, assert_random_positive_16_byte_serial, ca, params_for, parse, t0, td,
        uri_and_dns_sans, verify_leaf,
    };

    #[test]
    fn self_signed_ca_has_the_signing_certificate_profile() {
        let authority = ca(KeyType::EcP256);
        let cert = parse(authority.cert());

        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
        assert!(!ku.value.digital_signature());
        assert_eq!(
            uri_and_dns_sans(&cert),
            (vec!["spiffe://example.org".to_owned()], vec![])
        );
        assert_eq!(cert.subject().to_string(), "O=Lanyard, CN=Lanyard CA");
        assert_eq!(cert.subject(), cert.issuer());
        assert_random_positive_16_byte_serial(&cert);
        cert.verify_signature(None).unwrap();

        assert_eq!(authority.not_before(), t0() - BACKDATE);
        assert_eq!(authority.not_after(), t0() + 24 * HOUR);
        assert_eq!(authority.trust_domain(), &td());
        webpki::anchor_from_trusted_cert(authority.cert()).unwrap();
    }

    #[test]
    fn from_parts_restores_an_authority_that_signs_verifiable_leaves() {
        let original = ca(KeyType::EcP384);
        let restored =
            X509Authority::from_parts(original.cert().clone(), Arc::clone(original.key())).unwrap();
        assert_eq!(restored.not_after(), original.not_after());
        assert_eq!(restored.serial_hex(), original.serial_hex());

        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let leaf = restored
            .sign_x509_svid(&params_for(&key, "/w", HOUR), t0())
            .unwrap();
        verify_leaf(&leaf, std::slice::from_ref(original.cert()), t0()).unwrap();
    }

    #[test]
    fn from_parts_rejects_a_key_that_does_not_match() {
        let authority = ca(KeyType::EcP256);
        let other = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let err = X509Authority::from_parts(authority.cert().clone(), other).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn from_parts_rejects_a_leaf_certificate() {
        let authority = ca(KeyType::EcP256);
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let leaf = authority
            .sign_x509_svid(&params_for(&key, "/w", HOUR), t0())
            .unwrap();
        let err = X509Authority::from_parts(leaf, key).unwrap_err();
        assert!(err.to_string().contains("cA true"), "{err}");
    }
}
