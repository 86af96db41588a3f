//! `spire.api.server.localauthority.v1.LocalAuthority`: forced rotation and revocation of the
//! server's own X.509 authorities and JWT keys (prepare, activate, taint, revoke), served on the
//! admin socket only. Every change is published at once: the bundle's sequence rises, and agents
//! pick the change up at their next sync.

use lanyard_ca::{AuthorityState, AuthorityStates, CaError};
use lanyard_proto::spire::api::server::localauthority::v1::{self as wire, local_authority_server};
use tonic::{Request, Response, Status};

use super::Api;
use crate::audit::AuditFields;
use crate::caller::Peer;
use crate::state::unix_seconds;

#[tonic::async_trait]
impl local_authority_server::LocalAuthority for Api {
    async fn get_jwt_authority_state(
        &self,
        request: Request<wire::GetJwtAuthorityStateRequest>,
    ) -> Result<Response<wire::GetJwtAuthorityStateResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let (active, prepared, old) = wire_states(self.state.ca.jwt_authority_state());
        Ok(Response::new(wire::GetJwtAuthorityStateResponse {
            active,
            prepared,
            old,
        }))
    }

    async fn prepare_jwt_authority(
        &self,
        request: Request<wire::PrepareJwtAuthorityRequest>,
    ) -> Result<Response<wire::PrepareJwtAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let audit = AuditFields::of(&request);
        let state = self.state.ca.prepare_jwt_authority().await;
        let prepared_authority = self.changed(state, audit.as_ref()).await?;
        self.state.metrics.ca_prepared();
        Ok(Response::new(wire::PrepareJwtAuthorityResponse {
            prepared_authority,
        }))
    }

    async fn activate_jwt_authority(
        &self,
        request: Request<wire::ActivateJwtAuthorityRequest>,
    ) -> Result<Response<wire::ActivateJwtAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.activate_jwt_authority(&id).await;
        let activated_authority = self.changed(state, audit.as_ref()).await?;
        self.state.metrics.ca_activated();
        Ok(Response::new(wire::ActivateJwtAuthorityResponse {
            activated_authority,
        }))
    }

    async fn taint_jwt_authority(
        &self,
        request: Request<wire::TaintJwtAuthorityRequest>,
    ) -> Result<Response<wire::TaintJwtAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.taint_jwt_authority(&id).await;
        Ok(Response::new(wire::TaintJwtAuthorityResponse {
            tainted_authority: self.changed(state, audit.as_ref()).await?,
        }))
    }

    async fn revoke_jwt_authority(
        &self,
        request: Request<wire::RevokeJwtAuthorityRequest>,
    ) -> Result<Response<wire::RevokeJwtAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.revoke_jwt_authority(&id).await;
        Ok(Response::new(wire::RevokeJwtAuthorityResponse {
            revoked_authority: self.changed(state, audit.as_ref()).await?,
        }))
    }

    async fn get_x509_authority_state(
        &self,
        request: Request<wire::GetX509AuthorityStateRequest>,
    ) -> Result<Response<wire::GetX509AuthorityStateResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let states = self
            .state
            .ca
            .x509_authority_state()
            .map_err(authority_status)?;
        let (active, prepared, old) = wire_states(states);
        Ok(Response::new(wire::GetX509AuthorityStateResponse {
            active,
            prepared,
            old,
        }))
    }

    async fn prepare_x509_authority(
        &self,
        request: Request<wire::PrepareX509AuthorityRequest>,
    ) -> Result<Response<wire::PrepareX509AuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        let audit = AuditFields::of(&request);
        let state = self.state.ca.prepare_x509_authority().await;
        let prepared_authority = self.changed(state, audit.as_ref()).await?;
        self.state.metrics.ca_prepared();
        Ok(Response::new(wire::PrepareX509AuthorityResponse {
            prepared_authority,
        }))
    }

    async fn activate_x509_authority(
        &self,
        request: Request<wire::ActivateX509AuthorityRequest>,
    ) -> Result<Response<wire::ActivateX509AuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.activate_x509_authority(&id).await;
        let activated_authority = self.changed(state, audit.as_ref()).await?;
        self.state.metrics.ca_activated();
        Ok(Response::new(wire::ActivateX509AuthorityResponse {
            activated_authority,
        }))
    }

    async fn taint_x509_authority(
        &self,
        request: Request<wire::TaintX509AuthorityRequest>,
    ) -> Result<Response<wire::TaintX509AuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.taint_x509_authority(&id).await;
        Ok(Response::new(wire::TaintX509AuthorityResponse {
            tainted_authority: self.changed(state, audit.as_ref()).await?,
        }))
    }

    async fn revoke_x509_authority(
        &self,
        request: Request<wire::RevokeX509AuthorityRequest>,
    ) -> Result<Response<wire::RevokeX509AuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        AuditFields::note(&request, |r| {
            r.authority_id = Some(request.get_ref().authority_id.clone());
        });
        let audit = AuditFields::of(&request);
        let id = request.into_inner().authority_id;
        let state = self.state.ca.revoke_x509_authority(&id).await;
        Ok(Response::new(wire::RevokeX509AuthorityResponse {
            revoked_authority: self.changed(state, audit.as_ref()).await?,
        }))
    }

    // TODO: taint and revoke upstream roots once the upstream authority (issue #6) can rotate
    // them; until then these are refused, naming whether an upstream is configured at all.
    async fn taint_x509_upstream_authority(
        &self,
        request: Request<wire::TaintX509UpstreamAuthorityRequest>,
    ) -> Result<Response<wire::TaintX509UpstreamAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        Err(self.upstream_unimplemented())
    }

    async fn revoke_x509_upstream_authority(
        &self,
        request: Request<wire::RevokeX509UpstreamAuthorityRequest>,
    ) -> Result<Response<wire::RevokeX509UpstreamAuthorityResponse>, Status> {
        Peer::of(&request)?.require_local()?;
        Err(self.upstream_unimplemented())
    }
}

