//! `lanyard server entry show|count` and the filter flags they share (SPIRE's `entry show`
//! filters).

use lanyard_proto::spire::api::server::entry::v1::{
    CountEntriesRequest, GetEntryRequest, ListEntriesRequest, count_entries_request,
    list_entries_request,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};
use tonic::transport::Channel;

use super::{client, print_entries};
use crate::cmd::OutputFormat;
use crate::cmd::admin_out::{self, all_pages, plural};
use crate::cmd::matching::{MatchMode, federates_with_match, parse_trust_domain, selector_match};
use crate::cmd::server::SocketArg;
use crate::output::{self, out, parse_selector, parse_spiffe_id, wire_id};
use lanyard_proto::spire::api::server::entry::v1::entry_client::EntryClient;

/// Entries are fetched in pages of this many.
const PAGE_SIZE: i32 = 500;

/// Filters of `entry show` and `entry count`; every one given narrows the result.
#[derive(clap::Args, Debug)]
pub(crate) struct EntryFilter {
    /// Only entries with this SPIFFE ID.
    #[arg(long, alias = "spiffeID", value_parser = parse_spiffe_id)]
    spiffe_id: Option<SpiffeId>,
    /// Only entries with this parent ID.
    #[arg(long, alias = "parentID", value_parser = parse_spiffe_id)]
    parent_id: Option<SpiffeId>,
    /// Only entries whose selectors relate to these as --match-selectors-on says; repeat.
    #[arg(long = "selector", value_parser = parse_selector)]
    selectors: Vec<Selector>,
    /// How entry selectors must relate to the --selector set.
    #[arg(long, alias = "matchSelectorsOn", value_enum, default_value_t)]
    match_selectors_on: MatchMode,
    /// Only entries federating with these trust domains, as --match-federates-with-on says.
    #[arg(long, alias = "federatesWith", value_parser = parse_trust_domain)]
    federates_with: Vec<TrustDomain>,
    /// How an entry's federated trust domains must relate to the --federates-with set.
    #[arg(long, alias = "matchFederatesWithOn", value_enum, default_value_t)]
    match_federates_with_on: MatchMode,
    /// Only entries with this hint.
    #[arg(long)]
    hint: Option<String>,
    /// Only downstream entries; without it, only the others (as SPIRE's CLI, which always
    /// filters on this flag).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    downstream: Option<bool>,
}

/// The flag ids of [`EntryFilter`], which `--entry-id` excludes.
const FILTER_IDS: &[&str] = &[
    "spiffe_id",
    "parent_id",
    "selectors",
    "federates_with",
    "hint",
    "downstream",
];

#[derive(clap::Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Show only this entry.
    #[arg(long, alias = "entryID", conflicts_with_all = FILTER_IDS)]
    entry_id: Option<String>,
    #[command(flatten)]
    filter: EntryFilter,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    filter: EntryFilter,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) output: OutputFormat,
}

impl EntryFilter {
    fn to_list(&self) -> list_entries_request::Filter {
        list_entries_request::Filter {
            by_spiffe_id: self.spiffe_id.as_ref().map(wire_id),
            by_parent_id: self.parent_id.as_ref().map(wire_id),
            by_selectors: selector_match(&self.selectors, self.match_selectors_on),
            by_federates_with: federates_with_match(
                &self.federates_with,
                self.match_federates_with_on,
            ),
            by_hint: self.hint.clone(),
            // SPIRE's `entry show` and `entry count` always send this filter, so without
            // `-downstream` they leave downstream entries out; ours match them.
            by_downstream: Some(self.downstream.unwrap_or(false)),
        }
    }

    /// The same filter in CountEntries' message, which has the same fields.
    fn to_count(&self) -> count_entries_request::Filter {
        let f = self.to_list();
        count_entries_request::Filter {
            by_spiffe_id: f.by_spiffe_id,
            by_parent_id: f.by_parent_id,
            by_selectors: f.by_selectors,
            by_federates_with: f.by_federates_with,
            by_hint: f.by_hint,
            by_downstream: f.by_downstream,
        }
    }
}

impl ShowArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let mut client = client(&self.socket).await?;
        let mut entries = match &self.entry_id {
            Some(id) => vec![
                client
                    .get_entry(GetEntryRequest {
                        id: id.clone(),
                        output_mask: None,
                    })
                    .await
                    .map_err(|s| {
                        crate::cmd::admin_out::rpc_error(&format!("cannot show entry {id:?}"), s)
                    })?
                    .into_inner(),
            ],
            None => list_all(&mut client, self.filter.to_list()).await?,
        };
        sort_like_spire(&mut entries);
        print_entries(self.output, &entries)
    }
}

impl CountArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let count = client(&self.socket)
            .await?
            .count_entries(CountEntriesRequest {
                filter: Some(self.filter.to_count()),
            })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot count entries", s))?
            .into_inner()
            .count;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({ "count": count }))?,
            OutputFormat::Pretty => out!(
                "{}",
                plural(
                    admin_out::count(count),
                    "registration entry",
                    "registration entries"
                )
            ),
        }
        Ok(())
    }
}

