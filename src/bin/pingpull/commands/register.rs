//! `pingpull register`: registers the Pull URL template with the network, then pulls a
//! user once if asked.

use std::path::PathBuf;

use clap::Args;
use http::StatusCode;
use pingpull::Network;
use pingpull::check::{CheckError, CheckOptions, pull_once};
use pingpull::ping::{LivefyreClient, RequestError};

use super::error::CommandError;
use super::livefyre::{ProxyArgs, base_url, base_url_hint, tls_roots};

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// Livefyre's API base URL (default https://{label}.quill.fyre.co)
    #[arg(long)]
    base_url: Option<String>,
    /// Also trust the CA certificates in this PEM file for https (a private CA, a proxy)
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    #[command(flatten)]
    proxy: ProxyArgs,
    /// The Pull URL template (must contain {id})
    template: String,
    /// After registering, pull this user once as Livefyre would and report the result
    #[arg(long, value_name = "ID")]
    check_user: Option<String>,
}

/// Registers `args`' template; with `--check-user`, then pulls that user.
pub(crate) async fn run(network: Network, args: RegisterArgs) -> Result<(), CommandError> {
    let base_url = base_url(&network, args.base_url);
    let proxy = args.proxy.proxy()?;
    let mut client = LivefyreClient::new(network.clone(), &base_url)
        .map_err(|e| CommandError::Usage(e.to_string()))?
        .proxy(&proxy);
    let roots = tls_roots(args.ca_cert.as_deref())?;
    if let Some(roots) = &roots {
        client = client.tls_roots(roots);
    }
    if let Some(user) = &args.check_user {
        // A typo in the id is a usage error, found before anything is sent.
        pingpull::user_id::validate_for_path(user)
            .map_err(|e| CommandError::Usage(format!("--check-user `{user}`: {e}")))?;
    }
    match client.register_pull_url(&args.template).await {
        Ok(()) => {
            println!("registered {}", args.template);
            match args.check_user {
                Some(user) => {
                    let mut options =
                        CheckOptions::new(network, args.template, user.clone()).proxy(&proxy);
                    if let Some(roots) = &roots {
                        options = options.tls_roots(roots);
                    }
                    check_user(&options, &user).await
                }
                None => Ok(()),
            }
        }
        Err(RequestError::InvalidTemplate(error)) => Err(CommandError::Usage(error.to_string())),
        Err(
            error @ RequestError::Status(StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED),
        ) => Err(CommandError::Failed(format!(
            "registration failed: {error}\n{}",
            base_url_hint(&network, &base_url)
        ))),
        // What the library's WARN for the failure adds, which the command keeps out of
        // stderr without -v (logging.rs): said here, once.
        Err(error @ RequestError::Status(status)) if status.is_client_error() => {
            Err(CommandError::Failed(format!(
                "registration failed: {error}
check that the template is an absolute http(s) URL with `{{id}}` once, as Livefyre will pull it"
            )))
        }
        Err(
            error @ (RequestError::Timeout | RequestError::Transport(_) | RequestError::Status(_)),
        ) => Err(CommandError::Failed(format!(
            "registration failed: {error}
check --base-url (it was {base_url}) and that Livefyre (or the emulator) is reachable from here"
        ))),
        Err(error) => Err(CommandError::Failed(format!(
            "registration failed: {error}"
        ))),
    }
}

/// Pulls `user` once as Livefyre would, through `check`'s valid-pull case, so the
/// verdict and its wording are the ones `pingpull check` gives.
/// `options` name the template, the user, and how to reach the endpoint (`--proxy`,
/// `--ca-cert`).
async fn check_user(options: &CheckOptions, user: &str) -> Result<(), CommandError> {
    let result = pull_once(options).await.map_err(|e| match e {
        CheckError::Unreachable { .. } => {
            CommandError::Failed(format!("pulling `{user}` failed: {e}"))
        }
        _ => CommandError::Usage(e.to_string()),
    })?;
    if result.passed {
        println!(
            "pulled `{user}`: {} ({} ms)",
            result.detail, result.elapsed_ms
        );
        Ok(())
    } else {
        Err(CommandError::Failed(format!(
            "pulling `{user}` failed: {}",
            result.detail
        )))
    }
}
