//! `lanyard server x509 mint` and `lanyard server jwt mint`: SVIDs for operators, signed by the
//! server over its admin socket (SPIRE's `svid.v1` MintX509SVID and MintJWTSVID).
//!
//! For an X509-SVID the private key is generated here and never leaves this process except into
//! the file written with `--write` (mode 0600) or standard output; the server only sees a CSR.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::svid::v1::{
    MintJwtsvidRequest, MintX509svidRequest, svid_client::SvidClient,
};
use lanyard_spiffe::SpiffeId;
use rcgen::{CertificateParams, DistinguishedName, SanType};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::json;

use super::OutputFormat;
use super::server::SocketArg;
use crate::admin;
use crate::output::{self, out, out_raw, parse_spiffe_id, wire_id};

/// `lanyard server x509`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum X509Command {
    /// Mint an X509-SVID: a key is generated locally and the server signs a CSR for it.
    Mint(X509MintArgs),
}

/// `lanyard server jwt`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum JwtCommand {
    /// Mint a JWT-SVID and print the token.
    Mint(JwtMintArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct X509MintArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The SPIFFE ID of the SVID; it must be in the server's trust domain.
    #[arg(long, value_parser = parse_spiffe_id)]
    spiffe_id: SpiffeId,
    /// Lifetime [default: the server's default_x509_svid_ttl].
    #[arg(long, value_parser = crate::duration::parse)]
    ttl: Option<Duration>,
    /// A DNS name to add as a SAN; repeat for several.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// Write svid.pem, key.pem (mode 0600) and bundle.pem into this directory instead of
    /// printing them.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct JwtMintArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The SPIFFE ID of the token's subject; it must be in the server's trust domain.
    #[arg(long, value_parser = parse_spiffe_id)]
    spiffe_id: SpiffeId,
    /// An audience; repeat for several (at least one is required).
    #[arg(long = "audience", required = true)]
    audience: Vec<String>,
    /// Lifetime [default: the server's default_jwt_svid_ttl].
    #[arg(long, value_parser = crate::duration::parse)]
    ttl: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl X509Command {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let X509Command::Mint(args) = self;
        args.run().await
    }
}

impl JwtCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let JwtCommand::Mint(args) = self;
        args.run().await
    }
}

impl X509MintArgs {
    async fn run(self) -> anyhow::Result<()> {
        let ttl = wire_ttl(self.ttl)?;
        let key = lanyard_ca::generate_key_pair(lanyard_ca::KeyType::EcP256)?;
        let csr = make_csr(&key, &self.spiffe_id, &self.dns_names)?;

        let channel = admin::connect(&self.socket.socket).await?;
        let svid = SvidClient::new(channel.clone())
            .mint_x509svid(MintX509svidRequest { csr, ttl })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot mint an X509-SVID", s))?
            .into_inner()
            .svid
            .context("the server answered without an SVID")?;
        let bundle = BundleClient::new(channel)
            .get_bundle(GetBundleRequest::default())
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot read the bundle", s))?
            .into_inner();

        let chain: Vec<CertificateDer<'static>> = svid
            .cert_chain
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let roots: Vec<CertificateDer<'static>> = bundle
            .x509_authorities
            .into_iter()
            .map(|a| CertificateDer::from(a.asn1))
            .collect();
        let svid_pem = lanyard_spiffe::x509::certs_to_pem(&chain);
        let key_pem =
            lanyard_spiffe::x509::pkcs8_to_pem(&PrivatePkcs8KeyDer::from(key.serialize_der()));
        let bundle_pem = lanyard_spiffe::x509::certs_to_pem(&roots);
        let id = self.spiffe_id.to_string();

        if let Some(dir) = &self.write {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let paths = [
                (dir.join("svid.pem"), svid_pem.as_bytes(), 0o644),
                (dir.join("key.pem"), key_pem.as_bytes(), 0o600),
                (dir.join("bundle.pem"), bundle_pem.as_bytes(), 0o644),
            ];
            for (path, contents, mode) in &paths {
                crate::svid_files::write_file(path, contents, *mode)?;
            }
            match self.output {
                OutputFormat::Json => output::print_json(&json!({
                    "spiffe_id": id,
                    "expires_at": svid.expires_at,
                    "svid": paths[0].0,
                    "key": paths[1].0,
                    "bundle": paths[2].0,
                }))?,
                OutputFormat::Pretty => {
                    out!("X509-SVID written to {}", paths[0].0.display());
                    out!("Private key written to {}", paths[1].0.display());
                    out!("Root CAs written to {}", paths[2].0.display());
                }
            }
            return Ok(());
        }
        match self.output {
            OutputFormat::Json => output::print_json(&json!({
                "spiffe_id": id,
                "expires_at": svid.expires_at,
                "svid_pem": svid_pem,
                "key_pem": key_pem,
                "bundle_pem": bundle_pem,
            }))?,
            OutputFormat::Pretty => {
                out!("X509-SVID:");
                out_raw!("{svid_pem}");
                out!("\nPrivate key:");
                out_raw!("{key_pem}");
                out!("\nRoot CAs:");
                out_raw!("{bundle_pem}");
            }
        }
        Ok(())
    }
}

