//! `pingpull`: run the Livefyre emulator, check a Pull endpoint, make and verify tokens,
//! ping users, register the Pull URL.
//!
//! Exit status: 0 on success, 1 when a check or a delivery failed, 2 on usage errors.
//! Standard output carries the results scripts read; logs and progress go to stderr.

mod commands;
mod logging;
mod ping;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

/// Livefyre "Ping for Pull" from the command line.
#[derive(Debug, Parser)]
#[command(name = "pingpull", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    network: NetworkArgs,
    /// More log detail on stderr, once per step: -v, -vv, -vvv (RUST_LOG, when set, wins)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The network: name and keys, from flags or (better, out of shell history) the environment.
/// A key may start with `-`: taken as a flag, clap's error would quote part of it.
#[derive(Args)]
struct NetworkArgs {
    /// Network name, e.g. example.fyre.co
    #[arg(long, env = "PINGPULL_NETWORK", global = true)]
    network: Option<String>,
    /// Network key (prefer the environment variable: flags end up in shell history)
    #[arg(
        long,
        env = "PINGPULL_KEY",
        global = true,
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    key: Option<String>,
    /// Keys still accepted while rotating the key, comma-separated; tokens and signatures
    /// made with them verify, nothing is signed with them
    #[arg(
        long,
        env = "PINGPULL_PREVIOUS_KEYS",
        global = true,
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "KEYS"
    )]
    previous_keys: Option<String>,
}

impl NetworkArgs {
    /// The previous keys given: spaces around each trimmed, empty items ignored (so
    /// `old,` or an empty variable mean what they look like).
    fn previous_keys(&self) -> impl Iterator<Item = &str> {
        self.previous_keys
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
    }
}

// Keys are secrets: never in Debug output.
impl fmt::Debug for NetworkArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |key: &Option<String>| key.as_ref().map(|_| "<redacted>");
        f.debug_struct("NetworkArgs")
            .field("network", &self.network)
            .field("key", &redacted(&self.key))
            .field("previous_keys", &redacted(&self.previous_keys))
            .finish()
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Livefyre emulator until interrupted; prints its base URL first
    // Examples stay under clap's 100 columns, broken with `\` where longer: a line clap
    // wraps cannot be pasted into a shell.
    #[command(
        after_help = "Example:\n  PINGPULL_NETWORK=example.fyre.co PINGPULL_KEY=testkeytest \\\n    pingpull emulator --listen 127.0.0.1:8080 \\\n    --pull-url 'http://127.0.0.1:3000/livefyre/pull?id={id}'"
    )]
    Emulator(EmulatorArgs),
    /// Make or verify tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Ping users through the Pinger (coalescing, retries) and wait for delivery
    #[command(
        after_help = "Examples:\n  pingpull ping --base-url http://127.0.0.1:8080 u1 u2\n  cut -d, -f1 changed.csv | pingpull ping --from-file - --deadline 60 --json\n\nOn a terminal, progress shows on stderr and per-user lines need -v; piped, stdout has one line per delivery and stderr a progress line every 5 s (retry lines with -v). Each user is pinged once; the counts come from the Pinger.\nExit status: 0 all delivered, 1 some not (each named with the reason, or the deadline), 2 usage error."
    )]
    Ping(PingArgs),
    /// Register the Pull URL template with the network
    #[command(
        after_help = "Examples:\n  pingpull register --base-url http://127.0.0.1:8080 \\\n    'https://www.example.com/livefyre/pull?id={id}'\n  pingpull register 'https://www.example.com/livefyre/pull?id={id}' --check-user u1\n\nExit status: 0 registered (and, with --check-user, pulled), 1 registration or pull failed, 2 usage error."
    )]
    Register(RegisterArgs),
    /// Act as Livefyre against a Pull endpoint and report whether it conforms
    #[command(
        after_help = "Examples:\n  pingpull check 'http://127.0.0.1:3000/livefyre/pull?id={id}' \\\n    --user u1 --unknown-user nobody\n  pingpull check 'http://127.0.0.1:3000/livefyre/pull?id={id}' \\\n    --user u1 --strict   # advised cases fail too"
    )]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct EmulatorArgs {
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

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a system token (the lftoken Livefyre sends)
    #[command(
        after_help = "Examples:\n  pingpull token system\n  pingpull token system --expires-at 1700086400   # reproducible"
    )]
    System(Expiry),
    /// Print a user auth token
    #[command(
        after_help = "Example:\n  pingpull token user --user u1 --display-name 'Ada Lovelace' --ttl 3600"
    )]
    User {
        /// User id ([A-Za-z0-9_.-]+)
        #[arg(long)]
        user: String,
        /// Display name
        #[arg(long)]
        display_name: String,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// Verify a system token: print its claims as JSON (exit 0) or the reason (exit 1);
    /// on stderr, which key verified it (`key: current` or `key: previous`)
    #[command(after_help = "Example:\n  pingpull token verify \"$LFTOKEN\"")]
    Verify {
        /// The token
        token: String,
    },
}

