//! Livefyre's "Ping for Pull" profile sync for Rust servers.
//!
//! When a user changes their profile on your site, your server *pings* Livefyre; Livefyre
//! later *pulls* the fresh profile from a URL you registered, authenticating with a
//! system token in the `lftoken` query parameter, and your endpoint answers with the
//! profile as JSON. pingpull gives you both halves: the Pull endpoint as a tower layer
//! ([`pull::PullLayer`]), a Pinger that delivers pings with coalescing and retries
//! ([`ping::Pinger`]), an optional durable ping queue in PostgreSQL ([`outbox`]), the
//! token functions of Livefyre's official libraries ([`token`]), the profile object
//! ([`Profile`]), and, since Livefyre's service is gone, an [`emulator`] of its side and a
//! conformance [`check`] for Pull endpoints.
//!
//! The protocol, and every choice pingpull makes where Livefyre left it open, is
//! described in `docs/protocol.md` in the repository.
//!
//! # Guides
//!
//! This reference documents each item; the guides in the repository's `docs/` folder
//! explain how the parts work together, with examples that run as tests:
//!
//! - `docs/pull.md`: the Pull endpoint, profile sources, what it answers and why, tokens
//!   and profiles;
//! - `docs/pinger.md`: the Pinger's guarantee, retries and outages, settings, the ping
//!   hook, https and private CAs;
//! - `docs/outbox.md`: durable pings in PostgreSQL, and how delivery works across
//!   instances;
//! - `docs/operations.md`: logs, traces, metrics, health checks, rotating the network key;
//! - `docs/cli.md`: the `pingpull` command line, the emulator and the conformance check;
//! - `docs/performance.md`: what to expect, as measured.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `pull` | yes | [`pull`]: the Pull endpoint layer; no HTTP client, no TLS |
//! | `ping` | no | [`ping`]: the Pinger, `LivefyreClient` and the ping hook (plain http) |
//! | `rustls` | no | https for the Pinger; implies `ping` |
//! | `emulator` | no | [`emulator`] and [`check`]; implies `ping` |
//! | `cli` | no | the `pingpull` command line; implies `emulator` and `rustls` |
//! | `postgres` | no | [`outbox`]: durable pings in PostgreSQL; implies `ping` |
//! | `actix` | no | [`actix`]: the Pull endpoint and the ping hook as actix-web middleware |
//! | `metrics` | no | metrics through the `metrics` facade; the application installs the exporter (`docs/operations.md`) |
//!
//! The core ([`Network`], [`token`], [`profile`], [`template`], [`user_id`], [`clock`])
//! needs no feature and no HTTP stack.
//!
//! # The Pull endpoint
//!
//! Mount [`PullLayer`](pull::PullLayer) with the template you register with Livefyre and
//! a [`ProfileSource`](pull::ProfileSource) (here the ready
//! [`InMemorySource`](pull::InMemorySource); your own implements it with
//! `#[pingpull::async_trait]`, or comes from a closure with [`pull::source_fn`]).
//! Requests on the template's path are answered by the layer; every other request
//! reaches your service untouched.
//!
//! ```
//! use pingpull::pull::{InMemorySource, PullLayer, Rejection};
//! use pingpull::{Network, Profile};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! let users = InMemorySource::new();
//! users.insert(Profile::builder("u1", "Ada Lovelace").build())?;
//!
//! let pull = PullLayer::new("https://www.example.com/livefyre/pull?id={id}", network.clone(), users)?;
//! let app = ServiceBuilder::new().layer(pull.clone()).service(service_fn(|_request| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("my site")))
//! }));
//!
//! // A pull as Livefyre sends it: the profile, as JSON.
//! let lftoken = pingpull::token::system_token(&network);
//! let url = pull.template().url_for("u1", lftoken.as_str());
//! let response = app.clone().oneshot(http::Request::get(url).body(())?).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["content-type"], "application/json");
//!
//! // Without a valid token: 403 with an empty body, the reason in the extensions.
//! let response = app.oneshot(http::Request::get("/livefyre/pull?id=u1").body(())?).await?;
//! assert_eq!(response.status(), 403);
//! assert_eq!(response.extensions().get::<Rejection>(), Some(&Rejection::MissingToken));
//! # Ok(())
//! # }
//! ```
//!
//! # The Pinger
//!
//! [`Pinger::ping`](ping::Pinger::ping) records the user and returns at once; a
//! background worker delivers, coalescing pings for a pending user and retrying passing
//! faults.
//!
//! ```no_run
//! use std::time::Duration;
//! use pingpull::Network;
//! use pingpull::ping::Pinger;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", std::env::var("PINGPULL_KEY")?)?;
//! let pinger = Pinger::builder(network).spawn()?; // default: https://{label}.quill.fyre.co
//!
//! // Once per network: tell Livefyre where to pull from.
//! pinger.client().register_pull_url("https://www.example.com/livefyre/pull?id={id}").await?;
//!
//! // In every handler that changes a profile, after the change is committed:
//! pinger.ping("u1")?;
//!
//! // On the way out: deliver what can be delivered, learn what could not.
//! let report = pinger.shutdown(Duration::from_secs(10)).await;
//! assert!(report.undelivered.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! - [`pull`]: the Pull endpoint (`PullLayer`, `ProfileSource`, what it answers and why);
//! - [`ping`]: the Pinger, `LivefyreClient` and the ping hook;
//! - [`outbox`]: pings recorded in your own PostgreSQL transactions, delivered by any
//!   instance;
//! - [`token`]: system and user auth tokens, and their validation;
//! - [`profile`]: the profile object, its validation, signatures and the tolerant reader;
//! - [`emulator`]: Livefyre's side of the protocol, for development and tests;
//! - [`check`]: a conformance check of a Pull endpoint (`pingpull check`);
//! - [`template`], [`user_id`], [`clock`]: Pull URL templates, user id rules, and the
//!   clock used for token expiry.
// The Rust examples of README.md and of the guides run as doctests too; the rendered
// docs never include them.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod check;
pub mod clock;
#[cfg(feature = "ping")]
mod delivery;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
#[cfg(feature = "ping")]
mod http;
#[cfg(feature = "ping")]
mod livefyre;
#[cfg(any(feature = "pull", feature = "ping"))]
mod metrics;
mod network;
#[cfg(all(test, feature = "pull", feature = "ping"))]
mod operator_docs;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod outbox;
mod percent;
#[cfg(feature = "ping")]
#[cfg_attr(docsrs, doc(cfg(feature = "ping")))]
pub mod ping;
pub mod profile;
#[cfg(feature = "pull")]
#[cfg_attr(docsrs, doc(cfg(feature = "pull")))]
pub mod pull;
mod sync;
pub mod template;
#[doc(hidden)]
pub mod testing;
#[cfg(any(feature = "pull", feature = "ping"))]
mod throttle;
pub mod token;
pub mod user_id;