impl JwtMintArgs {
    async fn run(self) -> anyhow::Result<()> {
        if let Some(empty) = self.audience.iter().position(String::is_empty) {
            anyhow::bail!(
                "--audience number {} is empty: every audience must be a non-empty string",
                empty + 1
            );
        }
        let ttl = wire_ttl(self.ttl)?;
        let channel = admin::connect(&self.socket.socket).await?;
        let svid = SvidClient::new(channel)
            .mint_jwtsvid(MintJwtsvidRequest {
                id: Some(wire_id(&self.spiffe_id)),
                audience: self.audience.clone(),
                ttl,
            })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot mint a JWT-SVID", s))?
            .into_inner()
            .svid
            .context("the server answered without an SVID")?;
        match self.output {
            OutputFormat::Json => output::print_json(&json!({
                "token": svid.token,
                "spiffe_id": self.spiffe_id.to_string(),
                "audience": self.audience,
                "expires_at": svid.expires_at,
                "issued_at": svid.issued_at,
            }))?,
            OutputFormat::Pretty => out!("{}", svid.token),
        }
        Ok(())
    }
}

/// `--ttl` in wire seconds: absent is 0 (the server's default); an explicit 0 is refused.
fn wire_ttl(ttl: Option<Duration>) -> anyhow::Result<i32> {
    match ttl {
        None => Ok(0),
        Some(ttl) if ttl.as_secs() == 0 => {
            anyhow::bail!("--ttl {}: an SVID must live at least 1s", shown_ttl(ttl))
        }
        Some(ttl) => crate::duration::to_i32_seconds("--ttl", ttl).map_err(anyhow::Error::msg),
    }
}

/// A duration as the user most likely typed it: `0s`, `500ms`, `1.5s`.
fn shown_ttl(ttl: Duration) -> String {
    if ttl.is_zero() {
        "0s".to_owned()
    } else {
        format!("{ttl:?}")
    }
}

/// A CSR signed by `key` whose only URI SAN is `id`, plus the DNS names.
fn make_csr(key: &rcgen::KeyPair, id: &SpiffeId, dns: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    for name in dns {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| anyhow::anyhow!("--dns {name:?} is not an ASCII host name"))?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    let csr = params
        .serialize_request(key)
        .context("cannot sign the certificate signing request")?;
    Ok(csr.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_under_a_second_is_refused_naming_what_was_typed() {
        assert_eq!(
            wire_ttl(Some(Duration::from_millis(500)))
                .unwrap_err()
                .to_string(),
            "--ttl 500ms: an SVID must live at least 1s"
        );
        assert_eq!(
            wire_ttl(Some(Duration::ZERO)).unwrap_err().to_string(),
            "--ttl 0s: an SVID must live at least 1s"
        );
        assert_eq!(wire_ttl(None).unwrap(), 0);
        assert_eq!(wire_ttl(Some(Duration::from_secs(90))).unwrap(), 90);
    }
}
