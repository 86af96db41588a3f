//! `lanyard server bundle show`.

use crate::output::out_raw;
use anyhow::Context;
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use rustls::pki_types::CertificateDer;

use super::server::SocketArg;
use crate::admin;

/// Trust bundle commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum BundleCommand {
    /// Print the server's own trust bundle (its CA certificates) as PEM.
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArg,
}

impl BundleCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let BundleCommand::Show(args) = self;
        let mut client = BundleClient::new(admin::connect(&args.socket.socket).await?);
        let bundle = client
            .get_bundle(GetBundleRequest::default())
            .await
            .map_err(|s| admin::rpc_error("cannot read the bundle", s))?
            .into_inner();
        let certs: Vec<CertificateDer<'static>> = bundle
            .x509_authorities
            .into_iter()
            .map(|a| CertificateDer::from(a.asn1))
            .collect();
        for cert in &certs {
            lanyard_spiffe::x509::not_after_of(cert)
                .context("the server returned a malformed bundle certificate")?;
        }
        out_raw!("{}", lanyard_spiffe::x509::certs_to_pem(&certs));
        Ok(())
    }
}
