//! [`Pull`]: the Pull endpoint as a tower [`Service`] around the application's.

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::endpoint::Decision;
use super::future::ResponseFuture;
use super::{ProfileSource, PullBody, PullLayer};
use crate::Network;
use crate::template::TemplateError;

// Beside the service it makes, so the layer's file needs nothing of this one.
impl<S> Layer<S> for PullLayer {
    type Service = Pull<S>;

    fn layer(&self, inner: S) -> Pull<S> {
        Pull::new(inner, self.clone())
    }
}

/// The Pull endpoint service: answers requests on the template's path, passes every
/// other request to the inner service untouched.
#[derive(Clone)]
pub struct Pull<S> {
    inner: S,
    layer: PullLayer,
}

impl<S> Pull<S> {
    /// Wraps `inner` with the endpoint configured by `layer`.
    pub fn new(inner: S, layer: PullLayer) -> Self {
        Self { inner, layer }
    }

    /// The same as [`PullLayer::new`]: the layer that makes this service.
    ///
    /// # Errors
    ///
    /// As [`PullLayer::new`].
    pub fn layer(
        template: &str,
        network: Network,
        source: impl ProfileSource,
    ) -> Result<PullLayer, TemplateError> {
        PullLayer::new(template, network, source)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Pull<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pull")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Pull<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<PullBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Whether a request is ours is only known in `call`, so the inner service must
        // be ready for any request.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match Decision::for_request(&self.layer.config, &request) {
            Decision::PassThrough => ResponseFuture::inner(self.inner.call(request)),
            Decision::Respond(response) => ResponseFuture::ready(response),
            Decision::Load(load) => ResponseFuture::load(load.run(self.layer.config.clone())),
        }
    }
}
