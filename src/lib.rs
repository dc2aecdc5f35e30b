#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod check;
pub mod clock;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
#[cfg(feature = "ping")]
mod http_client;
mod network;
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
pub mod token;
pub mod user_id;

pub use network::{Network, NetworkError};

/// Any error, boxed: what a [`ProfileSource`](pull::ProfileSource) or a
/// [`Transport`](ping::Transport) may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use profile::Profile;
