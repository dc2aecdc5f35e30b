//! The Pull endpoint a user would write by hand with hyper and `jsonwebtoken`: decode and
//! validate the `lftoken` JWT on every request (HS256 with the network key, then the
//! Livefyre claims), and answer the profile's bytes, rendered once, unsigned.
//!
//! It is the yardstick of `pull_load`: what the layer must beat to be worth using.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims of a Livefyre system token (`expires`, not `exp`).
#[derive(Deserialize)]
struct SystemClaims {
    domain: String,
    user_id: String,
    expires: f64,
}

/// The hand-written endpoint's state: the key, the network and the rendered profiles.
pub(crate) struct HandWritten {
    key: DecodingKey,
    validation: Validation,
    network: String,
    profiles: HashMap<String, Bytes>,
}

impl HandWritten {
    pub(crate) fn new(network: &str, key: &[u8], profiles: HashMap<String, Bytes>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        Self {
            key: DecodingKey::from_secret(key),
            validation,
            network: network.to_owned(),
            profiles,
        }
    }

    /// Answers one request: 403 without a valid token, 404 for an unknown id.
    pub(crate) fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let query = request.uri().query().unwrap_or_default();
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        };
        if !param("lftoken").is_some_and(|token| self.token_is_valid(token)) {
            return status(StatusCode::FORBIDDEN);
        }
        match param("id").and_then(|id| self.profiles.get(id)) {
            Some(body) => {
                let mut response = Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }

    fn token_is_valid(&self, token: &str) -> bool {
        let Ok(data) = jsonwebtoken::decode::<SystemClaims>(token, &self.key, &self.validation)
        else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let claims = data.claims;
        claims.domain == self.network && claims.user_id == "system" && claims.expires > now
    }
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// What the endpoint's service answers.
type Answer = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

/// The endpoint as a hyper-ready service.
pub(crate) fn service(
    endpoint: Arc<HandWritten>,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = Answer,
> + Clone {
    tower::service_fn(move |request: Request<Incoming>| {
        std::future::ready(Ok(endpoint.answer(&request)))
    })
}