pub use network::{Network, NetworkError};

// The guides' examples, as doctests (one module per guide, only when collecting them).
#[cfg(doctest)]
#[doc = include_str!("../docs/pull.md")]
mod pull_guide {}
#[cfg(doctest)]
#[doc = include_str!("../docs/pinger.md")]
mod pinger_guide {}
#[cfg(doctest)]
#[doc = include_str!("../docs/outbox.md")]
mod outbox_guide {}
#[cfg(doctest)]
#[doc = include_str!("../docs/operations.md")]
mod operations_guide {}
#[cfg(doctest)]
#[doc = include_str!("../docs/cli.md")]
mod cli_guide {}
#[cfg(doctest)]
#[doc = include_str!("../docs/performance.md")]
mod performance_guide {}

/// The attribute that implements [`ProfileSource`](pull::ProfileSource) and
/// [`Transport`](ping::Transport) (`#[pingpull::async_trait]`), re-exported so that an
/// implementation needs no dependency beyond pingpull. The traits keep `async-trait`'s
/// boxed futures: they are object-safe (a layer holds `Arc<dyn ProfileSource>`), which
/// native `async fn` in traits is not.
#[cfg(any(feature = "pull", feature = "ping"))]
pub use async_trait::async_trait;

/// Any error, boxed: what a [`ProfileSource`](pull::ProfileSource) or a
/// [`Transport`](ping::Transport) may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use profile::Profile;
