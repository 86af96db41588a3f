//! Minting X509-SVID leaves (X509-SVID §2, §3.1, §4: leaf certificate profile).

use std::time::{Duration, SystemTime};

use lanyard_spiffe::SpiffeId;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use rustls_pki_types::CertificateDer;

use crate::authority::{BACKDATE, X509Authority};
use crate::encoding::{
    cert_time, public_key_from_spki, random_serial, subject_for_leaf, validate_dns_name,
};
use crate::error::CaError;

/// What to put into an X509-SVID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvidParams {
    /// The SVID's identity: the single URI SAN. Must be in the authority's trust domain and
    /// have a path.
    pub spiffe_id: SpiffeId,
    /// The subject's public key, DER SubjectPublicKeyInfo (for example from
    /// [`crate::ValidatedCsr::public_key_der`]).
    pub public_key_der: Vec<u8>,
    /// Requested lifetime; the result never outlives the signing authority.
    pub ttl: Duration,
    /// DNS SANs; the first also becomes the subject common name.
    pub dns_names: Vec<String>,
}

impl X509Authority {
    /// Mints an X509-SVID leaf at time `now`.
    ///
    /// Profile (X509-SVID §2, §3.1, §4.1, §4.3, §4.4): basicConstraints cA false (critical), keyUsage
    /// digitalSignature, keyEncipherment and keyAgreement (critical), extended key usage
    /// serverAuth and clientAuth, exactly one URI SAN (the SPIFFE ID) followed by the DNS SANs,
    /// subject O=Lanyard with the first DNS name as CN, a random positive 16-byte serial,
    /// notBefore = `now` − 10 s (but not before the authority's own notBefore) and
    /// notAfter = min(`now` + ttl, authority notAfter).
    ///
    /// # Errors
    ///
    /// Input faults ([`CaError::ForeignSpiffeId`], [`CaError::RootSpiffeId`],
    /// [`CaError::InvalidDnsName`], [`CaError::InvalidTtl`], [`CaError::UnsupportedPublicKey`]),
    /// [`CaError::AuthorityNotValid`] when `now` is outside the authority's validity.
    pub fn sign_x509_svid(
        &self,
        params: &SvidParams,
        now: SystemTime,
    ) -> Result<CertificateDer<'static>, CaError> {
        let id = &params.spiffe_id;
        if !id.is_member_of(self.trust_domain()) {
            return Err(CaError::ForeignSpiffeId {
                id: id.to_string(),
                trust_domain: self.trust_domain().to_string(),
            });
        }
        // X509-SVID §3.1: a leaf SPIFFE ID must have a non-root path.
        if id.is_root() {
            return Err(CaError::RootSpiffeId(id.to_string()));
        }
        if params.ttl.is_zero() {
            return Err(CaError::InvalidTtl { what: "x509-svid" });
        }
        for name in &params.dns_names {
            validate_dns_name(name)?;
        }
        if now < self.not_before() || now >= self.not_after() {
            return Err(CaError::AuthorityNotValid {
                serial: self.serial_hex().to_owned(),
                now,
                not_before: self.not_before(),
                not_after: self.not_after(),
            });
        }
        let public_key = public_key_from_spki(&params.public_key_der)?;

        let not_before = now
            .checked_sub(BACKDATE)
            .unwrap_or(now)
            .max(self.not_before());
        let not_after = now
            .checked_add(params.ttl)
            .unwrap_or(self.not_after())
            .min(self.not_after());

