//! The emulator, `check` and the template rule, with the `emulator` feature.

mod bounds;
pub(crate) mod check;
mod server;
mod template_rule;
