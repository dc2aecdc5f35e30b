//! Every builder value out of its range is a `ConfigError::OutOfRange` naming the setting,
//! at spawn: never a panic at start or, later, in the delivery task.

use std::time::Duration;

use pingpull::Network;
use pingpull::ping::{ConfigError, Pinger, PingerBuilder, RetrySchedule};
use tokio::time::Instant;

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn local() -> PingerBuilder {
    Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://127.0.0.1:9")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn every_setting_out_of_range_is_refused_by_name() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let schedule = RetrySchedule::default;
    let mut cases = vec![
        // 1e-20 panicked at start, 1e-19 in the delivery task.
        (local().rate_limit(1e-20), "rate_limit"),
        (local().rate_limit(1e-19), "rate_limit"),
        (local().rate_limit(0.000_999), "rate_limit"),
        (local().rate_limit(0.0), "rate_limit"),
        (local().rate_limit(-1.0), "rate_limit"),
        (local().rate_limit(f64::NAN), "rate_limit"),
        (local().rate_limit(f64::INFINITY), "rate_limit"),
        (local().rate_limit(1_000_001.0), "rate_limit"),
        (local().attempt_timeout(Duration::ZERO), "attempt_timeout"),
        (
            local().attempt_timeout(Duration::from_micros(999)),
            "attempt_timeout",
        ),
        (local().attempt_timeout(secs(3601)), "attempt_timeout"),
        (local().attempt_timeout(Duration::MAX), "attempt_timeout"),
        (local().concurrency(0), "concurrency"),
        (local().concurrency(10_001), "concurrency"),
        (local().concurrency(usize::MAX), "concurrency"),
        (local().events_capacity(0), "events_capacity"),
        (local().events_capacity(16_777_217), "events_capacity"),
        (local().events_capacity(usize::MAX), "events_capacity"),
        (local().probe_every(Duration::ZERO), "probe_every"),
        (local().probe_every(ms(99)), "probe_every"),
        (local().probe_every(DAY + ms(1)), "probe_every"),
        (local().probe_every(Duration::MAX), "probe_every"),
        (
            local().outage_probe(Duration::ZERO, secs(1)),
            "outage_probe",
        ),
        (local().outage_probe(ms(99), secs(1)), "outage_probe"),
        (local().outage_probe(secs(5), secs(1)), "outage_probe"),
        (local().outage_probe(secs(1), DAY + ms(1)), "outage_probe"),
        (local().outage_probe(secs(1), Duration::MAX), "outage_probe"),
        (local().debounce(DAY + ms(1)), "debounce"),
        (local().debounce(Duration::MAX), "debounce"),
        (local().max_pending(0), "max_pending"),
        (
            local().retry_schedule(RetrySchedule::new([secs(1), YEAR + ms(1)])),
            "retry_schedule",
        ),
        (
            local().retry_schedule(RetrySchedule::new([Duration::MAX])),
            "retry_schedule",
        ),
        (
            local().retry_schedule(schedule().max_delay(Duration::MAX)),
            "retry_schedule",
        ),
        (
            local().retry_schedule(schedule().max_age(Duration::MAX)),
            "retry_schedule",
        ),
        (
            local().retry_schedule(schedule().max_retry_after(Duration::MAX)),
            "retry_schedule",
        ),
    ];
    if let Ok(beyond) = usize::try_from(u64::from(u32::MAX) + 1) {
        cases.push((local().max_pending(beyond), "max_pending"));
    }
    for (builder, named) in cases {
        let described = format!("{builder:?}");
        let error = builder.spawn().unwrap_err();
        assert!(
            matches!(error, ConfigError::OutOfRange { setting, .. } if setting == named),
            "{described}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("`{named}` must be ")),
            "{error}"
        );
    }
}

#[test]
fn the_edges_of_each_range_are_accepted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let edges = [
        local().rate_limit(0.001),
        local().rate_limit(1_000_000.0),
        local().attempt_timeout(ms(1)),
        local().attempt_timeout(secs(3600)),
        local().concurrency(1),
        local().concurrency(10_000),
        local().events_capacity(1),
        local().probe_every(ms(100)),
        local().probe_every(DAY),
        local().outage_probe(ms(100), DAY),
        local().outage_probe(DAY, DAY),
        local().debounce(Duration::ZERO),
        local().debounce(DAY),
        local().max_pending(1),
        local().max_pending(u32::MAX as usize),
        local().retry_schedule(
            RetrySchedule::new([YEAR])
                .max_delay(YEAR)
                .max_age(YEAR)
                .max_retry_after(YEAR),
        ),
    ];
    for builder in edges {
        let described = format!("{builder:?}");
        let pinger = builder
            .spawn()
            .unwrap_or_else(|e| panic!("{described}: {e}"));
        pinger.ping("u1").unwrap();
    }
}

/// The slowest rate there is: one request every 1000 s, the next one booked without
/// overflow, every user delivered in turn.
#[tokio::test(start_paused = true)]
async fn the_slowest_rate_limit_spaces_requests_1000_s_apart() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let start = Instant::now();
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .rate_limit(0.001)
        .spawn()
        .unwrap();
    for user in ["u1", "u2", "u3"] {
        pinger.ping(user).unwrap();
    }
    tokio::time::sleep(secs(2500)).await;
    let starts: Vec<u64> = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| (*at - start).as_secs())
        .collect();
    assert_eq!(starts, [0, 1000, 2000]);
    assert_eq!(pinger.stats().succeeded, 3);
    assert!(pinger.health().healthy());
}

/// The outbox worker's builder shares the checks.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn the_outbox_worker_refuses_the_same_values() {
    use pingpull::outbox::{OutboxTable, OutboxWorker};

    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:9/none")
        .unwrap();
    let table = OutboxTable::new("public", "outbox").unwrap();
    let error = OutboxWorker::builder(
        Network::new("example.fyre.co", "testkeytest").unwrap(),
        pool,
        table,
    )
    .rate_limit(1e-19)
    .spawn()
    .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::OutOfRange {
                setting: "rate_limit",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn the_one_shot_client_and_the_check_refuse_a_timeout_out_of_range() {
    use pingpull::check::{CheckError, CheckOptions};
    use pingpull::ping::LivefyreClient;

    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let client = || LivefyreClient::new(network.clone(), "http://127.0.0.1:9").unwrap();
    for bad in [
        Duration::ZERO,
        Duration::from_micros(999),
        secs(3600) + ms(1),
        Duration::MAX,
    ] {
        let error = client().timeout(bad).unwrap_err();
        assert_eq!(
            error,
            ConfigError::OutOfRange {
                setting: "timeout",
                expected: "between 1 ms and 1 hour"
            },
            "{bad:?}"
        );
    }
    for good in [ms(1), secs(3600)] {
        assert!(client().timeout(good).is_ok(), "{good:?}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_held, closed) = crate::support::refusing_port();
    let template = format!("http://{closed}/p?id={{id}}");
    let check = |timeout| {
        let options = CheckOptions::new(network.clone(), &template, "u1").timeout(timeout);
        runtime.block_on(pingpull::check::check_endpoint(&options))
    };
    // Duration::MAX panicked (the margin added to it overflowed).
    for bad in [Duration::ZERO, secs(3600) + ms(1), Duration::MAX] {
        assert_eq!(
            check(bad).unwrap_err(),
            CheckError::OutOfRange {
                setting: "timeout",
                expected: "between 1 ms and 1 hour"
            },
            "{bad:?}"
        );
    }
    // In range: the check runs, and finds nothing listening.
    assert!(matches!(
        check(ms(200)),
        Err(CheckError::Unreachable { .. })
    ));
}
