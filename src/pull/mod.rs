//! The Pull endpoint (docs/protocol.md §6) as a tower layer that mounts in axum, tonic and hyper.
//!
//! Add [`PullLayer`] to your server with the URL template you register with Livefyre and
//! a [`ProfileSource`]. Requests on the template's path are answered here; every other
//! request goes to your service untouched. For each pull the endpoint:
//!
//! 1. answers 414 when the path and query are longer than
//!    [`max_uri_len`](PullLayer::max_uri_len) (8 KiB by default), and 405 (with
//!    `Allow: GET, HEAD`) to methods other than GET and HEAD;
//! 2. requires exactly one valid `lftoken` query parameter (a system token of your
//!    network), or answers **403 with an empty body**, before anything else;
//! 3. reads the user id where the template's `{id}` stands, strictly (400 if it is
//!    missing, repeated, badly escaped or not a valid id);
//! 4. loads the profile (404 if unknown; 503 with `Retry-After` on error or after the
//!    timeout, 5 s by default; 500 if the source panics);
//! 5. refuses to send a profile that fails [`Profile::validate`](crate::Profile::validate)
//!    or whose id differs from the requested one (500, logged at ERROR, with a JSON body
//!    telling the puller, whose token passed, which rules it breaks: docs/protocol.md §6);
//! 6. answers 200 with the profile JSON, `Content-Type: application/json`,
//!    `Cache-Control: no-store` and an `X-Profile-Signature` of the body (during a key
//!    rotation, one signature per key, current first, separated by commas).
//!
//! Every response carries `Cache-Control: no-store`; a rejection's reason travels in the
//! response extensions as a [`Rejection`], and only a 500's body repeats it. Events go to `tracing` under the target
//! `pingpull::pull` (outcome, status, user id, latency), never with the token.
//!
//! A source that keeps its profiles between pulls hands out [`PreparedProfile`]s (see
//! [`ProfileSource::load_for_pull`]): validated and rendered once per change, signed once
//! for the network's keys, so a pull copies a pointer. [`InMemorySource`] does this, and refuses
//! an invalid profile when it is inserted ([`ProfileRefused`]).
//!
//! The endpoint needs a Tokio runtime with the timer (as axum, tonic and hyper servers have).
//!
//! ```
//! use pingpull::{Network, Profile};
//! use pingpull::pull::{InMemorySource, PullLayer, Rejection};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! let users = InMemorySource::new();
//! users.insert(Profile::builder("u1", "Ada").build())?;
//!
//! let pull = PullLayer::new("https://site.example/users/{id}/livefyre", network.clone(), users)?;
//! let app = ServiceBuilder::new().layer(pull.clone()).service(service_fn(|_req| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("the rest of the app")))
//! }));
//!
//! let token = pingpull::token::system_token(&network);
//! let url = pull.template().url_for("u1", token.as_str());
//! let response = app.clone().oneshot(http::Request::get(url).body(())?).await?;
//! assert_eq!(response.status(), 200);
//!
//! let response = app.oneshot(http::Request::get("/users/u1/livefyre").body(())?).await?;
//! assert_eq!(response.status(), 403);
//! assert_eq!(response.extensions().get::<Rejection>(), Some(&Rejection::MissingToken));
//! # Ok(())
//! # }
//! ```

mod body;
mod config;
pub(crate) mod endpoint;
mod future;
mod layer;
mod operator_log;
mod prepared;
mod query;
mod rejection;
mod route;
mod service;
mod source;

pub use crate::percent::DecodeError;
pub use body::PullBody;
pub use future::ResponseFuture;
pub use layer::{
    DEFAULT_LEEWAY, DEFAULT_MAX_URI_LEN, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT, OutOfRange,
    PullLayer,
};
pub use prepared::{Loaded, PreparedProfile, ProfileRefused};
pub use rejection::Rejection;
pub use service::Pull;
pub use source::{InMemorySource, ProfileSource, SourceFn, source_fn};
