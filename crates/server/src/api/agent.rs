//! `spire.api.server.agent.v1.Agent`: node attestation, agent SVID renewal, join tokens; the
//! admin RPCs on attested agents are in `agent_admin.rs`.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use lanyard_datastore::{AttestedAgent, NewEntry, TokenUse};
use lanyard_proto::spire::api::server::agent::v1::{
    AttestAgentRequest, AttestAgentResponse, BanAgentRequest, CountAgentsRequest,
    CountAgentsResponse, CreateJoinTokenRequest, DeleteAgentRequest, GetAgentRequest,
    ListAgentsRequest, ListAgentsResponse, PostStatusRequest, PostStatusResponse,
    RenewAgentRequest, RenewAgentResponse, agent_server, attest_agent_request,
    attest_agent_response,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId};
use lanyard_telemetry::SvidKind;
use tonic::{Request, Response, Status, Streaming};

use super::{Api, datastore_status};
use crate::attest::{AttestError, Pending, X509POP};
use crate::audit::{AuditFields, shown_id};
use crate::caller::Peer;
use crate::convert;

/// The join token attestor's name; the x509pop one is [`X509POP`].
const JOIN_TOKEN: &str = "join_token";

/// How long the server waits for the answer to an attestation challenge.
const CHALLENGE_WAIT: Duration = Duration::from_secs(30);

