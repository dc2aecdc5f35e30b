//! Conformance check of a Pull endpoint: act as Livefyre and report, case by case with
//! timings, whether the endpoint does what docs/protocol.md §6 asks.
//!
//! Every bad token (none, empty, repeated, bad signature, another network, a user's
//! token, expired) must get 403 with an empty body; a valid pull must get 200,
//! `application/json`, a valid profile with the requested id and, if present, a valid
//! `X-Profile-Signature`; HEAD must answer like GET without a body; an unknown user
//! must get 404. A case slower than the timeout fails.
//!
//! Each case has a [`Severity`]: a *conformance* case checks what Livefyre required and
//! fails the check; an *advised* case (`repeated_token`, `head`, `unknown_user`) checks
//! pingpull's own stricter choices (docs/protocol.md §6), so an endpoint that does not
//! meet it gets a warning and still passes, unless [`CheckOptions::strict`] is set.
//!
//! ```no_run
//! use std::time::Duration;
//! use pingpull::Network;
//! use pingpull::check::{CheckOptions, check_endpoint};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! let options = CheckOptions::new(network, "http://127.0.0.1:3000/livefyre/pull?id={id}", "u1")
//!     .unknown_user("no-such-user")
//!     .timeout(Duration::from_secs(5));
//! let report = check_endpoint(&options).await?;
//! print!("{report}");
//! assert!(report.passed());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::clock::{TIMEOUT_RANGE, TIMEOUT_RANGE_TEXT, unix_whole_seconds};
#[cfg(feature = "rustls")]
use crate::http::TlsRoots;
use crate::http::{FetchError, Fetched, HttpClient, Proxy, host_and_port};
use crate::percent;

use crate::profile::{read_tolerant, read_unservable, verify_signature_headers};
use crate::template::{PullUrlTemplate, TemplateError};
use crate::token::{self, Claims};
use crate::{Network, user_id};

mod report;

pub use report::{CaseResult, CheckReport, Severity, Verdict};

/// Bodies longer than this are not read further.
const MAX_BODY: usize = 1024 * 1024;

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    network: Network,
    template: String,
    user: String,
    unknown_user: Option<String>,
    timeout: Duration,
    strict: bool,
    proxy: Option<Proxy>,
    #[cfg(feature = "rustls")]
    tls_roots: Option<TlsRoots>,
}

impl CheckOptions {
    /// Check the endpoint at `template` (as registered with Livefyre), pulling `user`
    /// (who must exist), with tokens of `network`.
    pub fn new(network: Network, template: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            network,
            template: template.into(),
            user: user.into(),
            unknown_user: None,
            timeout: Duration::from_secs(5),
            strict: false,
            proxy: None,
            #[cfg(feature = "rustls")]
            tls_roots: None,
        }
    }

    /// Also check that this user, who must not exist, gets 404.
    pub fn unknown_user(mut self, user: impl Into<String>) -> Self {
        self.unknown_user = Some(user.into());
        self
    }

    /// A case whose answer takes longer than `timeout` fails (default 5 s): between 1 ms
    /// and 1 hour, or the check fails with [`CheckError::OutOfRange`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether an advised case the endpoint does not meet fails the check (`true`) or
    /// is only a warning (`false`, the default). See [`Severity`].
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Reaches the endpoint through a forward proxy where `proxy` says so: one proxy URL
    /// ([`Proxy::new`]), or what `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` say
    /// ([`Proxy::from_env`]). Default: directly, whatever the environment says.
    pub fn proxy(mut self, proxy: &Proxy) -> Self {
        self.proxy = Some(proxy.clone());
        self
    }

    /// An https endpoint is trusted with `roots` (a private CA, the platform's store)
    /// instead of Mozilla's roots alone.
    #[cfg(feature = "rustls")]
    pub fn tls_roots(mut self, roots: &TlsRoots) -> Self {
        self.tls_roots = Some(roots.clone());
        self
    }

    /// The client the cases go through: the proxy, and the roots, as configured.
    fn client(&self) -> HttpClient {
        #[cfg(feature = "rustls")]
        if let Some(roots) = &self.tls_roots {
            return HttpClient::trusting(roots, self.proxy.clone());
        }
        HttpClient::through(self.proxy.clone())
    }
}

