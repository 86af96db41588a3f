//! The metrics registry of one process and the metric families Lanyard records.
//!
//! Every name starts with `lanyard_`; counters end in `_total` (added by the OpenMetrics
//! encoder), durations are in seconds and say so in their name.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use crate::grpc::{CallHook, CallOutcome, RpcPath};

/// Prefix of every metric name.
const PREFIX: &str = "lanyard";

/// The `grpc-status` of a call to a method the server does not have.
const UNIMPLEMENTED: i32 = 12;

/// A histogram family whose buckets are chosen by a plain function.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// One process's metrics registry. Cheap to clone; clones share the registry.
///
/// Built once by the process (never a global) and handed to every part that records.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    rpc: RpcMetrics,
}

impl Metrics {
    /// A registry holding the RPC families (`lanyard_rpc_requests_total`,
    /// `lanyard_rpc_duration_seconds`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let rpc = RpcMetrics::register(&mut registry);
        Self {
            registry: Arc::new(RwLock::new(registry)),
            rpc,
        }
    }

    /// Adds a metric under `lanyard_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// The per-RPC families, to hand to a [`crate::GrpcCallLayer`].
    pub fn rpc(&self) -> RpcMetrics {
        self.rpc.clone()
    }

    /// Every metric in the OpenMetrics text format (what `/metrics` serves).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing into a String cannot fail; an error here would be an encoder bug.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "Encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Labels of the per-RPC families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    /// Fully qualified gRPC service, such as `spire.api.server.entry.v1.Entry`.
    service: String,
    /// Method name, such as `ListEntries`.
    method: String,
    /// gRPC status code name, such as `OK` or `PERMISSION_DENIED`.
    code: &'static str,
}

/// `lanyard_rpc_requests_total{service,method,code}` and
/// `lanyard_rpc_duration_seconds{service,method,code}`: a [`CallHook`] recording every call.
///
/// A call is recorded when its status is known: at once for calls answered with an error
/// status only (trailers-only responses), otherwise when the response stream ends with its
/// trailers. For server-streaming RPCs (Workload API streams) that is the end of the
/// stream, so a stream is counted once it closes and its duration is its whole lifetime.
#[derive(Clone, Debug)]
pub struct RpcMetrics {
    requests: Family<RpcLabels, Counter>,
    duration: HistogramFamily<RpcLabels>,
}

impl RpcMetrics {
    fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RpcLabels, Counter>::default();
        let duration: HistogramFamily<RpcLabels> = Family::new_with_constructor(rpc_histogram);
        registry.register(
            "rpc_requests",
            "gRPC calls served, by service, method and status code",
            requests.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from request to status of gRPC calls (whole lifetime for streams)",
            duration.clone(),
        );
        Self { requests, duration }
    }

    /// Records one finished call. Calls answered `UNIMPLEMENTED` are recorded under
    /// `unknown`/`unknown`, so that callers inventing method names cannot grow the label set.
    pub fn record(&self, path: &RpcPath, code: i32, elapsed: Duration) {
        let (service, method) = if code == UNIMPLEMENTED {
            ("unknown".to_owned(), "unknown".to_owned())
        } else {
            (path.service.clone(), path.method.clone())
        };
        let labels = RpcLabels {
            service,
            method,
            code: crate::grpc::code_name(code),
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

impl CallHook for RpcMetrics {
    type State = ();

    fn start(&self, _request: &mut http::request::Parts) {}

    fn finish(&self, (): (), outcome: &CallOutcome) {
        self.record(&outcome.path, outcome.code, outcome.elapsed);
    }
}

/// 1 ms to about 65 s: unary calls and signing batches; longer streams land in `+Inf`.
fn rpc_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// 10 ms to about 160 s: one agent sync round.
fn sync_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

/// What an SVID was signed for.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SvidKind {
    /// A workload's X509-SVID, signed for a registration entry.
    X509Workload,
    /// An agent's X509-SVID, at attestation or renewal.
    X509Agent,
    /// The server's own X509-SVID.
    X509Server,
    /// An X509-SVID minted by an operator (`svid.v1 MintX509SVID`).
    X509Minted,
    /// A JWT-SVID minted by an operator (`svid.v1 MintJWTSVID`).
    JwtMinted,
    /// A workload's JWT-SVID, signed for a registration entry (`svid.v1 NewJWTSVID`).
    JwtWorkload,
}

impl SvidKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SvidKind::X509Workload => "x509_workload",
            SvidKind::X509Agent => "x509_agent",
            SvidKind::X509Server => "x509_server",
            SvidKind::X509Minted => "x509_minted",
            SvidKind::JwtMinted => "jwt_minted",
            SvidKind::JwtWorkload => "jwt_workload",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

/// The server's own families.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    svids_signed: Family<KindLabel, Counter>,
    /// `lanyard_server_entries`: registration entries the server holds.
    pub entries: Gauge,
    /// `lanyard_server_agents`: attested agents the server knows.
    pub agents: Gauge,
    ca_rotations: Family<EventLabel, Counter>,
}

