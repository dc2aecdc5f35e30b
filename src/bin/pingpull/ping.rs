//! `pingpull ping`: pings users through a [`Pinger`] whose retries are spaced to fit the
//! deadline, tells what became of each user, then sums up.

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal as _, Read as _};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use http::StatusCode;
use pingpull::ping::{
    Failure as PingFailure, PingEvent, Pinger, RequestError, RetrySchedule, ShutdownReport,
};
use pingpull::{Network, user_id};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::commands::base_url_hint;
use super::{Failure, PingArgs};

mod progress;

use progress::Progress;

/// The longest wait between two attempts is this share of the deadline, so a user
/// failing again and again is still tried about ten times before it (the library's
/// default schedule, meant for a server that runs for days, waits minutes).
const LONGEST_WAIT_SHARE: u32 = 10;

/// Events the stream holds for us per user pinged, before it drops the oldest: a
/// delivery and a few retries each, however slowly the terminal prints.
const EVENTS_PER_USER: usize = 4;

/// Pings `args`' users, prints an event line per user (or progress on a terminal) and a
/// summary; `verbose` (the global `-v` count) asks for per-user lines on a terminal.
pub(crate) async fn ping(network: Network, args: PingArgs, verbose: u8) -> Result<(), Failure> {
    let users = users_to_ping(&args.users, args.from_file.as_deref())?;
    let deadline = Duration::try_from_secs_f64(args.deadline)
        // clap took only positive finite numbers: this one is too large.
        .map_err(|_| Failure::Usage("--deadline is too far in the future".into()))?;
    let distinct: HashSet<&str> = users.iter().map(String::as_str).collect();
    let pinger = spawn_pinger(&network, &args, deadline, users.len())?;
    let mut events = pinger.events();
    let started = Instant::now();
    let until = started
        .checked_add(deadline)
        .ok_or_else(|| Failure::Usage("--deadline is too far in the future".into()))?;
    let mut tally = Tally::new(Output::detect(verbose, distinct.len(), until));
    for user in &users {
        pinger
            .ping(user)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let stopped = watch(&pinger, &mut events, &mut tally, until).await;
    tally.output.hide_progress();
    let report = pinger.shutdown(Duration::ZERO).await;
    // Events sent after the loop stopped (the last delivery can settle the pending
    // set before its event is read): shutdown has returned, so all are in the channel.
    drain(&mut events, &mut tally);
    let summary = Summary::new(&args, distinct.len(), &tally, stopped, &report, started);
    tally
        .output
        .finish_progress(summary.delivered(), summary.failed.len());
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
) -> Result<Pinger, Failure> {
    let base_url = args
        .base_url
        .clone()
        .unwrap_or_else(|| network.default_base_url());
    let mut builder = Pinger::builder(network.clone())
        .base_url(base_url)
        .max_pending(users.max(1))
        .concurrency(usize::from(args.concurrency))
        .retry_schedule(retry_schedule(deadline))
        .events_capacity(users.saturating_mul(EVENTS_PER_USER).max(1024));
    if let Some(rate) = args.rate_limit {
        builder = builder.rate_limit(rate);
    }
    builder.spawn().map_err(|e| Failure::Usage(e.to_string()))
}

/// The library's schedule with every wait capped at a share of `deadline` (a server's
/// `Retry-After` too: the command would rather retry early than not before it stops).
/// The maximum age lies past the deadline: a user still failing then is reported once,
/// as stopped by the deadline, rather than given up one by one (a warning each) in its
/// last moments while others are still being tried.
fn retry_schedule(deadline: Duration) -> RetrySchedule {
    let longest = deadline / LONGEST_WAIT_SHARE;
    RetrySchedule::default()
        .max_delay(longest)
        .max_retry_after(longest)
        .max_age(deadline.saturating_add(longest))
}

/// The user ids given, then those of `from_file`; at least one, each valid.
fn users_to_ping(users: &[String], from_file: Option<&Path>) -> Result<Vec<String>, Failure> {
    let mut users = users.to_vec();
    if let Some(path) = from_file {
        users.extend(read_user_file(path)?);
    }
    if users.is_empty() {
        return Err(Failure::Usage(
            "no user ids: give some, or --from-file".into(),
        ));
    }
    for user in &users {
        user_id::validate_for_path(user)
            .map_err(|e| Failure::Usage(format!("user id `{user}`: {e}")))?;
    }
    Ok(users)
}

/// The non-blank lines of `path` (`-`: standard input), trimmed.
fn read_user_file(path: &Path) -> Result<Vec<String>, Failure> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| Failure::Usage(format!("--from-file {}: {e}", path.display())))?;
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
    while pinger.stats().pending > 0 {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Ok(event)) => {
                if tally.record(event).is_break() {
                    return Stopped::Unauthorized;
                }
            }
            Ok(Err(RecvError::Lagged(missed))) => tally.missed += missed,
            Ok(Err(RecvError::Closed)) => break,
            Err(_) => return Stopped::Deadline,
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
struct Output {
    /// A "delivered" line on stdout per delivery.
    delivered_lines: bool,
    /// A "retrying" line on stderr per failed attempt.
    retry_lines: bool,
    progress: Option<Progress>,
}

