//! `pingpull ping`: pings users through a [`Pinger`] whose retries are spaced to fit the
//! deadline, tells what became of each user, then sums up.

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal as _, Read as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use http::StatusCode;
use pingpull::ping::{
    Failure, PingEvent, PingStats, Pinger, RequestError, RetrySchedule, ShutdownReport,
};
use pingpull::{Network, user_id};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::error::CommandError;
use super::livefyre::{base_url, base_url_hint, tls_roots};
use super::numbers::{positive_rate, positive_seconds};

mod progress;

use progress::Progress;

/// The longest wait between two attempts is this share of the deadline, so a user
/// failing again and again is still tried about ten times before it (the library's
/// default schedule, meant for a server that runs for days, waits minutes).
const LONGEST_WAIT_SHARE: u32 = 10;

/// Events the stream holds for us per user pinged, before it drops the oldest: a
/// delivery and a few retries each, however slowly the terminal prints.
const EVENTS_PER_USER: usize = 4;

/// How often progress is written when stderr is not a terminal (a terminal's line is
/// redrawn as it goes).
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    /// Livefyre's API base URL (default https://{label}.quill.fyre.co)
    #[arg(long)]
    base_url: Option<String>,
    /// Also trust the CA certificates in this PEM file for https (a private CA, a proxy)
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Read user ids from a file, one per line ('-' for standard input)
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Seconds to wait for delivery before giving up; retries are spaced to fit in it
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds, allow_negative_numbers = true)]
    deadline: f64,
    /// Requests in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..), allow_negative_numbers = true)]
    concurrency: u16,
    /// At most this many requests started per second (default: no limit)
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_rate, allow_negative_numbers = true)]
    rate_limit: Option<f64>,
    /// Print a JSON summary on stdout instead of the text one (the per-user lines stay)
    #[arg(long)]
    json: bool,
    /// User ids to ping
    users: Vec<String>,
}

/// Pings `args`' users, prints a line per delivery when piped (or progress on a
/// terminal) and a summary whose counts come from the Pinger's own record; `verbose`
/// (the global `-v` count) asks for per-user lines on a terminal and retry lines.
pub(crate) async fn run(network: Network, args: PingArgs, verbose: u8) -> Result<(), CommandError> {
    let users = users_to_ping(&args.users, args.from_file.as_deref())?;
    let deadline = Duration::try_from_secs_f64(args.deadline)
        // clap took only positive numbers a Duration holds: unreachable.
        .map_err(|_| CommandError::Usage("--deadline is too far in the future".into()))?;
    // Each user once: a user pending once is counted once by the Pinger's record.
    let mut seen = HashSet::new();
    let distinct: Vec<&str> = users
        .iter()
        .map(String::as_str)
        .filter(|user| seen.insert(*user))
        .collect();
    drop(seen);
    let pinger = spawn_pinger(&network, &args, deadline, distinct.len())?;
    let mut events = pinger.events();
    let started = Instant::now();
    let until = started
        .checked_add(deadline)
        .ok_or_else(|| CommandError::Usage("--deadline is too far in the future".into()))?;
    let mut tally = Tally::new(Feedback::detect(verbose, distinct.len(), until));
    for user in &distinct {
        pinger
            .ping(user)
            .map_err(|e| CommandError::Usage(e.to_string()))?;
    }
    let stopped = watch(&pinger, &mut events, &mut tally, until).await;
    tally.feedback.hide_progress();
    let report = pinger.shutdown(Duration::ZERO).await;
    // Events sent after the loop stopped (the last delivery can settle the pending
    // set before its event is read): shutdown has returned, so all are in the channel.
    drain(&mut events, &mut tally);
    let record = Record::from(&report);
    let summary = Summary::new(args.deadline, &distinct, &tally, stopped, &record, started);
    tally
        .feedback
        .finish_progress(summary.delivered, summary.failed_count);
    if let Some(status) = tally.wrong_server_status() {
        // The same words as a one-shot call's error for that status.
        let error = RequestError::Status(status);
        let hint = base_url_hint(&network, pinger.client().base_url());
        eprintln!("pingpull: {error}; {hint}");
    }
    summary.print(args.json)
}

