//! What each command does.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::StatusCode;
use pingpull::check::{CheckError, CheckOptions, check_endpoint};
use pingpull::emulator::{Emulator, Faults};
use pingpull::ping::{LivefyreClient, PingEvent, Pinger, ShutdownReport};
use pingpull::token::{Claims, SYSTEM_TOKEN_LIFETIME, SystemTokenValidator};
use pingpull::{Network, user_id};
use tokio::sync::broadcast;

use super::{
    CheckArgs, Cli, Command, EmulatorArgs, Expiry, Failure, NetworkArgs, PingArgs, RegisterArgs,
    TokenCommand,
};

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let network = network(&cli.network)?;
    let previous_keys = network.previous_key_count();
    tracing::debug!(target: "pingpull::cli", network = network.name(), previous_keys, "network configured");
    if previous_keys > 0 {
        tracing::info!(target: "pingpull::cli", previous_keys, "key rotation: tokens and profile signatures made with a previous key are accepted");
    }
    match cli.command {
        Command::Emulator(args) => emulator(network, args).await,
        Command::Token(command) => token_command(&network, command),
        Command::Ping(args) => ping(network, args).await,
        Command::Register(args) => register(network, args).await,
        Command::Check(args) => check(network, args).await,
    }
}

fn network(args: &NetworkArgs) -> Result<Network, Failure> {
    let (Some(name), Some(key)) = (&args.network, &args.key) else {
        return Err(Failure::Usage(
            "the network is needed: --network and --key, or PINGPULL_NETWORK and PINGPULL_KEY"
                .into(),
        ));
    };
    Network::new(name.clone(), key.clone())
        .and_then(|network| network.with_previous_keys(args.previous_keys()))
        .map_err(|e| Failure::Usage(e.to_string()))
}

async fn emulator(network: Network, args: EmulatorArgs) -> Result<(), Failure> {
    let faults = Faults::none()
        .fail_rate(args.fail_rate)
        .rate_429(args.rate_429)
        .latency(Duration::from_millis(args.latency_ms))
        .seed(args.seed);
    let mut builder = Emulator::builder(network)
        .listen(args.listen)
        .faults(faults);
    if let Some(template) = &args.pull_url {
        builder = builder
            .pull_url(template)
            .map_err(|e| Failure::Usage(format!("--pull-url: {e}")))?;
    }
    let emulator = builder
        .start()
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    println!("{}", emulator.base_url());
    eprintln!(
        "emulator for {} at {}; Studio page: {}/studio/users; Ctrl-C stops it",
        emulator.network().name(),
        emulator.base_url(),
        emulator.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::Failed(format!("waiting for Ctrl-C: {e}")))?;
    Ok(())
}

fn expires_at(expiry: &Expiry) -> i64 {
    match (expiry.expires_at, expiry.ttl) {
        (Some(at), _) => at,
        (None, ttl) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let ttl = ttl.unwrap_or(SYSTEM_TOKEN_LIFETIME.as_secs());
            i64::try_from(now.saturating_add(ttl)).unwrap_or(i64::MAX)
        }
    }
}

fn token_command(network: &Network, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::System(expiry) => {
            println!(
                "{}",
                Claims::system(network, expires_at(&expiry))
                    .sign(network)
                    .as_str()
            );
            Ok(())
        }
        TokenCommand::User {
            user,
            display_name,
            expiry,
        } => {
            let claims = Claims::user(network, user, display_name, expires_at(&expiry))
                .map_err(|e| Failure::Usage(format!("--user: {e}")))?;
            println!("{}", claims.sign(network).as_str());
            Ok(())
        }
        TokenCommand::Verify { token } => {
            let token = token.trim();
            match SystemTokenValidator::new(network.clone()).validate(token) {
                Ok(expiry) => {
                    // Valid, so the payload is base64url JSON.
                    let payload = token.split('.').nth(1).unwrap_or_default();
                    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(payload)
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                        .unwrap_or_default();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json).unwrap_or_default()
                    );
                    // stderr: stdout stays one JSON document for scripts.
                    eprintln!("{}", key_used(expiry.previous_key()));
                    Ok(())
                }
                Err(reason) => {
                    println!("invalid: {reason}");
                    Err(Failure::Failed(String::new()))
                }
            }
        }
    }
}

/// Which of the network's keys verified a token, for `token verify`.
fn key_used(previous: bool) -> &'static str {
    if previous {
        "key: previous (the sender has not switched to the current key yet)"
    } else {
        "key: current"
    }
}

fn base_url(network: &Network, base_url: Option<String>) -> String {
    base_url.unwrap_or_else(|| network.default_base_url())
}

