//! `pingpull ping` run as a process: retries that fit the deadline, every event printed,
//! the limits' flags, the JSON summary and the deadline named.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::{Output, Stdio};
use std::time::Duration;

use super::commands::{EmulatorProcess, pingpull, run, stderr, stdout};
use crate::support::fake_livefyre::{FakeLivefyre, Received, Reply};

/// Failures in a row after which the flaky side answers 200 to a user: the schedule
/// must fit them in the deadline, the library's default one (1 s, 5 s, 30 s...) did not.
const MAX_FAILURES_IN_A_ROW: usize = 5;

/// Runs `pingpull ping` with `args`, the user ids on stdin, off the test's runtime.
pub(crate) async fn ping(args: &[&str], users: &[String]) -> Output {
    let mut command = pingpull();
    command
        .arg("ping")
        .args(args)
        .args(["--from-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = users.join("\n");
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn users(count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("user-{n}")).collect()
}

/// A number in `0..1` fixed by the user and the request's rank for that user, so the
/// same users fail the same attempts whatever the order requests arrive in.
fn seeded_unit(user: &str, nth: usize) -> f64 {
    // FNV-1a, then splitmix64's finaliser.
    let mut x = user.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) ^ (nth as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1_u64 << 53) as f64
}

/// 30 % of pings answered 500 and 5 % 429 with `Retry-After: 1`, never more than
/// [`MAX_FAILURES_IN_A_ROW`] for one user.
fn flaky(received: &Received) -> Reply {
    let Some(user) = &received.user else {
        return Reply::status(200);
    };
    if received.nth_for_user > MAX_FAILURES_IN_A_ROW {
        return Reply::status(200);
    }
    match seeded_unit(user, received.nth_for_user) {
        unit if unit < 0.30 => Reply::status(500),
        unit if unit < 0.35 => Reply::status(429).retry_after("1"),
        _ => Reply::status(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_fit_the_deadline_so_every_flaky_user_is_delivered() {
    let livefyre = FakeLivefyre::with_script(flaky).await;
    let once = users(300);
    let twice: Vec<String> = once.iter().chain(&once).cloned().collect();
    let output = ping(
        &["--base-url", &livefyre.base_url(), "--deadline", "10"],
        &twice,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("delivered 300, failed 0"),
        "{}",
        stdout(&output)
    );
    // Some user failed its first three attempts: the default schedule would have
    // waited 1 + 5 + 30 s (less 20 % jitter at best) before its fourth, past 10 s.
    let slowest = once
        .iter()
        .map(|user| livefyre.pings_for(user).len())
        .max()
        .unwrap();
    assert!(slowest >= 4, "no user needed four attempts: {slowest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_is_printed_before_the_summary() {
    let emulator = EmulatorProcess::start(&[]);
    let users = users(5000);
    let output = ping(
        &["--base-url", &emulator.base_url, "--concurrency", "32"],
        &users,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let delivered: HashSet<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("delivered user-"))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    assert_eq!(delivered.len(), 5000);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("delivered user-"))
            .count(),
        5000
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("delivered 5000, failed 0"),
        "{}",
        lines.last().unwrap()
    );
    assert!(!stderr(&output).contains("missed"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_wait_their_turn_beyond_the_pending_bound_and_each_is_delivered() {
    let emulator = EmulatorProcess::start(&[]);
    let users = users(2000);
    let output = ping(
        &["--base-url", &emulator.base_url, "--max-pending", "50"],
        &users,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let delivered: HashSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("delivered user-"))
        .collect();
    assert_eq!(delivered.len(), 2000);
    assert!(
        text.ends_with(
            "delivered 2000, failed 0 (0 given up, 0 still pending; 2000 request(s) answered 2xx)\n"
        ),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_never_handed_over_before_the_deadline_are_named_with_it() {
    // Nothing answers for 30 s: 10 users reach the Pinger, the other 90 wait their turn
    // until the deadline.
    let slow =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_secs(30))).await;
    let output = ping(
        &[
            "--base-url",
            &slow.base_url(),
            "--deadline",
            "0.5",
            "--max-pending",
            "10",
            "--json",
        ],
        &users(100),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(
        (
            &summary["users"],
            &summary["undelivered"],
            &summary["failed_count"]
        ),
        (
            &serde_json::json!(100),
            &serde_json::json!(100),
            &serde_json::json!(100)
        )
    );
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 100);
    assert!(
        failed
            .iter()
            .all(|f| f["reason"] == "not delivered: deadline of 0.5 s reached"),
        "{summary}"
    );
    // Sorted by id.
    assert_eq!(failed[0]["user"], "user-1");
    assert_eq!(failed[1]["user"], "user-10");
    assert!(slow.received().len() <= 10, "{}", slow.received().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_stopped_by_the_deadline_are_named_with_it() {
    // Answers slower than the deadline: the users are in flight when it passes.
    let slow =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_secs(30))).await;
    let output = ping(
        &["--base-url", &slow.base_url(), "--deadline", "0.5"],
        &users(2),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("failed user-1 (not delivered: deadline of 0.5 s reached)"),
        "{text}"
    );
    assert!(
        text.contains("the deadline of 0.5 s stopped delivery"),
        "{text}"
    );

    // Failing every time: given up when the next retry would come after the deadline.
    let emulator = EmulatorProcess::start(&["--fail-rate", "1.0"]);
    let output = run(&[
        "ping",
        "--base-url",
        &emulator.base_url,
        "--deadline",
        "1",
        "u1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output)
            .contains("failed u1 (not delivered: deadline of 1 s reached; last attempt: HTTP 500)"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_summary_parses_after_the_per_user_lines() {
    let livefyre = FakeLivefyre::start().await;
    let output = ping(&["--base-url", &livefyre.base_url(), "--json"], &users(3)).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let (lines, last) = text.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(lines.lines().count(), 3, "{text}");
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["users"], 3);
    assert_eq!(summary["delivered"], 3);
    assert_eq!(summary["failed"], serde_json::json!([]));
    assert_eq!(summary["deadline_reached"], false);

    let slow =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_secs(30))).await;
    let output = ping(
        &[
            "--base-url",
            &slow.base_url(),
            "--json",
            "--deadline",
            "0.3",
        ],
        &users(1),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(summary["deadline_reached"], true);
    assert_eq!(summary["failed"][0]["user"], "user-1");
    assert_eq!(
        summary["failed"][0]["reason"],
        "not delivered: deadline of 0.3 s reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_rate_limit_are_obeyed() {
    let livefyre =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_millis(50))).await;
    let output = ping(
        &["--base-url", &livefyre.base_url(), "--concurrency", "2"],
        &users(12),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        livefyre.max_concurrent() <= 2,
        "{}",
        livefyre.max_concurrent()
    );

    let limited = FakeLivefyre::start().await;
    let output = ping(
        &["--base-url", &limited.base_url(), "--rate-limit", "10"],
        &users(5),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Five starts at 10 per second span four intervals of 100 ms; arrival times may
    // drift by scheduling on a busy machine, so a margin of one interval is left (an
    // unlimited run spans a few milliseconds). The exact spacing is checked in virtual
    // time by the Pinger's own tests.
    let at: Vec<_> = limited.received().iter().map(|r| r.at).collect();
    let span = *at.iter().max().unwrap() - *at.iter().min().unwrap();
    assert!(span >= Duration::from_millis(300), "{span:?}");
}

#[test]
fn bad_limits_are_usage_errors() {
    for bad in [
        ["--concurrency", "0"],
        ["--concurrency", "many"],
        ["--rate-limit", "0"],
        ["--rate-limit", "nan"],
        ["--rate-limit", "-3"],
        ["--deadline", "0"],
        ["--deadline", "inf"],
        ["--deadline", "1e30"],
        ["--max-pending", "0"],
    ] {
        // `--flag=value`: a negative number would otherwise be taken for a flag.
        let flag = format!("{}={}", bad[0], bad[1]);
        let output = run(&["ping", "--base-url", "http://127.0.0.1:9", &flag, "u1"]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(bad[0]),
            "{bad:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_negative_deadline_is_a_range_error_not_an_unknown_flag() {
    for bad in ["-1", "-0.5"] {
        let output = run(&[
            "ping",
            "--base-url",
            "http://127.0.0.1:9",
            "--deadline",
            bad,
            "u1",
        ]);
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr(&output));
        let error = stderr(&output);
        assert!(
            error.contains(&format!("invalid value '{bad}' for '--deadline"))
                && error.contains("expected a positive number of seconds"),
            "{bad}: {error}"
        );
        assert!(!error.contains("unexpected argument"), "{bad}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_that_is_not_livefyres_is_named() {
    // The site itself, say: it has no ping route and answers 404.
    let site = FakeLivefyre::with_script(|_| Reply::status(404)).await;
    let output = ping(&["--base-url", &site.base_url()], &users(2)).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("failed user-1 (refused: HTTP 404)"),
        "{}",
        stdout(&output)
    );
    let errors = stderr(&output);
    let hints: Vec<_> = errors
        .lines()
        .filter(|line| line.contains("it is probably not Livefyre's API"))
        .collect();
    assert_eq!(hints.len(), 1, "{errors}");
    assert!(hints[0].contains(&format!("check --base-url (it was {})", site.base_url())));
}