/// A Pinger for the command: the flags' concurrency and rate, a schedule that fits the
/// deadline, room for every user and an event stream that does not lag.
fn spawn_pinger(
    network: &Network,
    args: &PingArgs,
    deadline: Duration,
    users: usize,
) -> Result<Pinger, CommandError> {
    let base_url = base_url(network, args.base_url.clone());
    let mut builder = Pinger::builder(network.clone())
        .base_url(base_url)
        .max_pending(users.max(1))
        .concurrency(usize::from(args.concurrency))
        .retry_schedule(retry_schedule(deadline))
        .events_capacity(users.saturating_mul(EVENTS_PER_USER).max(1024));
    if let Some(rate) = args.rate_limit {
        builder = builder.rate_limit(rate);
    }
    if let Some(roots) = tls_roots(args.ca_cert.as_deref())? {
        builder = builder.tls_roots(&roots);
    }
    builder
        .spawn()
        .map_err(|e| CommandError::Usage(e.to_string()))
}

/// The library's schedule with every wait capped at a share of `deadline` (a server's
/// `Retry-After` too: the command would rather retry early than not before it stops).
/// The maximum age lies well past the deadline (twice it): a user still failing then is
/// reported once, as stopped by the deadline, rather than given up one by one (a warning
/// each) in its last moments while others are still being tried, even when a loaded
/// machine wakes the command late.
fn retry_schedule(deadline: Duration) -> RetrySchedule {
    let longest = deadline / LONGEST_WAIT_SHARE;
    RetrySchedule::default()
        .max_delay(longest)
        .max_retry_after(longest)
        .max_age(deadline.saturating_mul(2).saturating_add(longest))
}

/// The user ids given, then those of `from_file`; at least one, each valid.
fn users_to_ping(users: &[String], from_file: Option<&Path>) -> Result<Vec<String>, CommandError> {
    let mut users = users.to_vec();
    if let Some(path) = from_file {
        users.extend(read_user_file(path)?);
    }
    if users.is_empty() {
        return Err(CommandError::Usage(
            "no user ids: give some, or --from-file".into(),
        ));
    }
    for user in &users {
        user_id::validate_for_path(user)
            .map_err(|e| CommandError::Usage(format!("user id `{user}`: {e}")))?;
    }
    Ok(users)
}

/// The non-blank lines of `path` (`-`: standard input), trimmed.
fn read_user_file(path: &Path) -> Result<Vec<String>, CommandError> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| CommandError::Usage(format!("--from-file {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// What stopped the wait for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// Nothing is pending: each user was delivered or given up.
    Settled,
    /// The deadline passed with users pending.
    Deadline,
    /// Livefyre answered 403: no ping can succeed.
    Unauthorized,
}

/// Reads events until nothing is pending, the deadline passes or Livefyre refuses the
/// network.
async fn watch(
    pinger: &Pinger,
    events: &mut broadcast::Receiver<PingEvent>,
    tally: &mut Tally,
    until: Instant,
) -> Stopped {
    let until = tokio::time::Instant::from_std(until);
    let every = tally.feedback.progress_every();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    while pinger.stats().pending > 0 {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    if tally.record(event).is_break() {
                        return Stopped::Unauthorized;
                    }
                }
                Err(RecvError::Lagged(missed)) => tally.missed += missed,
                Err(RecvError::Closed) => break,
            },
            _ = ticks.tick() => tally.show_progress(&pinger.stats()),
            () = tokio::time::sleep_until(until) => return Stopped::Deadline,
        }
    }
    Stopped::Settled
}

