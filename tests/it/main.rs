//! Integration tests, folded into one binary to keep link time down.

mod interop;
mod tokens;
