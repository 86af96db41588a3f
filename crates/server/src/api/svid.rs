//! `spire.api.server.svid.v1.SVID`: agents get X509-SVIDs signed for their entries.

use std::collections::HashMap;
use std::time::Duration;

use lanyard_proto::spire::api::server::svid::v1::{
    BatchNewX509svidRequest, BatchNewX509svidResponse, batch_new_x509svid_response, svid_server,
};
use lanyard_telemetry::SvidKind;
use tonic::{Code, Request, Response, Status};

use super::Api;
use crate::caller::Peer;
use crate::convert::status;

/// More CSRs than this in one request are refused; agents send one batch per sync.
const MAX_BATCH: usize = 10_000;

#[tonic::async_trait]
impl svid_server::Svid for Api {
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
        let authorized = self.state.authorized_entries(&agent);
        let by_id: HashMap<&str, _> = authorized.iter().map(|e| (e.id.as_str(), e)).collect();

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
}
