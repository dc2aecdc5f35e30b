//! `pingpull emulator`: runs the Livefyre emulator until Ctrl-C or SIGTERM, then stops
//! gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use pingpull::Network;
use pingpull::emulator::{Emulator, Faults};

use super::error::CommandError;
use crate::signals::stop_signal;

#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Pull URL template, as if registered (must contain {id})
    #[arg(long)]
    pull_url: Option<String>,
    /// Share of pings answered 500, 0 to 1
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Share of pings answered 429 with Retry-After, 0 to 1
    #[arg(long = "rate-429", default_value_t = 0.0)]
    rate_429: f64,
    /// Milliseconds added to every ping's answer
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed for the choice of failing pings
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Users kept at most; a ping for a new user beyond it evicts the least recently pinged
    #[arg(long, default_value_t = pingpull::emulator::DEFAULT_MAX_USERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_users: usize,
}

/// How long requests in progress may run on after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Starts the emulator, prints its base URL on stdout and serves until Ctrl-C or
/// SIGTERM (`docker stop`, Kubernetes), then answers the requests in progress (up to
/// 10 s) and exits 0 (1 if some were still unanswered then).
pub(crate) async fn run(network: Network, args: EmulatorArgs) -> Result<(), CommandError> {
    // Before the base URL is printed: a signal sent as soon as it is read is not missed.
    let stopped = stop_signal()
        .map_err(|e| CommandError::Failed(format!("cannot handle Ctrl-C and SIGTERM: {e}")))?;
    let faults = Faults::none()
        .fail_rate(args.fail_rate)
        .rate_429(args.rate_429)
        .latency(Duration::from_millis(args.latency_ms))
        .seed(args.seed);
    let mut builder = Emulator::builder(network)
        .listen(args.listen)
        .max_users(args.max_users)
        .faults(faults);
    if let Some(template) = &args.pull_url {
        builder = builder
            .pull_url(template)
            .map_err(|e| CommandError::Usage(format!("--pull-url: {e}")))?;
    }
    let emulator = builder
        .start()
        .await
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    println!("{}", emulator.base_url());
    eprintln!(
        "emulator for {} at {}; Studio page: {}/studio/users; Ctrl-C or SIGTERM stops it",
        emulator.network().name(),
        emulator.base_url(),
        emulator.base_url()
    );
    let signal = stopped.await;
    tracing::info!(target: "pingpull::cli", signal = signal.name(), "stopping: answering the requests in progress");
    // Requests in progress are answered, idle connections closed, pulls stopped.
    if emulator.shutdown(SHUTDOWN_GRACE).await {
        Ok(())
    } else {
        Err(CommandError::Failed(format!(
            "requests still in progress {} s after {} were cut off",
            SHUTDOWN_GRACE.as_secs(),
            signal.name()
        )))
    }
}