async fn ping(network: Network, args: PingArgs) -> Result<(), Failure> {
    let users = users_to_ping(args.users, args.from_file.as_deref())?;
    let deadline = Duration::try_from_secs_f64(args.deadline)
        .map_err(|_| Failure::Usage("--deadline must be a positive number of seconds".into()))?;
    let pinger = Pinger::builder(network.clone())
        .base_url(base_url(&network, args.base_url))
        .max_pending(users.len().max(1))
        .spawn()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let events = pinger.events();
    for user in &users {
        pinger
            .ping(user)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let failures = print_events(&pinger, events, deadline).await;
    let report = pinger.shutdown(Duration::ZERO).await;
    print_summary(&users, failures, &report)
}

/// The user ids given, then those of `from_file`; at least one, each valid.
fn users_to_ping(mut users: Vec<String>, from_file: Option<&Path>) -> Result<Vec<String>, Failure> {
    if let Some(path) = from_file {
        users.extend(read_user_file(path)?);
    }
    if users.is_empty() {
        return Err(Failure::Usage(
            "no user ids: give some, or --from-file".into(),
        ));
    }
    for user in &users {
        user_id::validate_for_path(user)
            .map_err(|e| Failure::Usage(format!("user id `{user}`: {e}")))?;
    }
    Ok(users)
}

/// The non-blank lines of `path` (`-`: standard input), trimmed.
fn read_user_file(path: &Path) -> Result<Vec<String>, Failure> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| Failure::Usage(format!("--from-file {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// What the events told of users not delivered.
#[derive(Default)]
struct DeliveryFailures {
    /// Users given up on, with the reason.
    gave_up: Vec<String>,
    /// The latest failure of each user retried.
    last_failure: HashMap<String, String>,
}

/// Prints the events until nothing is pending, the deadline passes or Livefyre refuses
/// the network.
async fn print_events(
    pinger: &Pinger,
    mut events: broadcast::Receiver<PingEvent>,
    deadline: Duration,
) -> DeliveryFailures {
    let mut failures = DeliveryFailures::default();
    let until = tokio::time::Instant::now() + deadline;
    while pinger.stats().pending > 0 {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Ok(event)) => {
                if print_event(event, &mut failures).is_break() {
                    break;
                }
            }
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    failures
}

/// Prints one event and notes a failure; `Break` when no ping can succeed.
fn print_event(event: PingEvent, failures: &mut DeliveryFailures) -> ControlFlow<()> {
    match event {
        PingEvent::Delivered { user_id, attempts } => {
            println!("delivered {user_id} ({attempts} attempt(s))");
        }
        PingEvent::Retrying {
            user_id,
            failure,
            delay,
            ..
        } => {
            eprintln!("retrying {user_id} in {} ms: {failure}", delay.as_millis());
            failures.last_failure.insert(user_id, failure.to_string());
        }
        PingEvent::GaveUp { user_id, failure } => {
            failures.gave_up.push(format!("{user_id} ({failure})"));
        }
        PingEvent::Unauthorized { .. } => {
            eprintln!("Livefyre answered 403: the network key or name is wrong");
            return ControlFlow::Break(());
        }
        _ => {}
    }
    ControlFlow::Continue(())
}

/// Prints the totals and each user not delivered; fails if there is one.
fn print_summary(
    users: &[String],
    failures: DeliveryFailures,
    report: &ShutdownReport,
) -> Result<(), Failure> {
    let mut failed = failures.gave_up;
    failed.extend(
        report
            .undelivered
            .iter()
            .map(|user| match failures.last_failure.get(user) {
                Some(reason) => format!("{user} (not delivered: {reason})"),
                None => format!("{user} (not delivered)"),
            }),
    );
    // Users, not requests: a user pinged twice may have needed two requests.
    let distinct: HashSet<&String> = users.iter().collect();
    println!(
        "delivered {}, failed {} ({} request(s) answered 2xx)",
        distinct.len().saturating_sub(failed.len()),
        failed.len(),
        report.stats.succeeded
    );
    for line in &failed {
        println!("failed {line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(String::new()))
    }
}

async fn register(network: Network, args: RegisterArgs) -> Result<(), Failure> {
    let base_url = base_url(&network, args.base_url);
    let client = LivefyreClient::new(network.clone(), &base_url)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    match client.register_pull_url(&args.template).await {
        Ok(()) => {
            println!("registered {}", args.template);
            Ok(())
        }
        Err(pingpull::ping::RequestError::InvalidTemplate(error)) => {
            Err(Failure::Usage(error.to_string()))
        }
        Err(
            error @ pingpull::ping::RequestError::Status(
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED,
            ),
        ) => Err(Failure::Failed(format!(
            "registration failed: {error}\ncheck --base-url (it was {base_url}): Livefyre's API is {}, and `pingpull emulator` prints the emulator's",
            network.default_base_url()
        ))),
        Err(error) => Err(Failure::Failed(format!("registration failed: {error}"))),
    }
}

async fn check(network: Network, args: CheckArgs) -> Result<(), Failure> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| Failure::Usage("--timeout must be a positive number of seconds".into()))?;
    let mut options = CheckOptions::new(network, args.template, args.user)
        .timeout(timeout)
        .strict(args.strict);
    if let Some(unknown) = args.unknown_user {
        options = options.unknown_user(unknown);
    }
    let report = check_endpoint(&options).await.map_err(|e| match e {
        // The endpoint's fault, not the command line's: said once, exit 1.
        CheckError::Unreachable { .. } => Failure::Failed(e.to_string()),
        _ => Failure::Usage(e.to_string()),
    })?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    if report.passed() {
        Ok(())
    } else {
        Err(Failure::Failed(String::new()))
    }
}
