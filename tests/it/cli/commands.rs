//! The `pingpull` command line, run as a process, with its exit codes.

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Command, Output, Stdio};

use axum::Router;
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile, token};
use tokio::net::TcpListener;

const V3: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.MZSBbaslZqmBM6DwdvLfU_lMAEuXYRBRoZaw5F72kUI";
const V5: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoidXNlci00Mi54X3kiLCJkaXNwbGF5X25hbWUiOiJCb2IgRG9sZSIsImV4cGlyZXMiOjE3MDAwMDM2MDB9._2QQhQo9LiZLGTAHibcR_eCjVe_9gvxlkmM1RHKjG1U";

/// The binary with an empty environment: no `RUST_LOG`, `NO_COLOR` or key of the
/// developer's leaks in.
pub(crate) fn bare() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pingpull"));
    command.env_clear().stdin(Stdio::null());
    command
}

pub(crate) fn pingpull() -> Command {
    let mut command = bare();
    command
        .env("PINGPULL_NETWORK", "example.fyre.co")
        .env("PINGPULL_KEY", "testkeytest");
    command
}

pub(crate) fn run(args: &[&str]) -> Output {
    pingpull().args(args).output().unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An emulator process, killed when dropped.
pub(crate) struct EmulatorProcess {
    child: Child,
    pub(crate) base_url: String,
}

impl EmulatorProcess {
    pub(crate) fn start(extra: &[&str]) -> Self {
        let mut command = pingpull();
        command.stderr(Stdio::null());
        Self::spawn(command, extra)
    }

    /// Runs `pingpull emulator` through `command`, whose environment and stderr the
    /// caller chose, and waits for the base URL it prints first.
    fn spawn(mut command: Command, extra: &[&str]) -> Self {
        let mut child = command
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Self {
            child,
            base_url: line.trim().to_owned(),
        }
    }

    /// Stops the emulator and returns what it wrote to stderr (spawned with it piped).
    fn stop_and_read_stderr(mut self) -> String {
        self.child.kill().unwrap();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

impl EmulatorProcess {
    /// The body of `GET path` on the emulator's inspection API, which must answer 2xx or
    /// 404 (an unknown or not yet pulled profile).
    pub(crate) fn get(&self, path: &str) -> String {
        use std::io::Write as _;
        let authority = self.base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap();
        assert!(
            status.starts_with('2') || status == "404",
            "GET {path}: {head}"
        );
        body.to_owned()
    }

    /// The users of the `ping` events, in order, each with the status it was answered.
    fn pings(&self) -> Vec<(String, u64)> {
        let events: serde_json::Value = serde_json::from_str(&self.get("/events")).unwrap();
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"] == "ping")
            .map(|event| {
                (
                    event["user_id"].as_str().unwrap().to_owned(),
                    event["status"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn token_commands_print_the_protocol_vectors() {
    let system = run(&["token", "system", "--expires-at", "1700086400"]);
    assert_eq!(
        (system.status.code(), stdout(&system).trim()),
        (Some(0), V3)
    );
    let user = run(&[
        "token",
        "user",
        "--user",
        "user-42.x_y",
        "--display-name",
        "Bob Dole",
        "--expires-at",
        "1700003600",
    ]);
    assert_eq!((user.status.code(), stdout(&user).trim()), (Some(0), V5));
    let flags = bare()
        .args([
            "--network",
            "example.fyre.co",
            "--key",
            "testkeytest",
            "token",
            "system",
            "--expires-at",
            "1700086400",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&flags).trim(), V3);
}

#[test]
fn token_verify_exits_0_with_claims_or_1_with_the_reason() {
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let fresh = token::system_token(&network);
    let ok = run(&["token", "verify", fresh.as_str()]);
    assert_eq!(ok.status.code(), Some(0));
    let claims: serde_json::Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(
        (claims["user_id"].as_str(), claims["domain"].as_str()),
        (Some("system"), Some("example.fyre.co"))
    );

    let expired = run(&["token", "verify", V3]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(stdout(&expired).contains("expired"), "{}", stdout(&expired));
    let user = run(&["token", "verify", V5]);
    assert_eq!(user.status.code(), Some(1));
    assert!(stdout(&user).contains("not a system token"));
    assert_eq!(run(&["token", "verify", "garbage"]).status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let no_network = bare().args(["token", "system"]).output().unwrap();
    assert_eq!(no_network.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_network.stderr).contains("PINGPULL_NETWORK"));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        run(&["token", "user", "--user", "a b", "--display-name", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["ping", "--base-url", "http://127.0.0.1:9"])
            .status
            .code(),
        Some(2)
    );
    let bad_network = pingpull()
        .env("PINGPULL_NETWORK", "example.com")
        .args(["token", "system"])
        .output()
        .unwrap();
    assert_eq!(bad_network.status.code(), Some(2));
}

/// Every command's help.
const HELP_COMMANDS: [&[&str]; 8] = [
    &["quickstart", "--help"],
    &["emulator", "--help"],
    &["token", "system", "--help"],
    &["token", "user", "--help"],
    &["token", "verify", "--help"],
    &["ping", "--help"],
    &["register", "--help"],
    &["check", "--help"],
];

#[test]
fn every_command_has_help_with_an_example() {
    for command in HELP_COMMANDS {
        let output = run(command);
        assert_eq!(output.status.code(), Some(0), "{command:?}");
        assert!(
            stdout(&output).contains("Example"),
            "{command:?}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn every_command_says_its_exit_status() {
    for command in HELP_COMMANDS {
        let help = stdout(&run(command));
        // The paragraph, which clap may have wrapped.
        let (_, from) = help
            .split_once("\nExit status: 0 ")
            .unwrap_or_else(|| panic!("{command:?}: no exit status:\n{help}"));
        let paragraph = from.split("\n\n").next().unwrap_or_default();
        let status = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        // Usage errors are 2 for every command that reads anything from its flags.
        assert!(
            status.contains(" 2 usage error") || command[0] == "quickstart",
            "{command:?}: {status}"
        );
    }
}

#[test]
fn help_shows_the_global_options_apart_from_the_commands_own() {
    for command in HELP_COMMANDS {
        let help = stdout(&run(command));
        let (own, global) = help
            .split_once("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{command:?}: no global options heading:\n{help}"));
        for flag in ["--network", "--key", "--previous-keys", "--verbose"] {
            assert!(
                !own.contains(flag),
                "{command:?}: {flag} among its own:\n{help}"
            );
            assert!(
                global.contains(flag),
                "{command:?}: {flag} missing:\n{help}"
            );
        }
        assert!(own.contains("--help"), "{command:?}: {help}");
    }
}

#[test]
fn check_refuses_a_timeout_that_is_not_above_zero() {
    for timeout in ["0", "-1", "nan"] {
        let output = run(&[
            "check",
            "http://127.0.0.1:9/pull?id={id}",
            "--user",
            "u1",
            "--timeout",
            timeout,
        ]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{timeout}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{timeout}: no case ran");
        let error = stderr(&output);
        assert!(
            error.contains("--timeout") && error.contains("expected a positive number of seconds"),
            "{timeout}: {error}"
        );
    }
}

/// Whether `line` can begin a command in a help example: `pingpull ...`, variables set
/// before it (`NAME=value ...`), or a pipeline into it.
fn starts_a_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    let sets_a_variable = first.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    });
    first == "pingpull" || sets_a_variable || line.contains(" | pingpull ")
}

#[test]
fn help_examples_paste_into_a_shell() {
    for command in HELP_COMMANDS {
        let help = stdout(&run(command));
        let examples = help
            .split_once("\nExample")
            .map(|(_, examples)| examples)
            .unwrap_or_default();
        let mut continued = false;
        // The examples run up to the first blank line; prose may follow.
        let lines = examples
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty());
        for line in lines {
            // A line that neither follows a `\` nor begins a command is a value that
            // clap wrapped, or a break without `\`: pasted, it runs on its own.
            assert!(
                continued || starts_a_command(line.trim()),
                "{command:?}: `{line}` does not paste:\n{examples}"
            );
            assert_eq!(
                line.matches('\'').count() % 2,
                0,
                "{command:?}: a quote spans lines in `{line}`"
            );
            continued = line.ends_with('\\');
        }
        assert!(!continued, "{command:?}: the last line ends with `\\`");
    }
}

#[test]
fn ping_and_register_against_an_emulator_process() {
    let emulator = EmulatorProcess::start(&[]);
    let pinged = run(&["ping", "--base-url", &emulator.base_url, "u1", "u2", "u1"]);
    assert_eq!(pinged.status.code(), Some(0), "{}", stdout(&pinged));
    assert!(
        stdout(&pinged).contains("delivered 2, failed 0"),
        "{}",
        stdout(&pinged)
    );
    // The emulator answered 200 to pings for both users. The second u1 coalesces into
    // the first if that is still waiting, or follows it if it was already in flight:
    // one or two pings for u1, never none.
    let pings = emulator.pings();
    assert!(pings.iter().all(|(_, status)| *status == 200), "{pings:?}");
    let count = |user: &str| pings.iter().filter(|(u, _)| u == user).count();
    assert!((1..=2).contains(&count("u1")), "{pings:?}");
    assert_eq!(count("u2"), 1, "{pings:?}");
    let u1: serde_json::Value = serde_json::from_str(&emulator.get("/profiles/u1")).unwrap();
    assert_eq!(u1["pings"], count("u1"), "{u1}");
    assert!(emulator.get("/studio/users").contains("none registered"));

    // Pulls after the registration go to a port held bound, where nothing listens.
    let (_socket, pull_addr) = crate::emulator::check::refusing_port();
    let pull_url = format!("http://{pull_addr}/pull?id={{id}}");
    let registered = run(&["register", "--base-url", &emulator.base_url, &pull_url]);
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
    // The emulator stored the URL: its users page shows the registered Pull URL.
    let page = emulator.get("/studio/users");
    assert!(
        page.contains(&format!("Pull URL <code>{pull_url}</code>")),
        "{page}"
    );
    let no_id = run(&[
        "register",
        "--base-url",
        &emulator.base_url,
        "http://127.0.0.1:9/pull",
    ]);
    assert_eq!(no_id.status.code(), Some(2));
    let path = run(&[
        "register",
        "--base-url",
        &emulator.base_url,
        "/livefyre/pull?id={id}",
    ]);
    assert_eq!(path.status.code(), Some(2));
    assert_eq!(
        stderr(&path),
        "pingpull: `/livefyre/pull?id={id}` is a path; Livefyre needs an absolute http(s) URL to pull from, such as https://www.example.com/livefyre/pull?id={id}\n"
    );

    let from_stdin = pingpull()
        .args(["ping", "--base-url", &emulator.base_url, "--from-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"u3\nu4\n\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(from_stdin.status.code(), Some(0));
    assert!(stdout(&from_stdin).contains("delivered 2, failed 0"));
    let pings = emulator.pings();
    // Every user pinged (u1 once or twice, see above), and no other.
    let mut users: Vec<&str> = pings.iter().map(|(user, _)| user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users, ["u1", "u2", "u3", "u4"]);
    // The rejected registrations left the first one in place.
    assert!(
        emulator
            .get("/studio/users")
            .contains(&format!("Pull URL <code>{pull_url}</code>"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exits_0_for_the_layer_and_1_for_a_broken_endpoint() {
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let app = Router::new().layer(PullLayer::new("/pull?id={id}", network, users).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let good = format!("{base}/pull?id={{id}}");
    let output = tokio::task::spawn_blocking(move || {
        run(&[
            "check",
            &good,
            "--user",
            "u1",
            "--unknown-user",
            "nobody",
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["cases"].as_array().unwrap().len(), 10);

    // Another network's key: every valid pull is now refused, and the report says where.
    let broken = format!("{base}/pull?id={{id}}");
    let output = tokio::task::spawn_blocking(move || {
        pingpull()
            .env("PINGPULL_KEY", "another-key")
            .args(["check", &broken, "--user", "u1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("FAIL valid_pull"),
        "{}",
        stdout(&output)
    );
}

/// The lines of `text` logged at `level` by the stderr subscriber.
/// Runs `pingpull` on a blocking thread, so the test's runtime keeps serving.
async fn check_cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_an_endpoint_that_takes_the_first_of_two_tokens() {
    let template = crate::emulator::check::serve_flawed("first_token").await;
    let args = |extra: &[&str]| {
        let mut args = vec![
            "check".to_owned(),
            template.clone(),
            "--user".into(),
            "u1".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let output = check_cli(args(&[])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("WARN repeated_token"), "{text}");
    assert!(text.contains("     advised, not required: "), "{text}");
    assert!(
        text.ends_with(
            "8 of 9 cases passed, 1 warning: advised, not required (strict mode fails on it)\n"
        ),
        "{text}"
    );

    let json = check_cli(args(&["--json"])).await;
    assert_eq!(json.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["cases"][2]["outcome"], "warn");

    let strict = check_cli(args(&["--strict"])).await;
    assert_eq!(strict.status.code(), Some(1), "{}", stdout(&strict));
    assert!(stdout(&strict).contains("FAIL repeated_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exits_1_for_each_broken_endpoint() {
    for flaw in [
        "body_on_403",
        "no_token_check",
        "missing_display_name",
        "wrong_id",
        "slow",
    ] {
        let template = crate::emulator::check::serve_flawed(flaw).await;
        let output = check_cli(vec![
            "check".into(),
            template,
            "--user".into(),
            "u1".into(),
            "--timeout".into(),
            "0.5".into(),
        ])
        .await;
        assert_eq!(output.status.code(), Some(1), "{flaw}: {}", stdout(&output));
        assert!(
            stdout(&output).contains("FAIL "),
            "{flaw}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn check_says_once_that_nothing_answers() {
    let (_socket, addr) = crate::emulator::check::refusing_port();
    let output = run(&[
        "check",
        &format!("http://{addr}/pull?id={{id}}"),
        "--user",
        "u1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert_eq!(err.matches("nothing answers at").count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("pingpull: nothing answers at {addr}: ")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_hints_that_a_404_or_405_base_url_is_not_livefyre() {
    // A site's own server: `/` takes GET only (405 to a POST), other paths are 404.
    let site = Router::new().route("/", axum::routing::get(|| async { "home" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, site).await });
    for (base_url, status) in [
        (base.clone(), "405 Method Not Allowed"),
        (format!("{base}/no-such-prefix"), "404 Not Found"),
    ] {
        let args = vec![
            "register".to_owned(),
            "--base-url".into(),
            base_url.clone(),
            "https://www.example.com/livefyre/pull?id={id}".into(),
        ];
        let output = check_cli(args).await;
        assert_eq!(output.status.code(), Some(1));
        // The command's own message, once: the library's WARN for it (for a server's
        // log) is not shown without -v.
        let expected = format!(
            "pingpull: registration failed: the base URL answered {status}: it is probably not Livefyre's API (or the emulator's) but another server, such as the site itself\n\
                 check --base-url (it was {base_url}): Livefyre's API is https://example.quill.fyre.co, and `pingpull emulator` prints the emulator's\n"
        );
        assert_eq!(stderr(&output), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_says_a_refusal_once_with_what_to_check() {
    let livefyre = crate::support::fake_livefyre::FakeLivefyre::with_script(|_| {
        crate::support::fake_livefyre::Reply::status(400)
    })
    .await;
    let output = check_cli(vec![
        "register".into(),
        "--base-url".into(),
        livefyre.base_url(),
        "https://www.example.com/livefyre/pull?id={id}".into(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "pingpull: registration failed: Livefyre answered 400 Bad Request\n\
         check that the template is an absolute http(s) URL with `{id}` once, as Livefyre will pull it\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_https_to_a_plain_http_server_says_to_try_http() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, Router::new()).await });
    let output = check_cli(vec![
        "register".into(),
        "--base-url".into(),
        format!("https://{addr}"),
        "https://www.example.com/livefyre/pull?id={id}".into(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    // Said once, with the hint the library's WARN line (not shown without -v) gave.
    assert_eq!(
        stderr(&output),
        format!(
            "pingpull: registration failed: connection failed: TLS handshake failed: the server at {addr} does not speak https (try http://)\n\
             check --base-url (it was https://{addr}) and that Livefyre (or the emulator) is reachable from here\n"
        ),
    );
}

fn log_lines<'a>(text: &'a str, level: &str) -> Vec<&'a str> {
    let marker = format!(" {level} ");
    text.lines().filter(|line| line.contains(&marker)).collect()
}

#[test]
fn logs_warnings_by_default_and_more_detail_with_each_v() {
    let emulator = EmulatorProcess::start(&["--fail-rate", "1.0"]);
    let ping = |verbose: &[&str]| {
        pingpull()
            .args(verbose)
            .args([
                "ping",
                "--base-url",
                &emulator.base_url,
                "--deadline",
                "0.5",
            ])
            .arg("u1")
            .output()
            .unwrap()
    };
    let quiet = ping(&[]);
    assert_eq!(quiet.status.code(), Some(1));
    // What an operator must act on: the user not delivered.
    assert!(
        !log_lines(&stderr(&quiet), "WARN").is_empty(),
        "{}",
        stderr(&quiet)
    );
    assert!(
        log_lines(&stderr(&quiet), "INFO").is_empty(),
        "{}",
        stderr(&quiet)
    );
    assert!(
        log_lines(&stderr(&quiet), "DEBUG").is_empty(),
        "{}",
        stderr(&quiet)
    );

    let verbose = ping(&["-vv"]);
    assert_eq!(verbose.status.code(), Some(1));
    let log = stderr(&verbose);
    assert!(!log_lines(&log, "INFO").is_empty(), "{log}");
    assert!(
        log_lines(&log, "DEBUG")
            .iter()
            .any(|line| line.contains("pingpull::cli: network configured")),
        "{log}"
    );
    assert!(log_lines(&log, "TRACE").is_empty(), "{log}");
    // Scripts read stdout: the same summary, no log lines.
    assert_eq!(
        stdout(&verbose).lines().next(),
        stdout(&quiet).lines().next()
    );
    assert!(!stdout(&verbose).contains("DEBUG"), "{}", stdout(&verbose));
    // Through a pipe, no colour codes.
    for output in [&quiet, &verbose] {
        assert!(!output.stderr.contains(&0x1b), "{}", stderr(output));
    }
}

#[test]
fn the_emulator_logs_at_info_by_default() {
    let mut command = pingpull();
    command.stderr(Stdio::piped());
    let emulator = EmulatorProcess::spawn(command, &[]);
    // The base URL is printed once it listens, so its INFO line is already written.
    let log = emulator.stop_and_read_stderr();
    assert!(
        log_lines(&log, "INFO")
            .iter()
            .any(|line| line.contains("emulator listening")),
        "{log}"
    );
    assert!(log_lines(&log, "DEBUG").is_empty(), "{log}");
    assert!(!log.contains('\x1b'), "{log}");
}

#[test]
fn an_invalid_rust_log_is_reported_and_the_command_still_runs() {
    let output = pingpull()
        .env("RUST_LOG", "pingpull=loud")
        .args(["token", "system", "--expires-at", "1700086400"])
        .output()
        .unwrap();
    assert_eq!(
        (output.status.code(), stdout(&output).trim()),
        (Some(0), V3)
    );
    assert!(
        stderr(&output).starts_with("pingpull: RUST_LOG ignored ("),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).trim_end().ends_with("logging at warn"));
}

const NEW_KEY: &str = "new-key-9a2e";
const OLD_KEY: &str = "old-key-4f1c";
const THIRD_KEY: &str = "third-key-77b0";

/// The binary for a network in the middle of a key rotation: `NEW_KEY` current, `OLD_KEY`
/// still accepted (with an empty item, which is ignored).
fn rotating() -> Command {
    let mut command = pingpull();
    command
        .env("PINGPULL_KEY", NEW_KEY)
        .env("PINGPULL_PREVIOUS_KEYS", format!("{OLD_KEY},"));
    command
}

fn system_token_of(key: &str) -> String {
    let network = Network::new("example.fyre.co", key).unwrap();
    token::system_token(&network).into_string()
}

fn assert_no_key_in(output: &Output) {
    for text in [stdout(output), stderr(output)] {
        for key in [NEW_KEY, OLD_KEY, THIRD_KEY] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }
}

#[test]
fn token_verify_accepts_a_previous_key_and_says_which_key_verified() {
    let old = rotating()
        .args(["-vvv", "token", "verify", &system_token_of(OLD_KEY)])
        .output()
        .unwrap();
    assert_eq!(old.status.code(), Some(0), "{}", stdout(&old));
    // stdout stays the claims alone, for scripts.
    let claims: serde_json::Value = serde_json::from_str(&stdout(&old)).unwrap();
    assert_eq!(claims["user_id"].as_str(), Some("system"));
    assert!(
        stderr(&old).lines().any(|l| l.starts_with("key: previous")),
        "{}",
        stderr(&old)
    );
    assert_no_key_in(&old);

    let new = rotating()
        .args(["token", "verify", &system_token_of(NEW_KEY)])
        .output()
        .unwrap();
    assert_eq!(new.status.code(), Some(0));
    assert_eq!(stderr(&new).trim(), "key: current");

    let third = rotating()
        .args(["-vvv", "token", "verify", &system_token_of(THIRD_KEY)])
        .output()
        .unwrap();
    assert_eq!(third.status.code(), Some(1));
    assert!(
        stdout(&third).starts_with("invalid: "),
        "{}",
        stdout(&third)
    );
    assert!(!stderr(&third).contains("key: "), "{}", stderr(&third));
    assert_no_key_in(&third);
}

#[test]
fn previous_keys_come_from_the_flag_too_and_never_show_in_help() {
    let flag = pingpull()
        .env("PINGPULL_KEY", NEW_KEY)
        .args(["--previous-keys", &format!("{THIRD_KEY}, {OLD_KEY}")])
        .args(["token", "verify", &system_token_of(OLD_KEY)])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(0), "{}", stdout(&flag));
    assert!(stderr(&flag).starts_with("key: previous"));

    let help = rotating()
        .args(["token", "verify", "--help"])
        .output()
        .unwrap();
    assert!(stdout(&help).contains("PINGPULL_PREVIOUS_KEYS"));
    assert_no_key_in(&help);
}

#[test]
fn the_emulator_accepts_pings_signed_with_a_previous_key() {
    let mut command = rotating();
    command.stderr(Stdio::piped());
    let emulator = EmulatorProcess::spawn(command, &["-v"]);
    let ping_with = |key: &str| {
        pingpull()
            .env("PINGPULL_KEY", key)
            .args(["ping", "--base-url", &emulator.base_url, "u1"])
            .output()
            .unwrap()
    };
    let old = ping_with(OLD_KEY);
    assert_eq!(old.status.code(), Some(0), "{}", stdout(&old));
    assert!(
        stdout(&old).contains("delivered 1, failed 0"),
        "{}",
        stdout(&old)
    );

    let third = ping_with(THIRD_KEY);
    assert_eq!(third.status.code(), Some(1));
    assert!(
        stderr(&third).contains("Livefyre answered 403"),
        "{}",
        stderr(&third)
    );

    let log = emulator.stop_and_read_stderr();
    assert!(log.contains("key rotation"), "{log}");
    for key in [NEW_KEY, OLD_KEY, THIRD_KEY] {
        assert!(!log.contains(key), "{key} in {log}");
    }
}

#[test]
fn keys_starting_with_a_dash_are_taken_as_keys() {
    let dashed = "-dashed-key-5c3d";
    let token = system_token_of(dashed);
    let output = bare()
        .args(["--network", "example.fyre.co", "--key", "k"])
        .args(["--previous-keys", dashed, "token", "verify", &token])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("key: previous"));
    let output = bare()
        .args(["--network", "example.fyre.co", "--key", dashed])
        .args(["token", "verify", &token])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
