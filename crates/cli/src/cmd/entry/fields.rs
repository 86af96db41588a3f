//! The entry field flags `entry create` and `entry update` share, and their conversion to the
//! wire entry plus the mask of the fields that were given.

use std::time::Duration;

use anyhow::Context;
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

use crate::cmd::matching::{parse_trust_domain, wire_selector};
use crate::duration;
use crate::output::{parse_selector, parse_spiffe_id, wire_id};

/// Every field of an entry as a flag. SPIRE's camelCase spellings (`--spiffeID`, `--parentID`,
/// `--x509SVIDTTL`, `--entryExpiry`, ...) are accepted as aliases.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct EntryFields {
    /// The identity workloads matching the selectors receive.
    #[arg(long, alias = "spiffeID", value_parser = parse_spiffe_id)]
    pub(crate) spiffe_id: Option<SpiffeId>,
    /// The agent (or alias) ID under which the selectors are checked.
    #[arg(long, alias = "parentID", value_parser = parse_spiffe_id, conflicts_with = "node")]
    pub(crate) parent_id: Option<SpiffeId>,
    /// A `type:value` selector; repeat for several (all must match).
    #[arg(long = "selector", value_parser = parse_selector)]
    pub(crate) selectors: Vec<Selector>,
    /// X509-SVID lifetime (seconds or with a unit); the server default when absent.
    #[arg(long, alias = "x509SVIDTTL", value_parser = duration::parse)]
    pub(crate) x509_svid_ttl: Option<Duration>,
    /// JWT-SVID lifetime (seconds or with a unit); the server default when absent.
    #[arg(long, alias = "jwtSVIDTTL", value_parser = duration::parse)]
    pub(crate) jwt_svid_ttl: Option<Duration>,
    /// DNS SAN for the X509-SVID; repeat for several.
    #[arg(long = "dns")]
    pub(crate) dns_names: Vec<String>,
    /// A foreign trust domain whose bundle the workload also gets (its bundle must be stored
    /// first, with `bundle set` or a federation relationship); repeat for several.
    #[arg(long, alias = "federatesWith", value_parser = parse_trust_domain)]
    pub(crate) federates_with: Vec<TrustDomain>,
    /// Holders of this identity may call admin RPCs (`--admin=false` clears it on update).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub(crate) admin: Option<bool>,
    /// Holders of this identity may mint downstream CAs (`--downstream=false` clears it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub(crate) downstream: Option<bool>,
    /// Deliver the SVID through an SVID store instead of the Workload API.
    #[arg(
        long,
        alias = "storeSVID",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub(crate) store_svid: Option<bool>,
    /// A label returned with the SVID so a workload with several identities can choose.
    #[arg(long)]
    pub(crate) hint: Option<String>,
    /// A node alias: the parent is the server, the selectors are node selectors.
    #[arg(long)]
    pub(crate) node: bool,
    /// Unix time after which the entry may be pruned.
    #[arg(long, visible_alias = "entry-expiry", alias = "entryExpiry")]
    pub(crate) expires_at: Option<i64>,
}

/// The flag ids of [`EntryFields`], for `conflicts_with_all` on `--data`.
pub(crate) const FIELD_IDS: &[&str] = &[
    "spiffe_id",
    "parent_id",
    "selectors",
    "x509_svid_ttl",
    "jwt_svid_ttl",
    "dns_names",
    "federates_with",
    "admin",
    "downstream",
    "store_svid",
    "hint",
    "node",
    "expires_at",
];

impl EntryFields {
    /// The wire entry holding the given fields (others at their zero value) and the mask naming
    /// exactly the given ones.
    ///
    /// # Errors
    ///
    /// A TTL of zero or beyond `i32` seconds, `--node` without `--spiffe-id`.
    pub(crate) fn to_wire(&self) -> anyhow::Result<(types::Entry, types::EntryMask)> {
        let parent_id = if self.node {
            let spiffe_id = self
                .spiffe_id
                .as_ref()
                .context("--node needs --spiffe-id: the parent is that trust domain's server")?;
            Some(server_id(&spiffe_id.trust_domain())?)
        } else {
            self.parent_id.clone()
        };
        let entry = types::Entry {
            spiffe_id: self.spiffe_id.as_ref().map(wire_id),
            parent_id: parent_id.as_ref().map(wire_id),
            selectors: self.selectors.iter().map(wire_selector).collect(),
            x509_svid_ttl: ttl("--x509-svid-ttl", self.x509_svid_ttl)?,
            jwt_svid_ttl: ttl("--jwt-svid-ttl", self.jwt_svid_ttl)?,
            dns_names: self.dns_names.clone(),
            federates_with: self
                .federates_with
                .iter()
                .map(|td| td.name().to_string())
                .collect(),
            admin: self.admin.unwrap_or(false),
            downstream: self.downstream.unwrap_or(false),
            store_svid: self.store_svid.unwrap_or(false),
            hint: self.hint.clone().unwrap_or_default(),
            expires_at: self.expires_at.unwrap_or(0),
            ..Default::default()
        };
        let mask = types::EntryMask {
            spiffe_id: self.spiffe_id.is_some(),
            parent_id: parent_id.is_some(),
            selectors: !self.selectors.is_empty(),
            x509_svid_ttl: self.x509_svid_ttl.is_some(),
            jwt_svid_ttl: self.jwt_svid_ttl.is_some(),
            dns_names: !self.dns_names.is_empty(),
            federates_with: !self.federates_with.is_empty(),
            admin: self.admin.is_some(),
            downstream: self.downstream.is_some(),
            store_svid: self.store_svid.is_some(),
            hint: self.hint.is_some(),
            expires_at: self.expires_at.is_some(),
            ..Default::default()
        };
        Ok((entry, mask))
    }
}