#[tonic::async_trait]
impl agent_server::Agent for Api {
    async fn count_agents(
        &self,
        request: Request<CountAgentsRequest>,
    ) -> Result<Response<CountAgentsResponse>, Status> {
        self.count_agents_impl(request).await
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        self.list_agents_impl(request).await
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<types::Agent>, Status> {
        self.get_agent_impl(request).await
    }

    async fn delete_agent(
        &self,
        request: Request<DeleteAgentRequest>,
    ) -> Result<Response<()>, Status> {
        self.delete_agent_impl(request).await
    }

    async fn ban_agent(&self, request: Request<BanAgentRequest>) -> Result<Response<()>, Status> {
        self.ban_agent_impl(request).await
    }

    async fn post_status(
        &self,
        request: Request<PostStatusRequest>,
    ) -> Result<Response<PostStatusResponse>, Status> {
        Peer::of(&request)?.require_agent(&self.state).await?;
        // SPIRE declares PostStatus but its server answers Unimplemented too; agents do not
        // depend on it.
        Err(Status::unimplemented(
            "PostStatus is not implemented: the server does not track which bundle each agent \
             serves (SPIRE's server does not implement it either)",
        ))
    }

    type AttestAgentStream =
        Pin<Box<dyn Stream<Item = Result<AttestAgentResponse, Status>> + Send + 'static>>;

    async fn attest_agent(
        &self,
        request: Request<Streaming<AttestAgentRequest>>,
    ) -> Result<Response<Self::AttestAgentStream>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("attestation stream closed before params"))?;
        let Some(attest_agent_request::Step::Params(params)) = first.step else {
            return Err(Status::invalid_argument(
                "the first attestation message must carry params",
            ));
        };
        let data = params
            .data
            .ok_or_else(|| Status::invalid_argument("params.data is missing"))?;
        let csr = params
            .params
            .map(|p| p.csr)
            .filter(|csr| !csr.is_empty())
            .ok_or_else(|| Status::invalid_argument("params.params.csr is missing"))?;
        // Check the CSR before spending the token, so a broken agent does not burn it.
        lanyard_ca::parse_csr(&csr).map_err(|e| Status::invalid_argument(format!("csr: {e}")))?;
        match (data.r#type.as_str(), &self.state.config.x509pop) {
            (JOIN_TOKEN, _) => {
                let token = String::from_utf8(data.payload)
                    .map_err(|_| Status::invalid_argument("join token is not UTF-8"))?;
                let agent_id = self.attest_join_token(&token).await?;
                let svid = self
                    .record_attested(agent_id, JOIN_TOKEN, Vec::new(), &csr)
                    .await?;
                Ok(Response::new(Box::pin(futures::stream::once(async {
                    Ok(attest_result(svid, false))
                }))))
            }
            (X509POP, Some(x509pop)) => {
                let pending = x509pop
                    .begin(
                        &self.state.trust_domain,
                        &data.payload,
                        self.state.clock.now(),
                    )
                    .map_err(|e| refused_x509pop(&e))?;
                let challenge = pending.challenge_json().map_err(|e| e.status())?;
                let api = self.clone();
                let first = futures::stream::once(async move {
                    Ok(AttestAgentResponse {
                        step: Some(attest_agent_response::Step::Challenge(challenge)),
                    })
                });
                // Polled only after the challenge went out, so it waits for the answer.
                let rest =
                    futures::stream::once(
                        async move { api.finish_x509pop(pending, stream, csr).await },
                    );
                Ok(Response::new(Box::pin(first.chain(rest))))
            }
            (other, _) => {
                let enabled = if self.state.config.x509pop.is_some() {
                    format!("\"{JOIN_TOKEN}\" and \"{X509POP}\"")
                } else {
                    format!("\"{JOIN_TOKEN}\"")
                };
                Err(Status::invalid_argument(format!(
                    "attestation type {other:?} is not enabled on this server: the enabled node \
                     attestors are {enabled}"
                )))
            }
        }
    }

    async fn renew_agent(
        &self,
        request: Request<RenewAgentRequest>,
    ) -> Result<Response<RenewAgentResponse>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let csr = request
            .into_inner()
            .params
            .map(|p| p.csr)
            .filter(|csr| !csr.is_empty())
            .ok_or_else(|| Status::invalid_argument("params.csr is missing"))?;
        let svid = self.sign_from_csr(
            &agent.id,
            &csr,
            self.state.config.agent_ttl,
            Vec::new(),
            String::new(),
            SvidKind::X509Agent,
        )?;
        let leaf = rustls_pki_types::CertificateDer::from(
            svid.cert_chain.first().cloned().unwrap_or_default(),
        );
        let serial = lanyard_spiffe::x509::serial_of(&leaf)
            .map_err(|e| Status::internal(format!("signed certificate: {e}")))?;
        self.state
            .datastore
            .set_agent_new_serial(&agent.id, &serial, svid.expires_at)
            .await
            .map_err(datastore_status)?;
        self.state.remember_agent(AttestedAgent {
            new_serial: Some(serial.clone()),
            new_expires_at: svid.expires_at,
            ..agent.clone()
        });
        tracing::debug!(agent.id = %agent.id, serial, "Agent SVID renewed");
        Ok(Response::new(RenewAgentResponse { svid: Some(svid) }))
    }

    async fn create_join_token(
        &self,
        request: Request<CreateJoinTokenRequest>,
    ) -> Result<Response<types::JoinToken>, Status> {
        Peer::of(&request)?.require_admin(&self.state)?;
        // Never the token itself: whoever reads the log could attest with it.
        AuditFields::note(&request, |r| {
            let req = request.get_ref();
            r.details.push(match req.ttl {
                0 => "ttl=default".to_owned(),
                ttl => format!("ttl={ttl}"),
            });
            let chosen = if req.token.is_empty() {
                "generated"
            } else {
                "chosen by caller"
            };
            r.details.push(format!("token={chosen}"));
            if let Some(id) = &req.agent_id {
                r.spiffe_ids.push(shown_id(id));
            }
        });
        let req = request.into_inner();
        if req.ttl < 0 {
            return Err(Status::invalid_argument(format!(
                "ttl {}: must be a positive number of seconds",
                req.ttl
            )));
        }
        let ttl = if req.ttl == 0 {
            self.state.config.join_token_ttl
        } else {
            Duration::from_secs(req.ttl.unsigned_abs().into())
        };
        let token = if req.token.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.token
        };
        // The token becomes a path segment of the agent ID, so it must be a valid one.
        let agent_id = join_token_agent_id(&self.state.trust_domain, &token)?;
        let alias = match &req.agent_id {
            Some(id) => Some(self.alias_entry(id, &agent_id)?),
            None => None,
        };

        let expires_at = self
            .state
            .now_unix()
            .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        self.state
            .datastore
            .create_join_token(&token, expires_at)
            .await
            .map_err(datastore_status)?;
        if let Some(alias) = alias {
            match self.state.datastore.create_entry(alias).await {
                Ok(created) => self.state.index_entries(vec![created], &[]),
                Err(lanyard_datastore::DatastoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(datastore_status(e)),
            }
        }
        tracing::info!(expires_at, "Join token created");
        Ok(Response::new(types::JoinToken {
            value: token,
            expires_at,
        }))
    }
}

