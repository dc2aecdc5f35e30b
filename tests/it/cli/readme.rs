//! docs/cli.md's claims about the command line that `commands.rs` does not check:
//! `--network` and `--key` over the environment, `--ttl`, `--from-file FILE`, and the
//! emulator's `--pull-url`, `--rate-429`, `--latency-ms` and `--seed`. Every process gets
//! a cleared environment and is stopped by the test.

use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pingpull::Network;
use pingpull::ping::{LivefyreClient, RequestError};
use pingpull::token::{Claims, SystemTokenValidator};

use crate::cli::commands::{EmulatorProcess, pingpull, stderr, stdout};

const EXPIRES: &str = "1700086400";

fn token_system(extra: &[&str]) -> Output {
    pingpull()
        .args(extra)
        .args(["token", "system", "--expires-at", EXPIRES])
        .output()
        .unwrap()
}

fn payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn network_and_key_flags_override_the_environment() {
    // The environment says example.fyre.co / testkeytest.
    let other = Network::new("other.fyre.co", "flagkey").unwrap();
    let expected = Claims::system(&other, 1_700_086_400).sign(&other);
    let output = token_system(&["--network", "other.fyre.co", "--key", "flagkey"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), expected.as_str());

    // Only the key from the flag: the network still from the environment.
    let keyed = Network::new("example.fyre.co", "flagkey").unwrap();
    let output = token_system(&["--key", "flagkey"]);
    assert_eq!(
        stdout(&output).trim(),
        Claims::system(&keyed, 1_700_086_400).sign(&keyed).as_str()
    );
    let verified = pingpull()
        .args(["--key", "flagkey", "token", "verify", expected.as_str()])
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(1), "another network's token");
}

#[test]
fn ttl_sets_the_lifetime_from_now() {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    let system = pingpull()
        .args(["token", "system", "--ttl", "600"])
        .output()
        .unwrap();
    let user = pingpull()
        .args(["token", "user", "--user", "u1", "--display-name", "Ada"])
        .args(["--ttl", "90"])
        .output()
        .unwrap();
    let after = now();
    let expires = |output: &Output| {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
        payload(stdout(output).trim())["expires"].as_f64().unwrap() as u64
    };
    assert!((before + 600..=after + 600).contains(&expires(&system)));
    assert!((before + 90..=after + 90).contains(&expires(&user)));
    // A fresh system token from `--ttl` validates now.
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    assert!(
        SystemTokenValidator::new(network)
            .validate(stdout(&system).trim())
            .is_ok()
    );
}

/// A temporary file, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "pingpull-claims-{}-{}.txt",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn ping_reads_users_from_a_file() {
    let emulator = EmulatorProcess::start(&[]);
    let file = TempFile::with("f1\nf2\n\nf3\n");
    let output = pingpull()
        .args(["ping", "--base-url", &emulator.base_url, "--from-file"])
        .arg(&file.0)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("delivered 3, failed 0"),
        "{}",
        stdout(&output)
    );
    for user in ["f1", "f2", "f3"] {
        let profile: serde_json::Value =
            serde_json::from_str(&emulator.get(&format!("/profiles/{user}"))).unwrap();
        assert_eq!(profile["pings"], 1, "{user}: {profile}");
    }
    let missing = pingpull()
        .args(["ping", "--base-url", &emulator.base_url, "--from-file"])
        .arg(file.0.with_extension("missing"))
        .output()
        .unwrap();
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        stderr(&missing).contains("missing"),
        "names the file: {}",
        stderr(&missing)
    );
}

#[test]
fn the_emulator_pull_url_flag_registers_a_template() {
    let template = "http://127.0.0.1:9/livefyre/pull?id={id}";
    let emulator = EmulatorProcess::start(&["--pull-url", template]);
    let page = emulator.get("/studio/users");
    assert!(
        page.contains(&format!("Pull URL <code>{template}</code>")),
        "{page}"
    );
}

fn client(emulator: &EmulatorProcess) -> LivefyreClient {
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    LivefyreClient::new(network, &emulator.base_url).unwrap()
}

/// The status each of 30 pings (one at a time) got.
async fn statuses(emulator: &EmulatorProcess) -> Vec<u16> {
    let client = client(emulator);
    let mut statuses = Vec::new();
    for n in 0..30 {
        statuses.push(match client.sync_user(&format!("s{n}")).await {
            Ok(()) => 200,
            Err(RequestError::Status(status)) => status.as_u16(),
            Err(other) => panic!("{other}"),
        });
    }
    statuses
}

#[tokio::test]
async fn the_emulator_rate_429_flag_answers_429() {
    let emulator = EmulatorProcess::start(&["--rate-429", "1"]);
    assert_eq!(statuses(&emulator).await, vec![429; 30]);
}

/// The same seed picks the same failing pings; another seed others.
#[tokio::test]
async fn the_emulator_seed_flag_makes_faults_reproducible() {
    let faulty = |seed: &str| EmulatorProcess::start(&["--fail-rate", "0.5", "--seed", seed]);
    let first = statuses(&faulty("7")).await;
    let again = statuses(&faulty("7")).await;
    let other = statuses(&faulty("8")).await;
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
    assert_eq!(first, again);
    assert_ne!(first, other);
}

/// `--latency-ms` delays every answer by at least that much (a lower bound, which no
/// machine can beat).
#[tokio::test]
async fn the_emulator_latency_flag_delays_answers() {
    let emulator = EmulatorProcess::start(&["--latency-ms", "1000"]);
    let client = client(&emulator);
    let started = Instant::now();
    client.sync_user("u1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
}
