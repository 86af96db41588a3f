//! BatchCreateEntry, BatchUpdateEntry and BatchDeleteEntry: each item gets its own status, in
//! request order. Creation is one datastore transaction for the whole batch.

use lanyard_datastore::{DatastoreError, Entry, EntryId, NewEntry};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchCreateEntryResponse, BatchDeleteEntryRequest,
    BatchDeleteEntryResponse, BatchUpdateEntryRequest, BatchUpdateEntryResponse,
    batch_create_entry_response, batch_delete_entry_response, batch_update_entry_response,
};
use lanyard_proto::spire::api::types;
use tonic::{Code, Request, Response, Status};

use super::{Api, datastore_status};
use crate::audit::{AuditFields, result_code, shown_id};
use crate::caller::Peer;
use crate::convert::{status, wire_entry};
use crate::mask;
use crate::validate;

/// More items than this in one batch are refused, so one call cannot hold the write lock for
/// long.
const MAX_BATCH: usize = 10_000;

impl Api {
    pub(super) async fn create_entries(
        &self,
        request: Request<BatchCreateEntryRequest>,
    ) -> Result<Response<BatchCreateEntryResponse>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        let audit = AuditFields::of(&request);
        let req = request.into_inner();
        check_batch(req.entries.len())?;

        // Validate every item first; the valid ones go to the datastore in one transaction.
        let mut outcomes: Vec<Option<Created>> = Vec::new();
        let mut batch: Vec<NewEntry> = Vec::new();
        for wire in &req.entries {
            AuditFields::add(audit.as_ref(), |r| {
                r.spiffe_ids.extend(wire.spiffe_id.as_ref().map(shown_id));
                r.parent_ids.extend(wire.parent_id.as_ref().map(shown_id));
            });
            match self.checked_new_entry(wire).await? {
                Ok(new) => {
                    batch.push(new);
                    outcomes.push(None);
                }
                Err(msg) => outcomes.push(Some(Created::Failed(Code::InvalidArgument, msg))),
            }
        }
        let stored = if batch.is_empty() {
            Vec::new()
        } else {
            self.state
                .datastore
                .create_entries(batch)
                .await
                .map_err(datastore_status)?
        };

