//! [`PingHookMiddleware`]: pings the user after an actix-web update route answers 2xx.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};

use crate::ping::{Pinger, ping_after};

/// Wraps a customer's profile-update routes: when a route answers 2xx, the user the
/// request concerned is pinged, as [`PingHookLayer`](crate::ping::PingHookLayer) does
/// under tower. The user id comes from a closure over the request (a path segment, an
/// extension set by the auth middleware, ...); `None` pings nobody. A ping that cannot
/// be recorded is logged at WARN; the response is never changed.
///
/// ```no_run
/// use actix_web::{App, web};
/// use pingpull::actix::PingHookMiddleware;
/// # fn app(pinger: pingpull::ping::Pinger) {
/// // `/users/{id}/profile`: the id is the match info's `id`.
/// let hook = PingHookMiddleware::new(pinger, |request: &actix_web::dev::ServiceRequest| {
///     request.match_info().get("id").map(str::to_owned)
/// });
/// let app = App::new().service(
///     web::resource("/users/{id}/profile")
///         .wrap(hook)
///         .route(web::put().to(|| async { "saved" })),
/// );
/// # let _ = app;
/// # }
/// ```
pub struct PingHookMiddleware<F> {
    pinger: Pinger,
    user_id: Arc<F>,
}

impl<F> PingHookMiddleware<F> {
    /// Middleware that pings through `pinger` the user `user_id` finds in a request.
    pub fn new(pinger: Pinger, user_id: F) -> Self {
        Self {
            pinger,
            user_id: Arc::new(user_id),
        }
    }
}

impl<F> Clone for PingHookMiddleware<F> {
    fn clone(&self) -> Self {
        Self {
            pinger: self.pinger.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

impl<F> fmt::Debug for PingHookMiddleware<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingHookMiddleware")
            .field("pinger", &self.pinger)
            .finish_non_exhaustive()
    }
}

impl<S, B, F> Transform<S, ServiceRequest> for PingHookMiddleware<F>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
    F: Fn(&ServiceRequest) -> Option<String> + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = PingHookService<S, F>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PingHookService {
            inner: Rc::new(service),
            pinger: self.pinger.clone(),
            user_id: self.user_id.clone(),
        }))
    }
}

/// The service [`PingHookMiddleware`] makes.
pub struct PingHookService<S, F> {
    inner: Rc<S>,
    pinger: Pinger,
    user_id: Arc<F>,
}

impl<S, F> fmt::Debug for PingHookService<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingHookService")
            .field("pinger", &self.pinger)
            .finish_non_exhaustive()
    }
}

impl<S, B, F> Service<ServiceRequest> for PingHookService<S, F>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
    F: Fn(&ServiceRequest) -> Option<String> + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let user_id = (self.user_id)(&request);
        let pinger = self.pinger.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if let Some(user_id) = user_id {
                ping_after(pinger, &user_id, response.status().as_u16());
            }
            Ok(response)
        })
    }
}
