//! `spire.api.server.entry.v1.Entry`: registration entries for admins, authorized entries
//! for agents.

use lanyard_datastore::{DatastoreError, EntryFilter, EntryId, SelectorMatch};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchCreateEntryResponse, BatchDeleteEntryRequest,
    BatchDeleteEntryResponse, GetAuthorizedEntriesRequest, GetAuthorizedEntriesResponse,
    GetEntryRequest, ListEntriesRequest, ListEntriesResponse, batch_create_entry_response,
    batch_delete_entry_response, entry_server, list_entries_request,
};
use lanyard_proto::spire::api::types;
use tonic::{Code, Request, Response, Status};

use super::{Api, datastore_status};
use crate::audit::{AuditFields, result_code, shown_id};
use crate::caller::Peer;
use crate::convert::{self, status, wire_entry};

/// Entries per page when the caller does not choose.
const MAX_PAGE_SIZE: u32 = 1000;

#[tonic::async_trait]
impl entry_server::Entry for Api {
    async fn list_entries(
        &self,
        request: Request<ListEntriesRequest>,
    ) -> Result<Response<ListEntriesResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            let filter = request.get_ref().filter.as_ref();
            r.spiffe_ids
                .extend(filter.and_then(|f| f.by_spiffe_id.as_ref()).map(shown_id));
            r.parent_ids
                .extend(filter.and_then(|f| f.by_parent_id.as_ref()).map(shown_id));
        });
        let req = request.into_inner();
        let filter = entry_filter(req.filter.unwrap_or_default())?;
        let page_size = u32::try_from(req.page_size).map_err(|_| {
            Status::invalid_argument(format!("page_size {}: must not be negative", req.page_size))
        })?;
        let token = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let (entries, next) = self
            .state
            .datastore
            .list_entries(&filter, page_size.min(MAX_PAGE_SIZE), token)
            .await
            .map_err(|e| match e {
                DatastoreError::InvalidInput(msg) => Status::invalid_argument(msg),
                other => datastore_status(other),
            })?;
        Ok(Response::new(ListEntriesResponse {
            entries: entries.iter().map(wire_entry).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<types::Entry>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| r.entry_ids.push(request.get_ref().id.clone()));
        let raw = request.into_inner().id;
        let id = EntryId::parse(&raw)
            .map_err(|e| Status::invalid_argument(format!("id {raw:?}: {e}")))?;
        let entry = self
            .state
            .datastore
            .get_entry(&id)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found(format!("entry {id} not found")))?;
        Ok(Response::new(wire_entry(&entry)))
    }

    async fn batch_create_entry(
        &self,
        request: Request<BatchCreateEntryRequest>,
    ) -> Result<Response<BatchCreateEntryResponse>, Status> {
        let uid = match Peer::of(&request)? {
            Peer::Local { uid, .. } => *uid,
            Peer::Tls { .. } => return Err(Status::permission_denied("admin socket only")),
        };
        let audit = AuditFields::of(&request);
        let mut results = Vec::new();
        for wire in request.into_inner().entries {
            AuditFields::add(audit.as_ref(), |r| {
                r.spiffe_ids.extend(wire.spiffe_id.as_ref().map(shown_id));
                r.parent_ids.extend(wire.parent_id.as_ref().map(shown_id));
            });
            let result = match convert::new_entry(&wire, &self.state.trust_domain) {
                Err(msg) => batch_create_entry_response::Result {
                    status: Some(status(Code::InvalidArgument, msg)),
                    entry: None,
                },
                Ok(new) => match self.state.datastore.create_entry(new).await {
                    Ok(created) => {
                        self.state.index_entries(vec![created.clone()], &[]);
                        tracing::info!(
                            entry.id = %created.id,
                            spiffe_id = %created.spiffe_id,
                            caller.uid = uid,
                            "Entry created"
                        );
                        batch_create_entry_response::Result {
                            status: Some(status(Code::Ok, "OK")),
                            entry: Some(wire_entry(&created)),
                        }
                    }
                    Err(DatastoreError::AlreadyExists(existing)) => {
                        batch_create_entry_response::Result {
                            status: Some(status(
                                Code::AlreadyExists,
                                format!(
                                    "an entry with the same spiffe_id, parent_id and selectors \
                                     already exists: {}",
                                    existing.id
                                ),
                            )),
                            entry: Some(wire_entry(&existing)),
                        }
                    }
                    Err(DatastoreError::EntryIdInUse(..)) => batch_create_entry_response::Result {
                        status: Some(status(
                            Code::AlreadyExists,
                            format!("entry id {:?} is already taken", wire.id),
                        )),
                        entry: None,
                    },
                    Err(DatastoreError::InvalidInput(msg)) => batch_create_entry_response::Result {
                        status: Some(status(Code::InvalidArgument, msg)),
                        entry: None,
                    },
                    Err(e) => batch_create_entry_response::Result {
                        status: Some(status(Code::Internal, format!("datastore: {e}"))),
                        entry: None,
                    },
                },
            };
            AuditFields::add(audit.as_ref(), |r| {
                r.results.push(result_code(result.status.as_ref()));
                if let Some(e) = result.entry.as_ref().filter(|_| {
                    result
                        .status
                        .as_ref()
                        .is_some_and(|s| s.code == Code::Ok as i32)
                }) {
                    r.entry_ids.push(e.id.clone());
                }
            });
            results.push(result);
        }
        Ok(Response::new(BatchCreateEntryResponse { results }))
    }

    async fn batch_delete_entry(
        &self,
        request: Request<BatchDeleteEntryRequest>,
    ) -> Result<Response<BatchDeleteEntryResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let audit = AuditFields::of(&request);
        let mut results = Vec::new();
        for raw in request.into_inner().ids {
            AuditFields::add(audit.as_ref(), |r| r.entry_ids.push(raw.clone()));
            let outcome = match EntryId::parse(&raw) {
                Err(e) => status(Code::InvalidArgument, format!("id {raw:?}: {e}")),
                Ok(id) => match self.state.datastore.delete_entry(&id).await {
                    Ok(Some(_)) => {
                        self.state.index_entries(Vec::new(), &[id.to_string()]);
                        tracing::info!(entry.id = %id, "Entry deleted");
                        status(Code::Ok, "OK")
                    }
                    Ok(None) => status(Code::NotFound, format!("entry {id} not found")),
                    Err(e) => status(Code::Internal, format!("datastore: {e}")),
                },
            };
            AuditFields::add(audit.as_ref(), |r| {
                r.results.push(result_code(Some(&outcome)))
            });
            results.push(batch_delete_entry_response::Result {
                status: Some(outcome),
                id: raw,
            });
        }
        Ok(Response::new(BatchDeleteEntryResponse { results }))
    }

    async fn get_authorized_entries(
        &self,
        request: Request<GetAuthorizedEntriesRequest>,
    ) -> Result<Response<GetAuthorizedEntriesResponse>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let entries = self.state.authorized_entries(&agent);
        Ok(Response::new(GetAuthorizedEntriesResponse {
            entries: entries.iter().map(wire_entry).collect(),
        }))
    }
}

