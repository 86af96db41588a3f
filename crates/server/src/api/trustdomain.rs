//! `spire.api.server.trustdomain.v1.TrustDomain`: federation relationships with foreign trust
//! domains (where their bundle endpoint is and how it authenticates).
//!
//! A relationship's `trust_domain_bundle`, when given, is stored as that trust domain's
//! federated bundle; reading a relationship shows the bundle currently stored. Fetching
//! bundles from the endpoints is not implemented yet, so RefreshBundle answers Unimplemented.

use lanyard_datastore::{BundleEndpointProfile, DatastoreError, FederationRelationship};
use lanyard_proto::spire::api::server::trustdomain::v1::{
    BatchCreateFederationRelationshipRequest, BatchCreateFederationRelationshipResponse,
    BatchDeleteFederationRelationshipRequest, BatchDeleteFederationRelationshipResponse,
    BatchUpdateFederationRelationshipRequest, BatchUpdateFederationRelationshipResponse,
    GetFederationRelationshipRequest, ListFederationRelationshipsRequest,
    ListFederationRelationshipsResponse, RefreshBundleRequest,
    batch_create_federation_relationship_response, batch_delete_federation_relationship_response,
    batch_update_federation_relationship_response, trust_domain_server,
};
use lanyard_proto::spire::api::types::{
    self, federation_relationship::BundleEndpointProfile as Wire,
};
use tonic::{Code, Request, Response, Status};

use super::relationship::{endpoint_url, parse, profile, trust_domain_bundle};
use super::{Api, datastore_status, list_status, page};
use crate::bundles::{federated_trust_domain, wire_bundle};
use crate::caller::Peer;
use crate::convert::status;
use crate::mask;

/// Relationships per page when the caller asks for more.
const MAX_PAGE_SIZE: u32 = 1000;

type Outcome = Result<types::FederationRelationship, (Code, String)>;

#[tonic::async_trait]
impl trust_domain_server::TrustDomain for Api {
    async fn list_federation_relationships(
        &self,
        request: Request<ListFederationRelationshipsRequest>,
    ) -> Result<Response<ListFederationRelationshipsResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let (size, token) = page(req.page_size, &req.page_token, MAX_PAGE_SIZE)?;
        let (found, next) = self
            .state
            .datastore
            .list_federation_relationships(size, token)
            .await
            .map_err(list_status)?;
        let mut federation_relationships = Vec::with_capacity(found.len());
        for r in &found {
            let wire = self.wire_relationship(r).await?;
            federation_relationships.push(mask::relationship(wire, req.output_mask.as_ref()));
        }
        Ok(Response::new(ListFederationRelationshipsResponse {
            federation_relationships,
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_federation_relationship(
        &self,
        request: Request<GetFederationRelationshipRequest>,
    ) -> Result<Response<types::FederationRelationship>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let td =
            federated_trust_domain("trust_domain", &req.trust_domain, &self.state.trust_domain)
                .map_err(Status::invalid_argument)?;
        let found = self
            .state
            .datastore
            .get_federation_relationship(&td)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found(format!("no federation relationship with {td}")))?;
        let wire = self.wire_relationship(&found).await?;
        Ok(Response::new(mask::relationship(
            wire,
            req.output_mask.as_ref(),
        )))
    }

    async fn batch_create_federation_relationship(
        &self,
        request: Request<BatchCreateFederationRelationshipRequest>,
    ) -> Result<Response<BatchCreateFederationRelationshipResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let mut results = Vec::with_capacity(req.federation_relationships.len());
        for wire in &req.federation_relationships {
            let outcome = self.create_relationship(wire).await?;
            let (status, federation_relationship) = split(outcome, req.output_mask.as_ref());
            results.push(batch_create_federation_relationship_response::Result {
                status,
                federation_relationship,
            });
        }
        Ok(Response::new(BatchCreateFederationRelationshipResponse {
            results,
        }))
    }

    async fn batch_update_federation_relationship(
        &self,
        request: Request<BatchUpdateFederationRelationshipRequest>,
    ) -> Result<Response<BatchUpdateFederationRelationshipResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let mut results = Vec::with_capacity(req.federation_relationships.len());
        for wire in &req.federation_relationships {
            let outcome = self
                .update_relationship(wire, req.input_mask.as_ref())
                .await?;
            let (status, federation_relationship) = split(outcome, req.output_mask.as_ref());
            results.push(batch_update_federation_relationship_response::Result {
                status,
                federation_relationship,
            });
        }
        Ok(Response::new(BatchUpdateFederationRelationshipResponse {
            results,
        }))
    }

    async fn batch_delete_federation_relationship(
        &self,
        request: Request<BatchDeleteFederationRelationshipRequest>,
    ) -> Result<Response<BatchDeleteFederationRelationshipResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let mut results = Vec::new();
        for name in request.into_inner().trust_domains {
            let outcome =
                match federated_trust_domain("trust_domains", &name, &self.state.trust_domain) {
                    Err(msg) => status(Code::InvalidArgument, msg),
                    Ok(td) => match self
                        .state
                        .datastore
                        .delete_federation_relationship(&td)
                        .await
                    {
                        Ok(()) => {
                            tracing::info!(trust_domain = %td, "Federation relationship deleted");
                            status(Code::Ok, "OK")
                        }
                        Err(DatastoreError::FederationRelationshipNotFound(td)) => status(
                            Code::NotFound,
                            format!("no federation relationship with {td}"),
                        ),
                        Err(e) => return Err(datastore_status(e)),
                    },
                };
            results.push(batch_delete_federation_relationship_response::Result {
                status: Some(outcome),
                trust_domain: name,
            });
        }
        Ok(Response::new(BatchDeleteFederationRelationshipResponse {
            results,
        }))
    }

    async fn refresh_bundle(
        &self,
        request: Request<RefreshBundleRequest>,
    ) -> Result<Response<()>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        Err(Status::unimplemented(
            "RefreshBundle: fetching bundles from federation endpoints is not implemented yet; \
             set the bundle with the bundle API or a relationship's trust_domain_bundle",
        ))
    }
}

