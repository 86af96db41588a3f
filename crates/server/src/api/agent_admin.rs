//! The admin half of `spire.api.server.agent.v1.Agent`: listing, counting, reading, evicting
//! and banning attested agents.
//!
//! An evicted agent is forgotten: its certificate no longer authorizes anything, and it must
//! attest again (a join token is single use, so with a new token). A banned agent stays
//! listed with `banned = true`; its serials are cleared, so no certificate of it is current,
//! and every agent RPC it makes is refused with "agent ... is banned".

use lanyard_datastore::{AgentFilter, AttestedAgent, DatastoreError};
use lanyard_proto::spire::api::server::agent::v1::{
    BanAgentRequest, CountAgentsRequest, CountAgentsResponse, DeleteAgentRequest, GetAgentRequest,
    ListAgentsRequest, ListAgentsResponse, count_agents_request, list_agents_request,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::SpiffeId;
use tonic::{Request, Response, Status};

use super::entry::selector_filter;
use super::{Api, count, datastore_status, list_status, page};
use crate::audit::{AuditFields, shown_id};
use crate::caller::Peer;
use crate::convert::{self, wire_id, wire_selector};
use crate::mask;

/// Agents per page when the caller asks for more.
const MAX_PAGE_SIZE: u32 = 1000;

impl Api {
    pub(super) async fn count_agents_impl(
        &self,
        request: Request<CountAgentsRequest>,
    ) -> Result<Response<CountAgentsResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let f = request.into_inner().filter.unwrap_or_default();
        let filter = agent_filter(Filter::from(f))?;
        let n = self
            .state
            .datastore
            .count_agents(&filter)
            .await
            .map_err(datastore_status)?;
        Ok(Response::new(CountAgentsResponse { count: count(n) }))
    }

    pub(super) async fn list_agents_impl(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        let req = request.into_inner();
        let filter = agent_filter(Filter::from(req.filter.unwrap_or_default()))?;
        let (size, token) = page(req.page_size, &req.page_token, MAX_PAGE_SIZE)?;
        let (agents, next) = self
            .state
            .datastore
            .query_agents(&filter, size, token)
            .await
            .map_err(list_status)?;
        Ok(Response::new(ListAgentsResponse {
            agents: agents
                .iter()
                .map(|a| mask::agent(wire_agent(a), req.output_mask.as_ref()))
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    pub(super) async fn get_agent_impl(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<types::Agent>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        note_id(&request, request.get_ref().id.as_ref());
        let req = request.into_inner();
        let id = agent_id(req.id.as_ref())?;
        let agent = self
            .state
            .datastore
            .get_agent(&id)
            .await
            .map_err(datastore_status)?
            .ok_or_else(|| Status::not_found(format!("agent {id} not found")))?;
        Ok(Response::new(mask::agent(
            wire_agent(&agent),
            req.output_mask.as_ref(),
        )))
    }

    pub(super) async fn delete_agent_impl(
        &self,
        request: Request<DeleteAgentRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        note_id(&request, request.get_ref().id.as_ref());
        let id = agent_id(request.get_ref().id.as_ref())?;
        self.check_own_trust_domain(&id)?;
        let deleted = self
            .state
            .datastore
            .delete_agent(&id)
            .await
            .map_err(datastore_status)?;
        if deleted.is_none() {
            return Err(Status::not_found(format!("agent {id} not found")));
        }
        self.state.forget_agent(&id);
        tracing::info!(
            agent.id = %id,
            caller.id = caller.as_ref().map(tracing::field::display),
            "Agent evicted"
        );
        Ok(Response::new(()))
    }

    pub(super) async fn ban_agent_impl(
        &self,
        request: Request<BanAgentRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Peer::of(&request)?.require_admin(&self.state)?;
        note_id(&request, request.get_ref().id.as_ref());
        let id = agent_id(request.get_ref().id.as_ref())?;
        self.check_own_trust_domain(&id)?;
        let banned = match self.state.datastore.set_agent_banned(&id).await {
            Ok(agent) => agent,
            Err(DatastoreError::AgentNotFound(_)) => {
                return Err(Status::not_found(format!("agent {id} not found")));
            }
            Err(e) => return Err(datastore_status(e)),
        };
        self.state.remember_agent(banned);
        tracing::info!(
            agent.id = %id,
            caller.id = caller.as_ref().map(tracing::field::display),
            "Agent banned"
        );
        Ok(Response::new(()))
    }
}

/// An attested agent in the wire form.
pub(crate) fn wire_agent(a: &AttestedAgent) -> types::Agent {
    types::Agent {
        id: Some(wire_id(&a.id)),
        attestation_type: a.attestation_type.clone(),
        x509svid_serial_number: a.serial.clone(),
        x509svid_expires_at: a.expires_at,
        selectors: a.selectors.iter().map(wire_selector).collect(),
        banned: a.banned,
        can_reattest: a.can_reattest,
    }
}

fn note_id<T>(request: &Request<T>, id: Option<&types::Spiffeid>) {
    AuditFields::note(request, |r| r.spiffe_ids.extend(id.map(shown_id)));
}

impl Api {
    /// Refuses an agent ID of another trust domain: no such agent can exist here, and "not
    /// found" would send the operator looking for a typo in the path instead of the domain.
    fn check_own_trust_domain(&self, id: &SpiffeId) -> Result<(), Status> {
        if id.trust_domain_name() == self.state.trust_domain.name() {
            return Ok(());
        }
        Err(Status::invalid_argument(format!(
            "agent {id} is not in this trust domain: this server's agents are in {}",
            self.state.trust_domain
        )))
    }
}

fn agent_id(id: Option<&types::Spiffeid>) -> Result<SpiffeId, Status> {
    convert::spiffe_id("id", id).map_err(Status::invalid_argument)
}

/// The filter fields shared by ListAgents and CountAgents.
struct Filter {
    by_attestation_type: String,
    by_selector_match: Option<types::SelectorMatch>,
    by_banned: Option<bool>,
    by_can_reattest: Option<bool>,
    by_expires_before: String,
}

impl From<list_agents_request::Filter> for Filter {
    fn from(f: list_agents_request::Filter) -> Self {
        Self {
            by_attestation_type: f.by_attestation_type,
            by_selector_match: f.by_selector_match,
            by_banned: f.by_banned,
            by_can_reattest: f.by_can_reattest,
            by_expires_before: f.by_expires_before,
        }
    }
}

impl From<count_agents_request::Filter> for Filter {
    fn from(f: count_agents_request::Filter) -> Self {
        Self {
            by_attestation_type: f.by_attestation_type,
            by_selector_match: f.by_selector_match,
            by_banned: f.by_banned,
            by_can_reattest: f.by_can_reattest,
            by_expires_before: f.by_expires_before,
        }
    }
}

fn agent_filter(f: Filter) -> Result<AgentFilter, Status> {
    let selectors = f
        .by_selector_match
        .as_ref()
        .map(|m| selector_filter("filter.by_selector_match", m))
        .transpose()?;
    let expires_before = if f.by_expires_before.is_empty() {
        None
    } else {
        Some(
            super::time::parse_time(&f.by_expires_before).map_err(|rule| {
                Status::invalid_argument(format!(
                    "filter.by_expires_before {:?}: {rule}",
                    f.by_expires_before
                ))
            })?,
        )
    };
    Ok(AgentFilter {
        attestation_type: (!f.by_attestation_type.is_empty()).then_some(f.by_attestation_type),
        selectors,
        banned: f.by_banned,
        can_reattest: f.by_can_reattest,
        expires_before,
    })
}
