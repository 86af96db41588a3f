//! The Workload API service: the wire rules of the SPIFFE Workload Endpoint and Workload API
//! specifications on top of an [`IdentitySource`], and a unix socket server for it.
//!
//! What it enforces for every caller:
//! - the `workload.spiffe.io: true` header (Workload Endpoint §5), else `InvalidArgument`;
//! - the first message of a stream at once, later ones only when the answer changed, each
//!   carrying the complete state (Workload API §4);
//! - status codes clients act on (Workload Endpoint §6): no identity is `PermissionDenied`,
//!   a source that cannot answer is `Unavailable`, a malformed request is `InvalidArgument`.

mod authority;
mod conn;
mod listen;
mod updates;

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_proto::workload::spiffe_workload_api_server::{
    SpiffeWorkloadApi, SpiffeWorkloadApiServer,
};
use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest,
    X509svidResponse,
};
use lanyard_spiffe::bundle::jwt_bundle_to_jwks;
use lanyard_spiffe::{JwtBundleSet, JwtSvid, SpiffeId};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::Instrument;

#[doc(hidden)]
pub use authority::{Rewritten, rewrite_client_stream};
pub use listen::{DEFAULT_SHUTDOWN_GRACE, ServeError, WorkloadListener, serve_unix};

use crate::{BundlesSnapshot, Caller, IdentitySource, JwtSvidItem, SourceError, X509Snapshot};
use updates::{ResponseStream, updates};

/// The metadata key every Workload API request must carry, with the value `true` (Workload
/// Endpoint §5: it keeps server-side request forgery from reaching the API).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// The status message for a request without a valid [`SECURITY_HEADER`].
pub const HEADER_MISSING: &str = "security header missing from request";

/// The status message for a caller that is entitled to nothing.
pub const NO_IDENTITY: &str = "no identity issued";

/// Serves the Workload API from `S`; hand it to tonic with [`WorkloadApiServer::into_service`].
///
/// Callers are identified by a [`Caller`] in the request extensions, which [`serve_unix`]
/// puts there from the kernel's peer credentials. A request without one is answered with
/// `Unavailable`: a caller that cannot be attested gets nothing.
pub struct WorkloadApiServer<S> {
    source: Arc<S>,
    stopping: Option<watch::Receiver<bool>>,
}

impl<S: IdentitySource> WorkloadApiServer<S> {
    /// A server answering from `source`. Its streams stay open until the client leaves; see
    /// [`WorkloadApiServer::stop_streams_on`].
    pub fn new(source: Arc<S>) -> Self {
        Self {
            source,
            stopping: None,
        }
    }

    /// Ends every open stream (with `Unavailable`, so clients reconnect) once `stopping`
    /// holds `true`. Without this, a graceful shutdown waits for clients to hang up.
    #[must_use]
    pub fn stop_streams_on(mut self, stopping: watch::Receiver<bool>) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// The tonic service.
    pub fn into_service(self) -> SpiffeWorkloadApiServer<Self> {
        SpiffeWorkloadApiServer::new(self)
    }

    /// Checks the header and finds the caller; both failures are logged and answered.
    fn admit<T>(&self, request: &Request<T>, method: &'static str) -> Result<Caller, Status> {
        // A fresh memo per call: see `CallMemo` for why attestation is not shared by the
        // calls of one connection.
        let caller = request.extensions().get::<Caller>().map(|c| Caller {
            memo: crate::CallMemo::default(),
            ..c.clone()
        });
        let span = rpc_span(method, caller.as_ref());
        let _entered = span.enter();
        if let Err(status) = check_header(request) {
            tracing::info!(reason = HEADER_MISSING, "Refused request");
            return Err(status);
        }
        caller.ok_or_else(|| {
            tracing::warn!("Refused request: the connection carries no peer credentials");
            Status::unavailable("the caller's process credentials are unavailable")
        })
    }