/// Orders entries, and the selectors of each, as SPIRE's `entry show` does before printing in
/// either format: selectors by type then value; entries by SPIFFE ID (trust domain, then
/// path), parent ID likewise, X.509-SVID TTL, JWT-SVID TTL, then selectors (fewer first, then
/// pairwise). DNS names and federated trust domains keep the server's order.
fn sort_like_spire(entries: &mut [types::Entry]) {
    fn selector_key(s: &types::Selector) -> (&str, &str) {
        (&s.r#type, &s.value)
    }
    fn id_key(id: Option<&types::Spiffeid>) -> (&str, &str) {
        id.map_or(("", ""), |id| (&id.trust_domain, &id.path))
    }
    for e in entries.iter_mut() {
        e.selectors
            .sort_by(|a, b| selector_key(a).cmp(&selector_key(b)));
    }
    entries.sort_by(|a, b| {
        id_key(a.spiffe_id.as_ref())
            .cmp(&id_key(b.spiffe_id.as_ref()))
            .then_with(|| id_key(a.parent_id.as_ref()).cmp(&id_key(b.parent_id.as_ref())))
            .then(a.x509_svid_ttl.cmp(&b.x509_svid_ttl))
            .then(a.jwt_svid_ttl.cmp(&b.jwt_svid_ttl))
            .then(a.selectors.len().cmp(&b.selectors.len()))
            .then_with(|| {
                let a = a.selectors.iter().map(selector_key);
                a.cmp(b.selectors.iter().map(selector_key))
            })
    });
}

async fn list_all(
    client: &mut EntryClient<Channel>,
    filter: list_entries_request::Filter,
) -> anyhow::Result<Vec<types::Entry>> {
    all_pages(async |page_token| {
        let page = client
            .list_entries(ListEntriesRequest {
                filter: Some(filter.clone()),
                output_mask: None,
                page_size: PAGE_SIZE,
                page_token,
            })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot list entries", s))?
            .into_inner();
        Ok((page.entries, page.next_page_token))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ShowArgs,
    }

    fn parse(args: &[&str]) -> Result<ShowArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn every_filter_reaches_the_request() {
        let a = parse(&[
            "--spiffeID",
            "spiffe://example.org/w",
            "--parent-id",
            "spiffe://example.org/a",
            "--selector",
            "unix:uid:1",
            "--matchSelectorsOn",
            "any",
            "--federates-with",
            "other.org",
            "--match-federates-with-on",
            "exact",
            "--hint",
            "h",
            "--downstream",
        ])
        .unwrap();
        let f = a.filter.to_list();
        assert_eq!(f.by_spiffe_id.unwrap().path, "/w");
        assert_eq!(f.by_parent_id.unwrap().path, "/a");
        assert_eq!(f.by_selectors.unwrap().r#match, 3);
        assert_eq!(f.by_federates_with.unwrap().r#match, 0);
        assert_eq!(f.by_hint.as_deref(), Some("h"));
        assert_eq!(f.by_downstream, Some(true));
    }

    #[test]
    fn selector_matching_defaults_to_superset_like_spire() {
        let a = parse(&["--selector", "unix:uid:1"]).unwrap();
        assert_eq!(a.filter.to_list().by_selectors.unwrap().r#match, 2);
    }

    #[test]
    fn unknown_match_mode_is_refused_naming_it() {
        let err = parse(&["--match-selectors-on", "most"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("most") && err.contains("superset"), "{err}");
    }

    #[test]
    fn without_downstream_flag_only_other_entries_are_asked_for() {
        assert_eq!(
            parse(&[]).unwrap().filter.to_list().by_downstream,
            Some(false)
        );
        let off = parse(&["--downstream=false"]).unwrap();
        assert_eq!(off.filter.to_list().by_downstream, Some(false));
    }

    fn entry(
        id: &str,
        spiffe: (&str, &str),
        parent: &str,
        selectors: &[(&str, &str)],
    ) -> types::Entry {
        let wire = |td: &str, path: &str| types::Spiffeid {
            trust_domain: td.into(),
            path: path.into(),
        };
        types::Entry {
            id: id.into(),
            spiffe_id: Some(wire(spiffe.0, spiffe.1)),
            parent_id: Some(wire("example.org", parent)),
            selectors: selectors
                .iter()
                .map(|(t, v)| types::Selector {
                    r#type: (*t).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_and_selectors_are_sorted_as_spire_sorts_them() {
        let mut entries = vec![
            entry("5", ("example.org", "/b"), "/p", &[("unix", "uid:1")]),
            entry("4", ("example.org", "/a"), "/q", &[("unix", "uid:1")]),
            entry(
                "3",
                ("example.org", "/a"),
                "/p",
                &[("unix", "uid:2"), ("k8s", "ns:x")],
            ),
            entry("2", ("example.org", "/a"), "/p", &[("unix", "uid:9")]),
            entry("1", ("a.org", "/z"), "/p", &[("unix", "uid:1")]),
        ];
        let mut ttl = entry("6", ("example.org", "/a"), "/p", &[("unix", "uid:0")]);
        ttl.x509_svid_ttl = 60;
        entries.push(ttl);
        sort_like_spire(&mut entries);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "6", "4", "5"]);
        let third: Vec<&str> = entries[2]
            .selectors
            .iter()
            .map(|s| s.r#type.as_str())
            .collect();
        assert_eq!(third, ["k8s", "unix"]);
    }

    #[test]
    fn entry_id_excludes_filters() {
        assert!(parse(&["--entry-id", "x", "--hint", "h"]).is_err());
        assert!(parse(&["--entry-id", "x"]).is_ok());
    }
}
