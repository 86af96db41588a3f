//! `lanyard server localauthority x509|jwt show|prepare|activate|taint|revoke`: forced rotation
//! and revocation of the server's own authorities through the LocalAuthority API.
//!
//! The order is prepare → activate → taint the replaced authority → revoke it. X.509
//! authorities are named by subject key identifier (hex), JWT authorities by key ID.
//!
//! Until agents act on the tainted flag (see `lanyard_ca::manager`), revoke only after agent
//! and workload SVIDs have renewed under the new authority.

use anyhow::Context;
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::localauthority::v1::{
    self as wire, local_authority_client::LocalAuthorityClient,
};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::OutputFormat;
use super::server::SocketArg;
use crate::admin;
use crate::output::{self, out};

/// Which authorities to manage.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum LocalAuthorityCommand {
    /// X.509 authorities (the CA certificates that sign X509-SVIDs).
    #[command(subcommand)]
    X509(Action),
    /// JWT authorities (the keys that sign JWT-SVIDs).
    #[command(subcommand)]
    Jwt(Action),
}

/// One step of a forced rotation.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Action {
    /// Print the active, prepared and old authorities with their ids, expiry and taint.
    Show(Common),
    /// Make a new authority now and publish it in the bundle (replaces a prepared one).
    Prepare(Common),
    /// Make the prepared authority sign; the active one becomes old.
    Activate(WithId),
    /// Flag the old authority tainted in the bundle agents receive.
    Taint(WithId),
    /// Remove the tainted old authority from the bundle.
    Revoke(WithId),
}

#[derive(clap::Args, Debug)]
pub(crate) struct Common {
    #[command(flatten)]
    socket: SocketArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct WithId {
    /// The authority: subject key identifier in hex (x509) or key ID (jwt), as `show` prints it.
    // Key IDs made by older versions may start with '-'.
    #[arg(long, allow_hyphen_values = true)]
    authority_id: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    X509,
    Jwt,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::X509 => "X.509",
            Kind::Jwt => "JWT",
        }
    }
}

impl LocalAuthorityCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let (kind, action) = match self {
            LocalAuthorityCommand::X509(a) => (Kind::X509, a),
            LocalAuthorityCommand::Jwt(a) => (Kind::Jwt, a),
        };
        match action {
            Action::Show(c) => show(kind, &c).await,
            Action::Prepare(c) => {
                let mut client = client(&c).await?;
                let state = match kind {
                    Kind::X509 => client
                        .prepare_x509_authority(wire::PrepareX509AuthorityRequest {})
                        .await
                        .map(|r| r.into_inner().prepared_authority),
                    Kind::Jwt => client
                        .prepare_jwt_authority(wire::PrepareJwtAuthorityRequest {})
                        .await
                        .map(|r| r.into_inner().prepared_authority),
                }
                .map_err(|s| crate::cmd::admin_out::rpc_error("cannot prepare an authority", s))?;
                print_result(kind, "Prepared", state, false, c.output)
            }
            Action::Activate(a) => named(kind, Step::Activate, a).await,
            Action::Taint(a) => named(kind, Step::Taint, a).await,
            Action::Revoke(a) => named(kind, Step::Revoke, a).await,
        }
    }
}

/// The steps that name an authority.
#[derive(Clone, Copy)]
enum Step {
    Activate,
    Taint,
    Revoke,
}

impl Step {
    /// What the step did, for the output.
    fn done(self) -> &'static str {
        match self {
            Step::Activate => "Activated",
            Step::Taint => "Tainted",
            Step::Revoke => "Revoked",
        }
    }

    /// The context of a refused call.
    fn failure(self) -> &'static str {
        match self {
            Step::Activate => "cannot activate the authority",
            Step::Taint => "cannot taint the authority",
            Step::Revoke => "cannot revoke the authority",
        }
    }
}

/// Runs `step` on the authority `a` names, and prints what the server answers.
async fn named(kind: Kind, step: Step, a: WithId) -> anyhow::Result<()> {
    let mut client = client(&a.common).await?;
    let state = call(&mut client, kind, step, a.authority_id)
        .await
        .map_err(|s| crate::cmd::admin_out::rpc_error(step.failure(), s))?;
    // Taint and revoke act on the old authority, which is tainted by then.
    let tainted = !matches!(step, Step::Activate);
    print_result(kind, step.done(), state, tainted, a.common.output)
}