    /// Opens a stream: subscribes to changes, computes the first answer (whose error is the
    /// call's status), then hands the rest to [`updates`].
    async fn open_stream<T, F, Fut>(
        &self,
        method: &'static str,
        caller: Caller,
        compute: F,
    ) -> Result<Response<ResponseStream<T>>, Status>
    where
        T: prost::Message + Send + 'static,
        F: Fn(Arc<S>, Caller) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Status>> + Send,
    {
        let span = rpc_span(method, Some(&caller));

        // Subscribe before computing, so a change in between is not lost.
        let mut changes = self.source.changes();
        changes.mark_unchanged();

        let first = match compute(self.source.clone(), caller.clone())
            .instrument(span.clone())
            .await
        {
            Ok(first) => first,
            Err(status) => {
                span.in_scope(|| tracing::info!(code = ?status.code(), reason = status.message(), "Refused request"));
                return Err(status);
            }
        };
        span.in_scope(|| tracing::debug!("Stream opened"));
        let source = self.source.clone();
        let next = move || compute(source.clone(), caller.clone());
        Ok(Response::new(updates(
            first,
            changes,
            self.stopping.clone(),
            next,
            span,
        )))
    }
}

#[tonic::async_trait]
impl<S: IdentitySource> SpiffeWorkloadApi for WorkloadApiServer<S> {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let caller = self.admit(&request, "FetchX509SVID")?;
        self.open_stream("FetchX509SVID", caller, |source, caller| async move {
            x509_response(source.x509_svids(&caller).await.map_err(status)?)
        })
        .await
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        let caller = self.admit(&request, "FetchX509Bundles")?;
        self.open_stream("FetchX509Bundles", caller, |source, caller| async move {
            bundles_response(source.x509_bundles(&caller).await.map_err(status)?)
        })
        .await
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        let caller = self.admit(&request, "FetchJWTSVID")?;
        let span = rpc_span("FetchJWTSVID", Some(&caller));
        let req = request.into_inner();
        let answer = async {
            let (audience, spiffe_id) = jwt_svid_request(req)?;
            let svids = self
                .source
                .jwt_svids(&caller, &audience, spiffe_id.as_ref())
                .await
                .map_err(status)?;
            jwt_svid_response(svids)
        }
        .instrument(span.clone())
        .await;
        refused(&span, answer).map(Response::new)
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        let caller = self.admit(&request, "FetchJWTBundles")?;
        self.open_stream("FetchJWTBundles", caller, |source, caller| async move {
            jwt_bundles_response(&source.jwt_bundles(&caller).await.map_err(status)?)
        })
        .await
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        let caller = self.admit(&request, "ValidateJWTSVID")?;
        let span = rpc_span("ValidateJWTSVID", Some(&caller));
        let req = request.into_inner();
        let answer = async {
            if req.audience.is_empty() {
                return Err(Status::invalid_argument(AUDIENCE_MISSING));
            }
            if req.svid.is_empty() {
                return Err(Status::invalid_argument("svid must be specified"));
            }
            let bundles = self.source.jwt_bundles(&caller).await.map_err(status)?;
            validate(&req.svid, &req.audience, &bundles, self.source.now())
        }
        .instrument(span.clone())
        .await;
        refused(&span, answer).map(Response::new)
    }
}

/// The status message for a JWT request without an audience.
pub const AUDIENCE_MISSING: &str = "audience must be specified";

/// Logs a refused unary call in its span and passes the answer on.
fn refused<T>(span: &tracing::Span, answer: Result<T, Status>) -> Result<T, Status> {
    if let Err(status) = &answer {
        span.in_scope(
            || tracing::info!(code = ?status.code(), reason = status.message(), "Refused request"),
        );
    }
    answer
}

/// The audience (at least one, none empty) and the optional SPIFFE ID of a `FetchJWTSVID`.
fn jwt_svid_request(req: JwtsvidRequest) -> Result<(Vec<String>, Option<SpiffeId>), Status> {
    if req.audience.is_empty() || req.audience.iter().any(String::is_empty) {
        return Err(Status::invalid_argument(AUDIENCE_MISSING));
    }
    let spiffe_id = match req.spiffe_id.as_str() {
        "" => None,
        id => Some(SpiffeId::parse(id).map_err(|e| {
            Status::invalid_argument(format!("spiffe_id {id:?} is not a SPIFFE ID: {e}"))
        })?),
    };
    Ok((req.audience, spiffe_id))
}