#[derive(Debug, Args)]
struct Expiry {
    /// Lifetime in seconds from now
    #[arg(long, conflicts_with = "expires_at")]
    ttl: Option<u64>,
    /// Absolute expiry in Unix seconds, for reproducible tokens
    #[arg(long)]
    expires_at: Option<i64>,
}

#[derive(Debug, Args)]
struct PingArgs {
    /// Livefyre's API base URL (default https://{label}.quill.fyre.co)
    #[arg(long)]
    base_url: Option<String>,
    /// Also trust the CA certificates in this PEM file for https (a private CA, a proxy)
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Read user ids from a file, one per line ('-' for standard input)
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Seconds to wait for delivery before giving up; retries are spaced to fit in it
    #[arg(long, default_value_t = 30.0, value_parser = positive_number)]
    deadline: f64,
    /// Requests in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// At most this many requests started per second (default: no limit)
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_number)]
    rate_limit: Option<f64>,
    /// Print a JSON summary on stdout instead of the text one (the per-user lines stay)
    #[arg(long)]
    json: bool,
    /// User ids to ping
    users: Vec<String>,
}

/// A finite number above zero, for `--deadline` and `--rate-limit`: clap reports
/// anything else as a usage error.
fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() && number > 0.0 => Ok(number),
        _ => Err(format!("expected a positive number, got `{text}`")),
    }
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// Livefyre's API base URL (default https://{label}.quill.fyre.co)
    #[arg(long)]
    base_url: Option<String>,
    /// Also trust the CA certificates in this PEM file for https (a private CA, a proxy)
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The Pull URL template (must contain {id})
    template: String,
    /// After registering, pull this user once as Livefyre would and report the result
    #[arg(long, value_name = "ID")]
    check_user: Option<String>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The Pull URL template of the endpoint to check
    template: String,
    /// A user who exists
    #[arg(long)]
    user: String,
    /// A user who does not exist (checks the 404)
    #[arg(long)]
    unknown_user: Option<String>,
    /// Seconds after which an answer counts as too slow
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Fail on advised cases too (pingpull's stricter rules, such as refusing a repeated
    /// lftoken), which otherwise only warn
    #[arg(long)]
    strict: bool,
}

/// A command's failure: a usage error (2) or a failed check or delivery (1).
enum Failure {
    Usage(String),
    Failed(String),
}

impl Command {
    /// The log level without `-v`: the emulator is a long-running service whose operator
    /// wants to see it start and take registrations; the other commands report on stdout
    /// and log only what went wrong.
    fn quietest_log_level(&self) -> LevelFilter {
        match self {
            Self::Emulator(_) => LevelFilter::INFO,
            _ => LevelFilter::WARN,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.command.quietest_log_level(), cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pingpull: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(message)) => {
            if !message.is_empty() {
                eprintln!("pingpull: {message}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("pingpull: {message}");
            ExitCode::from(2)
        }
    }
}
