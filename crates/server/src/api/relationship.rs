//! The rules a federation relationship from the wire must follow: an `https://` endpoint
//! with a host, a profile (https_spiffe with the endpoint's SPIFFE ID), and a bundle, when
//! given, of the relationship's own trust domain.

use lanyard_datastore::{BundleEndpointProfile, FederationRelationship, StoredBundle};
use lanyard_proto::spire::api::types::{
    self, federation_relationship::BundleEndpointProfile as Wire,
};
use lanyard_spiffe::{SpiffeId, TrustDomain};

use crate::bundles::{self, federated_trust_domain};

/// A relationship from the wire, and the federated bundle it carries (if any).
pub(super) fn parse(
    wire: &types::FederationRelationship,
    own: &TrustDomain,
) -> Result<(FederationRelationship, Option<StoredBundle>), String> {
    let td = federated_trust_domain("trust_domain", &wire.trust_domain, own)?;
    let relationship = FederationRelationship {
        bundle_endpoint_url: endpoint_url(&wire.bundle_endpoint_url)?,
        profile: profile(wire.bundle_endpoint_profile.as_ref())?,
        trust_domain: td.clone(),
    };
    let bundle = trust_domain_bundle(wire, &td, own)?;
    Ok((relationship, bundle))
}

/// The bundle endpoint URL: `https://` with a host (SPIFFE Federation, section 4: endpoints
/// are served over HTTPS).
pub(super) fn endpoint_url(url: &str) -> Result<String, String> {
    let rule = "it must be an https:// URL with a host, such as \
                https://spire.example.org:8443/bundle";
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("bundle_endpoint_url {url:?}: {rule}"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        // An IPv6 literal: the host is what the brackets hold.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("bundle_endpoint_url {url:?}: {rule}"));
    }
    Ok(url.to_owned())
}

pub(super) fn profile(wire: Option<&Wire>) -> Result<BundleEndpointProfile, String> {
    match wire {
        None => Err("bundle_endpoint_profile is missing: choose https_web or https_spiffe".into()),
        Some(Wire::HttpsWeb(_)) => Ok(BundleEndpointProfile::HttpsWeb),
        Some(Wire::HttpsSpiffe(p)) => {
            if p.endpoint_spiffe_id.is_empty() {
                return Err(
                    "bundle_endpoint_profile.https_spiffe.endpoint_spiffe_id is \
                            missing: the https_spiffe profile authenticates the endpoint by its \
                            SPIFFE ID"
                        .into(),
                );
            }
            let id = SpiffeId::parse(&p.endpoint_spiffe_id).map_err(|e| {
                format!(
                    "bundle_endpoint_profile.https_spiffe.endpoint_spiffe_id {:?}: {e}",
                    p.endpoint_spiffe_id
                )
            })?;
            Ok(BundleEndpointProfile::HttpsSpiffe {
                endpoint_spiffe_id: id,
            })
        }
    }
}

/// The relationship's `trust_domain_bundle`, which must be the bundle of the relationship's
/// own trust domain.
pub(super) fn trust_domain_bundle(
    wire: &types::FederationRelationship,
    td: &TrustDomain,
    own: &TrustDomain,
) -> Result<Option<StoredBundle>, String> {
    let Some(b) = &wire.trust_domain_bundle else {
        return Ok(None);
    };
    let bundle =
        bundles::federated_bundle(b, own).map_err(|e| format!("trust_domain_bundle.{e}"))?;
    if &bundle.trust_domain != td {
        return Err(format!(
            "trust_domain_bundle.trust_domain {:?}: it must be the relationship's trust domain {td}",
            b.trust_domain
        ));
    }
    Ok(Some(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_must_be_https_with_a_host() {
        for good in [
            "https://spire.example.org",
            "https://spire.example.org:8443/bundle",
            "https://[::1]:8443/",
        ] {
            endpoint_url(good).unwrap();
        }
        for bad in [
            "http://spire.example.org",
            "https://",
            "https:///path",
            "https://:443",
            "spire.example.org",
        ] {
            let err = endpoint_url(bad).unwrap_err();
            assert!(err.contains("https:// URL with a host"), "{bad}: {err}");
        }
    }

    #[test]
    fn https_spiffe_needs_an_endpoint_id() {
        let err = profile(Some(&Wire::HttpsSpiffe(
            types::HttpsspiffeProfile::default(),
        )))
        .unwrap_err();
        assert!(err.contains("endpoint_spiffe_id is missing"), "{err}");
        assert!(profile(None).unwrap_err().contains("missing"));
    }
}
