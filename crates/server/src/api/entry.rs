//! `spire.api.server.entry.v1.Entry`: registration entries for admins (reads here, writes in
//! `entry_write.rs`), authorized entries for agents (`entry_sync.rs`).

use lanyard_datastore::{EntryFilter, EntryId, SelectorMatch};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchCreateEntryResponse, BatchDeleteEntryRequest,
    BatchDeleteEntryResponse, BatchUpdateEntryRequest, BatchUpdateEntryResponse,
    CountEntriesRequest, CountEntriesResponse, GetAuthorizedEntriesRequest,
    GetAuthorizedEntriesResponse, GetEntryRequest, ListEntriesRequest, ListEntriesResponse,
    SyncAuthorizedEntriesRequest, count_entries_request, entry_server, list_entries_request,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::Selector;
use tonic::{Request, Response, Status, Streaming};

use super::entry_sync::SyncStream;
use super::{Api, count, datastore_status, list_status, page};
use crate::audit::{AuditFields, shown_id};
use crate::caller::Peer;
use crate::convert::{self, wire_entry};
use crate::mask;
use crate::validate;

/// Entries per page when the caller asks for more (SPIRE's entry page size is 500).
const MAX_PAGE_SIZE: u32 = 1000;

#[tonic::async_trait]
impl entry_server::Entry for Api {
    async fn count_entries(
        &self,
        request: Request<CountEntriesRequest>,
    ) -> Result<Response<CountEntriesResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let f = request.into_inner().filter.unwrap_or_default();
        let filter = entry_filter(Filter::from(f))?;
        let n = self
            .state
            .datastore
            .count_entries(&filter)
            .await
            .map_err(datastore_status)?;
        Ok(Response::new(CountEntriesResponse { count: count(n) }))
    }

    async fn list_entries(
        &self,
        request: Request<ListEntriesRequest>,
    ) -> Result<Response<ListEntriesResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        AuditFields::note(&request, |r| {
            let filter = request.get_ref().filter.as_ref();
            r.spiffe_ids
                .extend(filter.and_then(|f| f.by_spiffe_id.as_ref()).map(shown_id));
            r.parent_ids
                .extend(filter.and_then(|f| f.by_parent_id.as_ref()).map(shown_id));
        });
        let req = request.into_inner();
        let filter = entry_filter(Filter::from(req.filter.unwrap_or_default()))?;
        let (size, token) = page(req.page_size, &req.page_token, MAX_PAGE_SIZE)?;
        let (entries, next) = self
            .state
            .datastore
            .list_entries(&filter, size, token)
            .await
            .map_err(list_status)?;
        Ok(Response::new(ListEntriesResponse {
            entries: entries
                .iter()
                .map(|e| mask::entry(wire_entry(e), req.output_mask.as_ref()))
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<types::Entry>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        AuditFields::note(&request, |r| r.entry_ids.push(request.get_ref().id.clone()));
        let req = request.into_inner();
        let id = EntryId::parse(&req.id)
            .map_err(|e| Status::invalid_argument(format!("id {:?}: {e}", req.id)))?;
        let entry = self
            .state
            .datastore
            .get_entry(&id)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found(format!("entry {id} not found")))?;
        Ok(Response::new(mask::entry(
            wire_entry(&entry),
            req.output_mask.as_ref(),
        )))
    }

    async fn batch_create_entry(
        &self,
        request: Request<BatchCreateEntryRequest>,
    ) -> Result<Response<BatchCreateEntryResponse>, Status> {
        self.create_entries(request).await
    }

    async fn batch_update_entry(
        &self,
        request: Request<BatchUpdateEntryRequest>,
    ) -> Result<Response<BatchUpdateEntryResponse>, Status> {
        self.update_entries(request).await
    }

    async fn batch_delete_entry(
        &self,
        request: Request<BatchDeleteEntryRequest>,
    ) -> Result<Response<BatchDeleteEntryResponse>, Status> {
        self.delete_entries(request).await
    }

    async fn get_authorized_entries(
        &self,
        request: Request<GetAuthorizedEntriesRequest>,
    ) -> Result<Response<GetAuthorizedEntriesResponse>, Status> {
        self.authorized_entries(request).await
    }

    type SyncAuthorizedEntriesStream = SyncStream;

    async fn sync_authorized_entries(
        &self,
        request: Request<Streaming<SyncAuthorizedEntriesRequest>>,
    ) -> Result<Response<SyncStream>, Status> {
        self.sync_entries(request).await
    }
}

