//! The flags describing a federation relationship (`federation create|update`) and their wire
//! form.

use std::path::PathBuf;

use lanyard_proto::spire::api::types;
use lanyard_proto::spire::api::types::federation_relationship::BundleEndpointProfile;
use lanyard_spiffe::{SpiffeId, TrustDomain};

use crate::cmd::bundle::format::{self, BundleFormat};
use crate::cmd::matching::parse_trust_domain;
use crate::output::parse_spiffe_id;

/// How the foreign bundle endpoint is authenticated (SPIFFE Federation, section 5).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// A certificate chaining to the web PKI roots.
    #[value(name = "https_web")]
    HttpsWeb,
    /// An X509-SVID for --endpoint-spiffe-id, checked against a bundle the server holds.
    #[value(name = "https_spiffe")]
    HttpsSpiffe,
}

/// A relationship's fields. SPIRE's camelCase spellings (`--trustDomain`,
/// `--bundleEndpointURL`, ...) are accepted as aliases.
#[derive(clap::Args, Debug)]
pub(crate) struct RelationshipArgs {
    /// The foreign trust domain.
    #[arg(long, alias = "trustDomain", value_parser = parse_trust_domain)]
    pub(crate) trust_domain: TrustDomain,
    /// Where the foreign SPIFFE bundle endpoint serves its bundle (https only).
    #[arg(long, alias = "bundleEndpointURL", value_parser = parse_https_url)]
    pub(crate) bundle_endpoint_url: Option<String>,
    /// How the endpoint is authenticated.
    #[arg(long, alias = "bundleEndpointProfile", value_enum)]
    pub(crate) bundle_endpoint_profile: Option<Profile>,
    /// With https_spiffe: the SPIFFE ID the endpoint's server must present.
    #[arg(long, alias = "endpointSpiffeID", value_parser = parse_spiffe_id)]
    pub(crate) endpoint_spiffe_id: Option<SpiffeId>,
    /// A bundle of the foreign trust domain to store with the relationship (`-` for stdin).
    #[arg(long, alias = "trustDomainBundlePath")]
    pub(crate) trust_domain_bundle_path: Option<PathBuf>,
    /// The format of --trust-domain-bundle-path.
    #[arg(long, alias = "trustDomainBundleFormat", value_enum, default_value_t)]
    pub(crate) trust_domain_bundle_format: BundleFormat,
}

impl RelationshipArgs {
    /// The wire relationship holding the given fields, and the mask naming them.
    ///
    /// # Errors
    ///
    /// A profile without its SPIFFE ID or with one it does not take; an unreadable bundle.
    pub(crate) fn to_wire(
        &self,
    ) -> anyhow::Result<(
        types::FederationRelationship,
        types::FederationRelationshipMask,
    )> {
        let profile = match (self.bundle_endpoint_profile, &self.endpoint_spiffe_id) {
            (None, None) => None,
            (None, Some(_)) => {
                anyhow::bail!("--endpoint-spiffe-id needs --bundle-endpoint-profile https_spiffe")
            }
            (Some(Profile::HttpsWeb), Some(id)) => anyhow::bail!(
                "--endpoint-spiffe-id {id}: only the https_spiffe profile takes one, not https_web"
            ),
            (Some(Profile::HttpsWeb), None) => {
                Some(BundleEndpointProfile::HttpsWeb(types::HttpsWebProfile {}))
            }
            (Some(Profile::HttpsSpiffe), None) => anyhow::bail!(
                "--bundle-endpoint-profile https_spiffe needs --endpoint-spiffe-id: the ID the \
                 endpoint must present"
            ),
            (Some(Profile::HttpsSpiffe), Some(id)) => Some(BundleEndpointProfile::HttpsSpiffe(
                types::HttpsspiffeProfile {
                    endpoint_spiffe_id: id.to_string(),
                },
            )),
        };
        let bundle = self
            .trust_domain_bundle_path
            .as_ref()
            .map(|path| format::read(&self.trust_domain, path, self.trust_domain_bundle_format))
            .transpose()?;
        let mask = types::FederationRelationshipMask {
            bundle_endpoint_url: self.bundle_endpoint_url.is_some(),
            bundle_endpoint_profile: profile.is_some(),
            trust_domain_bundle: bundle.is_some(),
        };
        let relationship = types::FederationRelationship {
            trust_domain: self.trust_domain.name().to_string(),
            bundle_endpoint_url: self.bundle_endpoint_url.clone().unwrap_or_default(),
            bundle_endpoint_profile: profile,
            trust_domain_bundle: bundle,
        };
        Ok((relationship, mask))
    }
}

/// Accepts `https://host[:port][/path]`: SPIFFE Federation serves bundles over HTTPS only.
fn parse_https_url(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("https://").ok_or_else(|| {
        format!("{s:?} is not a bundle endpoint URL: it must start with https://")
    })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty()
        || host.starts_with(':')
        || host.contains('@')
        || s.contains(char::is_whitespace)
    {
        return Err(format!(
            "{s:?} is not a bundle endpoint URL: it needs a host (https://host[:port]/path), \
             without user info or spaces"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: RelationshipArgs,
    }

    fn parse(args: &[&str]) -> Result<RelationshipArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn https_spiffe_carries_its_endpoint_id() {
        let a = parse(&[
            "--trustDomain",
            "other.org",
            "--bundleEndpointURL",
            "https://other.org:8443/bundle",
            "--bundleEndpointProfile",
            "https_spiffe",
            "--endpointSpiffeID",
            "spiffe://other.org/spire/server",
        ])
        .unwrap();
        let (r, mask) = a.to_wire().unwrap();
        assert_eq!(
            r.bundle_endpoint_profile,
            Some(BundleEndpointProfile::HttpsSpiffe(
                types::HttpsspiffeProfile {
                    endpoint_spiffe_id: "spiffe://other.org/spire/server".into()
                }
            ))
        );
        assert!(mask.bundle_endpoint_url && mask.bundle_endpoint_profile);
        assert!(!mask.trust_domain_bundle);
    }

    #[test]
    fn profile_and_endpoint_id_must_agree() {
        let base = ["--trust-domain", "other.org", "--bundle-endpoint-profile"];
        let web = [
            &base[..],
            &["https_web", "--endpoint-spiffe-id", "spiffe://other.org/s"],
        ]
        .concat();
        let err = parse(&web).unwrap().to_wire().unwrap_err().to_string();
        assert!(
            err.contains("spiffe://other.org/s") && err.contains("https_web"),
            "{err}"
        );
        let spiffe = [&base[..], &["https_spiffe"]].concat();
        let err = parse(&spiffe).unwrap().to_wire().unwrap_err().to_string();
        assert!(err.contains("--endpoint-spiffe-id"), "{err}");
    }

    #[test]
    fn refuses_bad_urls_and_profiles_naming_them() {
        for url in ["http://other.org", "https://", "https://:8443/x", "ftp://x"] {
            let err = parse(&["--trust-domain", "o.org", "--bundle-endpoint-url", url])
                .unwrap_err()
                .to_string();
            assert!(err.contains(url), "{err}");
        }
        let err = parse(&[
            "--trust-domain",
            "o.org",
            "--bundle-endpoint-profile",
            "https-web",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("https-web") && err.contains("https_web"),
            "{err}"
        );
    }
}
