//! Tokens (docs/protocol.md §3), with no feature at all.

mod interop;
mod protocol;