impl ServerMetrics {
    /// Registers `lanyard_svids_signed_total{kind}`, `lanyard_server_entries`,
    /// `lanyard_server_agents` and `lanyard_ca_rotations_total{event}` in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self {
            svids_signed: Family::default(),
            entries: Gauge::default(),
            agents: Gauge::default(),
            ca_rotations: Family::default(),
        };
        metrics.register(
            "svids_signed",
            "SVIDs signed, by kind",
            this.svids_signed.clone(),
        );
        metrics.register(
            "server_entries",
            "Registration entries held by the server",
            this.entries.clone(),
        );
        metrics.register(
            "server_agents",
            "Attested agents known to the server",
            this.agents.clone(),
        );
        metrics.register(
            "ca_rotations",
            "X.509 CA rotation steps: a next authority prepared, or activated",
            this.ca_rotations.clone(),
        );
        this
    }

    /// Counts one signed SVID.
    pub fn svid_signed(&self, kind: SvidKind) {
        self.svids_signed
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts a prepared next CA.
    pub fn ca_prepared(&self) {
        self.ca_rotations
            .get_or_create(&EventLabel { event: "prepared" })
            .inc();
    }

    /// Counts an activated CA.
    pub fn ca_activated(&self) {
        self.ca_rotations
            .get_or_create(&EventLabel { event: "activated" })
            .inc();
    }
}

/// The agent's own families.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    /// `lanyard_agent_cache_entries`: authorized entries in the agent's cache.
    pub cache_entries: Gauge,
    /// `lanyard_agent_cache_svids`: entries of the cache that hold an SVID.
    pub cache_svids: Gauge,
    svid_renewals: Family<KindLabel, Counter>,
    sync_duration: Histogram,
    /// `lanyard_agent_sync_errors_total`: sync rounds that failed.
    pub sync_errors: Counter,
}

impl AgentMetrics {
    /// Registers `lanyard_agent_cache_entries`, `lanyard_agent_cache_svids`,
    /// `lanyard_agent_svid_renewals_total{kind}`, `lanyard_agent_sync_duration_seconds` and
    /// `lanyard_agent_sync_errors_total` in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self {
            cache_entries: Gauge::default(),
            cache_svids: Gauge::default(),
            svid_renewals: Family::default(),
            sync_duration: sync_histogram(),
            sync_errors: Counter::default(),
        };
        metrics.register(
            "agent_cache_entries",
            "Authorized entries in the agent's cache",
            this.cache_entries.clone(),
        );
        metrics.register(
            "agent_cache_svids",
            "Cached entries that hold an X509-SVID",
            this.cache_svids.clone(),
        );
        metrics.register(
            "agent_svid_renewals",
            "X509-SVIDs obtained from the server (first issue or renewal), by kind",
            this.svid_renewals.clone(),
        );
        metrics.register(
            "agent_sync_duration_seconds",
            "Duration of one sync round with the server",
            this.sync_duration.clone(),
        );
        metrics.register(
            "agent_sync_errors",
            "Sync rounds with the server that failed",
            this.sync_errors.clone(),
        );
        this
    }

    /// Counts one SVID obtained from the server.
    pub fn svid_renewed(&self, kind: SvidKind) {
        self.svid_renewals
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Records one sync round.
    pub fn sync_finished(&self, elapsed: Duration, ok: bool) {
        self.sync_duration.observe(elapsed.as_secs_f64());
        if !ok {
            self.sync_errors.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_prefixed_and_counters_end_in_total() {
        let metrics = Metrics::new();
        let server = ServerMetrics::register(&metrics);
        server.svid_signed(SvidKind::X509Workload);
        server.ca_prepared();
        server.entries.set(3);
        metrics.rpc().record(
            &RpcPath::parse("/spire.api.server.entry.v1.Entry/ListEntries"),
            0,
            Duration::from_millis(3),
        );
        let text = metrics.encode();
        for needle in [
            "lanyard_svids_signed_total{kind=\"x509_workload\"} 1",
            "lanyard_ca_rotations_total{event=\"prepared\"} 1",
            "lanyard_server_entries 3",
            "lanyard_rpc_requests_total{service=\"spire.api.server.entry.v1.Entry\",method=\"ListEntries\",code=\"OK\"} 1",
            "lanyard_rpc_duration_seconds_count{service=\"spire.api.server.entry.v1.Entry\",method=\"ListEntries\",code=\"OK\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn unknown_methods_do_not_add_label_values() {
        let metrics = Metrics::new();
        for i in 0..3 {
            metrics.rpc().record(
                &RpcPath::parse(&format!("/made.Up/Method{i}")),
                12,
                Duration::from_millis(1),
            );
        }
        let text = metrics.encode();
        assert!(
            text.contains(
                "lanyard_rpc_requests_total{service=\"unknown\",method=\"unknown\",code=\"UNIMPLEMENTED\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("Method0"), "{text}");
    }

    #[test]
    fn two_registries_do_not_share_counts() {
        let a = Metrics::new();
        let b = Metrics::new();
        AgentMetrics::register(&a).sync_finished(Duration::from_millis(5), false);
        AgentMetrics::register(&b);
        assert!(a.encode().contains("lanyard_agent_sync_errors_total 1"));
        assert!(b.encode().contains("lanyard_agent_sync_errors_total 0"));
    }
}
