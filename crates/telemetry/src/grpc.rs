//! A tower layer for tonic servers that observes every gRPC call: which method was called,
//! which status it ended with, and how long it took, handed to a [`CallHook`] (metrics, the
//! server's audit log).
//!
//! The status of a gRPC call is the `grpc-status` field: in the response headers when the
//! call is answered with an error only ("trailers-only"), otherwise in the trailers after the
//! last message. The layer reports a call at whichever comes first, so a server-streaming
//! call is reported when its stream ends.
//!
//! A response dropped before its status is reported by what the client had received:
//!
//! - **`OK`** when at least one response message had been sent. Server-streaming calls such as
//!   the Workload API's `FetchX509SVID` have no natural end: a client that takes the first
//!   message and closes the stream is the ordinary way such a call finishes, not a failure, so
//!   counting it as `CANCELLED` would make every successful one-shot fetch look like an error.
//! - **`CANCELLED`** when nothing had been sent: the client gave up (or the connection was cut
//!   at shutdown) before it got any answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

/// `grpc-status` value of a call that succeeded, or ended after its first message.
const OK: i32 = 0;
/// `grpc-status` value of a call that ended before any message or status.
const CANCELLED: i32 = 1;
/// `grpc-status` value used when the server failed before producing a response.
const UNKNOWN: i32 = 2;

/// What to do when a call starts and when its status is known.
pub trait CallHook: Clone + Send + Sync + 'static {
    /// Carried from [`CallHook::start`] to [`CallHook::finish`].
    type State: Send + 'static;

    /// Called before the service sees the request; may read or add request extensions.
    fn start(&self, request: &mut http::request::Parts) -> Self::State;

    /// Called once per call, with its final status.
    fn finish(&self, state: Self::State, outcome: &CallOutcome);
}

/// How a call ended.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// The method called.
    pub path: RpcPath,
    /// The gRPC status code (0 is OK).
    pub code: i32,
    /// The status message, decoded from `grpc-message`; empty when absent.
    pub message: String,
    /// From request to status.
    pub elapsed: Duration,
}

/// `/<package.Service>/<Method>` split in two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcPath {
    /// The fully qualified service, such as `spire.api.server.entry.v1.Entry`.
    pub service: String,
    /// The method, such as `ListEntries`.
    pub method: String,
}

impl RpcPath {
    /// Splits an HTTP/2 `:path`; anything not of the gRPC form reads as `unknown`/`unknown`.
    pub fn parse(path: &str) -> Self {
        let split = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'));
        match split {
            Some((service, method)) => Self {
                service: service.to_owned(),
                method: method.to_owned(),
            },
            None => Self::unknown(),
        }
    }

    /// The path recorded for calls that named no method the server has.
    pub fn unknown() -> Self {
        Self {
            service: "unknown".to_owned(),
            method: "unknown".to_owned(),
        }
    }

    /// `/<service>/<method>`.
    pub fn full(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }
}

/// The canonical name of a gRPC status code (`OK`, `NOT_FOUND`, ...).
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// No hook: the layer passes calls through.
impl<H: CallHook> CallHook for Option<H> {
    type State = Option<H::State>;

    fn start(&self, request: &mut http::request::Parts) -> Self::State {
        self.as_ref().map(|h| h.start(request))
    }

    fn finish(&self, state: Self::State, outcome: &CallOutcome) {
        if let (Some(hook), Some(state)) = (self, state) {
            hook.finish(state, outcome);
        }
    }
}

/// Two hooks, started in order and finished in reverse.
impl<A: CallHook, B: CallHook> CallHook for (A, B) {
    type State = (A::State, B::State);

    fn start(&self, request: &mut http::request::Parts) -> Self::State {
        (self.0.start(request), self.1.start(request))
    }

    fn finish(&self, (a, b): Self::State, outcome: &CallOutcome) {
        self.1.finish(b, outcome);
        self.0.finish(a, outcome);
    }
}

/// The layer: wraps a tonic server's routes (`Server::builder().layer(...)`).
#[derive(Clone, Debug)]
pub struct GrpcCallLayer<H> {
    hook: H,
}

impl<H: CallHook> GrpcCallLayer<H> {
    /// Reports every call to `hook`.
    pub fn new(hook: H) -> Self {
        Self { hook }
    }
}

