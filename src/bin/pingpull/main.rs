//! `pingpull`: run the Livefyre emulator, check a Pull endpoint, make and verify tokens,
//! ping users, register the Pull URL, or watch Ping for Pull end to end (`quickstart`).
//!
//! Exit status: 0 on success, 1 when a check or a delivery failed, 2 on usage errors,
//! 130 or 143 when Ctrl-C or SIGTERM stopped `ping` (after its summary).
//! Standard output carries the results scripts read; logs and progress go to stderr.
//!
//! Built without the `cli` feature (a plain `cargo install`), the binary only says how to
//! build it: the command line's dependencies (clap, the emulator, TLS) are in that feature.

#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod commands;
#[cfg(feature = "cli")]
mod logging;
#[cfg(feature = "cli")]
mod signals;

use std::process::ExitCode;

#[cfg(feature = "cli")]
fn main() -> ExitCode {
    cli::main()
}

/// Without the feature there is no command line: say so, rather than install nothing
/// with only a cargo warning, as `required-features` would.
#[cfg(not(feature = "cli"))]
fn main() -> ExitCode {
    eprintln!(
        "pingpull: the command line needs the `cli` feature; build it with\n  \
         cargo install pingpull --features cli --locked\n\
         or, in a clone of the repository,\n  \
         cargo install --path . --features cli --locked\n  \
         cargo run --features cli -- --help"
    );
    ExitCode::from(2)
}