/// The wire form of a JWT-SVID answer; without SVIDs it is "no identity" (Workload API §5.4:
/// `svids` holds at least one entry).
fn jwt_svid_response(svids: Vec<JwtSvidItem>) -> Result<JwtsvidResponse, Status> {
    if svids.is_empty() {
        return Err(Status::permission_denied(NO_IDENTITY));
    }
    Ok(JwtsvidResponse {
        svids: svids
            .into_iter()
            .map(|s| lanyard_proto::workload::Jwtsvid {
                spiffe_id: s.spiffe_id.to_string(),
                svid: s.token,
                hint: s.hint,
            })
            .collect(),
    })
}

/// The wire form of a JWT bundles answer: trust domain ID to a JWKS document, `{"keys":[]}`
/// for a trust domain without JWT keys (never empty bytes). It must hold at least the own trust
/// domain (Workload API §5.5); an empty set means the source has no bundle yet.
fn jwt_bundles_response(set: &JwtBundleSet) -> Result<JwtBundlesResponse, Status> {
    if set.is_empty() {
        return Err(Status::unavailable("no JWT bundle is available yet"));
    }
    Ok(JwtBundlesResponse {
        bundles: set
            .iter()
            .map(|b| (b.trust_domain().id_string(), jwt_bundle_to_jwks(b)))
            .collect(),
    })
}

/// Full JWT-SVID validation (JWT-SVID §4, Workload API §6.3) against `bundles`; every failure
/// is `InvalidArgument` with the validator's reason.
fn validate(
    token: &str,
    audience: &str,
    bundles: &JwtBundleSet,
    now: std::time::SystemTime,
) -> Result<ValidateJwtsvidResponse, Status> {
    let svid = JwtSvid::parse_and_validate(token, bundles, &[audience], now)
        .map_err(|e| Status::invalid_argument(format!("invalid JWT-SVID: {e}")))?;
    tracing::debug!(spiffe_id = %svid.spiffe_id(), kid = svid.kid(), "Validated JWT-SVID");
    Ok(ValidateJwtsvidResponse {
        spiffe_id: svid.spiffe_id().to_string(),
        claims: Some(crate::claims::to_struct(svid.claims())),
    })
}

fn rpc_span(method: &'static str, caller: Option<&Caller>) -> tracing::Span {
    let span = tracing::debug_span!(
        "workload_rpc",
        rpc.method = method,
        peer.uid = tracing::field::Empty,
        peer.pid = tracing::field::Empty,
    );
    if let Some(caller) = caller {
        span.record("peer.uid", caller.uid);
        if let Some(pid) = caller.pid {
            span.record("peer.pid", pid);
        }
    }
    span
}

/// The header must be present exactly once with exactly `true` (case-sensitive).
fn check_header<T>(request: &Request<T>) -> Result<(), Status> {
    let mut values = request.metadata().get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if v.as_bytes() == b"true" => Ok(()),
        _ => Err(Status::invalid_argument(HEADER_MISSING)),
    }
}

fn status(e: SourceError) -> Status {
    match e {
        SourceError::NoIdentity => Status::permission_denied(NO_IDENTITY),
        SourceError::Unavailable(msg) => Status::unavailable(msg),
        e @ SourceError::NotEntitled(_) => Status::permission_denied(e.to_string()),
        SourceError::InvalidRequest(msg) => Status::invalid_argument(msg),
    }
}