impl<S, H: Clone> Layer<S> for GrpcCallLayer<H> {
    type Service = GrpcCallService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcCallService {
            inner,
            hook: self.hook.clone(),
        }
    }
}

/// The service made by [`GrpcCallLayer`].
#[derive(Clone, Debug)]
pub struct GrpcCallService<S, H> {
    inner: S,
    hook: H,
}

impl<S, H, B, ResBody> Service<Request<B>> for GrpcCallService<S, H>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    H: CallHook,
    ResBody: Body,
{
    type Response = Response<ObservedBody<ResBody, H>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let path = RpcPath::parse(parts.uri.path());
        let state = self.hook.start(&mut parts);
        let inner = self.inner.call(Request::from_parts(parts, body));
        ObservedFuture {
            inner,
            pending: Some(Pending {
                hook: self.hook.clone(),
                state: Some(state),
                path,
                started: Instant::now(),
                sent_message: false,
            }),
        }
    }
}

/// A call whose status is not known yet; if dropped unreported, reports `OK` when a message
/// went out and `CANCELLED` otherwise (see the module documentation).
struct Pending<H: CallHook> {
    hook: H,
    state: Option<H::State>,
    path: RpcPath,
    started: Instant,
    /// Whether a response data frame has been sent.
    sent_message: bool,
}

impl<H: CallHook> Pending<H> {
    fn report(&mut self, code: i32, message: String) {
        if let Some(state) = self.state.take() {
            let outcome = CallOutcome {
                path: self.path.clone(),
                code,
                message,
                elapsed: self.started.elapsed(),
            };
            self.hook.finish(state, &outcome);
        }
    }

    /// Reports from `headers` if they carry the status; true when they did.
    fn report_from(&mut self, headers: &HeaderMap) -> bool {
        match status_of(headers) {
            Some((code, message)) => {
                self.report(code, message);
                true
            }
            None => false,
        }
    }
}