fn entry_filter(f: list_entries_request::Filter) -> Result<EntryFilter, Status> {
    let invalid = |msg: String| Status::invalid_argument(msg);
    let spiffe_id = f
        .by_spiffe_id
        .as_ref()
        .map(|id| convert::spiffe_id("filter.by_spiffe_id", Some(id)).map_err(invalid))
        .transpose()?;
    let parent_id = f
        .by_parent_id
        .as_ref()
        .map(|id| convert::spiffe_id("filter.by_parent_id", Some(id)).map_err(invalid))
        .transpose()?;
    let selectors = match f.by_selectors {
        None => None,
        Some(m) => {
            let selectors = m
                .selectors
                .iter()
                .map(convert::selector)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Status::invalid_argument(format!("filter.by_selectors: {e}")))?;
            let mode = match types::selector_match::MatchBehavior::try_from(m.r#match) {
                Ok(types::selector_match::MatchBehavior::MatchExact) => SelectorMatch::Exact,
                Ok(types::selector_match::MatchBehavior::MatchSubset) => SelectorMatch::Subset,
                Ok(types::selector_match::MatchBehavior::MatchSuperset) => SelectorMatch::Superset,
                Ok(types::selector_match::MatchBehavior::MatchAny) => SelectorMatch::Any,
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "filter.by_selectors.match {}: unknown match behavior",
                        m.r#match
                    )));
                }
            };
            Some((selectors, mode))
        }
    };
    if f.by_federates_with.is_some() {
        return Err(Status::unimplemented(
            "filter.by_federates_with: federation is not available in this version",
        ));
    }
    Ok(EntryFilter {
        spiffe_id,
        parent_id,
        selectors,
        hint: f.by_hint,
        downstream: f.by_downstream,
    })
}
