//! Ping for Pull, end to end on one machine: the built-in Livefyre emulator, an axum app
//! with the Pull endpoint and a profile-update route, a changed display name, and the
//! emulator's remote profile catching up.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! The code is the command line's `quickstart` (src/bin/pingpull/commands/quickstart.rs),
//! which `cargo run --features cli -- quickstart` runs with a much smaller build: an
//! example builds every dev-dependency first.

#[path = "../src/bin/pingpull/commands/quickstart.rs"]
mod quickstart;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match quickstart::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart failed: {error}");
            ExitCode::FAILURE
        }
    }
}