impl Api {
    async fn create_relationship(
        &self,
        wire: &types::FederationRelationship,
    ) -> Result<Outcome, Status> {
        let (relationship, bundle) = match parse(wire, &self.state.trust_domain) {
            Ok(parsed) => parsed,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        let created = match self
            .state
            .datastore
            .create_federation_relationship(&relationship)
            .await
        {
            Ok(r) => r,
            Err(DatastoreError::FederationRelationshipAlreadyExists(td)) => {
                return Ok(Err((
                    Code::AlreadyExists,
                    format!("a federation relationship with {td} already exists"),
                )));
            }
            Err(e) => return Err(datastore_status(e)),
        };
        if let Some(bundle) = bundle {
            self.store_bundle(&bundle).await?;
        }
        tracing::info!(trust_domain = %created.trust_domain, url = %created.bundle_endpoint_url, "Federation relationship created");
        Ok(Ok(self.wire_relationship(&created).await?))
    }

    async fn update_relationship(
        &self,
        wire: &types::FederationRelationship,
        mask: Option<&types::FederationRelationshipMask>,
    ) -> Result<Outcome, Status> {
        let td = match federated_trust_domain(
            "trust_domain",
            &wire.trust_domain,
            &self.state.trust_domain,
        ) {
            Ok(td) => td,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        let Some(mut current) = self
            .state
            .datastore
            .get_federation_relationship(&td)
            .await
            .map_err(datastore_status)?
        else {
            return Ok(Err((
                Code::NotFound,
                format!("no federation relationship with {td}"),
            )));
        };
        let all = types::FederationRelationshipMask {
            bundle_endpoint_url: true,
            bundle_endpoint_profile: true,
            trust_domain_bundle: true,
        };
        let m = mask.unwrap_or(&all);
        let parsed = (|| -> Result<Option<lanyard_datastore::StoredBundle>, String> {
            if m.bundle_endpoint_url {
                current.bundle_endpoint_url = endpoint_url(&wire.bundle_endpoint_url)?;
            }
            if m.bundle_endpoint_profile {
                current.profile = profile(wire.bundle_endpoint_profile.as_ref())?;
            }
            if m.trust_domain_bundle {
                return trust_domain_bundle(wire, &td, &self.state.trust_domain);
            }
            Ok(None)
        })();
        let bundle = match parsed {
            Ok(bundle) => bundle,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        let updated = match self
            .state
            .datastore
            .update_federation_relationship(&current)
            .await
        {
            Ok(r) => r,
            Err(DatastoreError::FederationRelationshipNotFound(td)) => {
                return Ok(Err((
                    Code::NotFound,
                    format!("no federation relationship with {td}"),
                )));
            }
            Err(e) => return Err(datastore_status(e)),
        };
        if let Some(bundle) = bundle {
            self.store_bundle(&bundle).await?;
        }
        Ok(Ok(self.wire_relationship(&updated).await?))
    }

    async fn store_bundle(&self, bundle: &lanyard_datastore::StoredBundle) -> Result<(), Status> {
        self.state
            .datastore
            .put_bundle(bundle)
            .await
            .map_err(datastore_status)?;
        Ok(())
    }

    /// A stored relationship in the wire form, with the federated bundle currently stored.
    async fn wire_relationship(
        &self,
        r: &FederationRelationship,
    ) -> Result<types::FederationRelationship, Status> {
        let bundle = self
            .state
            .datastore
            .get_bundle(&r.trust_domain)
            .await
            .map_err(datastore_status)?;
        Ok(types::FederationRelationship {
            trust_domain: r.trust_domain.name().to_string(),
            bundle_endpoint_url: r.bundle_endpoint_url.clone(),
            bundle_endpoint_profile: Some(match &r.profile {
                BundleEndpointProfile::HttpsWeb => Wire::HttpsWeb(types::HttpsWebProfile {}),
                BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } => {
                    Wire::HttpsSpiffe(types::HttpsspiffeProfile {
                        endpoint_spiffe_id: endpoint_spiffe_id.to_string(),
                    })
                }
            }),
            trust_domain_bundle: bundle.as_ref().map(wire_bundle),
        })
    }
}

fn split(
    outcome: Outcome,
    output: Option<&types::FederationRelationshipMask>,
) -> (Option<types::Status>, Option<types::FederationRelationship>) {
    match outcome {
        Ok(r) => (
            Some(status(Code::Ok, "OK")),
            Some(mask::relationship(r, output)),
        ),
        Err((code, msg)) => (Some(status(code, msg)), None),
    }
}
