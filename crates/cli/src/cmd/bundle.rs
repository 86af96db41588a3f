//! `lanyard server bundle show|list|set|delete|count`: the server's own bundle and the bundles
//! of foreign trust domains, in PEM or as SPIFFE bundle documents.

use std::path::PathBuf;

use lanyard_proto::spire::api::server::bundle::v1::{
    BatchDeleteFederatedBundleRequest, BatchSetFederatedBundleRequest, CountBundlesRequest,
    GetBundleRequest, GetFederatedBundleRequest, ListFederatedBundlesRequest,
    batch_delete_federated_bundle_request::Mode, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::TrustDomain;
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{self, all_pages, only_result, plural};
use super::matching::parse_trust_domain;
use super::server::SocketArg;
use super::wire_json::{bundle_json, list_json, status_json};
use crate::admin;
use crate::output::{self, out, out_raw};

pub(crate) mod format;
mod go_order;

use format::BundleFormat;

/// Bundles are fetched in pages of this many.
const PAGE_SIZE: i32 = 100;

/// Trust bundle commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum BundleCommand {
    /// Print the server's own trust bundle.
    Show(ShowArgs),
    /// Print the bundles of foreign trust domains (all, or one with --id).
    List(ListArgs),
    /// Create or replace the bundle of a foreign trust domain.
    Set(SetArgs),
    /// Delete the bundle of a foreign trust domain.
    Delete(DeleteArgs),
    /// Count the bundles the server holds, its own included.
    Count(CountArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// How to write the bundle (with --output pretty).
    #[arg(long, value_enum, default_value_t)]
    format: BundleFormat,
    /// Output format: the bundle as --format says, or SPIRE's API JSON.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Only this foreign trust domain.
    #[arg(long, alias = "trust-domain", value_parser = parse_trust_domain)]
    id: Option<TrustDomain>,
    /// How to write each bundle (with --output pretty).
    #[arg(long, value_enum, default_value_t)]
    format: BundleFormat,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The foreign trust domain the bundle belongs to.
    #[arg(long, alias = "trust-domain", value_parser = parse_trust_domain)]
    id: TrustDomain,
    /// The bundle file; standard input when absent or `-`.
    #[arg(long, default_value = "-")]
    path: PathBuf,
    /// The file's format.
    #[arg(long, value_enum, default_value_t)]
    format: BundleFormat,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// What happens to entries federating with a deleted bundle (SPIRE's `-mode`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum DeleteMode {
    /// Refuse while entries federate with the trust domain.
    #[default]
    Restrict,
    /// Delete those entries too.
    Delete,
    /// Remove the trust domain from those entries and keep them.
    Dissociate,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The foreign trust domain whose bundle goes.
    #[arg(long, alias = "trust-domain", value_parser = parse_trust_domain)]
    id: TrustDomain,
    /// What happens to entries federating with it.
    #[arg(long, value_enum, default_value_t)]
    mode: DeleteMode,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl BundleCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            BundleCommand::Show(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            BundleCommand::List(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            BundleCommand::Set(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            BundleCommand::Delete(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            BundleCommand::Count(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
        }
    }
}

async fn client(socket: &SocketArg) -> anyhow::Result<BundleClient<Channel>> {
    Ok(BundleClient::new(admin::connect(&socket.socket).await?))
}

/// One bundle as `--output` and `--format` say.
fn print_bundle(
    b: &types::Bundle,
    output_format: OutputFormat,
    format: BundleFormat,
) -> anyhow::Result<()> {
    match output_format {
        OutputFormat::Json => output::print_json(&bundle_json(b)),
        OutputFormat::Pretty => {
            out_raw!("{}", format::render(b, format)?);
            Ok(())
        }
    }
}

impl ShowArgs {
    async fn run(self) -> anyhow::Result<()> {
        let bundle = client(&self.socket)
            .await?
            .get_bundle(GetBundleRequest::default())
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot read the bundle", s))?
            .into_inner();
        print_bundle(&bundle, self.output, self.format)
    }
}

impl ListArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut client = client(&self.socket).await?;
        if let Some(td) = &self.id {
            let bundle = client
                .get_federated_bundle(GetFederatedBundleRequest {
                    trust_domain: td.name().to_string(),
                    output_mask: None,
                })
                .await
                .map_err(|s| {
                    crate::cmd::admin_out::rpc_error(&format!("cannot read the bundle of {td}"), s)
                })?
                .into_inner();
            return print_bundle(&bundle, self.output, self.format);
        }

        let bundles = all_pages(async |page_token| {
            let page = client
                .list_federated_bundles(ListFederatedBundlesRequest {
                    output_mask: None,
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await
                .map_err(|s| crate::cmd::admin_out::rpc_error("cannot list federated bundles", s))?
                .into_inner();
            Ok((page.bundles, page.next_page_token))
        })
        .await?;
        match self.output {
            OutputFormat::Json => output::print_json(&list_json(
                "bundles",
                bundles.iter().map(bundle_json).collect(),
            )),
            OutputFormat::Pretty => {
                for (i, b) in bundles.iter().enumerate() {
                    // SPIRE's banner, so several PEM bundles stay apart, and a blank line
                    // between bundles (none after the last).
                    if i > 0 {
                        out!();
                    }
                    out!("****************************************");
                    out!("* {}", b.trust_domain);
                    out!("****************************************");
                    out_raw!("{}", format::render(b, self.format)?);
                }
                Ok(())
            }
        }
    }
}

impl SetArgs {
    async fn run(self) -> anyhow::Result<()> {
        let bundle = format::read(&self.id, &self.path, self.format)?;
        let response = client(&self.socket)
            .await?
            .batch_set_federated_bundle(BatchSetFederatedBundleRequest {
                bundle: vec![bundle],
                output_mask: None,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot set the bundle of {}", self.id),
                    s,
                )
            })?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot set the bundle of {}", self.id),
        )?;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "results": [{
                    "status": status_json(result.status.as_ref()),
                    "bundle": result.bundle.as_ref().map(bundle_json),
                }]
            })),
            OutputFormat::Pretty => {
                // SPIRE's words, which scripts may look for.
                out!("bundle set.");
                Ok(())
            }
        }
    }
}

impl DeleteArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mode = match self.mode {
            DeleteMode::Restrict => Mode::Restrict,
            DeleteMode::Delete => Mode::Delete,
            DeleteMode::Dissociate => Mode::Dissociate,
        };
        let response = client(&self.socket)
            .await?
            .batch_delete_federated_bundle(BatchDeleteFederatedBundleRequest {
                trust_domains: vec![self.id.name().to_string()],
                mode: mode as i32,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot delete the bundle of {}", self.id),
                    s,
                )
            })?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot delete the bundle of {}", self.id),
        )?;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "results": [{
                    "status": status_json(result.status.as_ref()),
                    "trust_domain": result.trust_domain,
                }]
            })),
            OutputFormat::Pretty => {
                out!("bundle deleted.");
                Ok(())
            }
        }
    }
}

impl CountArgs {
    async fn run(self) -> anyhow::Result<()> {
        let count = client(&self.socket)
            .await?
            .count_bundles(CountBundlesRequest {})
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot count bundles", s))?
            .into_inner()
            .count;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({ "count": count })),
            OutputFormat::Pretty => {
                out!("{}", plural(admin_out::count(count), "bundle", "bundles"));
                Ok(())
            }
        }
    }
}
