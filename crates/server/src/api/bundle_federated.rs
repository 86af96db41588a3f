//! Federated bundles: the trust bundles of foreign trust domains that entries may federate
//! with. Batch calls give each item its own status, in request order.

use lanyard_datastore::{BundleDeleteMode, DatastoreError, StoredBundle};
use lanyard_proto::spire::api::server::bundle::v1::{
    BatchCreateFederatedBundleRequest, BatchCreateFederatedBundleResponse,
    BatchDeleteFederatedBundleRequest, BatchDeleteFederatedBundleResponse,
    BatchSetFederatedBundleRequest, BatchSetFederatedBundleResponse,
    BatchUpdateFederatedBundleRequest, BatchUpdateFederatedBundleResponse,
    GetFederatedBundleRequest, ListFederatedBundlesRequest, ListFederatedBundlesResponse,
    batch_create_federated_bundle_response, batch_delete_federated_bundle_request,
    batch_delete_federated_bundle_response, batch_set_federated_bundle_response,
    batch_update_federated_bundle_response,
};
use lanyard_proto::spire::api::types;
use tonic::{Code, Request, Response, Status};

use super::{Api, datastore_status, list_status, page};
use crate::bundles::{self, federated_trust_domain, wire_bundle};
use crate::caller::Peer;
use crate::convert::status;
use crate::mask;

/// Bundles per page when the caller asks for more.
const MAX_PAGE_SIZE: u32 = 1000;

/// The outcome of one item: the bundle as stored, or a status.
type Outcome = Result<StoredBundle, (Code, String)>;

impl Api {
    pub(super) async fn list_federated(
        &self,
        request: Request<ListFederatedBundlesRequest>,
    ) -> Result<Response<ListFederatedBundlesResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let (size, token) = page(req.page_size, &req.page_token, MAX_PAGE_SIZE)?;
        let (bundles, next) = self
            .state
            .datastore
            .list_bundles(size, token)
            .await
            .map_err(list_status)?;
        Ok(Response::new(ListFederatedBundlesResponse {
            bundles: bundles
                .iter()
                .filter(|b| b.trust_domain != self.state.trust_domain)
                .map(|b| mask::bundle(wire_bundle(b), req.output_mask.as_ref()))
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    pub(super) async fn get_federated(
        &self,
        request: Request<GetFederatedBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        // Admins, and agents (which hand federated bundles to their workloads).
        let peer = Peer::of(&request)?;
        if !peer.is_admin(&self.state) {
            peer.require_agent(&self.state).await?;
        }
        let req = request.into_inner();
        let td =
            federated_trust_domain("trust_domain", &req.trust_domain, &self.state.trust_domain)
                .map_err(Status::invalid_argument)?;
        let bundle = self
            .state
            .datastore
            .get_bundle(&td)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found(format!("no federated bundle for {td}")))?;
        Ok(Response::new(mask::bundle(
            wire_bundle(&bundle),
            req.output_mask.as_ref(),
        )))
    }

    pub(super) async fn create_federated(
        &self,
        request: Request<BatchCreateFederatedBundleRequest>,
    ) -> Result<Response<BatchCreateFederatedBundleResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let results = self
            .write_federated(
                &req.bundle,
                Write::Create,
                req.output_mask.as_ref(),
                |status, bundle| batch_create_federated_bundle_response::Result { status, bundle },
            )
            .await?;
        Ok(Response::new(BatchCreateFederatedBundleResponse {
            results,
        }))
    }

    pub(super) async fn update_federated(
        &self,
        request: Request<BatchUpdateFederatedBundleRequest>,
    ) -> Result<Response<BatchUpdateFederatedBundleResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let write = Write::Update(req.input_mask.as_ref());
        let results = self
            .write_federated(
                &req.bundle,
                write,
                req.output_mask.as_ref(),
                |status, bundle| batch_update_federated_bundle_response::Result { status, bundle },
            )
            .await?;
        Ok(Response::new(BatchUpdateFederatedBundleResponse {
            results,
        }))
    }

