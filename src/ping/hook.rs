//! A tower layer for update routes: pings the user after a 2xx response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Pinger;

/// Wraps a customer's profile-update route: when the route answers 2xx, the user the
/// request concerned is pinged. The user id comes from a closure over the request
/// (a path segment, an extension set by the auth middleware, ...); `None` pings nobody.
///
/// A ping that cannot be recorded (queue full, shutting down) is logged at WARN under
/// `pingpull::ping`; the response is never changed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pingpull::Network;
/// use pingpull::ping::{PingHookLayer, Pinger};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let network = Network::new("example.fyre.co", "testkeytest")?;
/// let pinger = Pinger::builder(network).base_url("http://127.0.0.1:9").spawn()?;
/// // `/users/{id}/profile`: the id is the third path segment.
/// let hook = PingHookLayer::new(pinger.clone(), |request: &http::Request<String>| {
///     request.uri().path().split('/').nth(2).map(str::to_owned)
/// });
/// let route = ServiceBuilder::new().layer(hook).service(service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
///
/// // The route answered 2xx: u1 is pinged (recorded; the Pinger delivers it).
/// let request = http::Request::put("/users/u1/profile").body(String::new())?;
/// let response = route.oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(pinger.stats().pinged, 1);
/// # Ok(())
/// # }
/// ```
pub struct PingHookLayer<F> {
    pinger: Pinger,
    user_id: Arc<F>,
}

impl<F> PingHookLayer<F> {
    /// Pings through `pinger` the user `user_id` finds in each request.
    pub fn new(pinger: Pinger, user_id: F) -> Self {
        Self {
            pinger,
            user_id: Arc::new(user_id),
        }
    }
}

impl<F> Clone for PingHookLayer<F> {
    fn clone(&self) -> Self {
        Self {
            pinger: self.pinger.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

impl<F> fmt::Debug for PingHookLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingHookLayer")
            .field("pinger", &self.pinger)
            .finish_non_exhaustive()
    }
}

impl<S, F> Layer<S> for PingHookLayer<F> {
    type Service = PingHook<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        PingHook {
            inner,
            pinger: self.pinger.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

/// The service made by [`PingHookLayer`].
pub struct PingHook<S, F> {
    inner: S,
    pinger: Pinger,
    user_id: Arc<F>,
}

impl<S: Clone, F> Clone for PingHook<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            pinger: self.pinger.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for PingHook<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingHook")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, F> PingHook<S, F> {
    /// The wrapped route.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped route, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped route, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for PingHook<S, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    F: Fn(&Request<ReqBody>) -> Option<String>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Read before the route consumes the request.
        let user_id = (self.user_id)(&request);
        ResponseFuture {
            inner: self.inner.call(request),
            ping: user_id.map(|id| (self.pinger.clone(), id)),
        }
    }
}

pin_project! {
    /// The response future of [`PingHook`].
    pub struct ResponseFuture<Fut> {
        #[pin]
        inner: Fut,
        ping: Option<(Pinger, String)>,
    }
}

impl<Fut, B, E> Future for ResponseFuture<Fut>
where
    Fut: Future<Output = Result<Response<B>, E>>,
{
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some((pinger, user_id))) = (&output, this.ping.take()) {
            ping_after(pinger, &user_id, response.status().as_u16());
        }
        Poll::Ready(output)
    }
}

/// After an update route answered `status`: pings `user_id` if it was a success (2xx),
/// and logs at WARN (at most once a minute) a ping that could not be recorded. The one
/// rule of every ping hook (tower's here, actix-web's).
pub(crate) fn ping_after(pinger: Pinger, user_id: &str, status: u16) {
    if (200..300).contains(&status)
        && let Err(error) = pinger.ping(user_id)
    {
        pinger.unrecorded(&error);
    }
}