/// The filter fields shared by ListEntries and CountEntries (two identical wire messages).
struct Filter {
    by_spiffe_id: Option<types::Spiffeid>,
    by_parent_id: Option<types::Spiffeid>,
    by_selectors: Option<types::SelectorMatch>,
    by_federates_with: Option<types::FederatesWithMatch>,
    by_hint: Option<String>,
    by_downstream: Option<bool>,
}

impl From<list_entries_request::Filter> for Filter {
    fn from(f: list_entries_request::Filter) -> Self {
        Self {
            by_spiffe_id: f.by_spiffe_id,
            by_parent_id: f.by_parent_id,
            by_selectors: f.by_selectors,
            by_federates_with: f.by_federates_with,
            by_hint: f.by_hint,
            by_downstream: f.by_downstream,
        }
    }
}

impl From<count_entries_request::Filter> for Filter {
    fn from(f: count_entries_request::Filter) -> Self {
        Self {
            by_spiffe_id: f.by_spiffe_id,
            by_parent_id: f.by_parent_id,
            by_selectors: f.by_selectors,
            by_federates_with: f.by_federates_with,
            by_hint: f.by_hint,
            by_downstream: f.by_downstream,
        }
    }
}

fn entry_filter(f: Filter) -> Result<EntryFilter, Status> {
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
    let selectors = f
        .by_selectors
        .as_ref()
        .map(|m| selector_filter("filter.by_selectors", m))
        .transpose()?;
    let federates_with = match f.by_federates_with {
        None => None,
        Some(m) => {
            let tds = m
                .trust_domains
                .iter()
                .map(|td| validate::trust_domain("filter.by_federates_with", td))
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            Some((tds, federates_match(m.r#match)?))
        }
    };
    Ok(EntryFilter {
        spiffe_id,
        parent_id,
        selectors,
        federates_with,
        hint: f.by_hint,
        downstream: f.by_downstream,
    })
}

/// A wire selector filter (ListEntries' `by_selectors`, ListAgents' `by_selector_match`):
/// the selectors and how to match them. `field` names the filter in error messages.
pub(crate) fn selector_filter(
    field: &str,
    m: &types::SelectorMatch,
) -> Result<(Vec<Selector>, SelectorMatch), Status> {
    let selectors = m
        .selectors
        .iter()
        .map(convert::selector)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Status::invalid_argument(format!("{field}: {e}")))?;
    Ok((selectors, selector_match(m.r#match)?))
}

/// A wire selector match mode.
fn selector_match(raw: i32) -> Result<SelectorMatch, Status> {
    use types::selector_match::MatchBehavior as M;
    match M::try_from(raw) {
        Ok(M::MatchExact) => Ok(SelectorMatch::Exact),
        Ok(M::MatchSubset) => Ok(SelectorMatch::Subset),
        Ok(M::MatchSuperset) => Ok(SelectorMatch::Superset),
        Ok(M::MatchAny) => Ok(SelectorMatch::Any),
        Err(_) => Err(Status::invalid_argument(format!(
            "match {raw}: unknown match behavior (0 exact, 1 subset, 2 superset, 3 any)"
        ))),
    }
}

fn federates_match(raw: i32) -> Result<SelectorMatch, Status> {
    use types::federates_with_match::MatchBehavior as M;
    match M::try_from(raw) {
        Ok(M::MatchExact) => Ok(SelectorMatch::Exact),
        Ok(M::MatchSubset) => Ok(SelectorMatch::Subset),
        Ok(M::MatchSuperset) => Ok(SelectorMatch::Superset),
        Ok(M::MatchAny) => Ok(SelectorMatch::Any),
        Err(_) => Err(Status::invalid_argument(format!(
            "filter.by_federates_with.match {raw}: unknown match behavior (0 exact, 1 subset, \
             2 superset, 3 any)"
        ))),
    }
}
