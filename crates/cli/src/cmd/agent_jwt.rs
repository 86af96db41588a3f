//! `lanyard agent api fetch jwt` and `lanyard agent api validate jwt`.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use lanyard_spiffe::{JwtSvid, SpiffeId};
use lanyard_workload::client::WorkloadClient;
use serde_json::{Map, Value};

use super::OutputFormat;
use super::agent::endpoint;
use crate::output::out;

/// Flags of `lanyard agent api fetch jwt`.
#[derive(clap::Args, Debug)]
pub(super) struct FetchJwtArgs {
    /// The `aud` claim: a comma-separated list, as SPIRE's -audience takes it; the flag may
    /// also be repeated, and the lists add up.
    #[arg(long = "audience", required = true, value_delimiter = ',')]
    audience: Vec<String>,
    /// Only this identity of the caller; without it, one token per identity.
    #[arg(long)]
    spiffe_id: Option<String>,
    /// Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`; defaults to
    /// $SPIFFE_ENDPOINT_SOCKET, then to the agent's default socket (run as spire-agent,
    /// SPIRE's default socket, as SPIRE's CLI does).
    #[arg(long, visible_alias = "socket-path")]
    socket: Option<String>,
    /// Give up after this long without an answer.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Output format; `json` adds each token's claims.
    #[arg(long, alias = "format", value_enum, default_value_t)]
    output: OutputFormat,
}

/// Flags of `lanyard agent api validate jwt`.
#[derive(clap::Args, Debug)]
pub(super) struct ValidateJwtArgs {
    /// The audience the token must carry: one value, commas and all, as in SPIRE.
    #[arg(long)]
    audience: String,
    /// The JWT-SVID (compact JWS).
    #[arg(long)]
    svid: String,
    /// Workload API socket, as for `fetch`.
    #[arg(long, visible_alias = "socket-path")]
    socket: Option<String>,
    /// Give up after this long without an answer.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl FetchJwtArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let spiffe_id = self
            .spiffe_id
            .as_deref()
            .map(SpiffeId::parse)
            .transpose()
            .context("--spiffe-id")?;
        let addr = endpoint(self.socket.as_deref())?;
        let svids = within(self.timeout, &addr, async {
            let mut client = WorkloadClient::connect(&addr).await?;
            client
                .fetch_jwt_svids(&self.audience, spiffe_id.as_ref())
                .await
                .context("the Workload API refused to give a JWT-SVID")
        })
        .await?;
        match self.output {
            OutputFormat::Json => {
                let audience: Vec<&str> = self.audience.iter().map(String::as_str).collect();
                let mut items = Vec::with_capacity(svids.len());
                for s in &svids {
                    // The server checked the token; this only reads its claims for display.
                    let parsed = JwtSvid::parse_insecure(&s.token, &audience, SystemTime::now())
                        .with_context(|| format!("the JWT-SVID for {}", s.spiffe_id))?;
                    items.push(serde_json::json!({
                        "spiffe_id": s.spiffe_id.to_string(),
                        "svid": s.token,
                        "hint": s.hint,
                        "claims": Value::Object(parsed.claims().clone()),
                    }));
                }
                crate::output::print_json(&serde_json::json!({ "svids": items }))
            }
            OutputFormat::Pretty => {
                for s in &svids {
                    out!("token({}):", s.spiffe_id);
                    out!("\t{}", s.token);
                }
                Ok(())
            }
        }
    }
}

impl ValidateJwtArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let addr = endpoint(self.socket.as_deref())?;
        let (id, claims) = within(self.timeout, &addr, async {
            let mut client = WorkloadClient::connect(&addr).await?;
            client
                .validate_jwt_svid(&self.audience, &self.svid)
                .await
                .context("the JWT-SVID is not valid")
        })
        .await?;
        print_validated(&id, &claims, self.output)
    }
}

/// Prints a validated token's SPIFFE ID and claims.
pub(super) fn print_validated(
    id: &SpiffeId,
    claims: &Map<String, Value>,
    format: OutputFormat,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => crate::output::print_json(&serde_json::json!({
            "spiffe_id": id.to_string(),
            "claims": Value::Object(claims.clone()),
        })),
        OutputFormat::Pretty => {
            out!("SVID is valid.");
            out!("SPIFFE ID : {id}");
            out!("Claims    : {}", Value::Object(claims.clone()));
            Ok(())
        }
    }
}

async fn within<T>(
    timeout: Duration,
    addr: &lanyard_workload::EndpointAddr,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        anyhow::anyhow!("no answer from the Workload API at {addr} within {timeout:?}")
    })?
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Fetch {
        #[command(flatten)]
        args: FetchJwtArgs,
    }

    #[derive(Parser)]
    struct Validate {
        #[command(flatten)]
        args: ValidateJwtArgs,
    }

    #[test]
    fn fetch_audience_takes_spires_comma_separated_list_and_repeats() {
        let f = Fetch::try_parse_from(["t", "--audience=a,b", "--audience", "c"]).unwrap();
        assert_eq!(f.args.audience, ["a", "b", "c"]);
    }

    #[test]
    fn validate_audience_is_one_value_commas_and_all() {
        let v = Validate::try_parse_from(["t", "--audience=a,b", "--svid", "x"]).unwrap();
        assert_eq!(v.args.audience, "a,b");
    }
}
