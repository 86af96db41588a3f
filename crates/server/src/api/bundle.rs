//! `spire.api.server.bundle.v1.Bundle`: the trust domain's own bundle (here) and federated
//! bundles (`bundle_federated.rs`).
//!
//! The own bundle is what the CA publishes (X.509 authorities, JWT keys, taint) plus what
//! admins appended with AppendBundle; all of it is stored, so every server sharing the
//! database serves it, and the appended X.509 authorities also verify agent certificates.

use lanyard_datastore::{StoredBundle, StoredJwtKey};
use lanyard_proto::spire::api::server::bundle::v1::{
    AppendBundleRequest, BatchCreateFederatedBundleRequest, BatchCreateFederatedBundleResponse,
    BatchDeleteFederatedBundleRequest, BatchDeleteFederatedBundleResponse,
    BatchSetFederatedBundleRequest, BatchSetFederatedBundleResponse,
    BatchUpdateFederatedBundleRequest, BatchUpdateFederatedBundleResponse, CountBundlesRequest,
    CountBundlesResponse, GetBundleRequest, GetFederatedBundleRequest, ListFederatedBundlesRequest,
    ListFederatedBundlesResponse, PublishJwtAuthorityRequest, PublishJwtAuthorityResponse,
    bundle_server,
};
use lanyard_proto::spire::api::types;
use tonic::{Request, Response, Status};

use super::{Api, count, datastore_status};
use crate::bundles;
use crate::caller::Peer;
use crate::mask;
use crate::state::unix_seconds;

#[tonic::async_trait]
impl bundle_server::Bundle for Api {
    async fn count_bundles(
        &self,
        request: Request<CountBundlesRequest>,
    ) -> Result<Response<CountBundlesResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let n = self
            .state
            .datastore
            .count_bundles()
            .await
            .map_err(datastore_status)?;
        Ok(Response::new(CountBundlesResponse { count: count(n) }))
    }

    async fn get_bundle(
        &self,
        request: Request<GetBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        // Open to every caller, as in SPIRE: the bundle is public, and a SPIRE agent asks for
        // it on the connection it attested on, before it holds an agent certificate.
        let stored = self.own_bundle().await?;
        Ok(Response::new(mask::bundle(
            self.own_view(stored),
            request.get_ref().output_mask.as_ref(),
        )))
    }

    async fn append_bundle(
        &self,
        request: Request<AppendBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let mut stored = self.own_bundle().await?;
        let x509 =
            bundles::x509_authorities(&req.x509_authorities).map_err(Status::invalid_argument)?;
        let jwt = bundles::jwt_keys(&req.jwt_authorities).map_err(Status::invalid_argument)?;
        for (cert, tainted) in x509 {
            if !stored.x509_authorities.contains(&cert) {
                stored.x509_authorities.push(cert.clone());
            }
            if tainted && !stored.tainted_x509.contains(&cert) {
                stored.tainted_x509.push(cert);
            }
        }
        let ca_kids: Vec<String> = self
            .state
            .ca
            .jwt_authorities()
            .iter()
            .map(|k| k.kid().to_owned())
            .collect();
        for key in jwt {
            append_jwt_key(&mut stored.jwt_authorities, &ca_kids, key)?;
        }
        let stored = self
            .state
            .datastore
            .put_bundle(&stored)
            .await
            .map_err(datastore_status)?;
        self.state.use_bundle(&stored);
        tracing::info!(
            sequence = stored.sequence,
            x509_authorities = req.x509_authorities.len(),
            jwt_authorities = req.jwt_authorities.len(),
            caller.id = caller.as_ref().map(tracing::field::display),
            "Authorities appended to the trust bundle"
        );
        Ok(Response::new(mask::bundle(
            self.own_view(stored),
            req.output_mask.as_ref(),
        )))
    }

    async fn publish_jwt_authority(
        &self,
        _request: Request<PublishJwtAuthorityRequest>,
    ) -> Result<Response<PublishJwtAuthorityResponse>, Status> {
        Err(Status::unimplemented(
            "PublishJWTAuthority is for downstream servers, and downstream servers are not \
             supported yet",
        ))
    }

    async fn list_federated_bundles(
        &self,
        request: Request<ListFederatedBundlesRequest>,
    ) -> Result<Response<ListFederatedBundlesResponse>, Status> {
        self.list_federated(request).await
    }

    async fn get_federated_bundle(
        &self,
        request: Request<GetFederatedBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        self.get_federated(request).await
    }

    async fn batch_create_federated_bundle(
        &self,
        request: Request<BatchCreateFederatedBundleRequest>,
    ) -> Result<Response<BatchCreateFederatedBundleResponse>, Status> {
        self.create_federated(request).await
    }

    async fn batch_update_federated_bundle(
        &self,
        request: Request<BatchUpdateFederatedBundleRequest>,
    ) -> Result<Response<BatchUpdateFederatedBundleResponse>, Status> {
        self.update_federated(request).await
    }

    async fn batch_set_federated_bundle(
        &self,
        request: Request<BatchSetFederatedBundleRequest>,
    ) -> Result<Response<BatchSetFederatedBundleResponse>, Status> {
        self.set_federated(request).await
    }

    async fn batch_delete_federated_bundle(
        &self,
        request: Request<BatchDeleteFederatedBundleRequest>,
    ) -> Result<Response<BatchDeleteFederatedBundleResponse>, Status> {
        self.delete_federated(request).await
    }
}