        let mut stored = stored.into_iter();
        let mut fresh = Vec::new();
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let outcome = outcome.or_else(|| stored.next().map(Created::from));
            let result = match outcome {
                Some(Created::Ok(entry)) => {
                    tracing::info!(
                        entry.id = %entry.id,
                        spiffe_id = %entry.spiffe_id,
                        caller.id = caller.as_ref().map(tracing::field::display),
                        "Entry created"
                    );
                    let wire = wire_entry(&entry);
                    fresh.push(entry);
                    with_entry(status(Code::Ok, "OK"), wire, req.output_mask.as_ref())
                }
                // SPIRE returns the entry that already exists, so a retried batch can carry on.
                Some(Created::Exists(existing)) => with_entry(
                    status(
                        Code::AlreadyExists,
                        format!(
                            "an entry with the same spiffe_id, parent_id and selectors already \
                             exists: {}",
                            existing.id
                        ),
                    ),
                    wire_entry(&existing),
                    req.output_mask.as_ref(),
                ),
                Some(Created::Failed(code, msg)) => batch_create_entry_response::Result {
                    status: Some(status(code, msg)),
                    entry: None,
                },
                None => batch_create_entry_response::Result {
                    status: Some(status(
                        Code::Internal,
                        "datastore returned fewer results than entries sent",
                    )),
                    entry: None,
                },
            };
            AuditFields::add(audit.as_ref(), |r| {
                r.results.push(result_code(result.status.as_ref()));
                if result.status.as_ref().is_some_and(|s| s.code == 0) {
                    r.entry_ids
                        .extend(result.entry.as_ref().map(|e| e.id.clone()));
                }
            });
            results.push(result);
        }
        self.state.index_entries(fresh, &[]);
        Ok(Response::new(BatchCreateEntryResponse { results }))
    }

    pub(super) async fn update_entries(
        &self,
        request: Request<BatchUpdateEntryRequest>,
    ) -> Result<Response<BatchUpdateEntryResponse>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        let audit = AuditFields::of(&request);
        let req = request.into_inner();
        check_batch(req.entries.len())?;
        let mut results = Vec::with_capacity(req.entries.len());
        for wire in &req.entries {
            AuditFields::add(audit.as_ref(), |r| r.entry_ids.push(wire.id.clone()));
            let outcome = self.update_entry(wire, req.input_mask.as_ref()).await?;
            let result = match outcome {
                Ok(entry) => {
                    tracing::info!(
                        entry.id = %entry.id,
                        revision = entry.revision_number,
                        caller.id = caller.as_ref().map(tracing::field::display),
                        "Entry updated"
                    );
                    let wire = mask::entry(wire_entry(&entry), req.output_mask.as_ref());
                    self.state.index_entries(vec![entry], &[]);
                    batch_update_entry_response::Result {
                        status: Some(status(Code::Ok, "OK")),
                        entry: Some(wire),
                    }
                }
                Err((code, msg)) => batch_update_entry_response::Result {
                    status: Some(status(code, msg)),
                    entry: None,
                },
            };
            AuditFields::add(audit.as_ref(), |r| {
                r.results.push(result_code(result.status.as_ref()))
            });
            results.push(result);
        }
        Ok(Response::new(BatchUpdateEntryResponse { results }))
    }

    pub(super) async fn delete_entries(
        &self,
        request: Request<BatchDeleteEntryRequest>,
    ) -> Result<Response<BatchDeleteEntryResponse>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        let audit = AuditFields::of(&request);
        let ids = request.into_inner().ids;
        check_batch(ids.len())?;
        let mut results = Vec::with_capacity(ids.len());
        for raw in ids {
            AuditFields::add(audit.as_ref(), |r| r.entry_ids.push(raw.clone()));
            let outcome = match EntryId::parse(&raw) {
                Err(e) => status(Code::InvalidArgument, format!("id {raw:?}: {e}")),
                Ok(id) => match self.state.datastore.delete_entry(&id).await {
                    Ok(Some(_)) => {
                        self.state.index_entries(Vec::new(), &[id.to_string()]);
                        tracing::info!(
                            entry.id = %id,
                            caller.id = caller.as_ref().map(tracing::field::display),
                            "Entry deleted"
                        );
                        status(Code::Ok, "OK")
                    }
                    Ok(None) => status(Code::NotFound, format!("entry {id} not found")),
                    Err(e) => return Err(datastore_status(e)),
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

    /// The entry rules, then whether each federated trust domain has a bundle.
    async fn checked_new_entry(
        &self,
        wire: &types::Entry,
    ) -> Result<Result<NewEntry, String>, Status> {
        let new = match validate::new_entry(wire, &self.state.trust_domain) {
            Ok(new) => new,
            Err(msg) => return Ok(Err(msg)),
        };
        let known = validate::federates_with(self.state.datastore.as_ref(), &new.federates_with)
            .await
            .map_err(datastore_status)?;
        Ok(known.map(|()| new))
    }

    async fn update_entry(
        &self,
        wire: &types::Entry,
        mask: Option<&types::EntryMask>,
    ) -> Result<Result<Entry, (Code, String)>, Status> {
        let (id, update) = match validate::entry_update(wire, mask, &self.state.trust_domain) {
            Ok(parsed) => parsed,
            Err(msg) => return Ok(Err((Code::InvalidArgument, msg))),
        };
        if let Some(list) = &update.federates_with {
            let known = validate::federates_with(self.state.datastore.as_ref(), list)
                .await
                .map_err(datastore_status)?;
            if let Err(msg) = known {
                return Ok(Err((Code::InvalidArgument, msg)));
            }
        }
        match self.state.datastore.update_entry(&id, update).await {
            Ok(entry) => Ok(Ok(entry)),
            Err(DatastoreError::EntryNotFound(id)) => {
                Ok(Err((Code::NotFound, format!("entry {id} not found"))))
            }
            Err(e @ DatastoreError::AlreadyExists(_)) => {
                Ok(Err((Code::AlreadyExists, e.to_string())))
            }
            Err(DatastoreError::InvalidInput(msg)) => Ok(Err((Code::InvalidArgument, msg))),
            Err(e) => Err(datastore_status(e)),
        }
    }
}

/// What became of one item of a batch create.
enum Created {
    Ok(Entry),
    /// An entry with the same SPIFFE ID, parent ID and selectors exists.
    Exists(Box<Entry>),
    Failed(Code, String),
}

impl From<Result<Entry, DatastoreError>> for Created {
    fn from(r: Result<Entry, DatastoreError>) -> Self {
        match r {
            Ok(e) => Created::Ok(e),
            Err(DatastoreError::AlreadyExists(existing)) => Created::Exists(existing),
            Err(e @ DatastoreError::EntryIdInUse(_)) => {
                Created::Failed(Code::AlreadyExists, e.to_string())
            }
            Err(DatastoreError::InvalidInput(msg)) => Created::Failed(Code::InvalidArgument, msg),
            Err(e) => Created::Failed(Code::Internal, format!("datastore: {e}")),
        }
    }
}

fn check_batch(n: usize) -> Result<(), Status> {
    if n > MAX_BATCH {
        return Err(Status::invalid_argument(format!(
            "{n} items in one batch: at most {MAX_BATCH} are accepted; split the request"
        )));
    }
    Ok(())
}

fn with_entry(
    status: types::Status,
    entry: types::Entry,
    output: Option<&types::EntryMask>,
) -> batch_create_entry_response::Result {
    batch_create_entry_response::Result {
        status: Some(status),
        entry: Some(mask::entry(entry, output)),
    }
}
