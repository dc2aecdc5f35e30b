//! What each command does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::StatusCode;
use pingpull::Network;
use pingpull::check::{CheckError, CheckOptions, check_endpoint, pull_once};
use pingpull::emulator::{Emulator, Faults};
use pingpull::ping::{LivefyreClient, TlsRoots};
use pingpull::token::{Claims, SYSTEM_TOKEN_LIFETIME, SystemTokenValidator};

use super::{
    CheckArgs, Cli, Command, EmulatorArgs, Expiry, Failure, NetworkArgs, RegisterArgs, TokenCommand,
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
        Command::Ping(args) => super::ping::ping(network, args, cli.verbose).await,
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
        .max_users(args.max_users)
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
    // Requests in progress are answered, idle connections closed, pulls stopped.
    emulator.shutdown(Duration::from_secs(10)).await;
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

/// The roots https trusts: Mozilla's, plus the CA certificates of `--ca-cert FILE`.
pub(crate) fn tls_roots(ca_cert: Option<&std::path::Path>) -> Result<Option<TlsRoots>, Failure> {
    let Some(path) = ca_cert else {
        return Ok(None);
    };
    let bad = |error: &dyn std::fmt::Display| {
        Failure::Usage(format!("--ca-cert {}: {error}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    TlsRoots::default()
        .add_pem(&pem)
        .map(Some)
        .map_err(|e| bad(&e))
}

fn base_url(network: &Network, base_url: Option<String>) -> String {
    base_url.unwrap_or_else(|| network.default_base_url())
}

async fn register(network: Network, args: RegisterArgs) -> Result<(), Failure> {
    let base_url = base_url(&network, args.base_url);
    let mut client = LivefyreClient::new(network.clone(), &base_url)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(roots) = tls_roots(args.ca_cert.as_deref())? {
        client = client.tls_roots(&roots);
    }
    if let Some(user) = &args.check_user {
        // A typo in the id is a usage error, found before anything is sent.
        pingpull::user_id::validate_for_path(user)
            .map_err(|e| Failure::Usage(format!("--check-user `{user}`: {e}")))?;
    }
    match client.register_pull_url(&args.template).await {
        Ok(()) => {
            println!("registered {}", args.template);
            match args.check_user {
                Some(user) => check_user(network, args.template, user).await,
                None => Ok(()),
            }
        }
        Err(pingpull::ping::RequestError::InvalidTemplate(error)) => {
            Err(Failure::Usage(error.to_string()))
        }
        Err(
            error @ pingpull::ping::RequestError::Status(
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED,
            ),
        ) => Err(Failure::Failed(format!(
            "registration failed: {error}\n{}",
            base_url_hint(&network, &base_url)
        ))),
        Err(error) => Err(Failure::Failed(format!("registration failed: {error}"))),
    }
}

/// Pulls `user` once as Livefyre would, through `check`'s valid-pull case, so the
/// verdict and its wording are the ones `pingpull check` gives.
async fn check_user(network: Network, template: String, user: String) -> Result<(), Failure> {
    let options = CheckOptions::new(network, template, user.clone());
    let result = pull_once(&options).await.map_err(|e| match e {
        CheckError::Unreachable { .. } => Failure::Failed(format!("pulling `{user}` failed: {e}")),
        _ => Failure::Usage(e.to_string()),
    })?;
    if result.passed {
        println!(
            "pulled `{user}`: {} ({} ms)",
            result.detail, result.elapsed_ms
        );
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "pulling `{user}` failed: {}",
            result.detail
        )))
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

/// What to check when the base URL answered like a server other than Livefyre's.
pub(crate) fn base_url_hint(network: &Network, base_url: &str) -> String {
    format!(
        "check --base-url (it was {base_url}): Livefyre's API is {}, and `pingpull emulator` prints the emulator's",
        network.default_base_url()
    )
}
