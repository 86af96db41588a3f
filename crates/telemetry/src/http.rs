//! The HTTP side: the health listener (`health_checks {}`) answering liveness and readiness
//! probes, and the Prometheus exporter (`telemetry { Prometheus {} }`) serving `/metrics`.
//!
//! Each binds only when configured. When both name the same host and port (other than 0)
//! they share one listener. Requests are matched by exact path; anything else is 404.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{Method, StatusCode, Uri, header};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{HealthChecks, Metrics, Telemetry};

/// What a probe found: `Err` carries the reason the process is not live or not ready.
pub type ProbeResult = Result<(), String>;

/// A probe that takes longer than this counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What "live" and "ready" mean for one process; the server and the agent each supply one.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + 'static {
    /// Whether the process is alive: its tasks run and it answers.
    async fn live(&self) -> ProbeResult;
    /// Whether the process can do its job now.
    async fn ready(&self) -> ProbeResult;
}

/// Why the HTTP listeners cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The address cannot be bound (in use, not local, no permission for a low port).
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Bind {
        /// `health checks` or `Prometheus exporter`.
        what: &'static str,
        /// `host:port` as configured.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A configured path cannot be served.
    #[error("health_checks {key} {path:?}: {rule}")]
    Path {
        /// `live_path` or `ready_path`.
        key: &'static str,
        /// The configured value.
        path: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Two listeners claim one port on overlapping addresses.
    #[error(
        "{first} and {second} cannot both listen: give them different ports, or the same host \
         written the same way to share one listener"
    )]
    SamePort {
        /// The first setting and its address, such as `bind_port 0.0.0.0:8081`.
        first: String,
        /// The second.
        second: String,
    },
}

/// The bound listeners, ready to serve.
pub struct Endpoints {
    listeners: Vec<Bound>,
}

struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    health: Option<HealthPaths>,
    metrics: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct HealthPaths {
    pub(crate) live: String,
    pub(crate) ready: String,
}

impl Endpoints {
    /// Binds the health listener if `health.listener_enabled` and the exporter if
    /// `telemetry.prometheus` is set; with neither, binds nothing.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Bind`] naming the address when a port cannot be bound, and
    /// [`TelemetryError::Path`] when a probe path is empty, lacks its leading `/`, equals the
    /// other probe's path, or is `/metrics` on a listener shared with the exporter.
    pub async fn bind(
        health: &HealthChecks,
        telemetry: &Telemetry,
    ) -> Result<Self, TelemetryError> {
        let health_at = health.listener_enabled.then(|| {
            (
                health.bind_address.clone(),
                health.bind_port,
                HealthPaths {
                    live: health.live_path.clone(),
                    ready: health.ready_path.clone(),
                },
            )
        });
        let metrics_at = telemetry
            .prometheus
            .as_ref()
            .map(|p| (p.host.clone(), p.port));
        let shared = match (&health_at, &metrics_at) {
            (Some((h, p, _)), Some((mh, mp))) => h == mh && p == mp && *p != 0,
            _ => false,
        };
        crate::check::check_listeners(health, telemetry, &[])?;

        let mut listeners = Vec::new();
        if let Some((host, port, paths)) = health_at {
            let what = if shared {
                "health checks and the Prometheus exporter"
            } else {
                "health checks"
            };
            listeners.push(bind_one(what, &host, port, Some(paths), shared).await?);
        }
        if let Some((host, port)) = metrics_at.filter(|_| !shared) {
            listeners.push(bind_one("Prometheus exporter", &host, port, None, true).await?);
        }
        Ok(Self { listeners })
    }

    /// Where the health listener accepts, if it was bound (useful with port 0).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|b| b.health.is_some())
            .map(|b| b.addr)
    }

    /// Where `/metrics` is served, if the exporter was bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find(|b| b.metrics).map(|b| b.addr)
    }

    /// Serves until `shutdown` completes; returns at once when nothing was bound.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the listeners; probes in flight are cut off.
    pub async fn serve(
        self,
        metrics: Metrics,
        probe: Arc<dyn Probe>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        if self.listeners.is_empty() {
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let servers = self.listeners.into_iter().map(|bound| {
            let state = Arc::new(Handler {
                metrics: bound.metrics.then(|| metrics.clone()),
                health: bound.health,
                probe: probe.clone(),
            });
            let router = Router::new().fallback(handle).with_state(state);
            let mut stop = stop_rx.clone();
            let addr = bound.addr;
            async move {
                tracing::info!(addr = %addr, "HTTP telemetry listening");
                let served = axum::serve(bound.listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(addr = %addr, error = %e, "HTTP telemetry listener failed");
                }
            }
        });
        let all = futures_join_all(servers.collect());
        tokio::pin!(all);
        tokio::select! {
            () = &mut all => {}
            () = shutdown => {
                stop_tx.send_replace(true);
                // Probes are short; do not let a stuck client hold the process.
                let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
            }
        }
    }
}

/// Runs every future to completion, concurrently.
async fn futures_join_all(futures: Vec<impl Future<Output = ()> + Send + 'static>) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

async fn bind_one(
    what: &'static str,
    host: &str,
    port: u16,
    health: Option<HealthPaths>,
    metrics: bool,
) -> Result<Bound, TelemetryError> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let fail = |source| TelemetryError::Bind {
        what,
        addr: shown.clone(),
        source,
    };
    let listener = TcpListener::bind((host, port)).await.map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    Ok(Bound {
        listener,
        addr,
        health,
        metrics,
    })
}

