//! The audit log (`audit_log_enabled`): one structured event per admin API call, with target
//! `lanyard::audit` and the field `audit = true`.
//!
//! Each event names the caller as the kernel reported it (uid, gid, pid, and the executable
//! from `/proc/<pid>/exe` when readable), the method, the final status code and message, and
//! the request fields that identify what was touched (entry IDs, SPIFFE IDs, parent IDs,
//! authority IDs).
//! Handlers add those through [`AuditFields`]; they never add secrets: a join token is
//! recorded as whether the caller chose its value, never as the value.
//!
//! The gRPC health service is not audited: probes would drown the log.

use std::sync::{Arc, Mutex, PoisonError};

use lanyard_telemetry::{CallHook, CallOutcome, RpcPath, code_name};

use crate::caller::Peer;

/// Services whose calls are not audited.
const UNAUDITED: &[&str] = &["grpc.health.v1.Health"];

/// The [`CallHook`] that writes the audit log.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditLog;

/// What [`AuditLog::start`] learned about a call.
pub(crate) struct AuditStart {
    request_id: String,
    peer: Option<Peer>,
    fields: AuditFields,
}

impl CallHook for AuditLog {
    type State = Option<AuditStart>;

    fn start(&self, request: &mut http::request::Parts) -> Self::State {
        let path = RpcPath::parse(request.uri.path());
        if UNAUDITED.contains(&path.service.as_str()) {
            return None;
        }
        let fields = AuditFields::default();
        request.extensions.insert(fields.clone());
        Some(AuditStart {
            request_id: uuid::Uuid::new_v4().to_string(),
            peer: request.extensions.get::<Peer>().cloned(),
            fields,
        })
    }

    fn finish(&self, state: Self::State, outcome: &CallOutcome) {
        let Some(start) = state else { return };
        let record = start.fields.take();
        let (uid, gid, pid, exe, addr) = match start.peer {
            Some(Peer::Local { uid, gid, pid, exe }) => {
                (uid, gid, pid, exe.map(|e| e.display().to_string()), None)
            }
            Some(Peer::Tls { addr, .. }) => (None, None, None, None, addr.map(|a| a.to_string())),
            None => (None, None, None, None, None),
        };
        tracing::info!(
            target: "lanyard::audit",
            audit = true,
            request_id = %start.request_id,
            rpc.method = %outcome.path.full(),
            status = code_name(outcome.code),
            status.code = outcome.code,
            status.message = %outcome.message,
            peer.uid = uid,
            peer.gid = gid,
            peer.pid = pid,
            peer.exe = exe,
            peer.addr = addr,
            request.entry_ids = joined(&record.entry_ids),
            request.spiffe_ids = joined(&record.spiffe_ids),
            request.parent_ids = joined(&record.parent_ids),
            request.details = joined(&record.details),
            request.authority_id = record.authority_id,
            result.authority_id = record.result_authority_id,
            results = joined(&record.results),
            elapsed_ms = u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
            "Admin API call"
        );
    }
}

/// Request fields a handler adds to its call's audit event; absent when auditing is off.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditFields(Arc<Mutex<AuditRecord>>);

/// The identifying fields of one call.
#[derive(Debug, Default)]
pub(crate) struct AuditRecord {
    /// Entry IDs named or created.
    pub(crate) entry_ids: Vec<String>,
    /// SPIFFE IDs named.
    pub(crate) spiffe_ids: Vec<String>,
    /// Parent IDs named.
    pub(crate) parent_ids: Vec<String>,
    /// Other non-secret facts (`ttl=600`, `token=generated`).
    pub(crate) details: Vec<String>,
    /// Per-item status codes of a batch call.
    pub(crate) results: Vec<String>,
    /// The LocalAuthority id named by the request (activate, taint, revoke), as sent.
    pub(crate) authority_id: Option<String>,
    /// The LocalAuthority id the call prepared, activated, tainted or revoked.
    pub(crate) result_authority_id: Option<String>,
}

impl AuditFields {
    /// Adds to the audit event of `request`, if auditing is on.
    pub(crate) fn note<T>(request: &tonic::Request<T>, add: impl FnOnce(&mut AuditRecord)) {
        if let Some(fields) = request.extensions().get::<AuditFields>() {
            add(&mut fields.0.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// The handle of `request`, to add fields after the request was consumed.
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Option<AuditFields> {
        request.extensions().get::<AuditFields>().cloned()
    }

    /// Adds to this call's event.
    pub(crate) fn add(fields: Option<&AuditFields>, add: impl FnOnce(&mut AuditRecord)) {
        if let Some(fields) = fields {
            add(&mut fields.0.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    fn take(&self) -> AuditRecord {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Comma-separated, or absent when empty (so the event carries no empty field).
fn joined(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| values.join(","))
}

/// The item status codes of a batch response, by name.
pub(crate) fn result_code(status: Option<&lanyard_proto::spire::api::types::Status>) -> String {
    code_name(status.map_or(0, |s| s.code)).to_owned()
}

/// A wire SPIFFE ID as `spiffe://<td><path>`, as the caller sent it (not validated).
pub(crate) fn shown_id(id: &lanyard_proto::spire::api::types::Spiffeid) -> String {
    format!("spiffe://{}{}", id.trust_domain, id.path)
}
