//! The emulator, `check` and the template rule, with the `emulator` feature.

mod bounds;
pub(crate) mod check;
mod rotation;
mod server;
mod template_rule;