/// Why a check could not run at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// The template is not an absolute http(s) URL with `{id}`.
    Template(TemplateError),
    /// A user id to pull is not a valid user id.
    UserId(String),
    /// The first case got no HTTP answer at all (refused, reset, DNS, TLS, or nothing
    /// within the timeout), so no case could be judged.
    Unreachable {
        /// `host:port` of the endpoint.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting is out of range.
    OutOfRange {
        /// The method that took it, e.g. `timeout`.
        setting: &'static str,
        /// What it accepts.
        expected: &'static str,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Template(error) => error.fmt(f),
            Self::UserId(message) => f.write_str(message),
            Self::Unreachable { address, reason } => write!(
                f,
                "nothing answers at {address}: {reason}; check that the endpoint is running and listening there, and that the template's scheme, host and port are right"
            ),
            Self::OutOfRange { setting, expected } => write!(f, "`{setting}` must be {expected}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// Runs every case against the endpoint.
///
/// # Errors
///
/// [`CheckError`] if the template or a user id is unusable, or if the first case gets no
/// HTTP answer at all ([`CheckError::Unreachable`]); an endpoint that answers but
/// misbehaves is reported in the [`CheckReport`], not as an error.
pub async fn check_endpoint(options: &CheckOptions) -> Result<CheckReport, CheckError> {
    let template = usable_template(options)?;
    let tokens = Tokens::new(&options.network, &options.user);
    let cases = cases(&template, options, &tokens);
    Ok(CheckReport {
        template: template.as_str().to_owned(),
        strict: options.strict,
        cases: run(options, cases).await?,
    })
}

/// Pulls the options' user once, as Livefyre would after a ping: the `valid_pull` case
/// alone, with a system token of the network (what `pingpull register --check-user` runs).
///
/// # Errors
///
/// As [`check_endpoint`]: [`CheckError::Unreachable`] if nothing answers; an endpoint that
/// answers wrongly is reported in the [`CaseResult`].
pub async fn pull_once(options: &CheckOptions) -> Result<CaseResult, CheckError> {
    let template = usable_template(options)?;
    let tokens = Tokens::new(&options.network, &options.user);
    let valid_url = template.url_for(&options.user, &tokens.valid);
    let mut cases = pull_cases(&template, options, &tokens, valid_url);
    cases.truncate(1);
    let mut results = run(options, cases).await?;
    Ok(results.remove(0))
}

/// The options' template, if absolute, once their user ids and timeout are checked.
fn usable_template(options: &CheckOptions) -> Result<PullUrlTemplate, CheckError> {
    if !TIMEOUT_RANGE.contains(&options.timeout) {
        return Err(CheckError::OutOfRange {
            setting: "timeout",
            expected: TIMEOUT_RANGE_TEXT,
        });
    }
    let template =
        PullUrlTemplate::parse_absolute(&options.template).map_err(CheckError::Template)?;
    for id in std::iter::once(&options.user).chain(options.unknown_user.as_ref()) {
        user_id::validate_for_path(id)
            .map_err(|e| CheckError::UserId(format!("user id `{id}`: {e}")))?;
    }
    Ok(template)
}

/// The tokens the cases send: a valid one, and one wrong in each way a token can be.
///
/// Each wrong one is marked as a conformance probe (`"pingpull_probe":true`, which
/// endpoints ignore): a Pull layer then logs its refusal at DEBUG and keeps its
/// once-a-minute warnings for real misconfigured pulls (docs/protocol.md §6). The valid
/// one is a plain system token, as Livefyre's are: if it is refused, that is a real
/// misconfiguration, and the endpoint says so.
struct Tokens {
    valid: String,
    wrong_key: String,
    other_network: String,
    user: String,
    expired: String,
}

impl Tokens {
    fn new(network: &Network, user: &str) -> Self {
        let now = unix_whole_seconds(SystemTime::now());
        let lifetime = i64::try_from(token::SYSTEM_TOKEN_LIFETIME.as_secs()).unwrap_or(0);
        let probe = |signer: &Network| {
            Claims::system(signer, now + lifetime)
                .conformance_probe()
                .sign(signer)
                .into_string()
        };
        Self {
            valid: token::system_token(network).into_string(),
            wrong_key: Network::new(network.name(), format!("{}-not-the-key", network.key()))
                .map(|n| probe(&n))
                .unwrap_or_default(),
            other_network: Network::new("another-network.fyre.co", network.key())
                .map(|n| probe(&n))
                .unwrap_or_default(),
            user: Claims::user(network, user, "Someone", now + 3600)
                .map(|c| c.conformance_probe().sign(network).into_string())
                .unwrap_or_default(),
            expired: Claims::system(network, now - 3600)
                .conformance_probe()
                .sign(network)
                .into_string(),
        }
    }
}

/// One case: the request to send and how to judge the answer.
struct Case {
    name: &'static str,
    expectation: &'static str,
    method: Method,
    url: String,
    judge: Judge,
    /// For an advised case, why it is advised rather than required; `None` for what
    /// Livefyre required.
    advice: Option<&'static str>,
}

/// Whether an answer conforms: what it was if so, what was wrong if not.
type Judge = fn(&Fetched, &Context<'_>) -> Result<String, String>;

/// What a judge may need besides the answer.
struct Context<'a> {
    network: &'a Network,
    user: &'a str,
    /// The body of the last GET's answer, which HEAD's must describe.
    get_body: Option<Bytes>,
}

impl Case {
    /// A GET that must be refused with 403 and an empty body.
    fn forbidden(name: &'static str, expectation: &'static str, url: String) -> Self {
        Self {
            name,
            expectation,
            method: Method::GET,
            url,
            judge: forbidden,
            advice: None,
        }
    }

    /// The case, advised rather than required, for the reason given.
    fn advised(mut self, why: &'static str) -> Self {
        self.advice = Some(why);
        self
    }
}

/// Why `repeated_token` is advised, not required.
const REPEATED_TOKEN_ADVICE: &str = "Livefyre sent one lftoken and the official libraries validate the first; refusing two is pingpull's stricter rule";
/// Why `head` is advised, not required.
const HEAD_ADVICE: &str =
    "Livefyre pulled with GET only; answering HEAD like GET is pingpull's choice";
/// Why `unknown_user` is advised, not required.
const UNKNOWN_USER_ADVICE: &str = "Livefyre left an unknown user's answer open; 404 is pingpull's choice, so a missing user is told from a fault";

/// Every case, in the order they run.
fn cases(template: &PullUrlTemplate, options: &CheckOptions, tokens: &Tokens) -> Vec<Case> {
    let base = template.url_for_id(&options.user);
    let join = if template.query().is_some() { '&' } else { '?' };
    let with_token = |token: &str| format!("{base}{join}lftoken={}", percent::encode(token));
    let valid_url = with_token(&tokens.valid);
    let mut cases = vec![
        Case::forbidden("no_token", "no lftoken: 403, empty body", base.clone()),
        Case::forbidden(
            "empty_token",
            "empty lftoken: 403, empty body",
            format!("{base}{join}lftoken="),
        ),
        Case::forbidden(
            "repeated_token",
            "two valid lftokens: 403, empty body",
            format!("{valid_url}&lftoken={}", percent::encode(&tokens.valid)),
        )
        .advised(REPEATED_TOKEN_ADVICE),
        Case::forbidden(
            "bad_signature",
            "token signed with another key: 403, empty body",
            with_token(&tokens.wrong_key),
        ),
        Case::forbidden(
            "wrong_network",
            "token for another network: 403, empty body",
            with_token(&tokens.other_network),
        ),
        Case::forbidden(
            "user_token",
            "a user's token, not a system token: 403, empty body",
            with_token(&tokens.user),
        ),
        Case::forbidden(
            "expired_token",
            "token expired an hour ago: 403, empty body",
            with_token(&tokens.expired),
        ),
    ];
    cases.extend(pull_cases(template, options, tokens, valid_url));
    cases
}

/// The cases a valid token passes: a pull, a HEAD, and (if given) an unknown user.
fn pull_cases(
    template: &PullUrlTemplate,
    options: &CheckOptions,
    tokens: &Tokens,
    valid_url: String,
) -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "valid_pull",
            expectation: "valid system token: 200, application/json, a valid profile with the requested id",
            method: Method::GET,
            url: valid_url.clone(),
            judge: valid_pull,
            advice: None,
        },
        Case {
            name: "head",
            expectation: "HEAD: like GET, without a body",
            method: Method::HEAD,
            url: valid_url,
            judge: head_like_get,
            advice: Some(HEAD_ADVICE),
        },
    ];
    if let Some(unknown) = &options.unknown_user {
        cases.push(Case {
            name: "unknown_user",
            expectation: "an unknown user: 404",
            method: Method::GET,
            url: template.url_for(unknown, &tokens.valid),
            judge: not_found,
            advice: Some(UNKNOWN_USER_ADVICE),
        });
    }
    cases
}