/// The LocalAuthority RPC of `step` for `kind`.
async fn call(
    client: &mut LocalAuthorityClient<Channel>,
    kind: Kind,
    step: Step,
    authority_id: String,
) -> Result<Option<wire::AuthorityState>, tonic::Status> {
    match (kind, step) {
        (Kind::X509, Step::Activate) => client
            .activate_x509_authority(wire::ActivateX509AuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().activated_authority),
        (Kind::Jwt, Step::Activate) => client
            .activate_jwt_authority(wire::ActivateJwtAuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().activated_authority),
        (Kind::X509, Step::Taint) => client
            .taint_x509_authority(wire::TaintX509AuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().tainted_authority),
        (Kind::Jwt, Step::Taint) => client
            .taint_jwt_authority(wire::TaintJwtAuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().tainted_authority),
        (Kind::X509, Step::Revoke) => client
            .revoke_x509_authority(wire::RevokeX509AuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().revoked_authority),
        (Kind::Jwt, Step::Revoke) => client
            .revoke_jwt_authority(wire::RevokeJwtAuthorityRequest { authority_id })
            .await
            .map(|r| r.into_inner().revoked_authority),
    }
}

async fn client(c: &Common) -> anyhow::Result<LocalAuthorityClient<Channel>> {
    Ok(LocalAuthorityClient::new(
        admin::connect(&c.socket.socket).await?,
    ))
}

async fn show(kind: Kind, c: &Common) -> anyhow::Result<()> {
    let channel = admin::connect(&c.socket.socket).await?;
    let mut client = LocalAuthorityClient::new(channel.clone());
    let (active, prepared, old) = match kind {
        Kind::X509 => client
            .get_x509_authority_state(wire::GetX509AuthorityStateRequest {})
            .await
            .map(|r| r.into_inner())
            .map(|r| (r.active, r.prepared, r.old)),
        Kind::Jwt => client
            .get_jwt_authority_state(wire::GetJwtAuthorityStateRequest {})
            .await
            .map(|r| r.into_inner())
            .map(|r| (r.active, r.prepared, r.old)),
    }
    .map_err(|s| crate::cmd::admin_out::rpc_error("cannot read the authorities", s))?;

    // The LocalAuthority API does not report taint; the bundle does.
    let tainted = tainted_ids(kind, channel).await?;
    let is_tainted = |s: &wire::AuthorityState| tainted.contains(&s.authority_id);
    let slots = [("active", active), ("prepared", prepared), ("old", old)];

    match c.output {
        OutputFormat::Json => {
            let mut obj = serde_json::Map::new();
            for (slot, state) in slots {
                let value = state
                    .map(|s| state_json(&s, is_tainted(&s)))
                    .unwrap_or(Value::Null);
                obj.insert(slot.to_owned(), value);
            }
            output::print_json(&Value::Object(obj))
        }
        OutputFormat::Pretty => {
            for (i, (slot, state)) in slots.into_iter().enumerate() {
                if i > 0 {
                    out!();
                }
                let title = format!("{}{}", slot[..1].to_uppercase(), &slot[1..]);
                match state {
                    Some(s) => {
                        out!("{title} {} authority:", kind.label());
                        print_state(&s, is_tainted(&s));
                    }
                    None => out!("{title} {} authority: none", kind.label()),
                }
            }
            Ok(())
        }
    }
}

/// The ids of the authorities the bundle flags tainted.
async fn tainted_ids(kind: Kind, channel: Channel) -> anyhow::Result<Vec<String>> {
    let bundle = BundleClient::new(channel)
        .get_bundle(GetBundleRequest::default())
        .await
        .map_err(|s| crate::cmd::admin_out::rpc_error("cannot read the bundle", s))?
        .into_inner();
    match kind {
        Kind::X509 => bundle
            .x509_authorities
            .iter()
            .filter(|a| a.tainted)
            .map(|a| {
                lanyard_ca::x509_authority_id(&a.asn1)
                    .context("the server returned a malformed bundle certificate")
            })
            .collect(),
        Kind::Jwt => Ok(bundle
            .jwt_authorities
            .into_iter()
            .filter(|k| k.tainted)
            .map(|k| k.key_id)
            .collect()),
    }
}

fn print_result(
    kind: Kind,
    verb: &str,
    state: Option<wire::AuthorityState>,
    tainted: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let state = state.context("the server's answer names no authority")?;
    match format {
        OutputFormat::Json => output::print_json(&state_json(&state, tainted)),
        OutputFormat::Pretty => {
            out!("{verb} {} authority:", kind.label());
            print_state(&state, tainted);
            Ok(())
        }
    }
}

fn print_state(s: &wire::AuthorityState, tainted: bool) {
    out!("  Authority ID : {}", s.authority_id);
    out!("  Expires at   : {}", expiry(s.expires_at));
    out!("  Tainted      : {tainted}");
}

fn state_json(s: &wire::AuthorityState, tainted: bool) -> Value {
    json!({
        "authority_id": s.authority_id,
        "expires_at": s.expires_at,
        "tainted": tainted,
    })
}

/// Unix seconds as RFC 3339; a value before the epoch is printed as the number.
fn expiry(unix: i64) -> String {
    u64::try_from(unix)
        .map(|s| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
            )
            .to_string()
        })
        .unwrap_or_else(|_| unix.to_string())
}