impl Api {
    /// Reads the agent's challenge response, checks it, then records the agent.
    async fn finish_x509pop(
        &self,
        pending: Pending,
        mut stream: Streaming<AttestAgentRequest>,
        csr: Vec<u8>,
    ) -> Result<AttestAgentResponse, Status> {
        // Anyone may open AttestAgent: an agent that never answers must not hold the stream.
        let next = tokio::time::timeout(CHALLENGE_WAIT, stream.message())
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "no x509pop challenge response within {}s",
                    CHALLENGE_WAIT.as_secs()
                ))
            })??
            .ok_or_else(|| {
                Status::invalid_argument("attestation stream closed before the challenge response")
            })?;
        let Some(attest_agent_request::Step::ChallengeResponse(answer)) = next.step else {
            return Err(Status::invalid_argument(
                "the message after an x509pop challenge must carry challenge_response",
            ));
        };
        let attested = pending.finish(&answer).map_err(|e| refused_x509pop(&e))?;
        let svid = self
            .record_attested(attested.agent_id, X509POP, attested.selectors, &csr)
            .await?;
        Ok(attest_result(svid, true))
    }

    /// Signs the agent's SVID and records it: a new agent, or a re-attestation of a known one
    /// when the attestor allows that (all but join tokens); banned agents are refused.
    async fn record_attested(
        &self,
        agent_id: SpiffeId,
        attestor: &str,
        selectors: Vec<Selector>,
        csr: &[u8],
    ) -> Result<types::X509svid, Status> {
        let can_reattest = attestor != JOIN_TOKEN;
        if can_reattest {
            let existing = self
                .state
                .datastore
                .get_agent(&agent_id)
                .await
                .map_err(datastore_status)?;
            if existing.is_some_and(|a| a.banned) {
                tracing::info!(agent.id = %agent_id, attestor, "Denied: agent is banned");
                return Err(crate::caller::agent_denied(
                    crate::caller::Reason::AgentBanned,
                    format!(
                        "agent {agent_id} is banned: delete it with `lanyard server agent evict \
                         --spiffe-id {agent_id}` before it may attest again"
                    ),
                ));
            }
        }
        let svid = self.sign_from_csr(
            &agent_id,
            csr,
            self.state.config.agent_ttl,
            Vec::new(),
            String::new(),
            SvidKind::X509Agent,
        )?;
        let leaf = svid
            .cert_chain
            .first()
            .map(|c| rustls_pki_types::CertificateDer::from(c.clone()))
            .ok_or_else(|| Status::internal("signed chain is empty"))?;
        let serial = lanyard_spiffe::x509::serial_of(&leaf)
            .map_err(|e| Status::internal(format!("signed certificate: {e}")))?;
        let mut selectors = selectors;
        selectors.sort();
        selectors.dedup();
        let agent = AttestedAgent {
            id: agent_id.clone(),
            attestation_type: attestor.to_string(),
            serial,
            expires_at: svid.expires_at,
            new_serial: None,
            new_expires_at: 0,
            banned: false,
            can_reattest,
            selectors,
        };
        let datastore = &self.state.datastore;
        let reattested = match datastore.create_agent(&agent).await {
            Ok(()) => false,
            Err(lanyard_datastore::DatastoreError::AgentAlreadyExists(_)) if can_reattest => {
                datastore
                    .reattest_agent(&agent)
                    .await
                    .map_err(datastore_status)?;
                true
            }
            Err(e) => return Err(datastore_status(e)),
        };
        self.state.remember_agent(agent);
        if reattested {
            tracing::info!(agent.id = %agent_id, attestor, "Agent re-attested");
        } else {
            tracing::info!(agent.id = %agent_id, attestor, "Agent attested");
        }
        Ok(svid)
    }

    /// Spends a join token, telling apart unknown, expired and reused tokens.
    async fn attest_join_token(&self, token: &str) -> Result<SpiffeId, Status> {
        let agent_id = join_token_agent_id(&self.state.trust_domain, token)
            .map_err(|_| Status::permission_denied("join token does not exist"))?;
        let now = self.state.now_unix();
        let outcome = self
            .state
            .datastore
            .consume_join_token(token, now)
            .await
            .map_err(datastore_status)?;
        let refused = match outcome {
            TokenUse::Accepted => return Ok(agent_id),
            TokenUse::Unknown => "join token does not exist".to_string(),
            TokenUse::Expired => "join token has expired".to_string(),
            TokenUse::AlreadyUsed => {
                "join token has already been used: tokens are single use".to_string()
            }
        };
        tracing::info!(reason = %refused, "Denied: join token refused");
        Err(Status::permission_denied(refused))
    }

    /// The entry that gives the token's agent a friendly ID, as `token generate --spiffe-id`.
    fn alias_entry(&self, id: &types::Spiffeid, agent_id: &SpiffeId) -> Result<NewEntry, Status> {
        let alias = convert::spiffe_id("agent_id", Some(id)).map_err(Status::invalid_argument)?;
        if !alias.is_member_of(&self.state.trust_domain) {
            return Err(Status::invalid_argument(format!(
                "agent_id {alias} is not in this server's trust domain {}",
                self.state.trust_domain
            )));
        }
        crate::validate::check_issuable("agent_id", &alias).map_err(Status::invalid_argument)?;
        let selector = Selector::new("spiffe_id", agent_id.as_str())
            .map_err(|e| Status::internal(format!("alias selector: {e}")))?;
        Ok(NewEntry {
            id: None,
            spiffe_id: alias,
            parent_id: agent_id.clone(),
            selectors: vec![selector],
            x509_svid_ttl: 0,
            jwt_svid_ttl: 0,
            federates_with: Vec::new(),
            admin: false,
            downstream: false,
            expires_at: 0,
            dns_names: Vec::new(),
            store_svid: false,
            hint: String::new(),
        })
    }
}

/// The last message of a successful attestation.
fn attest_result(svid: types::X509svid, reattestable: bool) -> AttestAgentResponse {
    AttestAgentResponse {
        step: Some(attest_agent_response::Step::Result(
            attest_agent_response::Result {
                svid: Some(svid),
                reattestable,
            },
        )),
    }
}

/// Logs a refused x509pop attestation with its reason and turns it into the agent's status.
fn refused_x509pop(e: &AttestError) -> Status {
    let status = e.status();
    if status.code() == tonic::Code::Internal {
        tracing::error!(error = %e, "x509pop attestation failed");
    } else {
        tracing::info!(reason = %e, "Denied: x509pop attestation refused");
    }
    status
}

/// `spiffe://<td>/spire/agent/join_token/<token>`.
fn join_token_agent_id(td: &lanyard_spiffe::TrustDomain, token: &str) -> Result<SpiffeId, Status> {
    SpiffeId::from_segments(td, &["spire", "agent", JOIN_TOKEN, token]).map_err(|e| {
        Status::invalid_argument(format!(
            "token {token:?}: it becomes part of the agent's SPIFFE ID: {e}"
        ))
    })
}