impl Output {
    /// Progress when stderr is a terminal; per-user lines when stdout is not one (for
    /// scripts) or with `-v`; retry lines as well, unless they would tear the progress.
    fn detect(verbose: u8, users: usize, until: Instant) -> Self {
        let progress = std::io::stderr()
            .is_terminal()
            .then(|| Progress::start(users as u64, until));
        let delivered_lines = !std::io::stdout().is_terminal() || verbose > 0;
        Self {
            delivered_lines,
            retry_lines: if progress.is_some() {
                verbose > 0
            } else {
                delivered_lines
            },
            progress,
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
    output: Output,
    delivered: HashSet<String>,
    /// Users whose latest attempt failed and who wait for the next, with the failure.
    retrying: BTreeMap<String, PingFailure>,
    /// Users given up, with why.
    gave_up: BTreeMap<String, PingFailure>,
    /// Events the stream dropped because we read too slowly.
    missed: u64,
    /// Livefyre is unreachable: one line says so, not one per failed attempt.
    unreachable: bool,
}

impl Tally {
    fn new(output: Output) -> Self {
        Self {
            output,
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
            PingFailure::Status(status @ (404 | 405)) => StatusCode::from_u16(*status).ok(),
            _ => None,
        })
    }

    /// Records and shows one event; `Break` when no ping can succeed.
    fn record(&mut self, event: PingEvent) -> ControlFlow<()> {
        match event {
            PingEvent::Delivered { user_id, attempts } => {
                if self.output.delivered_lines {
                    let line = format!("delivered {user_id} ({attempts} attempt(s))");
                    self.output.line(false, &line);
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
                if self.output.retry_lines && !self.unreachable {
                    let line = format!("retrying {user_id} in {} ms: {failure}", delay.as_millis());
                    self.output.line(true, &line);
                }
                self.retrying.insert(user_id, failure);
            }
            PingEvent::GaveUp { user_id, failure } => {
                self.gave_up.insert(user_id, failure);
            }
            PingEvent::Unauthorized { .. } => {
                self.output.line(
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
                self.output.line(true, &line);
            }
            PingEvent::Resumed { paused_for } if self.unreachable => {
                self.unreachable = false;
                let line = format!(
                    "Livefyre answers again after {} s: resuming",
                    paused_for.as_secs()
                );
                self.output.line(true, &line);
            }
            _ => {}
        }
        self.show_progress();
        ControlFlow::Continue(())
    }

    fn show_progress(&self) {
        if let Some(progress) = &self.output.progress {
            progress.update(
                self.delivered.len(),
                self.retrying.len(),
                self.gave_up.len(),
            );
        }
    }
}

/// The totals, and each user not delivered with why.
struct Summary {
    users: usize,
    /// User and reason, sorted by user.
    failed: BTreeMap<String, String>,
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
        args: &PingArgs,
        users: usize,
        tally: &Tally,
        stopped: Stopped,
        report: &ShutdownReport,
        started: Instant,
    ) -> Self {
        let deadline_reason = format!("not delivered: deadline of {} s reached", args.deadline);
        let with_last = |reason: &str, user: &str| match tally.retrying.get(user) {
            Some(last) => format!("{reason}; last attempt: {last}"),
            None => reason.to_owned(),
        };
        let mut failed = BTreeMap::new();
        let mut deadline_reached = stopped == Stopped::Deadline;
        for (user, failure) in &tally.gave_up {
            // Given up because the next retry would come after the deadline.
            let reason = if *failure == PingFailure::TooOld {
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
        for user in &report.undelivered {
            failed.insert(user.clone(), with_last(undelivered_reason, user));
        }
        Self {
            users,
            failed,
            requests_sent: report.stats.sent,
            requests_succeeded: report.stats.succeeded,
            deadline: args.deadline,
            deadline_reached,
            elapsed: started.elapsed(),
            missed_events: tally.missed,
        }
    }

    /// Users delivered: those pinged less those not delivered (a user pinged twice may
    /// have needed two requests, so requests do not count users).
    fn delivered(&self) -> usize {
        self.users.saturating_sub(self.failed.len())
    }

    /// Prints the summary (as JSON with `json`) on stdout; fails if a user was not
    /// delivered.
    fn print(&self, json: bool) -> Result<(), Failure> {
        if json {
            println!("{}", self.to_json());
        } else {
            self.print_text();
        }
        if self.missed_events > 0 {
            eprintln!(
                "pingpull: {} event(s) were read too late and missed: some per-user lines are absent (the totals are exact)",
                self.missed_events
            );
        }
        if self.failed.is_empty() {
            Ok(())
        } else {
            Err(Failure::Failed(String::new()))
        }
    }

    fn print_text(&self) {
        let stopped_by = if self.deadline_reached {
            format!("; the deadline of {} s stopped delivery", self.deadline)
        } else {
            String::new()
        };
        println!(
            "delivered {}, failed {} ({} request(s) answered 2xx){stopped_by}",
            self.delivered(),
            self.failed.len(),
            self.requests_succeeded
        );
        for (user, reason) in &self.failed {
            println!("failed {user} ({reason})");
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let failed: Vec<_> = self
            .failed
            .iter()
            .map(|(user, reason)| serde_json::json!({ "user": user, "reason": reason }))
            .collect();
        serde_json::json!({
            "users": self.users,
            "delivered": self.delivered(),
            "failed": failed,
            "requests_sent": self.requests_sent,
            "requests_succeeded": self.requests_succeeded,
            "deadline_s": self.deadline,
            "deadline_reached": self.deadline_reached,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "missed_events": self.missed_events,
        })
    }
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
