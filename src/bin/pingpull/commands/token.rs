//! `pingpull token`: makes system and user tokens, verifies system tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use clap::{Args, Subcommand};
use pingpull::Network;
use pingpull::token::{Claims, SYSTEM_TOKEN_LIFETIME, SystemTokenValidator};

use super::error::CommandError;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a system token (the lftoken Livefyre sends)
    #[command(
        after_help = "Examples:\n  pingpull token system\n  pingpull token system --expires-at 1700086400   # reproducible\n\nExit status: 0 printed, 2 usage error."
    )]
    System(TokenLifetime),
    /// Print a user auth token
    #[command(
        after_help = "Example:\n  pingpull token user --user u1 --display-name 'Ada Lovelace' --ttl 3600\n\nExit status: 0 printed, 2 usage error."
    )]
    User {
        /// User id ([A-Za-z0-9_.-]+)
        #[arg(long)]
        user: String,
        /// Display name
        #[arg(long)]
        display_name: String,
        #[command(flatten)]
        lifetime: TokenLifetime,
    },
    /// Verify a system token: print its claims as JSON (exit 0) or the reason (exit 1);
    /// on stderr, which key verified it (`key: current` or `key: previous`)
    #[command(
        after_help = "Example:\n  pingpull token verify \"$LFTOKEN\"\n\nExit status: 0 valid, 1 invalid (the reason on stdout), 2 usage error."
    )]
    Verify {
        /// The token
        token: String,
    },
}

// How long a token made lasts, as the flags give it. (A plain comment: clap reads a doc
// comment here as help text.)
#[derive(Debug, Args)]
pub(crate) struct TokenLifetime {
    /// Lifetime in seconds from now
    #[arg(long, conflicts_with = "expires_at")]
    ttl: Option<u64>,
    /// Absolute expiry in Unix seconds, for reproducible tokens
    #[arg(long)]
    expires_at: Option<i64>,
}

/// Prints the token asked for, or verifies one.
pub(crate) fn run(network: &Network, command: TokenCommand) -> Result<(), CommandError> {
    match command {
        TokenCommand::System(lifetime) => {
            println!(
                "{}",
                Claims::system(network, expires_at(&lifetime))
                    .sign(network)
                    .as_str()
            );
            Ok(())
        }
        TokenCommand::User {
            user,
            display_name,
            lifetime,
        } => {
            let claims = Claims::user(network, user, display_name, expires_at(&lifetime))
                .map_err(|e| CommandError::Usage(format!("--user: {e}")))?;
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
                    Err(CommandError::Failed(String::new()))
                }
            }
        }
    }
}

/// The token's expiry in Unix seconds: `--expires-at`, else now plus `--ttl` (or the
/// system token's lifetime).
fn expires_at(lifetime: &TokenLifetime) -> i64 {
    match (lifetime.expires_at, lifetime.ttl) {
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

/// Which of the network's keys verified a token, for `token verify`.
fn key_used(previous: bool) -> &'static str {
    if previous {
        "key: previous (the sender has not switched to the current key yet)"
    } else {
        "key: current"
    }
}
