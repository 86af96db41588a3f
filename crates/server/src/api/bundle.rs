//! `spire.api.server.bundle.v1.Bundle`: the trust domain's own bundle, X.509 authorities and
//! JWT keys.

use lanyard_proto::spire::api::server::bundle::v1::{GetBundleRequest, bundle_server};
use lanyard_proto::spire::api::types;
use tonic::{Request, Response, Status};

use super::{Api, datastore_status};
use crate::caller::Peer;
use crate::state::unix_seconds;

#[tonic::async_trait]
impl bundle_server::Bundle for Api {
    async fn get_bundle(
        &self,
        request: Request<GetBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let peer = Peer::of(&request)?;
        if !matches!(peer, Peer::Local { .. }) {
            peer.require_agent(&self.state).await?;
        }
        let stored = self
            .state
            .datastore
            .get_bundle(&self.state.trust_domain)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::unavailable("the bundle has not been published yet"))?;
        let tainted = self.state.ca.tainted_authorities();
        let tainted_kids = self.state.ca.tainted_jwt_kids();
        Ok(Response::new(types::Bundle {
            trust_domain: stored.trust_domain.name().to_string(),
            x509_authorities: stored
                .x509_authorities
                .into_iter()
                .map(|asn1| types::X509Certificate {
                    tainted: tainted.iter().any(|t| t.as_ref() == asn1.as_slice()),
                    asn1,
                })
                .collect(),
            // TODO: JWT keys and taint flags come from this server's CA, not the datastore
            // (changes to them raise the sequence number through publish_authority_change).
            // Store them with the bundle when several servers share a datastore (issue #7).
            jwt_authorities: self
                .state
                .ca
                .jwt_authorities()
                .iter()
                .map(|k| types::JwtKey {
                    public_key: k.public_key().to_spki_der(),
                    key_id: k.kid().to_owned(),
                    expires_at: unix_seconds(k.not_after()),
                    tainted: tainted_kids.iter().any(|t| t == k.kid()),
                })
                .collect(),
            refresh_hint: stored.refresh_hint,
            sequence_number: stored.sequence,
        }))
    }
}
