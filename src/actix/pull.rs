//! [`PullMiddleware`]: the Pull endpoint wrapped around an actix-web app.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};

use super::convert;
use crate::pull::PullLayer;
use crate::pull::endpoint::Decision;

/// The Pull endpoint as actix-web middleware: `App::new().wrap(PullMiddleware::new(layer))`.
///
/// Configured by a [`PullLayer`] (its template, network, source and settings), so the
/// endpoint answers in actix exactly as it does under tower.
#[derive(Clone)]
pub struct PullMiddleware {
    layer: PullLayer,
}

impl PullMiddleware {
    /// Middleware that serves the endpoint `layer` configures.
    pub fn new(layer: PullLayer) -> Self {
        Self { layer }
    }
}

impl fmt::Debug for PullMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullMiddleware")
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, B> Transform<S, ServiceRequest> for PullMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = PullService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PullService {
            inner: Rc::new(service),
            layer: self.layer.clone(),
        }))
    }
}

/// The service [`PullMiddleware`] makes: answers requests on the template's path, passes
/// every other request to the app untouched.
pub struct PullService<S> {
    inner: Rc<S>,
    layer: PullLayer,
}

impl<S> fmt::Debug for PullService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for PullService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path(), |target| target.as_str());
        let host = request.headers().get("host").map(|host| host.as_bytes());
        let decision = match convert::request(request.method().as_str(), target, host) {
            Some(ours) => Decision::for_request(&self.layer.config, &ours),
            None => Decision::PassThrough,
        };
        match decision {
            Decision::PassThrough => {
                let answer = self.inner.call(request);
                Box::pin(async move { Ok(answer.await?.map_into_left_body()) })
            }
            Decision::Respond(answer) => {
                let response = request.into_response(convert::response(answer));
                Box::pin(ready(Ok(response.map_into_right_body())))
            }
            Decision::Load(load) => {
                let answer = load.run(self.layer.config.clone());
                Box::pin(async move {
                    let response = request.into_response(convert::response(answer.await));
                    Ok(response.map_into_right_body())
                })
            }
        }
    }
}