    pub(super) async fn set_federated(
        &self,
        request: Request<BatchSetFederatedBundleRequest>,
    ) -> Result<Response<BatchSetFederatedBundleResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let results = self
            .write_federated(
                &req.bundle,
                Write::Set,
                req.output_mask.as_ref(),
                |status, bundle| batch_set_federated_bundle_response::Result { status, bundle },
            )
            .await?;
        Ok(Response::new(BatchSetFederatedBundleResponse { results }))
    }

    pub(super) async fn delete_federated(
        &self,
        request: Request<BatchDeleteFederatedBundleRequest>,
    ) -> Result<Response<BatchDeleteFederatedBundleResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        use batch_delete_federated_bundle_request::Mode;
        let mode = match Mode::try_from(req.mode) {
            Ok(Mode::Restrict) => BundleDeleteMode::Restrict,
            Ok(Mode::Delete) => BundleDeleteMode::Delete,
            Ok(Mode::Dissociate) => BundleDeleteMode::Dissociate,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "mode {}: unknown (0 restrict, 1 delete, 2 dissociate)",
                    req.mode
                )));
            }
        };
        let mut results = Vec::with_capacity(req.trust_domains.len());
        let mut touched_entries = false;
        for name in req.trust_domains {
            let outcome =
                match federated_trust_domain("trust_domains", &name, &self.state.trust_domain) {
                    Err(msg) => status(Code::InvalidArgument, msg),
                    Ok(td) => match self.state.datastore.delete_bundle(&td, mode).await {
                        Ok(_) => {
                            touched_entries |= mode != BundleDeleteMode::Restrict;
                            tracing::info!(trust_domain = %td, ?mode, "Federated bundle deleted");
                            status(Code::Ok, "OK")
                        }
                        Err(DatastoreError::BundleNotFound(td)) => {
                            status(Code::NotFound, format!("no federated bundle for {td}"))
                        }
                        Err(DatastoreError::BundleInUse {
                            trust_domain,
                            entries,
                        }) => status(
                            Code::FailedPrecondition,
                            format!(
                                "bundle of {trust_domain} is federated with by {entries} entries: \
                             delete with mode DELETE or DISSOCIATE, or change those entries first"
                            ),
                        ),
                        Err(e) => return Err(datastore_status(e)),
                    },
                };
            results.push(batch_delete_federated_bundle_response::Result {
                status: Some(outcome),
                trust_domain: name,
            });
        }
        if touched_entries {
            // DELETE and DISSOCIATE changed entries in the same transaction; bring them into
            // the index now rather than at the next poll.
            crate::sync::catch_up(&self.state)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(BatchDeleteFederatedBundleResponse {
            results,
        }))
    }

    /// Writes each of `wires` in order, one result per item made by `result` from its status
    /// and (written, masked by `output`) bundle. A database failure fails the whole call.
    async fn write_federated<R>(
        &self,
        wires: &[types::Bundle],
        write: Write<'_>,
        output: Option<&types::BundleMask>,
        result: impl Fn(Option<types::Status>, Option<types::Bundle>) -> R,
    ) -> Result<Vec<R>, Status> {
        let mut results = Vec::with_capacity(wires.len());
        for wire in wires {
            let outcome = match write {
                Write::Create => self.put_bundle(wire, false).await?,
                Write::Update(mask) => self.update_bundle(wire, mask).await?,
                Write::Set => self.put_bundle(wire, true).await?,
            };
            let (status, bundle) = split(outcome, output, write.verb());
            results.push(result(status, bundle));
        }
        Ok(results)
    }

    /// Stores a federated bundle: a new one only, or (`replace`) whether or not one exists.
    async fn put_bundle(&self, wire: &types::Bundle, replace: bool) -> Result<Outcome, Status> {
        let b = match bundles::federated_bundle(wire, &self.state.trust_domain) {
            Ok(b) => b,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        if replace {
            stored(self.state.datastore.put_bundle(&b).await)
        } else {
            stored(self.state.datastore.create_bundle(&b).await)
        }
    }

    /// Replaces the fields `mask` selects (all without a mask) of a stored federated bundle.
    async fn update_bundle(
        &self,
        wire: &types::Bundle,
        mask: Option<&types::BundleMask>,
    ) -> Result<Outcome, Status> {
        let given = match bundles::federated_bundle(wire, &self.state.trust_domain) {
            Ok(b) => b,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        let Some(mut current) = self
            .state
            .datastore
            .get_bundle(&given.trust_domain)
            .await
            .map_err(datastore_status)?
        else {
            return Ok(Err((
                Code::NotFound,
                format!("no federated bundle for {}", given.trust_domain),
            )));
        };
        let all = types::BundleMask {
            x509_authorities: true,
            jwt_authorities: true,
            refresh_hint: true,
            sequence_number: true,
        };
        let m = mask.unwrap_or(&all);
        if m.x509_authorities {
            current.x509_authorities = given.x509_authorities;
            current.tainted_x509 = given.tainted_x509;
        }
        if m.jwt_authorities {
            current.jwt_authorities = given.jwt_authorities;
        }
        if m.refresh_hint {
            current.refresh_hint = given.refresh_hint;
        }
        if m.sequence_number {
            current.sequence = given.sequence;
        }
        stored(self.state.datastore.update_bundle(&current).await)
    }
}

/// How a batch call writes each of its bundles.
#[derive(Clone, Copy)]
enum Write<'a> {
    /// BatchCreate: only bundles not stored yet.
    Create,
    /// BatchUpdate: the fields the mask selects (all without one) of stored bundles.
    Update(Option<&'a types::BundleMask>),
    /// BatchSet: create or replace.
    Set,
}

impl Write<'_> {
    /// The past participle the log line uses.
    fn verb(self) -> &'static str {
        match self {
            Write::Create => "created",
            Write::Update(_) => "updated",
            Write::Set => "set",
        }
    }
}

/// Maps a datastore write of one bundle to its item outcome; database failures fail the call.
fn stored(r: Result<StoredBundle, DatastoreError>) -> Result<Outcome, Status> {
    match r {
        Ok(b) => Ok(Ok(b)),
        Err(DatastoreError::BundleAlreadyExists(td)) => Ok(Err((
            Code::AlreadyExists,
            format!("a bundle for {td} already exists: update or set it instead"),
        ))),
        Err(DatastoreError::BundleNotFound(td)) => Ok(Err((
            Code::NotFound,
            format!("no federated bundle for {td}"),
        ))),
        Err(DatastoreError::InvalidInput(msg)) => Ok(Err((Code::InvalidArgument, msg))),
        Err(e) => Err(datastore_status(e)),
    }
}

fn split(
    outcome: Outcome,
    output: Option<&types::BundleMask>,
    what: &str,
) -> (Option<types::Status>, Option<types::Bundle>) {
    match outcome {
        Ok(b) => {
            tracing::info!(trust_domain = %b.trust_domain, sequence = b.sequence, "Federated bundle {what}");
            (
                Some(status(Code::Ok, "OK")),
                Some(mask::bundle(wire_bundle(&b), output)),
            )
        }
        Err((code, msg)) => (Some(status(code, msg)), None),
    }
}