/// Sends each case in turn and judges its answer; stops if the first gets no answer.
async fn run(options: &CheckOptions, cases: Vec<Case>) -> Result<Vec<CaseResult>, CheckError> {
    let client = options.client();
    // A slow endpoint is reported, not waited on forever: allow a margin past the timeout.
    let limit = options.timeout + Duration::from_secs(1);
    let mut context = Context {
        network: &options.network,
        user: &options.user,
        get_body: None,
    };
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let answer = client
            .fetch(case.method.clone(), &case.url, limit, MAX_BODY)
            .await;
        if results.is_empty()
            && let Err(error) = &answer
        {
            // Nothing to judge, and every other case would say the same.
            return Err(unreachable(&case.url, error, limit));
        }
        results.push(judge(&case, &answer, options, &context));
        if case.method == Method::GET {
            context.get_body = answer.ok().map(|a| a.body);
        }
    }
    Ok(results)
}

/// The error for an endpoint at `url` that gave no answer.
fn unreachable(url: &str, error: &FetchError, limit: Duration) -> CheckError {
    let reason = match error {
        FetchError::Timeout => format!("no answer within {} ms", limit.as_millis()),
        FetchError::Failed(message) => message.clone(),
        FetchError::TooLarge => error.to_string(),
    };
    CheckError::Unreachable {
        address: url
            .parse::<http::Uri>()
            .map_or_else(|_| url.to_owned(), |uri| host_and_port(&uri)),
        reason,
    }
}