/// The wire form of an X.509 answer. An answer without SVIDs is "no identity" (Workload API
/// §5.2: `svids` holds at least one entry). Non-empty hints must be unique within a response
/// (§4); a later SVID repeating a hint is left out, as clients would ignore it anyway.
fn x509_response(s: X509Snapshot) -> Result<X509svidResponse, Status> {
    if s.svids.is_empty() {
        return Err(Status::permission_denied(NO_IDENTITY));
    }
    let mut hints = BTreeSet::new();
    let mut svids = Vec::with_capacity(s.svids.len());
    for item in s.svids {
        if !item.hint.is_empty() && !hints.insert(item.hint.clone()) {
            tracing::warn!(spiffe_id = %item.spiffe_id, hint = %item.hint, "Left out an SVID whose hint repeats an earlier one");
            continue;
        }
        svids.push(X509svid {
            spiffe_id: item.spiffe_id.to_string(),
            x509_svid: item.chain_der,
            x509_svid_key: item.key_pkcs8,
            bundle: item.bundle_der,
            hint: item.hint,
        });
    }
    Ok(X509svidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles: s.federated_bundles.into_iter().collect(),
    })
}

/// The wire form of a bundles answer. It must hold at least the caller's own trust domain
/// (Workload API §5.3); an empty answer means the source has no bundle yet.
fn bundles_response(s: BundlesSnapshot) -> Result<X509BundlesResponse, Status> {
    if s.bundles.is_empty() {
        return Err(Status::unavailable("no trust bundle is available yet"));
    }
    Ok(X509BundlesResponse {
        crl: Vec::new(),
        bundles: s.bundles.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {

    use std::collections::BTreeMap;

    use lanyard_spiffe::SpiffeId;

    use super::*;
    use crate::X509SvidItem;

    fn with_header(values: &[&'static str]) -> Request<()> {
        let mut request = Request::new(());
        for v in values {
            request
                .metadata_mut()
                .append(SECURITY_HEADER, v.parse().unwrap());
        }
        request
    }

    #[test]
    fn accepts_exactly_one_true_header() {
        assert!(check_header(&with_header(&["true"])).is_ok());
    }

    #[test]
    fn rejects_missing_repeated_or_inexact_headers() {
        for values in [
            &[][..],
            &["TRUE"],
            &["True"],
            &["true "],
            &["1"],
            &["true", "true"],
        ] {
            let status = check_header(&with_header(values)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{values:?}");
            assert_eq!(status.message(), HEADER_MISSING);
        }
    }

    fn item(path: &str, hint: &str) -> X509SvidItem {
        X509SvidItem {
            spiffe_id: SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap(),
            chain_der: vec![1],
            key_pkcs8: vec![2],
            bundle_der: vec![3],
            hint: hint.to_string(),
        }
    }

    #[test]
    fn answer_without_svids_is_permission_denied() {
        let status = x509_response(X509Snapshot::default()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), NO_IDENTITY);
    }

    #[test]
    fn keeps_order_and_drops_svids_repeating_a_hint() {
        let snapshot = X509Snapshot {
            svids: vec![
                item("/a", "internal"),
                item("/b", ""),
                item("/c", "internal"),
                item("/d", ""),
                item("/e", "external"),
            ],
            federated_bundles: BTreeMap::from([("spiffe://other.org".into(), vec![9])]),
        };
        let response = x509_response(snapshot).unwrap();
        let ids: Vec<_> = response
            .svids
            .iter()
            .map(|s| s.spiffe_id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "spiffe://example.org/a",
                "spiffe://example.org/b",
                "spiffe://example.org/d",
                "spiffe://example.org/e"
            ]
        );
        assert_eq!(response.federated_bundles["spiffe://other.org"], [9]);
    }

    #[test]
    fn empty_bundle_answer_is_unavailable() {
        let status = bundles_response(BundlesSnapshot::default()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn source_errors_map_to_the_spec_codes() {
        assert_eq!(
            status(SourceError::NoIdentity).code(),
            tonic::Code::PermissionDenied
        );
        let unavailable = status(SourceError::Unavailable("attestation failed".into()));
        assert_eq!(unavailable.code(), tonic::Code::Unavailable);
        assert_eq!(unavailable.message(), "attestation failed");
        let invalid = status(SourceError::InvalidRequest(
            "the token would be too large".into(),
        ));
        assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
        assert_eq!(invalid.message(), "the token would be too large");
    }
}
