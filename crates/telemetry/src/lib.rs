//! Operations for Lanyard processes, shared by the server and the agent: the settings of the
//! health listener and of the Prometheus exporter (SPIRE's key names and defaults), a metrics
//! registry handle with the families both daemons record, a tower layer that observes every
//! gRPC call (for metrics and for the server's audit log), the HTTP listeners that serve
//! `/metrics` and the liveness and readiness probes, and the gRPC health service answered from
//! the same probes.
//!
//! Nothing here is global: each process builds one [`Metrics`] and passes it down, so several
//! servers can run in one test process with their own counters. The crate does not decide
//! what "ready" means: each daemon supplies a [`Probe`]. It does not serve TLS: bind the
//! listeners to loopback or protect them at the network level, as with SPIRE's.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod config;
mod grpc;
mod health;
mod http;
mod metrics;

pub use check::check_listeners;
pub use config::{HealthChecks, Prometheus, Telemetry};
pub use grpc::{CallHook, CallOutcome, GrpcCallLayer, GrpcCallService, RpcPath, code_name};
pub use health::{AGENT_SERVICE, HealthService, LIVENESS_SERVICE, SERVER_SERVICE};
pub use http::{Endpoints, Probe, ProbeResult, TelemetryError};
pub use metrics::{AgentMetrics, Metrics, RpcMetrics, ServerMetrics, SvidKind};