pub(crate) fn check_paths(paths: &HealthPaths, shared: bool) -> Result<(), TelemetryError> {
    for (key, path) in [("live_path", &paths.live), ("ready_path", &paths.ready)] {
        let fail = |rule| TelemetryError::Path {
            key,
            path: path.clone(),
            rule,
        };
        if !path.starts_with('/') {
            return Err(fail("must start with '/'"));
        }
        if shared && path == "/metrics" {
            return Err(fail(
                "must not be /metrics when the Prometheus exporter uses the same address",
            ));
        }
    }
    if paths.live == paths.ready {
        return Err(TelemetryError::Path {
            key: "ready_path",
            path: paths.ready.clone(),
            rule: "must differ from live_path",
        });
    }
    Ok(())
}

struct Handler {
    metrics: Option<Metrics>,
    health: Option<HealthPaths>,
    probe: Arc<dyn Probe>,
}

async fn handle(State(h): State<Arc<Handler>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
    }
    let path = uri.path();
    if let Some(metrics) = h.metrics.as_ref().filter(|_| path == "/metrics") {
        return Response::builder()
            .status(StatusCode::OK)
            .header(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Body::from(metrics.encode()))
            .unwrap_or_else(|_| internal());
    }
    if let Some(paths) = &h.health {
        if path == paths.live {
            return probe_response(
                "live",
                tokio::time::timeout(PROBE_TIMEOUT, h.probe.live()).await,
            );
        }
        if path == paths.ready {
            return probe_response(
                "ready",
                tokio::time::timeout(PROBE_TIMEOUT, h.probe.ready()).await,
            );
        }
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// 200 with `{"<what>": true}`, or 503 with `{"<what>": false, "error": "..."}`.
fn probe_response(
    what: &str,
    result: Result<ProbeResult, tokio::time::error::Elapsed>,
) -> Response {
    let result = result.unwrap_or_else(|_| {
        Err(format!(
            "the probe did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        ))
    });
    let (status, body) = match result {
        Ok(()) => (StatusCode::OK, serde_json::json!({ what: true })),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ what: false, "error": error }),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{body}\n")))
        .unwrap_or_else(|_| internal())
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

fn internal() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::Prometheus;

    struct Switch(AtomicBool);

    #[async_trait::async_trait]
    impl Probe for Switch {
        async fn live(&self) -> ProbeResult {
            Ok(())
        }
        async fn ready(&self) -> ProbeResult {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("datastore unreachable".into())
            }
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let code = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (code, body)
    }

    fn health_on_port_0() -> HealthChecks {
        HealthChecks {
            listener_enabled: true,
            bind_address: "127.0.0.1".into(),
            bind_port: 0,
            ..HealthChecks::default()
        }
    }

    #[tokio::test]
    async fn probes_answer_200_or_503_with_a_json_body_and_metrics_are_openmetrics() {
        let telemetry = Telemetry {
            prometheus: Some(Prometheus {
                host: "127.0.0.1".into(),
                port: 0,
            }),
        };
        let endpoints = Endpoints::bind(&health_on_port_0(), &telemetry)
            .await
            .unwrap();
        let health = endpoints.health_addr().unwrap();
        let exporter = endpoints.metrics_addr().unwrap();
        assert_ne!(health, exporter, "port 0 twice gives two listeners");
        let switch = Arc::new(Switch(AtomicBool::new(false)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(endpoints.serve(Metrics::new(), switch.clone(), async {
            let _ = stopped.await;
        }));

        assert_eq!(
            get(health, "/live").await,
            (200, "{\"live\":true}\n".into())
        );
        let (code, body) = get(health, "/ready").await;
        assert_eq!(code, 503);
        assert!(body.contains("datastore unreachable"), "{body}");
        switch.0.store(true, Ordering::SeqCst);
        assert_eq!(get(health, "/ready").await.0, 200);
        assert_eq!(
            get(health, "/metrics").await.0,
            404,
            "not on the health port"
        );
        let (code, text) = get(exporter, "/metrics").await;
        assert_eq!(code, 200);
        assert!(text.contains("# EOF"), "{text}");

        stop.send(()).unwrap();
        serving.await.unwrap();
    }

    #[tokio::test]
    async fn nothing_configured_binds_nothing() {
        let endpoints = Endpoints::bind(&HealthChecks::default(), &Telemetry::default())
            .await
            .unwrap();
        assert!(endpoints.health_addr().is_none() && endpoints.metrics_addr().is_none());
    }

    #[tokio::test]
    async fn a_port_in_use_is_an_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let health = HealthChecks {
            bind_port: port,
            ..health_on_port_0()
        };
        let err = Endpoints::bind(&health, &Telemetry::default())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(err.contains("health checks"), "{err}");
    }

    #[tokio::test]
    async fn probe_paths_must_be_absolute_and_distinct() {
        let mut health = health_on_port_0();
        health.live_path = "live".into();
        let err = Endpoints::bind(&health, &Telemetry::default())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("must start with '/'"), "{err}");
        health.live_path = "/ready".into();
        let err = Endpoints::bind(&health, &Telemetry::default())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("must differ"), "{err}");
    }
}