impl Api {
    fn upstream_unimplemented(&self) -> Status {
        if self.state.config.upstream.is_some() {
            Status::unimplemented("tainting or revoking upstream authorities is not supported yet")
        } else {
            Status::unimplemented("no upstream authority configured")
        }
    }

    /// Publishes the bundle after a successful change and converts its result.
    /// The resulting authority id goes to the call's audit event.
    async fn changed(
        &self,
        result: Result<AuthorityState, CaError>,
        audit: Option<&AuditFields>,
    ) -> Result<Option<wire::AuthorityState>, Status> {
        let state = result.map_err(authority_status)?;
        AuditFields::add(audit, |r| {
            r.result_authority_id = Some(state.authority_id.clone());
        });
        self.state.publish_authority_change().await.map_err(|e| {
            tracing::warn!(error = %e, "Publishing the bundle after an authority change failed");
            Status::internal(format!(
                "the authority changed but publishing the bundle failed: {e}"
            ))
        })?;
        Ok(Some(wire_state(&state)))
    }
}

fn wire_state(s: &AuthorityState) -> wire::AuthorityState {
    wire::AuthorityState {
        authority_id: s.authority_id.clone(),
        expires_at: unix_seconds(s.expires_at),
    }
}

type WireStates = (
    Option<wire::AuthorityState>,
    Option<wire::AuthorityState>,
    Option<wire::AuthorityState>,
);

fn wire_states(s: AuthorityStates) -> WireStates {
    (
        Some(wire_state(&s.active)),
        s.prepared.as_ref().map(wire_state),
        s.old.as_ref().map(wire_state),
    )
}

/// Requests that break the prepare → activate → taint → revoke order are
/// `FailedPrecondition`, a missing id `InvalidArgument`; the rest is the server's fault.
fn authority_status(e: CaError) -> Status {
    match e {
        CaError::MissingAuthorityId { .. } => Status::invalid_argument(e.to_string()),
        CaError::NoPreparedAuthority { .. }
        | CaError::NotPreparedAuthority { .. }
        | CaError::NotOldAuthority { .. }
        | CaError::AlreadyTainted { .. }
        | CaError::UpstreamSignedAuthority { .. }
        | CaError::UnknownX509Authority { .. }
        | CaError::NotTainted { .. } => Status::failed_precondition(e.to_string()),
        other => {
            tracing::warn!(error = %other, "Authority change failed");
            Status::internal(format!("authority change failed: {other}"))
        }
    }
}
