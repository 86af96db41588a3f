//! Trust bundles on the wire and in the store: the rules a bundle from a caller must follow
//! (CA certificates that parse, JWT keys that parse, not our own trust domain for federated
//! bundles) and the conversions both ways. Messages name the field, the value and the rule.

use lanyard_datastore::{StoredBundle, StoredJwtKey};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::TrustDomain;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::validate;

/// A federated bundle from the wire. `own` is the server's trust domain, which a federated
/// bundle may not claim: its bundle is managed by the CA and AppendBundle.
pub(crate) fn federated_bundle(
    w: &types::Bundle,
    own: &TrustDomain,
) -> Result<StoredBundle, String> {
    let td = federated_trust_domain("trust_domain", &w.trust_domain, own)?;
    let x509 = x509_authorities(&w.x509_authorities)?;
    if w.refresh_hint < 0 {
        return Err(format!(
            "refresh_hint {}: must not be negative (0 means no hint)",
            w.refresh_hint
        ));
    }
    let mut b = StoredBundle::new(td, x509.iter().map(|(c, _)| c.clone()).collect());
    b.tainted_x509 = x509
        .into_iter()
        .filter(|(_, t)| *t)
        .map(|(c, _)| c)
        .collect();
    b.jwt_authorities = jwt_keys(&w.jwt_authorities)?;
    b.refresh_hint = w.refresh_hint;
    b.sequence = w.sequence_number;
    Ok(b)
}

/// A trust domain name naming a foreign trust domain.
pub(crate) fn federated_trust_domain(
    field: &str,
    name: &str,
    own: &TrustDomain,
) -> Result<TrustDomain, String> {
    let td = validate::trust_domain(field, name)?;
    if &td == own {
        return Err(format!(
            "{field} {name:?} is this server's own trust domain: its bundle is not a federated \
             one (use AppendBundle to add authorities to it)"
        ));
    }
    Ok(td)
}

/// X.509 authorities from the wire with their taint flags; each must be one DER certificate
/// of a CA (basicConstraints CA set).
pub(crate) fn x509_authorities(
    certs: &[types::X509Certificate],
) -> Result<Vec<(Vec<u8>, bool)>, String> {
    let mut out: Vec<(Vec<u8>, bool)> = Vec::with_capacity(certs.len());
    for (i, c) in certs.iter().enumerate() {
        check_ca_certificate(&c.asn1).map_err(|rule| format!("x509_authorities[{i}]: {rule}"))?;
        if !out.iter().any(|(seen, _)| *seen == c.asn1) {
            out.push((c.asn1.clone(), c.tainted));
        }
    }
    Ok(out)
}

/// JWT keys from the wire: a key ID and a public key that parses (PKIX DER).
pub(crate) fn jwt_keys(keys: &[types::JwtKey]) -> Result<Vec<StoredJwtKey>, String> {
    let mut out: Vec<StoredJwtKey> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if k.key_id.is_empty() {
            return Err(format!(
                "jwt_authorities[{i}].key_id is empty: every JWT key needs an ID"
            ));
        }
        lanyard_spiffe::jwt::JwtPublicKey::from_spki_der(&k.public_key).map_err(|e| {
            format!(
                "jwt_authorities[{i}] (key_id {:?}).public_key: {e}",
                k.key_id
            )
        })?;
        if k.expires_at < 0 {
            return Err(format!(
                "jwt_authorities[{i}].expires_at {}: must not be negative (0 means never)",
                k.expires_at
            ));
        }
        if out.iter().any(|o| o.key_id == k.key_id) {
            return Err(format!(
                "jwt_authorities[{i}].key_id {:?} appears twice: key IDs must be unique",
                k.key_id
            ));
        }
        out.push(StoredJwtKey {
            key_id: k.key_id.clone(),
            public_key: k.public_key.clone(),
            expires_at: k.expires_at,
            tainted: k.tainted,
        });
    }
    Ok(out)
}

/// A stored bundle in the wire form.
pub(crate) fn wire_bundle(b: &StoredBundle) -> types::Bundle {
    types::Bundle {
        trust_domain: b.trust_domain.name().to_string(),
        x509_authorities: b
            .x509_authorities
            .iter()
            .map(|asn1| types::X509Certificate {
                tainted: b.tainted_x509.contains(asn1),
                asn1: asn1.clone(),
            })
            .collect(),
        jwt_authorities: b.jwt_authorities.iter().map(wire_jwt_key).collect(),
        refresh_hint: b.refresh_hint,
        sequence_number: b.sequence,
    }
}

/// A stored JWT key in the wire form.
pub(crate) fn wire_jwt_key(k: &StoredJwtKey) -> types::JwtKey {
    types::JwtKey {
        public_key: k.public_key.clone(),
        key_id: k.key_id.clone(),
        expires_at: k.expires_at,
        tainted: k.tainted,
    }
}

fn check_ca_certificate(der: &[u8]) -> Result<(), String> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes follow the certificate: give one certificate per entry",
            rest.len()
        ));
    }
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Ok(()),
        Ok(_) => Err(format!(
            "certificate {} is not a CA certificate: basicConstraints CA must be set",
            cert.subject()
        )),
        Err(e) => Err(format!("basicConstraints extension does not parse: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::new("example.org").unwrap()
    }

    #[test]
    fn refuses_own_trust_domain_garbage_certificates_and_bad_keys() {
        let mut w = types::Bundle {
            trust_domain: "spiffe://example.org".into(),
            ..Default::default()
        };
        let err = federated_bundle(&w, &td()).unwrap_err();
        assert!(err.contains("own trust domain"), "{err}");

        w.trust_domain = "other.org".into();
        w.x509_authorities = vec![types::X509Certificate {
            asn1: vec![1, 2, 3],
            tainted: false,
        }];
        let err = federated_bundle(&w, &td()).unwrap_err();
        assert!(
            err.starts_with("x509_authorities[0]: not a DER X.509 certificate"),
            "{err}"
        );

        w.x509_authorities.clear();
        w.jwt_authorities = vec![types::JwtKey {
            key_id: "k1".into(),
            public_key: vec![0; 8],
            ..Default::default()
        }];
        let err = federated_bundle(&w, &td()).unwrap_err();
        assert!(err.contains("(key_id \"k1\").public_key"), "{err}");
    }

    #[test]
    fn accepts_a_ca_certificate_and_refuses_a_leaf() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        check_ca_certificate(ca.der()).unwrap();

        let leaf = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = check_ca_certificate(leaf.der()).unwrap_err();
        assert!(err.contains("not a CA certificate"), "{err}");
    }
}
