//! The `health_checks {}` and `telemetry {}` blocks of SPIRE's server and agent configs.

/// SPIRE's `health_checks {}`: an HTTP listener answering liveness and readiness probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChecks {
    /// Off unless asked for, as in SPIRE: it opens a TCP port.
    pub listener_enabled: bool,
    /// Host the listener binds; SPIRE's default is `localhost`.
    pub bind_address: String,
    /// Port the listener binds; SPIRE's default is 80.
    pub bind_port: u16,
    /// Path answering 200 while the process is alive.
    pub live_path: String,
    /// Path answering 200 while the process can do its job.
    pub ready_path: String,
}

impl Default for HealthChecks {
    fn default() -> Self {
        Self {
            listener_enabled: false,
            bind_address: "localhost".to_owned(),
            bind_port: 80,
            live_path: "/live".to_owned(),
            ready_path: "/ready".to_owned(),
        }
    }
}

/// SPIRE's `telemetry {}`. Only the Prometheus sink is implemented.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// SPIRE's `Prometheus { host port }`; `None` disables the exporter.
    pub prometheus: Option<Prometheus>,
}

/// Where the Prometheus exporter serves `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prometheus {
    /// Host to bind; SPIRE's default is `localhost`.
    pub host: String,
    /// Port to bind; SPIRE has no default; its docs use 9988.
    pub port: u16,
}
