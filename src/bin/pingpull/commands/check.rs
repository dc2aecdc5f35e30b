//! `pingpull check`: acts as Livefyre against a Pull endpoint and reports whether it
//! conforms.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use pingpull::Network;
use pingpull::check::{CheckError, CheckOptions, check_endpoint};

use super::error::CommandError;
use super::livefyre::{ProxyArgs, tls_roots};
use super::numbers::positive_seconds;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The Pull URL template of the endpoint to check
    template: String,
    /// A user who exists
    #[arg(long)]
    user: String,
    /// A user who does not exist (checks the 404)
    #[arg(long)]
    unknown_user: Option<String>,
    /// Seconds after which an answer counts as too slow
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds, allow_negative_numbers = true)]
    timeout: f64,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Fail on advised cases too (pingpull's stricter rules, such as refusing a repeated
    /// lftoken), which otherwise only warn
    #[arg(long)]
    strict: bool,
    /// Also trust the CA certificates in this PEM file for an https endpoint (a private CA)
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    #[command(flatten)]
    proxy: ProxyArgs,
}

/// Runs the checks and prints the report; fails unless every conformance case passed
/// (and, with `--strict`, every advised case).
pub(crate) async fn run(network: Network, args: CheckArgs) -> Result<(), CommandError> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        // clap took only positive finite numbers: this one is too large.
        .map_err(|_| CommandError::Usage("--timeout is too long".into()))?;
    let mut options = CheckOptions::new(network, args.template, args.user)
        .timeout(timeout)
        .strict(args.strict)
        .proxy(&args.proxy.proxy()?);
    if let Some(roots) = tls_roots(args.ca_cert.as_deref())? {
        options = options.tls_roots(&roots);
    }
    if let Some(unknown) = args.unknown_user {
        options = options.unknown_user(unknown);
    }
    let report = check_endpoint(&options).await.map_err(|e| match e {
        // The endpoint's fault, not the command line's: said once, exit 1.
        CheckError::Unreachable { .. } => CommandError::Failed(e.to_string()),
        _ => CommandError::Usage(e.to_string()),
    })?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    if report.passed() {
        Ok(())
    } else {
        Err(CommandError::Failed(String::new()))
    }
}
