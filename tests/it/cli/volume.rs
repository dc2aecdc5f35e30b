//! `pingpull ping` with many users against a port that refuses every connection: every
//! user accounted for from the Pinger's own record, and stderr a few lines, not one per
//! attempt.

use std::collections::HashSet;
use std::process::Output;

use crate::support::refusing_port;

const USERS: usize = 20_000;

fn users() -> Vec<String> {
    (0..USERS).map(|n| format!("user-{n}")).collect()
}

/// `pingpull ping` (in an empty environment but the network) to `base_url` with a 3 s
/// deadline and `extra` flags, the users on stdin.
async fn ping(base_url: &str, extra: &[&str], users: &[String]) -> Output {
    let args: Vec<&str> = ["--base-url", base_url, "--deadline", "3"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    super::ping::ping(&args, users).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_is_accounted_for_with_a_reason_in_json() {
    let (_socket, addr) = refusing_port();
    let base_url = format!("http://{addr}");
    // Each user given twice: still 20,000 users, each counted once.
    let mut input = users();
    input.extend(users());
    let output = ping(&base_url, &["--json"], &input).await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");

    // Nothing was delivered, so the JSON summary is all there is on stdout.
    assert_eq!(
        stdout.lines().count(),
        1,
        "{}",
        &stdout[..stdout.len().min(2000)]
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["users"], USERS);
    assert_eq!(summary["delivered"], 0);
    assert_eq!(summary["failed_count"], USERS);
    let given_up = summary["given_up"].as_u64().unwrap();
    let undelivered = summary["undelivered"].as_u64().unwrap();
    assert_eq!(given_up + undelivered, USERS as u64, "{summary}");
    assert_eq!(summary["unknown"], serde_json::json!([]));

    let failed = summary["failed"].as_array().unwrap();
    let named: HashSet<&str> = failed
        .iter()
        .map(|entry| entry["user"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), USERS, "each user once");
    assert_eq!(named.len(), USERS, "each user once");
    for entry in failed {
        let reason = entry["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("not delivered: deadline of 3 s reached")
                || reason.starts_with("given up"),
            "{entry}"
        );
    }

    // A few lines at most (progress, a lagged stream said once), never one per user.
    assert!(stderr.lines().count() <= 10, "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_summary_adds_up_to_the_input() {
    let (_socket, addr) = refusing_port();
    let output = ping(&format!("http://{addr}"), &[], &users()).await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("delivered 0, failed {USERS} (")),
        "{first}"
    );
    let failed: HashSet<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("failed "))
        .filter_map(|rest| rest.split_once(" ("))
        .map(|(user, _)| user)
        .collect();
    assert_eq!(failed.len(), USERS);
    assert_eq!(
        stdout.lines().count(),
        USERS + 1,
        "a summary and a line per user"
    );
    assert!(stderr.lines().count() <= 10, "{stderr}");
}
