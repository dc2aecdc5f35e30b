#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
mod network;
pub mod profile;
pub mod token;
pub mod user_id;

pub use network::{Network, NetworkError};
pub use profile::Profile;
