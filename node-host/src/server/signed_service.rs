//! Applies [`Verifier`] to every call of a gRPC service before the service sees it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::server::signed_requests::{Headers, UNSIGNED_PATHS, Verifier, certificate_key};

/// The largest request body buffered for checking (Greenlight's node uses the same bound).
const MAX_BODY: usize = 4_000_000;

/// A service whose calls must be signed by the caller's device key.
#[derive(Clone)]
pub struct SignedService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> SignedService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, verifier: Arc<Verifier>) -> Self {
        SignedService { inner, verifier }
    }
}

impl<S: NamedService> NamedService for SignedService<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, B> tower::Service<http::Request<Body>> for SignedService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        if UNSIGNED_PATHS.contains(&path.as_str()) {
            // Streams of the signer's plumbing pass untouched (never buffered).
            let fut = self.inner.call(req);
            return Box::pin(async move { Ok(fut.await?.map(Body::new)) });
        }
        // The clone that was made ready is the one to call (tower's convention).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let headers = Headers::from_http(req.headers());
            let device_key = req
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.peer_certs())
                .and_then(|certs| certs.first().and_then(|c| certificate_key(c.as_ref())));
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok(tonic::Status::invalid_argument(
                        "the request is larger than 4,000,000 bytes",
                    )
                    .into_http());
                }
            };
            if let Err(status) = verifier.check(&path, &headers, &bytes, device_key.as_deref()) {
                tracing::warn!(%path, reason = %status.message(), "refused an unsigned or badly signed call");
                return Ok(status.into_http());
            }
            let req = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
            // Also when the caller goes away mid-call (the future is dropped).
            let _in_progress = InProgress { verifier, headers };
            Ok(inner.call(req).await?.map(Body::new))
        })
    }
}

/// A call in progress: its signed request travels to signers until this is dropped.
struct InProgress {
    verifier: Arc<Verifier>,
    headers: Headers,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.verifier.finished(&self.headers);
    }
}
