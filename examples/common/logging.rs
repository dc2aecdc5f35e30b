//! Logging for the examples: stderr, INFO unless `RUST_LOG` says otherwise.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Logs to stderr (stdout's first line is the pull URL template, for scripts) at INFO
/// unless `RUST_LOG` says otherwise: what an operator should see, and nothing per
/// successful pull (those are DEBUG). Colours only on a terminal.
pub(crate) fn init_tracing() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|error| {
                eprintln!("RUST_LOG ignored ({error}); logging at info");
                EnvFilter::new("info")
            }),
        _ => EnvFilter::new("info"),
    };
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(filter)
        .init();
}
