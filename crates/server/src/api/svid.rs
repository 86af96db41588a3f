//! `spire.api.server.svid.v1.SVID`: agents get X509-SVIDs and JWT-SVIDs signed for their
//! entries; operators on the admin socket mint X509-SVIDs and JWT-SVIDs directly.

use std::time::Duration;

use lanyard_ca::parse_csr;
use lanyard_proto::spire::api::server::svid::v1::{
    BatchNewX509svidRequest, BatchNewX509svidResponse, MintJwtsvidRequest, MintJwtsvidResponse,
    MintX509svidRequest, MintX509svidResponse, NewJwtsvidRequest, NewJwtsvidResponse,
    batch_new_x509svid_response, svid_server,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::SpiffeId;
use lanyard_telemetry::SvidKind;
use tonic::{Code, Request, Response, Status};

use super::{Api, ca_status};
use crate::audit::AuditFields;
use crate::caller::Peer;
use crate::convert::{self, status, wire_id};
use crate::state::unix_seconds;

/// More CSRs than this in one request are refused; agents send one batch per sync.
const MAX_BATCH: usize = 10_000;

#[tonic::async_trait]
impl svid_server::Svid for Api {
    async fn mint_x509svid(
        &self,
        request: Request<MintX509svidRequest>,
    ) -> Result<Response<MintX509svidResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let audit = AuditFields::of(&request);
        let req = request.into_inner();
        let csr = parse_csr(&req.csr).map_err(|e| Status::invalid_argument(format!("csr: {e}")))?;
        let id = match csr.uri_sans.as_slice() {
            [one] => SpiffeId::parse(one).map_err(|e| {
                Status::invalid_argument(format!("csr URI SAN {one:?} is not a SPIFFE ID: {e}"))
            })?,
            other => {
                return Err(Status::invalid_argument(format!(
                    "csr has {} URI SANs: exactly one, the SPIFFE ID to sign for, is required",
                    other.len()
                )));
            }
        };
        AuditFields::add(audit.as_ref(), |r| {
            r.spiffe_ids.push(id.to_string());
            r.details.push(format!("ttl={}", req.ttl));
        });
        let ttl = ttl_or("ttl", req.ttl, self.state.config.default_x509_svid_ttl)?;

        // The operator chose the DNS names, unlike an agent's CSR, whose names are ignored.
        let svid = self.sign_x509(
            &id,
            csr.public_key_der,
            ttl,
            csr.dns_names,
            String::new(),
            SvidKind::X509Minted,
        )?;
        tracing::info!(spiffe_id = %id, expires_at = svid.expires_at, "Minted X509-SVID");
        Ok(Response::new(MintX509svidResponse { svid: Some(svid) }))
    }

    async fn mint_jwtsvid(
        &self,
        request: Request<MintJwtsvidRequest>,
    ) -> Result<Response<MintJwtsvidResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let audit = AuditFields::of(&request);
        let req = request.into_inner();
        let id = convert::spiffe_id("id", req.id.as_ref()).map_err(Status::invalid_argument)?;
        AuditFields::add(audit.as_ref(), |r| {
            r.spiffe_ids.push(id.to_string());
            r.details.push(format!("ttl={}", req.ttl));
        });
        if id.is_root() {
            return Err(Status::invalid_argument(format!(
                "id {id} has no path: a JWT-SVID must identify a workload, not the trust domain"
            )));
        }
        let ttl = ttl_or("ttl", req.ttl, self.state.config.default_jwt_svid_ttl)?;
        let signed = self
            .state
            .ca
            .sign_jwt_svid(&id, &req.audience, ttl, self.state.clock.now())
            .map_err(ca_status)?;
        self.state.metrics.svid_signed(SvidKind::JwtMinted);
        tracing::info!(
            spiffe_id = %id,
            kid = %signed.kid,
            expires_at = unix_seconds(signed.expires_at),
            "Minted JWT-SVID"
        );
        Ok(Response::new(MintJwtsvidResponse {
            svid: Some(types::Jwtsvid {
                token: signed.token,
                id: Some(wire_id(&id)),
                expires_at: unix_seconds(signed.expires_at),
                issued_at: unix_seconds(signed.issued_at),
                hint: String::new(),
            }),
        }))
    }

    async fn batch_new_x509svid(
        &self,
        request: Request<BatchNewX509svidRequest>,
    ) -> Result<Response<BatchNewX509svidResponse>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let params = request.into_inner().params;
        if params.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "{} CSRs in one request: at most {MAX_BATCH} are allowed",
                params.len()
            )));
        }
        let by_id = self.state.authorized_by_id(&agent);

        let mut results = Vec::with_capacity(params.len());
        for p in params {
            let Some(entry) = by_id.get(p.entry_id.as_str()) else {
                tracing::info!(agent.id = %agent.id, entry.id = %p.entry_id, "Denied: entry not authorized");
                results.push(batch_new_x509svid_response::Result {
                    status: Some(status(
                        Code::NotFound,
                        format!(
                            "entry {:?} does not exist or is not authorized for this agent",
                            p.entry_id
                        ),
                    )),
                    svid: None,
                });
                continue;
            };
            let ttl = match entry.x509_svid_ttl {
                0 => self.state.config.default_x509_svid_ttl,
                secs => Duration::from_secs(secs.unsigned_abs().into()),
            };
            let result = match self.sign_from_csr(
                &entry.spiffe_id,
                &p.csr,
                ttl,
                entry.dns_names.clone(),
                entry.hint.clone(),
                SvidKind::X509Workload,
            ) {
                Ok(svid) => batch_new_x509svid_response::Result {
                    status: Some(status(Code::Ok, "OK")),
                    svid: Some(svid),
                },
                Err(s) => batch_new_x509svid_response::Result {
                    status: Some(status(s.code(), s.message())),
                    svid: None,
                },
            };
            results.push(result);
        }
        Ok(Response::new(BatchNewX509svidResponse { results }))
    }

    async fn new_jwtsvid(
        &self,
        request: Request<NewJwtsvidRequest>,
    ) -> Result<Response<NewJwtsvidResponse>, Status> {
        self.new_jwt_svid_for_agent(request).await
    }
}