impl Api {
    async fn own_bundle(&self) -> Result<StoredBundle, Status> {
        self.state
            .datastore
            .get_bundle(&self.state.trust_domain)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found("the bundle has not been published yet"))
    }

    /// The own bundle as served: the stored one, with this CA's current keys and taint laid
    /// over it (they are stored too, but the CA is never behind the store).
    fn own_view(&self, stored: StoredBundle) -> types::Bundle {
        let tainted = self.state.ca.tainted_authorities();
        let tainted_kids = self.state.ca.tainted_jwt_kids();
        let mut jwt_authorities: Vec<types::JwtKey> = self
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
            .collect();
        for key in &stored.jwt_authorities {
            if !jwt_authorities.iter().any(|k| k.key_id == key.key_id) {
                jwt_authorities.push(bundles::wire_jwt_key(key));
            }
        }
        types::Bundle {
            trust_domain: stored.trust_domain.name().to_string(),
            x509_authorities: stored
                .x509_authorities
                .iter()
                .map(|asn1| types::X509Certificate {
                    tainted: tainted.iter().any(|t| t.as_ref() == asn1.as_slice())
                        || stored.tainted_x509.contains(asn1),
                    asn1: asn1.clone(),
                })
                .collect(),
            jwt_authorities,
            refresh_hint: stored.refresh_hint,
            sequence_number: stored.sequence,
        }
    }
}

/// Adds `key` unless the same key is there; a key ID already used by another key (stored, or
/// one of this CA's) is refused, since validators pick keys by ID.
fn append_jwt_key(
    keys: &mut Vec<StoredJwtKey>,
    ca_kids: &[String],
    key: StoredJwtKey,
) -> Result<(), Status> {
    if ca_kids.contains(&key.key_id) {
        return Err(Status::invalid_argument(format!(
            "jwt_authorities key_id {:?}: already used by this server's own JWT key",
            key.key_id
        )));
    }
    match keys.iter().find(|k| k.key_id == key.key_id) {
        Some(same) if same.public_key == key.public_key => Ok(()),
        Some(_) => Err(Status::invalid_argument(format!(
            "jwt_authorities key_id {:?}: already used by a different key in the bundle",
            key.key_id
        ))),
        None => {
            keys.push(key);
            Ok(())
        }
    }
}