        let mut cert = CertificateParams::default();
        cert.not_before = cert_time(not_before)?;
        cert.not_after = cert_time(not_after)?;
        cert.serial_number = Some(random_serial()?);
        cert.distinguished_name = subject_for_leaf(params.dns_names.first());
        cert.subject_alt_names = std::iter::once(Ok(SanType::URI(id.as_str().try_into()?)))
            .chain(
                params
                    .dns_names
                    .iter()
                    .map(|d| Ok(SanType::DnsName(d.as_str().try_into()?))),
            )
            .collect::<Result<_, rcgen::Error>>()?;
        cert.is_ca = IsCa::ExplicitNoCa;
        cert.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ];
        cert.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        cert.use_authority_key_identifier_extension = true;

        let signed = cert.signed_by(&public_key, self.issuer())?;
        Ok(signed.der().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::system_time;
    use crate::key::{KeyType, generate_key_pair};
    use crate::test_support::{
        HOUR, assert_random_positive_16_byte_serial, ca, id, issuer_index, params_for, parse, t0,
        td, uri_and_dns_sans, verify_leaf,
    };
    use rcgen::PublicKeyData;

    #[test]
    fn leaf_has_the_x509_svid_profile() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut params = params_for(&key, "/web", HOUR);
        params.dns_names = vec!["web.example.org".to_owned(), "*.web.example.org".to_owned()];
        let now = t0() + HOUR;
        let leaf = authority.sign_x509_svid(&params, now).unwrap();
        let cert = parse(&leaf);

        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && !bc.value.ca);
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.digital_signature());
        assert!(ku.value.key_encipherment() && ku.value.key_agreement());
        assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
        let eku = cert.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth && eku.value.client_auth);
        assert!(!eku.value.any);

        let (uris, dns) = uri_and_dns_sans(&cert);
        assert_eq!(uris, vec!["spiffe://example.org/web".to_owned()]);
        assert_eq!(dns, params.dns_names);
        assert_eq!(cert.subject().to_string(), "O=Lanyard, CN=web.example.org");
        assert_eq!(cert.issuer(), parse(authority.cert()).subject());
        assert_eq!(cert.public_key().raw, params.public_key_der.as_slice());
        assert_random_positive_16_byte_serial(&cert);

        let validity = cert.validity();
        assert_eq!(system_time(validity.not_before.timestamp()), now - BACKDATE);
        assert_eq!(system_time(validity.not_after.timestamp()), now + HOUR);

        verify_leaf(&leaf, std::slice::from_ref(authority.cert()), now).unwrap();
    }

    #[test]
    fn leaf_without_dns_names_has_no_common_name() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let leaf = authority
            .sign_x509_svid(&params_for(&key, "/db", HOUR), t0())
            .unwrap();
        let cert = parse(&leaf);
        assert_eq!(cert.subject().to_string(), "O=Lanyard");
        assert_eq!(uri_and_dns_sans(&cert).1, Vec::<String>::new());
    }

    #[test]
    fn leaves_verify_for_every_ca_and_leaf_key_type() {
        let leaf_keys: Vec<_> = KeyType::ALL
            .iter()
            .map(|&kt| generate_key_pair(kt).unwrap())
            .collect();
        for ca_type in KeyType::ALL {
            let authority = ca(ca_type);
            for (leaf_key, leaf_type) in leaf_keys.iter().zip(KeyType::ALL) {
                let leaf = authority
                    .sign_x509_svid(&params_for(leaf_key, "/w", HOUR), t0())
                    .unwrap();
                verify_leaf(&leaf, std::slice::from_ref(authority.cert()), t0())
                    .unwrap_or_else(|e| panic!("ca {ca_type}, leaf {leaf_type}: {e:?}"));
            }
        }
    }

    #[test]
    fn leaf_does_not_verify_against_another_ca() {
        let (signer, stranger) = (ca(KeyType::EcP256), ca(KeyType::EcP256));
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let leaf = signer
            .sign_x509_svid(&params_for(&key, "/w", HOUR), t0())
            .unwrap();
        assert!(verify_leaf(&leaf, std::slice::from_ref(stranger.cert()), t0()).is_err());
        let both = [stranger.cert().clone(), signer.cert().clone()];
        assert_eq!(issuer_index(&leaf, &both, t0()), Some(1));
    }

    #[test]
    fn svid_never_outlives_its_ca() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let now = authority.not_after() - HOUR;
        let leaf = authority
            .sign_x509_svid(&params_for(&key, "/w", 10 * HOUR), now)
            .unwrap();
        let not_after = system_time(parse(&leaf).validity().not_after.timestamp());
        assert_eq!(not_after, authority.not_after());
    }

    #[test]
    fn refuses_to_sign_outside_the_ca_validity() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let params = params_for(&key, "/w", HOUR);
        for at in [authority.not_after(), authority.not_before() - HOUR] {
            let err = authority.sign_x509_svid(&params, at).unwrap_err();
            assert!(matches!(err, CaError::AuthorityNotValid { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_ids_outside_the_trust_domain_or_without_a_path() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut params = params_for(&key, "/w", HOUR);

        params.spiffe_id = id("spiffe://other.org/w");
        let err = authority.sign_x509_svid(&params, t0()).unwrap_err();
        assert!(matches!(err, CaError::ForeignSpiffeId { .. }), "{err}");

        params.spiffe_id = id("spiffe://example.org");
        let err = authority.sign_x509_svid(&params, t0()).unwrap_err();
        assert!(matches!(err, CaError::RootSpiffeId(_)), "{err}");
    }

    #[test]
    fn rejects_bad_dns_names_zero_ttl_and_garbage_keys() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let mut params = params_for(&key, "/w", HOUR);
        params.dns_names = vec!["ok.example.org".to_owned(), "not ok".to_owned()];
        let err = authority.sign_x509_svid(&params, t0()).unwrap_err();
        assert!(matches!(err, CaError::InvalidDnsName(_)), "{err}");

        let mut params = params_for(&key, "/w", Duration::ZERO);
        let err = authority.sign_x509_svid(&params, t0()).unwrap_err();
        assert!(matches!(err, CaError::InvalidTtl { .. }), "{err}");

        params.ttl = HOUR;
        params.public_key_der = b"not a key".to_vec();
        let err = authority.sign_x509_svid(&params, t0()).unwrap_err();
        assert!(matches!(err, CaError::UnsupportedPublicKey(_)), "{err}");
    }

    #[test]
    fn leaf_from_a_csr_carries_the_requesters_key() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::Rsa2048).unwrap();
        let csr = crate::csr::make_csr(&key, Some(&id("spiffe://example.org/agent"))).unwrap();
        let validated = crate::csr::parse_csr(&csr).unwrap();
        let params = SvidParams {
            spiffe_id: id("spiffe://example.org/agent"),
            public_key_der: validated.public_key_der,
            ttl: HOUR,
            dns_names: vec![],
        };
        let leaf = authority.sign_x509_svid(&params, t0()).unwrap();
        assert_eq!(
            parse(&leaf).public_key().raw,
            key.subject_public_key_info().as_slice()
        );
        verify_leaf(&leaf, std::slice::from_ref(authority.cert()), t0()).unwrap();
    }

    #[test]
    fn leaf_is_accepted_by_lanyard_spiffe() {
        let authority = ca(KeyType::EcP256);
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let leaf = authority
            .sign_x509_svid(&params_for(&key, "/w", HOUR), t0())
            .unwrap();

        let svid = lanyard_spiffe::X509Svid::parse_der(&leaf, &key.serialize_der()).unwrap();
        assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/w"));

        let bundle = lanyard_spiffe::X509Bundle::new(td(), vec![authority.cert().clone()]);
        let verified = lanyard_spiffe::x509::verify_chain(&[leaf], &bundle, t0()).unwrap();
        assert_eq!(verified, id("spiffe://example.org/w"));
    }
}
