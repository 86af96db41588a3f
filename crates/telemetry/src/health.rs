//! The gRPC health checking service (`grpc.health.v1.Health`), answered from a [`Probe`].
//!
//! The server serves it on its admin socket, the agent on its Workload API socket. Service
//! names say which daemon is asked, so a probe pointed at the wrong socket fails instead of
//! reporting the wrong process healthy:
//!
//! | name | answer |
//! |---|---|
//! | `""` or `<daemon>` (`lanyard.server`, `lanyard.agent`) | readiness |
//! | `liveness` or `<daemon>.liveness` | liveness |
//! | anything else, the other daemon's names included | `NOT_FOUND` |
//!
//! The service reveals only `SERVING` or `NOT_SERVING`, never the reason, and asks nothing of
//! the caller: on the Workload API socket it needs no attestation.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use lanyard_proto::grpc::health::v1::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_server::{self, HealthServer},
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::Probe;

/// The service name that asks any Lanyard daemon for liveness only.
pub const LIVENESS_SERVICE: &str = "liveness";
/// The health service name of the server.
pub const SERVER_SERVICE: &str = "lanyard.server";
/// The health service name of the agent.
pub const AGENT_SERVICE: &str = "lanyard.agent";

/// How often `Watch` re-checks.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// `grpc.health.v1.Health` for one daemon.
#[derive(Clone)]
pub struct HealthService {
    probe: Arc<dyn Probe>,
    daemon: &'static str,
    stopping: Option<watch::Receiver<bool>>,
}

impl HealthService {
    /// Answers for `daemon` ([`SERVER_SERVICE`] or [`AGENT_SERVICE`]) from `probe`.
    pub fn new(probe: Arc<dyn Probe>, daemon: &'static str) -> Self {
        Self {
            probe,
            daemon,
            stopping: None,
        }
    }

    /// Ends `Watch` streams once `stopping` holds true, so they do not hold up a shutdown.
    #[must_use]
    pub fn stop_watches_on(mut self, stopping: watch::Receiver<bool>) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// The tonic service, for `Server::builder().add_service(...)`.
    pub fn into_server(self) -> HealthServer<Self> {
        HealthServer::new(self)
    }

    /// The status of `service`, or `NOT_FOUND` when this daemon does not answer to that name.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` naming the names this daemon answers to.
    pub async fn status_of(&self, service: &str) -> Result<ServingStatus, Status> {
        let result = if service.is_empty() || service == self.daemon {
            self.probe.ready().await
        } else if service == LIVENESS_SERVICE
            || service
                .strip_prefix(self.daemon)
                .is_some_and(|rest| rest == ".liveness")
        {
            self.probe.live().await
        } else {
            return Err(Status::not_found(format!(
                "health service {service:?} is unknown here: this is {daemon}, which answers \
                 \"\" or \"{daemon}\" (readiness) and \"{LIVENESS_SERVICE}\" or \
                 \"{daemon}.liveness\"",
                daemon = self.daemon
            )));
        };
        Ok(match result {
            Ok(()) => ServingStatus::Serving,
            Err(_) => ServingStatus::NotServing,
        })
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// Completes once `stopping` holds true; never when there is none.
async fn stopped(stopping: Option<watch::Receiver<bool>>) {
    match stopping {
        Some(mut rx) => {
            let _ = rx.wait_for(|s| *s).await;
        }
        None => std::future::pending().await,
    }
}

#[tonic::async_trait]
impl health_server::Health for HealthService {
    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let status = self.status_of(&request.into_inner().service).await?;
        Ok(Response::new(response(status)))
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let first = self.status_of(&service).await?;
        let this = self.clone();
        let stream = futures::stream::unfold(
            (this, None::<ServingStatus>, first),
            move |(this, last, mut next)| {
                let service = service.clone();
                async move {
                    loop {
                        if last != Some(next) {
                            return Some((Ok(response(next)), (this, Some(next), next)));
                        }
                        tokio::select! {
                            () = stopped(this.stopping.clone()) => return None,
                            () = tokio::time::sleep(WATCH_INTERVAL) => {}
                        }
                        next = this
                            .status_of(&service)
                            .await
                            .unwrap_or(ServingStatus::ServiceUnknown);
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProbeResult;

    struct Fixed {
        live: bool,
        ready: bool,
    }

    #[async_trait::async_trait]
    impl Probe for Fixed {
        async fn live(&self) -> ProbeResult {
            if self.live {
                Ok(())
            } else {
                Err("dead".into())
            }
        }
        async fn ready(&self) -> ProbeResult {
            if self.ready {
                Ok(())
            } else {
                Err("pending".into())
            }
        }
    }

    fn agent(live: bool, ready: bool) -> HealthService {
        HealthService::new(Arc::new(Fixed { live, ready }), AGENT_SERVICE)
    }

    #[tokio::test]
    async fn readiness_and_liveness_answer_under_the_daemons_names() {
        let svc = agent(true, false);
        for name in ["", AGENT_SERVICE] {
            assert_eq!(
                svc.status_of(name).await.unwrap(),
                ServingStatus::NotServing
            );
        }
        for name in [LIVENESS_SERVICE, "lanyard.agent.liveness"] {
            assert_eq!(svc.status_of(name).await.unwrap(), ServingStatus::Serving);
        }
        let ready = agent(true, true);
        assert_eq!(
            ready.status_of(AGENT_SERVICE).await.unwrap(),
            ServingStatus::Serving
        );
    }

    #[tokio::test]
    async fn the_other_daemons_names_are_not_found() {
        let svc = agent(true, true);
        for name in [SERVER_SERVICE, "lanyard.server.liveness", "lanyard.agentx"] {
            let err = svc.status_of(name).await.unwrap_err();
            assert_eq!(err.code(), tonic::Code::NotFound, "{name}");
            assert!(err.message().contains(AGENT_SERVICE), "{err}");
        }
    }
}