/// Every field an update may overwrite; for `--data`, whose entries are written out in full.
pub(crate) fn full_mask() -> types::EntryMask {
    types::EntryMask {
        spiffe_id: true,
        parent_id: true,
        selectors: true,
        x509_svid_ttl: true,
        federates_with: true,
        admin: true,
        downstream: true,
        expires_at: true,
        dns_names: true,
        store_svid: true,
        jwt_svid_ttl: true,
        hint: true,
        // Kept by the server: the revision counts updates, creation time never changes.
        revision_number: false,
        created_at: false,
    }
}

/// Whether the mask names no field.
pub(crate) fn is_empty(mask: &types::EntryMask) -> bool {
    *mask == types::EntryMask::default()
}

/// `spiffe://<td>/spire/server`, the parent of node alias entries.
fn server_id(td: &TrustDomain) -> anyhow::Result<SpiffeId> {
    SpiffeId::from_segments(td, &["spire", "server"]).map_err(|e| anyhow::anyhow!("server ID: {e}"))
}

/// A TTL flag in seconds; 0 when absent (the server default).
fn ttl(flag: &str, d: Option<Duration>) -> anyhow::Result<i32> {
    match d {
        None => Ok(0),
        Some(d) if d.as_secs() == 0 => anyhow::bail!(
            "{flag} {}s: must be at least 1s; leave it out for the server default",
            d.as_secs()
        ),
        Some(d) => duration::to_i32_seconds(flag, d).map_err(anyhow::Error::msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        fields: EntryFields,
    }

    fn parse(args: &[&str]) -> Result<EntryFields, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.fields)
    }

    #[test]
    fn mask_names_exactly_the_given_flags() {
        let f = parse(&[
            "--spiffe-id",
            "spiffe://example.org/w",
            "--admin",
            "--hint",
            "",
        ])
        .unwrap();
        let (entry, mask) = f.to_wire().unwrap();
        assert!(entry.admin);
        assert_eq!(
            mask,
            types::EntryMask {
                spiffe_id: true,
                admin: true,
                hint: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn admin_false_clears_and_is_masked() {
        let (entry, mask) = parse(&["--admin=false"]).unwrap().to_wire().unwrap();
        assert!(!entry.admin && mask.admin);
    }

    #[test]
    fn spire_camel_case_aliases_are_accepted() {
        let f = parse(&[
            "--spiffeID",
            "spiffe://example.org/w",
            "--parentID",
            "spiffe://example.org/a",
            "--x509SVIDTTL",
            "60",
            "--jwtSVIDTTL",
            "5m",
            "--federatesWith",
            "other.org",
            "--entryExpiry",
            "1900000000",
            "--storeSVID",
        ])
        .unwrap();
        let (entry, _) = f.to_wire().unwrap();
        assert_eq!((entry.x509_svid_ttl, entry.jwt_svid_ttl), (60, 300));
        assert_eq!(entry.federates_with, ["other.org"]);
        assert_eq!(entry.expires_at, 1_900_000_000);
        assert!(entry.store_svid);
    }

    #[test]
    fn node_makes_the_server_the_parent() {
        let f = parse(&["--spiffe-id", "spiffe://example.org/n", "--node"]).unwrap();
        let (entry, mask) = f.to_wire().unwrap();
        assert_eq!(entry.parent_id.unwrap().path, "/spire/server");
        assert!(mask.parent_id);
    }

    #[test]
    fn rejects_bad_values_naming_them() {
        let err = parse(&["--spiffe-id", "http://x/y"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://x/y"), "{err}");
        let err = parse(&["--selector", "nocolon"]).unwrap_err().to_string();
        assert!(err.contains("nocolon"), "{err}");
        let err = parse(&["--federates-with", "UPPER.org"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("UPPER.org"), "{err}");
        let err = parse(&["--x509-svid-ttl", "0"])
            .unwrap()
            .to_wire()
            .unwrap_err();
        assert!(err.to_string().contains("--x509-svid-ttl"), "{err}");
    }
}