fn forbidden(answer: &Fetched, _: &Context<'_>) -> Result<String, String> {
    expect_status(answer, StatusCode::FORBIDDEN)?;
    if !answer.body.is_empty() {
        return Err(format!(
            "403 with a {}-byte body (must be empty)",
            answer.body.len()
        ));
    }
    Ok("403, empty body".to_owned())
}

fn valid_pull(answer: &Fetched, context: &Context<'_>) -> Result<String, String> {
    if answer.status == StatusCode::FORBIDDEN {
        return Err("answered 403, expected 200: the endpoint refused a valid system token of this network, so its network key (or network name) probably differs from this one".to_owned());
    }
    expect_status(answer, StatusCode::OK)?;
    let content_type = answer
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "Content-Type is `{content_type}`, not application/json"
        ));
    }
    let profile = read_tolerant(&answer.body, Some(context.user)).map_err(|e| e.to_string())?;
    profile.validate().map_err(|e| e.to_string())?;
    // During a key rotation the endpoint lists a signature per key: one that verifies
    // with the key held here is enough.
    let signature = match verify_signature_headers(context.network, &answer.headers, &answer.body) {
        None => "no signature header",
        Some(verified) => {
            verified.map_err(|e| e.to_string())?;
            "signature verified"
        }
    };
    Ok(format!(
        "200, profile of `{}` ({} bytes), {signature}",
        profile.display_name,
        answer.body.len()
    ))
}

fn head_like_get(answer: &Fetched, context: &Context<'_>) -> Result<String, String> {
    expect_status(answer, StatusCode::OK)?;
    if !answer.body.is_empty() {
        return Err(format!("HEAD answered a {}-byte body", answer.body.len()));
    }
    if let (Some(length), Some(body)) = (
        answer.headers.get(http::header::CONTENT_LENGTH),
        &context.get_body,
    ) && length.to_str().ok().and_then(|l| l.parse::<usize>().ok()) != Some(body.len())
    {
        return Err("Content-Length differs from the GET body's length".to_owned());
    }
    Ok("200, no body".to_owned())
}

fn not_found(answer: &Fetched, _: &Context<'_>) -> Result<String, String> {
    expect_status(answer, StatusCode::NOT_FOUND).map(|()| "404".to_owned())
}

/// The status expected, or what was answered instead: with a 500's reason when the
/// endpoint gives one (docs/protocol.md §6).
fn expect_status(answer: &Fetched, expected: StatusCode) -> Result<(), String> {
    if answer.status == expected {
        return Ok(());
    }
    let mut wrong = format!(
        "answered {}, expected {}",
        answer.status.as_u16(),
        expected.as_u16()
    );
    if answer.status == StatusCode::INTERNAL_SERVER_ERROR
        && let Some(why) = read_unservable(&answer.body)
    {
        wrong.push_str(": the endpoint could not serve the profile: ");
        wrong.push_str(&why);
    }
    Err(wrong)
}

/// The outcome of a case: its judge's verdict, unless the answer failed or came late.
fn judge(
    case: &Case,
    answer: &Result<Fetched, FetchError>,
    options: &CheckOptions,
    context: &Context<'_>,
) -> CaseResult {
    let timeout = options.timeout;
    let (passed, detail, elapsed) = match answer {
        Err(FetchError::Timeout) => (
            false,
            format!("no answer within {} ms", timeout.as_millis()),
            timeout,
        ),
        Err(error) => (false, error.to_string(), Duration::ZERO),
        Ok(answer) if answer.elapsed > timeout => (
            false,
            format!(
                "answered {} but took longer than {} ms",
                answer.status.as_u16(),
                timeout.as_millis()
            ),
            answer.elapsed,
        ),
        Ok(answer) => match (case.judge)(answer, context) {
            Ok(detail) => (true, detail, answer.elapsed),
            Err(detail) => (false, detail, answer.elapsed),
        },
    };
    let severity = if case.advice.is_some() {
        Severity::Advised
    } else {
        Severity::Conformance
    };
    let outcome = match (passed, severity) {
        (true, _) => Verdict::Pass,
        (false, Severity::Advised) if !options.strict => Verdict::Warn,
        (false, _) => Verdict::Fail,
    };
    CaseResult {
        name: case.name,
        expectation: case.expectation,
        severity,
        advice: case.advice,
        passed,
        outcome,
        detail,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }
}
