//! Test doubles shared by the integration tests.

#[cfg(feature = "ping")]
pub(crate) mod fake_livefyre;