impl Api {
    /// `NewJWTSVID`: a JWT-SVID for one entry the calling agent is authorized for (the same
    /// authorization as `BatchNewX509SVID`), with the entry's JWT-SVID TTL or the default.
    pub(crate) async fn new_jwt_svid_for_agent(
        &self,
        request: Request<NewJwtsvidRequest>,
    ) -> Result<Response<NewJwtsvidResponse>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let req = request.into_inner();
        if req.audience.is_empty() || req.audience.iter().any(String::is_empty) {
            return Err(Status::invalid_argument(format!(
                "audience {:?}: at least one value is required and none may be empty",
                req.audience
            )));
        }
        let by_id = self.state.authorized_by_id(&agent);
        let Some(entry) = by_id.get(&req.entry_id) else {
            tracing::info!(agent.id = %agent.id, entry.id = %req.entry_id, "Denied: entry not authorized");
            return Err(Status::not_found(format!(
                "entry {:?} does not exist or is not authorized for this agent",
                req.entry_id
            )));
        };
        let ttl = match entry.jwt_svid_ttl {
            0 => self.state.config.default_jwt_svid_ttl,
            secs => Duration::from_secs(secs.unsigned_abs().into()),
        };
        let signed = self
            .state
            .ca
            .sign_jwt_svid(&entry.spiffe_id, &req.audience, ttl, self.state.clock.now())
            .map_err(ca_status)?;
        self.state.metrics.svid_signed(SvidKind::JwtWorkload);
        tracing::debug!(
            agent.id = %agent.id,
            entry.id = %entry.id,
            spiffe_id = %entry.spiffe_id,
            kid = %signed.kid,
            expires_at = unix_seconds(signed.expires_at),
            "Signed workload JWT-SVID"
        );
        Ok(Response::new(NewJwtsvidResponse {
            svid: Some(types::Jwtsvid {
                token: signed.token,
                id: Some(wire_id(&entry.spiffe_id)),
                expires_at: unix_seconds(signed.expires_at),
                issued_at: unix_seconds(signed.issued_at),
                hint: entry.hint.clone(),
            }),
        }))
    }
}

/// A request TTL in seconds: 0 picks `default` (as SPIRE does), negative values are refused.
fn ttl_or(field: &str, seconds: i32, default: Duration) -> Result<Duration, Status> {
    match u64::try_from(seconds) {
        Ok(0) => Ok(default),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => Err(Status::invalid_argument(format!(
            "{field} is {seconds}: it must be positive, or 0 for the server's default"
        ))),
    }
}
