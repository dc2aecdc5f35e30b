//! The command line: its flags, which command runs, and the exit status it ends with.

use std::fmt;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};
use pingpull::Network;
use tracing::level_filters::LevelFilter;

use crate::commands::error::CommandError;
use crate::commands::{check, emulator, ping, quickstart, register, token};
use crate::logging;

/// Livefyre "Ping for Pull" from the command line.
#[derive(Debug, Parser)]
#[command(name = "pingpull", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    network: NetworkArgs,
    /// More log detail on stderr, once per step: -v, -vv, -vvv (RUST_LOG, when set, wins)
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = GLOBAL)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The heading of the options every command takes, apart from each command's own in
/// its `--help`.
const GLOBAL: &str = "Global options";

/// The network: name and keys, from flags or (better, out of shell history) the environment.
/// A key may start with `-`: taken as a flag, clap's error would quote part of it.
#[derive(Args)]
#[command(next_help_heading = GLOBAL)]
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
    /// Ping for Pull end to end on this machine: the emulator, an app with the Pull
    /// endpoint, a changed profile, and the emulator's copy catching up
    #[command(
        after_help = "Example:\n  pingpull quickstart\n\nNeeds no network or key: it uses the development network example.fyre.co.\nExit status: 0 when the emulator's copy of the profile caught up, 1 otherwise."
    )]
    Quickstart,
    /// Run the Livefyre emulator until Ctrl-C or SIGTERM; prints its base URL first
    // Examples stay under clap's 100 columns, broken with `\` where longer: a line clap
    // wraps cannot be pasted into a shell.
    #[command(
        after_help = "Example:\n  PINGPULL_NETWORK=example.fyre.co PINGPULL_KEY=testkeytest \\\n    pingpull emulator --listen 127.0.0.1:8080 \\\n    --pull-url 'http://127.0.0.1:3000/livefyre/pull?id={id}'\n\nExit status: 0 stopped by Ctrl-C or SIGTERM once the requests in progress were answered, 1 some were still unanswered 10 s after it, 2 usage error (such as an address in use)."
    )]
    Emulator(emulator::EmulatorArgs),
    /// Make or verify tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Ping users through the Pinger (coalescing, retries) and wait for delivery
    #[command(
        after_help = "Examples:\n  pingpull ping --base-url http://127.0.0.1:8080 u1 u2\n  cut -d, -f1 changed.csv | pingpull ping --from-file - --deadline 60 --json\n\nOn a terminal, progress shows on stderr and per-user lines need -v; piped, stdout has one line per delivery and stderr a progress line every 5 s (retry lines with -v). Each user is pinged once; the counts come from the Pinger.\nExit status: 0 all delivered, 1 some not (each named with the reason, or the deadline), also at once if delivery stopped (the Pinger's task died; stderr says why), 2 usage error, 130 or 143 stopped by Ctrl-C or SIGTERM (after the summary)."
    )]
    Ping(ping::PingArgs),
    /// Register the Pull URL template with the network
    #[command(
        after_help = "Examples:\n  pingpull register --base-url http://127.0.0.1:8080 \\\n    'https://www.example.com/livefyre/pull?id={id}'\n  pingpull register 'https://www.example.com/livefyre/pull?id={id}' --check-user u1\n\nExit status: 0 registered (and, with --check-user, pulled), 1 registration or pull failed, 2 usage error."
    )]
    Register(register::RegisterArgs),
    /// Act as Livefyre against a Pull endpoint and report whether it conforms
    #[command(
        after_help = "Examples:\n  pingpull check 'http://127.0.0.1:3000/livefyre/pull?id={id}' \\\n    --user u1 --unknown-user nobody\n  pingpull check 'http://127.0.0.1:3000/livefyre/pull?id={id}' \\\n    --user u1 --strict   # advised cases fail too\n\nExit status: 0 every conformance case passed (with --strict, every advised case too), 1 some failed or nothing answers, 2 usage error."
    )]
    Check(check::CheckArgs),
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

    /// Log targets kept quieter than the rest without `-v`: `register` says why a
    /// registration failed in its own error line, so the library's WARN for it (meant for
    /// a long-running server's log) would say it twice.
    fn quieter_targets(&self) -> &'static [(&'static str, LevelFilter)] {
        match self {
            Self::Register(_) => &[("pingpull::ping", LevelFilter::ERROR)],
            _ => &[],
        }
    }
}

/// Runs the command `cli` names, for the network its flags or the environment give.
async fn run(cli: Cli) -> Result<(), CommandError> {
    let network = || configured(&cli.network);
    match cli.command {
        // Its own development network: nothing to configure.
        Command::Quickstart => quickstart::run()
            .await
            .map_err(|e| CommandError::Failed(format!("quickstart failed: {e}"))),
        Command::Emulator(args) => emulator::run(network()?, args).await,
        Command::Token(command) => token::run(&network()?, command),
        Command::Ping(args) => ping::run(network()?, args, cli.verbose).await,
        Command::Register(args) => register::run(network()?, args).await,
        Command::Check(args) => check::run(network()?, args).await,
    }
}

/// [`network`], logged.
fn configured(args: &NetworkArgs) -> Result<Network, CommandError> {
    let network = network(args)?;
    let previous_keys = network.previous_key_count();
    tracing::debug!(target: "pingpull::cli", network = network.name(), previous_keys, "network configured");
    if previous_keys > 0 {
        tracing::info!(target: "pingpull::cli", previous_keys, "key rotation: tokens and profile signatures made with a previous key are accepted");
    }
    Ok(network)
}

/// The network the flags or the environment name, or the usage error saying what is wrong.
fn network(args: &NetworkArgs) -> Result<Network, CommandError> {
    let (Some(name), Some(key)) = (&args.network, &args.key) else {
        return Err(CommandError::Usage(
            "the network is needed: --network and --key, or PINGPULL_NETWORK and PINGPULL_KEY"
                .into(),
        ));
    };
    Network::new(name.clone(), key.clone())
        .and_then(|network| network.with_previous_keys(args.previous_keys()))
        .map_err(|e| CommandError::Usage(e.to_string()))
}

/// Parses the command line, runs the command and tells its outcome as the exit status.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let quietest = cli.command.quietest_log_level();
    logging::init(quietest, cli.command.quieter_targets(), cli.verbose);
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandError::Failed(message)) => {
            if !message.is_empty() {
                eprintln!("pingpull: {message}");
            }
            ExitCode::from(1)
        }
        Err(CommandError::Usage(message)) => {
            eprintln!("pingpull: {message}");
            ExitCode::from(2)
        }
        Err(CommandError::Stopped(signal)) => ExitCode::from(signal.exit_status()),
    }
}