/// Records the events already sent, without waiting for more.
fn drain(events: &mut broadcast::Receiver<PingEvent>, tally: &mut Tally) {
    loop {
        match events.try_recv() {
            Ok(event) => {
                let _ = tally.record(event);
            }
            Err(TryRecvError::Lagged(missed)) => tally.missed += missed,
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// Where the command tells of each user: lines for scripts, progress for a person.
struct Feedback {
    /// A "delivered" line on stdout per delivery.
    delivered_lines: bool,
    /// A "retrying" line on stderr per failed attempt (`-v` only: there may be many
    /// per user).
    retry_lines: bool,
    /// The line redrawn on a terminal; otherwise a progress line now and then.
    progress: Option<Progress>,
    users: usize,
}

impl Feedback {
    /// Progress redrawn when stderr is a terminal, else a line every few seconds;
    /// per-user lines when stdout is not a terminal (for scripts) or with `-v`; retry
    /// lines with `-v`.
    fn detect(verbose: u8, users: usize, until: Instant) -> Self {
        let progress = std::io::stderr()
            .is_terminal()
            .then(|| Progress::start(users as u64, until));
        let delivered_lines = !std::io::stdout().is_terminal() || verbose > 0;
        Self {
            delivered_lines,
            retry_lines: verbose > 0,
            progress,
            users,
        }
    }

    /// How often [`Tally::show_progress`] runs.
    fn progress_every(&self) -> Duration {
        if self.progress.is_some() {
            progress::TICK
        } else {
            PROGRESS_LINE_EVERY
        }
    }

    /// Prints `line` on stdout (or stderr) without tearing the progress.
    fn line(&self, stderr: bool, line: &str) {
        let print = || {
            if stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        match &self.progress {
            Some(progress) => progress.suspend(print),
            None => print(),
        }
    }

    fn hide_progress(&self) {
        if let Some(progress) = &self.progress {
            progress.hide();
        }
    }

    fn finish_progress(&self, delivered: usize, failed: usize) {
        if let Some(progress) = &self.progress {
            progress.finish(delivered, failed);
        }
    }
}

/// What the events told, and where each is shown.
struct Tally {
    feedback: Feedback,
    delivered: HashSet<String>,
    /// Users whose latest attempt failed and who wait for the next, with the failure.
    retrying: BTreeMap<String, Failure>,
    /// Users given up, with why.
    gave_up: BTreeMap<String, Failure>,
    /// Events the stream dropped because we read too slowly.
    missed: u64,
    /// Livefyre is unreachable: one line says so, not one per failed attempt.
    unreachable: bool,
}

impl Tally {
    fn new(feedback: Feedback) -> Self {
        Self {
            feedback,
            delivered: HashSet::new(),
            retrying: BTreeMap::new(),
            gave_up: BTreeMap::new(),
            missed: 0,
            unreachable: false,
        }
    }

    /// A 404 or 405 that refused a user: the base URL is probably not Livefyre's.
    fn wrong_server_status(&self) -> Option<StatusCode> {
        self.gave_up.values().find_map(|failure| match failure {
            Failure::Status(status @ (404 | 405)) => StatusCode::from_u16(*status).ok(),
            _ => None,
        })
    }

    /// Records and shows one event; `Break` when no ping can succeed.
    fn record(&mut self, event: PingEvent) -> ControlFlow<()> {
        match event {
            PingEvent::Delivered { user_id, attempts } => {
                if self.feedback.delivered_lines {
                    let line = format!("delivered {user_id} ({attempts} attempt(s))");
                    self.feedback.line(false, &line);
                }
                self.retrying.remove(&user_id);
                self.delivered.insert(user_id);
            }
            PingEvent::Retrying {
                user_id,
                failure,
                delay,
                ..
            } => {
                if self.feedback.retry_lines && !self.unreachable {
                    let line = format!("retrying {user_id} in {} ms: {failure}", delay.as_millis());
                    self.feedback.line(true, &line);
                }
                self.retrying.insert(user_id, failure);
            }
            PingEvent::GaveUp { user_id, failure } => {
                self.gave_up.insert(user_id, failure);
            }
            PingEvent::Unauthorized { .. } => {
                self.feedback.line(
                    true,
                    "Livefyre answered 403: the network key or name is wrong",
                );
                return ControlFlow::Break(());
            }
            PingEvent::Unreachable { failure, .. } => {
                self.unreachable = true;
                let line = format!(
                    "Livefyre is unreachable ({failure}): waiting for it, one probe a second"
                );
                self.feedback.line(true, &line);
            }
            PingEvent::Resumed { paused_for } if self.unreachable => {
                self.unreachable = false;
                let line = format!(
                    "Livefyre answers again after {} s: resuming",
                    paused_for.as_secs()
                );
                self.feedback.line(true, &line);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    /// Shows how far delivery is, from the Pinger's counters (exact, unlike the
    /// events); how many wait to retry comes from the events.
    fn show_progress(&self, stats: &PingStats) {
        let failed = usize::try_from(stats.given_up).unwrap_or(usize::MAX);
        let pending = usize::try_from(stats.pending).unwrap_or(usize::MAX);
        let delivered = self
            .feedback
            .users
            .saturating_sub(failed)
            .saturating_sub(pending);
        let retrying = self
            .retrying
            .keys()
            .filter(|user| !self.gave_up.contains_key(*user))
            .count();
        match &self.feedback.progress {
            Some(progress) => progress.update(delivered, retrying, failed),
            None => eprintln!(
                "pingpull: delivered {delivered} of {}, {pending} pending, {failed} failed",
                self.feedback.users
            ),
        }
    }
}

/// What the Pinger itself recorded (exact, unlike the event stream): the parts of its
/// shutdown report the summary needs.
struct Record {
    /// Users still pending at the end.
    undelivered: Vec<String>,
    /// Users given up.
    given_up: u64,
    sent: u64,
    succeeded: u64,
}

impl From<&ShutdownReport> for Record {
    fn from(report: &ShutdownReport) -> Self {
        Self {
            undelivered: report.undelivered.clone(),
            given_up: report.stats.given_up,
            sent: report.stats.sent,
            succeeded: report.stats.succeeded,
        }
    }
}

/// Each user known not delivered, with why: those the events said were given up and
/// those the shutdown report names; and whether the deadline stopped some.
fn named_failures(
    deadline: f64,
    tally: &Tally,
    stopped: Stopped,
    record: &Record,
) -> (BTreeMap<String, String>, bool) {
    let deadline_reason = format!("not delivered: deadline of {deadline} s reached");
    let with_last = |reason: &str, user: &str| match tally.retrying.get(user) {
        Some(last) => format!("{reason}; last attempt: {last}"),
        None => reason.to_owned(),
    };
    let mut failed = BTreeMap::new();
    let mut deadline_reached = stopped == Stopped::Deadline;
    for (user, failure) in &tally.gave_up {
        // Given up because the next retry would come after the deadline.
        let reason = if *failure == Failure::TooOld {
            deadline_reached = true;
            with_last(&deadline_reason, user)
        } else {
            format!("refused: {failure}")
        };
        failed.insert(user.clone(), reason);
    }
    let undelivered_reason = match stopped {
        Stopped::Deadline => deadline_reason.as_str(),
        Stopped::Unauthorized => "not delivered: Livefyre answered 403",
        Stopped::Settled => "not delivered",
    };
    for user in &record.undelivered {
        failed.insert(user.clone(), with_last(undelivered_reason, user));
    }
    (failed, deadline_reached)
}

/// Users neither seen delivered nor known failed, when the Pinger gave up more users
/// than the events named: their events were dropped.
fn lost_users(
    users: &[&str],
    tally: &Tally,
    failed: &BTreeMap<String, String>,
    given_up: usize,
) -> Vec<String> {
    if given_up <= tally.gave_up.len() {
        return Vec::new();
    }
    users
        .iter()
        .filter(|user| !tally.delivered.contains(**user) && !failed.contains_key(**user))
        .map(|user| (*user).to_owned())
        .collect()
}

/// The totals, from the Pinger's record, and each user not delivered with why.
struct Summary {
    users: usize,
    /// Users delivered: those pinged less those given up and those still pending.
    delivered: usize,
    /// Users given up, as the Pinger counted them.
    given_up: u64,
    /// Users still pending when the command stopped (the shutdown report's).
    undelivered: usize,
    /// `given_up` and `undelivered` together.
    failed_count: usize,
    /// User and reason, sorted by user.
    failed: BTreeMap<String, String>,
    /// Users whose fate the lagged event stream lost: delivered or given up (the counts
    /// say how many of each), not which.
    unknown: Vec<String>,
    requests_sent: u64,
    requests_succeeded: u64,
    deadline: f64,
    /// Whether the deadline stopped delivery for some user.
    deadline_reached: bool,
    elapsed: Duration,
    missed_events: u64,
}

impl Summary {
    fn new(
        deadline: f64,
        users: &[&str],
        tally: &Tally,
        stopped: Stopped,
        record: &Record,
        started: Instant,
    ) -> Self {
        let (mut failed, deadline_reached) = named_failures(deadline, tally, stopped, record);
        let given_up = record.given_up;
        let undelivered = record.undelivered.len();
        let given_up_users = usize::try_from(given_up).unwrap_or(usize::MAX);
        let mut unknown = lost_users(users, tally, &failed, given_up_users);
        if unknown.len() == given_up_users.saturating_sub(tally.gave_up.len()) {
            // All of them were given up: named, though why is lost.
            for user in unknown.drain(..) {
                let reason = "given up; why was lost with the events read too late";
                failed.insert(user, reason.to_owned());
            }
        }
        Self {
            users: users.len(),
            delivered: users
                .len()
                .saturating_sub(given_up_users)
                .saturating_sub(undelivered),
            given_up,
            undelivered,
            failed_count: given_up_users.saturating_add(undelivered),
            failed,
            unknown,
            requests_sent: record.sent,
            requests_succeeded: record.succeeded,
            deadline,
            deadline_reached,
            elapsed: started.elapsed(),
            missed_events: tally.missed,
        }
    }

    /// Prints the summary (as JSON with `json`) on stdout; fails if a user was not
    /// delivered.
    fn print(&self, json: bool) -> Result<(), CommandError> {
        if json {
            // Plain data: serializing it cannot fail.
            println!(
                "{}",
                serde_json::to_string(&self.to_json()).unwrap_or_default()
            );
        } else {
            self.print_text();
        }
        if self.missed_events > 0 {
            eprintln!(
                "pingpull: {} event(s) were read too late and missed: some per-user lines are absent, {} user(s) could not be told delivered or given up (the totals are exact)",
                self.missed_events,
                self.unknown.len()
            );
        }
        if self.failed_count == 0 {
            Ok(())
        } else {
            Err(CommandError::Failed(String::new()))
        }
    }

    fn print_text(&self) {
        let stopped_by = if self.deadline_reached {
            format!("; the deadline of {} s stopped delivery", self.deadline)
        } else {
            String::new()
        };
        println!(
            "delivered {}, failed {} ({} given up, {} still pending; {} request(s) answered 2xx){stopped_by}",
            self.delivered,
            self.failed_count,
            self.given_up,
            self.undelivered,
            self.requests_succeeded
        );
        for (user, reason) in &self.failed {
            println!("failed {user} ({reason})");
        }
        for user in &self.unknown {
            println!("unknown {user} (delivered or given up: its event was read too late)");
        }
    }

    /// The summary as `--json` prints it, borrowing the names and reasons rather than
    /// copying them into a `serde_json::Value` (hundreds of MB for 150,000 users).
    fn to_json(&self) -> JsonSummary<'_> {
        JsonSummary {
            users: self.users,
            delivered: self.delivered,
            given_up: self.given_up,
            undelivered: self.undelivered,
            failed_count: self.failed_count,
            failed: self
                .failed
                .iter()
                .map(|(user, reason)| FailedUser { user, reason })
                .collect(),
            unknown: &self.unknown,
            requests_sent: self.requests_sent,
            requests_succeeded: self.requests_succeeded,
            deadline_s: self.deadline,
            deadline_reached: self.deadline_reached,
            elapsed_s: self.elapsed.as_secs_f64(),
            missed_events: self.missed_events,
        }
    }
}

/// The `--json` summary (its fields are documented in the README).
#[derive(serde::Serialize)]
struct JsonSummary<'a> {
    users: usize,
    delivered: usize,
    given_up: u64,
    undelivered: usize,
    failed_count: usize,
    failed: Vec<FailedUser<'a>>,
    unknown: &'a [String],
    requests_sent: u64,
    requests_succeeded: u64,
    deadline_s: f64,
    deadline_reached: bool,
    elapsed_s: f64,
    missed_events: u64,
}

#[derive(serde::Serialize)]
struct FailedUser<'a> {
    user: &'a str,
    reason: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_fit_any_deadline() {
        for seconds in [0.5, 10.0, 30.0, 150.0, 3600.0] {
            let deadline = Duration::from_secs_f64(seconds);
            let schedule = retry_schedule(deadline);
            let waits: Vec<Duration> = (1..=LONGEST_WAIT_SHARE)
                .map(|n| schedule.delay(n))
                .collect();
            assert!(waits.iter().all(|wait| *wait <= deadline / 10), "{waits:?}");
            assert!(waits.iter().sum::<Duration>() <= deadline, "{waits:?}");
            assert!(schedule.max_age_duration() > deadline);
        }
    }

    fn tally(delivered: &[&str], gave_up: &[&str], missed: u64) -> Tally {
        let feedback = Feedback {
            delivered_lines: false,
            retry_lines: false,
            progress: None,
            users: 0,
        };
        let mut tally = Tally::new(feedback);
        tally.delivered = delivered.iter().map(|u| (*u).to_owned()).collect();
        tally.gave_up = gave_up
            .iter()
            .map(|u| ((*u).to_owned(), Failure::Status(404)))
            .collect();
        tally.missed = missed;
        tally
    }

    fn record(undelivered: &[&str], given_up: u64) -> Record {
        Record {
            undelivered: undelivered.iter().map(|u| (*u).to_owned()).collect(),
            given_up,
            sent: 0,
            succeeded: 0,
        }
    }

    const USERS: [&str; 6] = ["u1", "u2", "u3", "u4", "u5", "u6"];

    #[test]
    fn counts_come_from_the_record_when_events_were_lost() {
        // u1 delivered, u2 given up and u6 pending as the events and report say; u3,
        // u4 and u5 lost with the events. The record gave up 3 users: u2 and two of
        // u3..u5, so one of those was delivered, which one is unknown.
        let tally = tally(&["u1"], &["u2"], 7);
        let summary = Summary::new(
            5.0,
            &USERS,
            &tally,
            Stopped::Deadline,
            &record(&["u6"], 3),
            Instant::now(),
        );
        assert_eq!(
            (summary.delivered, summary.failed_count, summary.undelivered),
            (2, 4, 1)
        );
        assert_eq!(summary.failed.keys().collect::<Vec<_>>(), ["u2", "u6"]);
        assert_eq!(summary.unknown, ["u3", "u4", "u5"]);
        let json = serde_json::to_value(summary.to_json()).unwrap();
        assert_eq!(json["missed_events"], 7);
        assert_eq!(json["unknown"], serde_json::json!(["u3", "u4", "u5"]));
    }

    #[test]
    fn users_lost_with_the_events_are_named_when_all_were_given_up() {
        // The record gave up 4: u2 and every user the events lost.
        let tally = tally(&["u1"], &["u2"], 3);
        let summary = Summary::new(
            5.0,
            &USERS,
            &tally,
            Stopped::Deadline,
            &record(&["u6"], 4),
            Instant::now(),
        );
        assert_eq!((summary.delivered, summary.failed_count), (1, 5));
        assert!(summary.unknown.is_empty());
        assert_eq!(summary.failed.len(), 5);
        assert!(summary.failed["u4"].starts_with("given up"));
        assert_eq!(
            summary.failed["u6"],
            "not delivered: deadline of 5 s reached"
        );
    }

    #[test]
    fn the_old_schedule_missed_a_150_s_deadline() {
        // What the command used before: the fourth retry came after the deadline.
        let default = RetrySchedule::default();
        let waited: Duration = (1..=4).map(|n| default.delay(n)).sum();
        assert!(waited > Duration::from_secs(150));
        let fitted = retry_schedule(Duration::from_secs(150));
        let waited: Duration = (1..=4).map(|n| fitted.delay(n)).sum();
        assert!(waited < Duration::from_secs(40));
    }
}
