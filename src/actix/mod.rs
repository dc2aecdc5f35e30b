//! The Pull endpoint, and the ping hook, for actix-web (feature `actix`).
//!
//! actix-web is not tower-based, so the [`PullLayer`](crate::pull::PullLayer) cannot be
//! mounted as a layer there. [`PullMiddleware`] wraps an actix app the same way: requests
//! on the template's path are answered by the endpoint, every other request reaches the
//! app untouched. The endpoint's decisions (token, id, source, status, signature,
//! headers) are the Pull layer's own, written once; this module only translates between
//! actix's request and response types and the `http` crate's.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use pingpull::actix::PullMiddleware;
//! use pingpull::pull::{InMemorySource, PullLayer};
//! use pingpull::Network;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! let pull = PullLayer::new("/livefyre/pull?id={id}", network, InMemorySource::new())?;
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(PullMiddleware::new(pull.clone()))
//!         .route("/", web::get().to(|| async { "my site" }))
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```

mod convert;
#[cfg(feature = "ping")]
mod ping_hook;
mod pull;

#[cfg(feature = "ping")]
pub use ping_hook::{PingHookMiddleware, PingHookService};
pub use pull::{PullMiddleware, PullService};
