//! `lanyard server federation create|show|list|update|delete`: federation relationships with
//! foreign trust domains. The server stores them; fetching the foreign bundles is its job.

use lanyard_proto::spire::api::server::trustdomain::v1::{
    BatchCreateFederationRelationshipRequest, BatchDeleteFederationRelationshipRequest,
    BatchUpdateFederationRelationshipRequest, GetFederationRelationshipRequest,
    ListFederationRelationshipsRequest, trust_domain_client::TrustDomainClient,
};
use lanyard_proto::spire::api::types;
use lanyard_proto::spire::api::types::federation_relationship::BundleEndpointProfile;
use lanyard_spiffe::TrustDomain;
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{all_pages, only_result, plural};
use super::matching::parse_trust_domain;
use super::server::SocketArg;
use super::wire_json::{federation_json, list_json, status_json};
use crate::admin;
use crate::output::{self, out};

mod relationship;

use relationship::RelationshipArgs;

/// Relationships are fetched in pages of this many.
const PAGE_SIZE: i32 = 100;

/// Federation relationship commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum FederationCommand {
    /// Federate with a foreign trust domain.
    Create(CreateArgs),
    /// Show the relationship with one trust domain.
    Show(OneArgs),
    /// List every relationship.
    List(ListArgs),
    /// Change the fields given of a relationship.
    Update(UpdateArgs),
    /// Stop federating with a trust domain (its stored bundle stays; see `bundle delete`).
    Delete(OneArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    relationship: RelationshipArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    relationship: RelationshipArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// `show` and `delete` name one trust domain (SPIRE's `delete` spells it `-id`).
#[derive(clap::Args, Debug)]
pub(crate) struct OneArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The foreign trust domain.
    #[arg(long, aliases = ["trustDomain", "id"], value_parser = parse_trust_domain)]
    trust_domain: TrustDomain,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl FederationCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            FederationCommand::Create(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            FederationCommand::Show(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.show().await)
            }
            FederationCommand::List(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            FederationCommand::Update(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            FederationCommand::Delete(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.delete().await)
            }
        }
    }
}

async fn client(socket: &SocketArg) -> anyhow::Result<TrustDomainClient<Channel>> {
    Ok(TrustDomainClient::new(
        admin::connect(&socket.socket).await?,
    ))
}

impl CreateArgs {
    async fn run(self) -> anyhow::Result<()> {
        let (relationship, mask) = self.relationship.to_wire()?;
        if !mask.bundle_endpoint_url || !mask.bundle_endpoint_profile {
            anyhow::bail!(
                "--bundle-endpoint-url and --bundle-endpoint-profile are required to create a \
                 relationship"
            );
        }
        let td = &self.relationship.trust_domain;
        let response = client(&self.socket)
            .await?
            .batch_create_federation_relationship(BatchCreateFederationRelationshipRequest {
                federation_relationships: vec![relationship],
                output_mask: None,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(&format!("cannot federate with {td}"), s)
            })?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot federate with {td}"),
        )?;
        print_written(
            self.output,
            result.status.as_ref(),
            result.federation_relationship,
        )
    }
}

impl UpdateArgs {
    async fn run(self) -> anyhow::Result<()> {
        let (relationship, mask) = self.relationship.to_wire()?;
        if mask == types::FederationRelationshipMask::default() {
            anyhow::bail!(
                "nothing to update: give --bundle-endpoint-url, --bundle-endpoint-profile or \
                 --trust-domain-bundle-path"
            );
        }
        let td = &self.relationship.trust_domain;
        let response = client(&self.socket)
            .await?
            .batch_update_federation_relationship(BatchUpdateFederationRelationshipRequest {
                federation_relationships: vec![relationship],
                input_mask: Some(mask),
                output_mask: None,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot update the relationship with {td}"),
                    s,
                )
            })?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot update the relationship with {td}"),
        )?;
        print_written(
            self.output,
            result.status.as_ref(),
            result.federation_relationship,
        )
    }
}

impl OneArgs {
    async fn show(self) -> anyhow::Result<()> {
        let td = &self.trust_domain;
        let relationship = client(&self.socket)
            .await?
            .get_federation_relationship(GetFederationRelationshipRequest {
                trust_domain: td.name().to_string(),
                output_mask: None,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot show the relationship with {td}"),
                    s,
                )
            })?
            .into_inner();
        match self.output {
            OutputFormat::Json => output::print_json(&federation_json(&relationship)),
            OutputFormat::Pretty => {
                out!("Found a federation relationship with trust domain {td}:\n");
                print_relationship(&relationship);
                Ok(())
            }
        }
    }

    async fn delete(self) -> anyhow::Result<()> {
        let td = &self.trust_domain;
        let response = client(&self.socket)
            .await?
            .batch_delete_federation_relationship(BatchDeleteFederationRelationshipRequest {
                trust_domains: vec![td.name().to_string()],
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot delete the relationship with {td}"),
                    s,
                )
            })?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot delete the relationship with {td}"),
        )?;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "results": [{
                    "status": status_json(result.status.as_ref()),
                    "trust_domain": result.trust_domain,
                }]
            })),
            OutputFormat::Pretty => {
                // SPIRE's words, which scripts may look for.
                out!("federation relationship deleted.");
                Ok(())
            }
        }
    }
}

impl ListArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut client = client(&self.socket).await?;
        let relationships = all_pages(async |page_token| {
            let page = client
                .list_federation_relationships(ListFederationRelationshipsRequest {
                    output_mask: None,
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await
                .map_err(|s| {
                    crate::cmd::admin_out::rpc_error("cannot list federation relationships", s)
                })?
                .into_inner();
            Ok((page.federation_relationships, page.next_page_token))
        })
        .await?;
        match self.output {
            OutputFormat::Json => print_list_json(&relationships),
            OutputFormat::Pretty => {
                out!(
                    "Found {}",
                    plural(
                        relationships.len(),
                        "federation relationship",
                        "federation relationships"
                    )
                );
                for r in &relationships {
                    out!();
                    print_relationship(r);
                }
                Ok(())
            }
        }
    }
}

/// SPIRE's `ListFederationRelationshipsResponse`.
fn print_list_json(relationships: &[types::FederationRelationship]) -> anyhow::Result<()> {
    output::print_json(&list_json(
        "federation_relationships",
        relationships.iter().map(federation_json).collect(),
    ))
}

/// What create and update print, as SPIRE's CLI: the batch response in JSON, else a blank
/// line and the relationship as the server stored it.
fn print_written(
    output_format: OutputFormat,
    status: Option<&types::Status>,
    relationship: Option<types::FederationRelationship>,
) -> anyhow::Result<()> {
    match output_format {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "results": [{
                "status": status_json(status),
                "federation_relationship": relationship.as_ref().map(federation_json),
            }]
        })),
        OutputFormat::Pretty => {
            out!();
            relationship.iter().for_each(print_relationship);
            Ok(())
        }
    }
}

/// A relationship as SPIRE's CLI prints it: no line for the stored bundle, none after.
fn print_relationship(r: &types::FederationRelationship) {
    out!("Trust domain              : {}", r.trust_domain);
    out!("Bundle endpoint URL       : {}", r.bundle_endpoint_url);
    match &r.bundle_endpoint_profile {
        Some(BundleEndpointProfile::HttpsWeb(_)) => {
            out!("Bundle endpoint profile   : https_web");
        }
        Some(BundleEndpointProfile::HttpsSpiffe(p)) => {
            out!("Bundle endpoint profile   : https_spiffe");
            out!("Endpoint SPIFFE ID        : {}", p.endpoint_spiffe_id);
        }
        None => {}
    }
}