impl<H: CallHook> Drop for Pending<H> {
    fn drop(&mut self) {
        if self.sent_message {
            self.report(OK, String::new());
        } else {
            self.report(
                CANCELLED,
                "the call ended before its status was sent".to_owned(),
            );
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcCallService`].
    pub struct ObservedFuture<F, H: CallHook> {
        #[pin]
        inner: F,
        pending: Option<Pending<H>>,
    }
}

impl<F, H, ResBody, E> Future for ObservedFuture<F, H>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    H: CallHook,
{
    type Output = Result<Response<ObservedBody<ResBody, H>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut pending = this.pending.take();
        match result {
            Ok(response) => {
                if let Some(p) = pending.as_mut()
                    && p.report_from(response.headers())
                {
                    pending = None;
                }
                Poll::Ready(Ok(response.map(|inner| ObservedBody { inner, pending })))
            }
            Err(e) => {
                if let Some(mut p) = pending {
                    p.report(UNKNOWN, "the server failed to answer".to_owned());
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that reports the call when its trailers go by.
    pub struct ObservedBody<B, H: CallHook> {
        #[pin]
        inner: B,
        pending: Option<Pending<H>>,
    }
}

impl<B: Body, H: CallHook> Body for ObservedBody<B, H> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(p) = this.pending.as_mut() {
                    if f.is_data() {
                        p.sent_message = true;
                    } else if let Some(trailers) = f.trailers_ref()
                        && p.report_from(trailers)
                    {
                        *this.pending = None;
                    }
                }
            }
            Some(Err(_)) => {
                if let Some(mut p) = this.pending.take() {
                    p.report(UNKNOWN, "the response body failed".to_owned());
                }
            }
            None => {
                if let Some(mut p) = this.pending.take() {
                    p.report(
                        UNKNOWN,
                        "the response ended without a gRPC status".to_owned(),
                    );
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `grpc-status` and decoded `grpc-message` of `headers`, if they carry a status.
fn status_of(headers: &HeaderMap) -> Option<(i32, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(UNKNOWN);
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    Some((code, message))
}

/// Undoes the percent-encoding of `grpc-message` (gRPC over HTTP/2, "Responses").
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Some(byte) = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<CallOutcome>>>);

    impl CallHook for Recorder {
        type State = ();
        fn start(&self, _: &mut http::request::Parts) {}
        fn finish(&self, (): (), outcome: &CallOutcome) {
            self.0.lock().unwrap().push(outcome.clone());
        }
    }

    /// A body of one data frame and then the given trailers.
    struct TrailerBody {
        data: Option<&'static [u8]>,
        trailers: Option<HeaderMap>,
    }

    impl Body for TrailerBody {
        type Data = &'static [u8];
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Infallible>>> {
            if let Some(d) = self.data.take() {
                return Poll::Ready(Some(Ok(Frame::data(d))));
            }
            Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
        }
    }

    fn trailers(code: &str, message: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", code.parse().unwrap());
        if let Some(m) = message {
            h.insert("grpc-message", m.parse().unwrap());
        }
        h
    }

    async fn drain<B: Body + Unpin>(mut body: B) {
        while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_some()
        {}
    }

    fn call(
        recorder: &Recorder,
        response: Response<TrailerBody>,
    ) -> impl Future<Output = Result<Response<ObservedBody<TrailerBody, Recorder>>, Infallible>>
    {
        let response = Mutex::new(Some(response));
        let service = tower::service_fn(move |_req: Request<()>| {
            let r = response.lock().unwrap().take().unwrap();
            std::future::ready(Ok::<_, Infallible>(r))
        });
        let mut svc = GrpcCallLayer::new(recorder.clone()).layer(service);
        let request = Request::builder()
            .uri("/spire.api.server.entry.v1.Entry/GetEntry")
            .body(())
            .unwrap();
        // service_fn is always ready.
        svc.call(request)
    }

    #[tokio::test]
    async fn reports_the_status_from_the_trailers_after_the_body() {
        let recorder = Recorder::default();
        let response = Response::new(TrailerBody {
            data: Some(b"msg"),
            trailers: Some(trailers("0", None)),
        });
        let response = call(&recorder, response).await.unwrap();
        assert!(recorder.0.lock().unwrap().is_empty(), "not before the end");
        drain(response.into_body()).await;
        let calls = recorder.0.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].code, 0);
        assert_eq!(calls[0].path.service, "spire.api.server.entry.v1.Entry");
        assert_eq!(calls[0].path.method, "GetEntry");
    }

    #[tokio::test]
    async fn reports_a_trailers_only_error_at_the_headers_with_its_decoded_message() {
        let recorder = Recorder::default();
        let mut response = Response::new(TrailerBody {
            data: None,
            trailers: None,
        });
        *response.headers_mut() = trailers("5", Some("entry%20x%20not%20found"));
        let response = call(&recorder, response).await.unwrap();
        {
            let calls = recorder.0.lock().unwrap();
            assert_eq!(calls.len(), 1);
            assert_eq!(code_name(calls[0].code), "NOT_FOUND");
            assert_eq!(calls[0].message, "entry x not found");
        }
        drain(response.into_body()).await;
        assert_eq!(recorder.0.lock().unwrap().len(), 1, "reported once");
    }

    #[tokio::test]
    async fn a_response_dropped_before_any_message_is_cancelled() {
        let recorder = Recorder::default();
        let response = Response::new(TrailerBody {
            data: Some(b"msg"),
            trailers: Some(trailers("0", None)),
        });
        drop(call(&recorder, response).await.unwrap());
        let calls = recorder.0.lock().unwrap();
        assert_eq!(code_name(calls[0].code), "CANCELLED");
    }

    #[tokio::test]
    async fn a_stream_the_client_ends_after_a_message_is_ok() {
        let recorder = Recorder::default();
        let response = Response::new(TrailerBody {
            data: Some(b"msg"),
            trailers: None,
        });
        let mut body = call(&recorder, response).await.unwrap().into_body();
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(first.unwrap().unwrap().is_data());
        assert!(recorder.0.lock().unwrap().is_empty(), "still open");
        drop(body);
        let calls = recorder.0.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(code_name(calls[0].code), "OK");
        assert!(calls[0].message.is_empty());
    }

    #[test]
    fn paths_that_are_not_grpc_methods_read_as_unknown() {
        assert_eq!(RpcPath::parse("/"), RpcPath::unknown());
        assert_eq!(RpcPath::parse("/a/b/c"), RpcPath::unknown());
        assert_eq!(RpcPath::parse("a/b").service, "unknown");
        assert_eq!(
            RpcPath::parse("/SpiffeWorkloadAPI/FetchX509SVID").full(),
            "/SpiffeWorkloadAPI/FetchX509SVID"
        );
    }
}
