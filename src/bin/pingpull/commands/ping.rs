//! `pingpull ping`: pings users through a [`Pinger`] whose retries are spaced to fit the
//! deadline, tells what became of each user, then sums up.
//!
//! Memory grows little with the input's size: the users are kept in a compact table
//! ([`users`]) and handed to the Pinger as its pending bound (`--max-pending`, the
//! library's default of 100 000) frees, never all at once; the event stream holds a few
//! events per pending user, up to about a million ([`events_capacity`]).

use std::io::{BufReader, IsTerminal as _, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use http::StatusCode;
use pingpull::Network;
use pingpull::ping::{
    DEFAULT_MAX_PENDING, Failure, PingError, PingEvent, PingStats, Pinger, RequestError,
    RetrySchedule,
};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::error::CommandError;
use super::livefyre::{ProxyArgs, base_url, base_url_hint, tls_roots};
use super::numbers::{positive_rate, positive_seconds};
use crate::signals::{StopSignal, stop_signal};

mod progress;
mod summary;
mod users;

use progress::Progress;
use summary::{Record, Seen, Summary};
use users::{Fate, UserTable};

/// The longest wait between two attempts is this share of the deadline, so a user
/// failing again and again is still tried about ten times before it (the library's
/// default schedule, meant for a server that runs for days, waits minutes).
const LONGEST_WAIT_SHARE: u32 = 10;

/// Events the stream holds for us per user pending, before it drops the oldest: a
/// delivery and a few retries each ([`events_capacity`]).
const EVENTS_PER_USER: usize = 4;

/// The fewest events the stream holds, for a few users.
const MIN_EVENTS_CAPACITY: usize = 1024;

/// The most events the stream holds, whatever `--max-pending` says ([`events_capacity`]):
/// its slots are allocated up front (about 100 bytes each, so about 100 MB here), and
/// the library takes no more than 16 777 216.
const MAX_EVENTS_CAPACITY: usize = 1 << 20;

/// Users handed to the Pinger between two looks at the event stream, so the stream is
/// read while a large input is handed over.
const HAND_OVER_BATCH: usize = 256;

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
    #[command(flatten)]
    proxy: ProxyArgs,
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
    /// Users in the Pinger at once; the others wait their turn (memory grows with it)
    #[arg(long, value_name = "USERS", default_value_t = DEFAULT_MAX_PENDING,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_pending: usize,
    /// Print a JSON summary on stdout instead of the text one (the per-user lines stay)
    #[arg(long)]
    json: bool,
    /// User ids to ping
    users: Vec<String>,
}

/// Pings `args`' users, prints a line per delivery when piped (or progress on a
/// terminal) and a summary whose counts come from the Pinger's own record; `verbose`
/// (the global `-v` count) asks for per-user lines on a terminal and retry lines.
/// Ctrl-C or SIGTERM stops it early, after the summary.
pub(crate) async fn run(network: Network, args: PingArgs, verbose: u8) -> Result<(), CommandError> {
    let mut users = users_to_ping(&args.users, args.from_file.as_deref())?;
    // Before anything is sent, and after the input is read (a signal while reading it
    // ends the process at once, with nothing to tell): from now on a signal ends in the
    // summary.
    let stop = stop_signal()
        .map_err(|e| CommandError::Failed(format!("cannot handle Ctrl-C and SIGTERM: {e}")))?;
    let deadline = Duration::try_from_secs_f64(args.deadline)
        // clap took only positive numbers a Duration holds: unreachable.
        .map_err(|_| CommandError::Usage("--deadline is too far in the future".into()))?;
    let pinger = spawn_pinger(&network, &args, deadline, users.len())?;
    let mut events = pinger.events();
    let started = Instant::now();
    let until = started
        .checked_add(deadline)
        .ok_or_else(|| CommandError::Usage("--deadline is too far in the future".into()))?;
    let mut tally = Tally::new(Feedback::detect(verbose, users.len(), until));
    let mut hand_over = HandOver {
        pinger: &pinger,
        events: &mut events,
        tally: &mut tally,
        users: &mut users,
        handed_over: 0,
    };
    let stopped = hand_over.run(until, stop).await?;
    let handed_over = hand_over.handed_over;
    tally.feedback.hide_progress();
    let report = pinger.shutdown(Duration::ZERO).await;
    // Events sent after the loop stopped (the last delivery can settle the pending
    // set before its event is read): shutdown has returned, so all are in the channel.
    drain(&mut events, &mut tally, &mut users);
    let seen = Seen {
        given_up: tally.gave_up,
        missed: tally.missed,
        delivery_stopped: tally.delivery_stopped.clone(),
    };
    let record = Record::from(&report);
    let summary = Summary::new(
        &mut users,
        handed_over,
        &record,
        &seen,
        stopped,
        args.deadline,
        started,
    );
    tally
        .feedback
        .finish_progress(summary.delivered, summary.failed_count);
    if let Some(status) = tally.wrong_server {
        // The same words as a one-shot call's error for that status.
        let error = RequestError::Status(status);
        let hint = base_url_hint(&network, pinger.client().base_url());
        eprintln!("pingpull: {error}; {hint}");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    summary
        .write(args.json, &mut out)
        .map_err(|e| CommandError::Failed(format!("writing the summary: {e}")))?;
    drop(out);
    if let Some(note) = summary.missed_events_note() {
        eprintln!("{note}");
    }
    outcome(
        stopped,
        summary.failed_count,
        tally.delivery_stopped.as_deref(),
    )
}

/// How the command ends once the summary is written: the exit status, and for a dead
/// delivery task the line that says so.
fn outcome(
    stopped: Stopped,
    failed: usize,
    delivery_stopped: Option<&str>,
) -> Result<(), CommandError> {
    match stopped {
        Stopped::Signal(signal) => Err(CommandError::Stopped(signal)),
        Stopped::Delivery => Err(CommandError::Failed(format!(
            "delivery stopped: {}; the users not delivered can be pinged again",
            // Noticed through `ping` before the event was read: the event says why.
            delivery_stopped.unwrap_or("the Pinger's delivery task ended")
        ))),
        _ if failed == 0 => Ok(()),
        _ => Err(CommandError::Failed(String::new())),
    }
}

/// A Pinger for the command: the flags' concurrency and rate, a schedule that fits the
/// deadline, `--max-pending` (or room for every user, if fewer) and an event stream
/// that does not lag.
fn spawn_pinger(
    network: &Network,
    args: &PingArgs,
    deadline: Duration,
    users: usize,
) -> Result<Pinger, CommandError> {
    let base_url = base_url(network, args.base_url.clone());
    let max_pending = users.clamp(1, args.max_pending);
    let mut builder = Pinger::builder(network.clone())
        .base_url(base_url)
        .max_pending(max_pending)
        .concurrency(usize::from(args.concurrency))
        .retry_schedule(retry_schedule(deadline))
        .events_capacity(events_capacity(max_pending));
    if let Some(rate) = args.rate_limit {
        builder = builder.rate_limit(rate);
    }
    if let Some(roots) = tls_roots(args.ca_cert.as_deref())? {
        builder = builder.tls_roots(&roots);
    }
    builder
        .proxy(&args.proxy.proxy()?)
        .spawn()
        .map_err(|e| CommandError::Usage(e.to_string()))
}

/// How many events the stream holds for `max_pending` users pending at once.
///
/// Events are read as they come, so they pile up only while the command cannot read
/// them: while a line it writes blocks (a paused pager, a pipe nobody drains). No user
/// is handed over meanwhile, so what piles up comes from the users already pending, a
/// few events each: room for that many keeps every line however long stdout blocks.
/// That need not grow without end: past [`MAX_EVENTS_CAPACITY`] (262 144 users pending)
/// the room would cost more memory than a stalled reader is worth, and an overflow loses
/// only per-user lines, since the totals come from the Pinger itself and the summary
/// says how many events were missed.
fn events_capacity(max_pending: usize) -> usize {
    max_pending
        .saturating_mul(EVENTS_PER_USER)
        .clamp(MIN_EVENTS_CAPACITY, MAX_EVENTS_CAPACITY)
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

/// The user ids given, then those of `from_file`, each once; at least one, each valid.
fn users_to_ping(users: &[String], from_file: Option<&Path>) -> Result<UserTable, CommandError> {
    let mut table = UserTable::new();
    for user in users {
        table.add(user).map_err(CommandError::Usage)?;
    }
    if let Some(path) = from_file {
        let read = if path.as_os_str() == "-" {
            table.add_lines(std::io::stdin().lock())
        } else {
            std::fs::File::open(path).and_then(|file| table.add_lines(BufReader::new(file)))
        };
        read.map_err(|e| CommandError::Usage(format!("--from-file {}: {e}", path.display())))?;
    }
    if table.is_empty() {
        return Err(CommandError::Usage(
            "no user ids: give some, or --from-file".into(),
        ));
    }
    table.shrink_to_fit();
    for user in table.ids() {
        pingpull::user_id::validate_for_path(user)
            .map_err(|e| CommandError::Usage(format!("user id `{user}`: {e}")))?;
    }
    Ok(table)
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
    /// Ctrl-C or SIGTERM.
    Signal(StopSignal),
    /// The Pinger's delivery task died (a bug in it): nothing more would be delivered.
    Delivery,
}

/// The users on their way: handed to the Pinger as its pending bound frees, and what
/// the events say of each.
struct HandOver<'a> {
    pinger: &'a Pinger,
    events: &'a mut broadcast::Receiver<PingEvent>,
    tally: &'a mut Tally,
    users: &'a mut UserTable,
    /// Users `0..handed_over` went to the Pinger.
    handed_over: usize,
}

impl HandOver<'_> {
    /// Hands the users over and reads events until every user is handed over and
    /// nothing is pending, the deadline passes, Livefyre refuses the network, the
    /// Pinger's delivery task dies, or `stop` comes.
    async fn run(
        &mut self,
        until: Instant,
        stop: impl Future<Output = StopSignal>,
    ) -> Result<Stopped, CommandError> {
        let until = tokio::time::Instant::from_std(until);
        let every = self.tally.feedback.progress_every();
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut stop = std::pin::pin!(stop);
        let mut deadline = std::pin::pin!(tokio::time::sleep_until(until));
        // The Pinger held its bound: wait for a user to settle before trying again.
        let mut full = false;
        loop {
            if !full {
                match self.hand_over()? {
                    ControlFlow::Continue(now_full) => full = now_full,
                    ControlFlow::Break(stopped) => return Ok(stopped),
                }
            }
            let more = self.handed_over < self.users.len();
            if !more && self.pinger.stats().pending == 0 {
                return Ok(Stopped::Settled);
            }
            tokio::select! {
                biased;
                signal = &mut stop => return Ok(Stopped::Signal(signal)),
                received = self.events.recv() => match received {
                    Ok(event) => {
                        // A user settled: room for another.
                        full &= !matches!(event, PingEvent::Delivered { .. } | PingEvent::GaveUp { .. });
                        if let ControlFlow::Break(stopped) = self.tally.record(event, self.users) {
                            return Ok(stopped);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        self.tally.missed += missed;
                        full = false;
                    }
                    Err(RecvError::Closed) => return Ok(Stopped::Settled),
                },
                _ = ticks.tick() => {
                    self.tally.show_progress(&self.pinger.stats(), self.handed_over);
                    full = false;
                }
                () = &mut deadline => return Ok(Stopped::Deadline),
                // More to hand over: round again at once.
                () = std::future::ready(()), if more && !full => {}
            }
        }
    }

    /// Hands over up to a batch of users; `true` when the Pinger is full, `Break` when
    /// its delivery task is dead.
    fn hand_over(&mut self) -> Result<ControlFlow<Stopped, bool>, CommandError> {
        let end = self
            .handed_over
            .saturating_add(HAND_OVER_BATCH)
            .min(self.users.len());
        while self.handed_over < end {
            match self.pinger.ping(self.users.id(self.handed_over)) {
                Ok(()) => self.handed_over += 1,
                // Nothing is dropped: this user is handed over once room frees.
                Err(PingError::QueueFull { .. }) => return Ok(ControlFlow::Continue(true)),
                Err(PingError::Stopped) => return Ok(ControlFlow::Break(Stopped::Delivery)),
                Err(error) => return Err(CommandError::Usage(error.to_string())),
            }
        }
        Ok(ControlFlow::Continue(false))
    }
}

/// Records the events already sent, without waiting for more.
fn drain(events: &mut broadcast::Receiver<PingEvent>, tally: &mut Tally, users: &mut UserTable) {
    loop {
        match events.try_recv() {
            Ok(event) => {
                let _ = tally.record(event, users);
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
                // A closed stdout (`| head`) is no reason to stop delivering.
                let _ = writeln!(std::io::stdout(), "{line}");
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

/// What the events told, beside each user's fate in the [`UserTable`], and where each
/// is shown.
struct Tally {
    feedback: Feedback,
    /// Users whose latest attempt failed and who wait for the next.
    retrying: usize,
    /// Users the events said were given up.
    gave_up: u64,
    /// Events the stream dropped because we read too slowly.
    missed: u64,
    /// Livefyre is unreachable: one line says so, not one per failed attempt.
    unreachable: bool,
    /// A 404 or 405 that refused a user: the base URL is probably not Livefyre's.
    wrong_server: Option<StatusCode>,
    /// Why the Pinger's delivery task died, if it did.
    delivery_stopped: Option<String>,
}

impl Tally {
    fn new(feedback: Feedback) -> Self {
        Self {
            feedback,
            retrying: 0,
            gave_up: 0,
            missed: 0,
            unreachable: false,
            wrong_server: None,
            delivery_stopped: None,
        }
    }

    /// Sets user `n`'s fate, keeping the count of those retrying.
    fn settle(&mut self, users: &mut UserTable, n: usize, fate: Fate) {
        let was = users.fate(n);
        if was == Fate::Retrying && fate != Fate::Retrying {
            self.retrying = self.retrying.saturating_sub(1);
        } else if was != Fate::Retrying && fate == Fate::Retrying {
            self.retrying += 1;
        }
        users.set_fate(n, fate);
    }

    /// Records and shows one event; `Break` with why when no ping can succeed.
    fn record(&mut self, event: PingEvent, users: &mut UserTable) -> ControlFlow<Stopped> {
        match event {
            PingEvent::Delivered { user_id, attempts } => {
                if self.feedback.delivered_lines {
                    let line = format!("delivered {user_id} ({attempts} attempt(s))");
                    self.feedback.line(false, &line);
                }
                if let Some(n) = users.find(&user_id) {
                    self.settle(users, n, Fate::Delivered);
                }
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
                if let Some(n) = users.find(&user_id) {
                    self.settle(users, n, Fate::Retrying);
                    users.set_last_failure(n, failure);
                }
            }
            PingEvent::GaveUp { user_id, failure } => {
                self.gave_up += 1;
                if let Failure::Status(status @ (404 | 405)) = failure {
                    self.wrong_server = self
                        .wrong_server
                        .or_else(|| StatusCode::from_u16(status).ok());
                }
                if let Some(n) = users.find(&user_id) {
                    if failure == Failure::TooOld {
                        // The last failed attempt's failure stays, for the reason.
                        self.settle(users, n, Fate::TooOld);
                    } else {
                        self.settle(users, n, Fate::Refused);
                        users.set_last_failure(n, failure);
                    }
                }
            }
            PingEvent::Unauthorized { .. } => {
                self.feedback.line(
                    true,
                    "Livefyre answered 403: the network key or name is wrong",
                );
                return ControlFlow::Break(Stopped::Unauthorized);
            }
            PingEvent::Stopped { reason } => {
                self.delivery_stopped = Some(reason);
                return ControlFlow::Break(Stopped::Delivery);
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
    /// events) and the users not yet handed over; how many wait to retry comes from
    /// the events.
    fn show_progress(&self, stats: &PingStats, handed_over: usize) {
        let failed = usize::try_from(stats.given_up).unwrap_or(usize::MAX);
        let in_pinger = usize::try_from(stats.pending).unwrap_or(usize::MAX);
        let delivered = handed_over.saturating_sub(failed).saturating_sub(in_pinger);
        let pending = self.feedback.users.saturating_sub(handed_over) + in_pinger;
        match &self.feedback.progress {
            Some(progress) => progress.update(delivered, self.retrying, failed),
            None => eprintln!(
                "pingpull: delivered {delivered} of {}, {pending} pending, {failed} failed",
                self.feedback.users
            ),
        }
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

    #[test]
    fn the_event_stream_grows_with_the_pending_bound_up_to_a_limit() {
        assert_eq!(events_capacity(1), MIN_EVENTS_CAPACITY);
        assert_eq!(events_capacity(256), MIN_EVENTS_CAPACITY);
        assert_eq!(events_capacity(DEFAULT_MAX_PENDING), 400_000);
        assert_eq!(
            events_capacity(MAX_EVENTS_CAPACITY / 4),
            MAX_EVENTS_CAPACITY
        );
        for beyond in [
            MAX_EVENTS_CAPACITY / 4 + 1,
            4_200_000,
            5_000_000,
            usize::MAX,
        ] {
            assert_eq!(events_capacity(beyond), MAX_EVENTS_CAPACITY, "{beyond}");
        }
    }

    fn ping_args(max_pending: usize) -> PingArgs {
        PingArgs {
            base_url: Some("http://127.0.0.1:9".into()),
            ca_cert: None,
            proxy: ProxyArgs::default(),
            from_file: None,
            deadline: 30.0,
            concurrency: 8,
            rate_limit: None,
            max_pending,
            json: false,
            users: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_pinger_is_made_for_millions_of_users_pending() {
        // 4.2 million users and more pending once asked for more events than the library
        // takes, and the command failed before pinging anyone. Nothing is pinged here.
        let network = Network::new("example.fyre.co", "testkeytest").unwrap();
        let deadline = Duration::from_secs(30);
        let users = 5_000_000;
        let pinger = match spawn_pinger(&network, &ping_args(users), deadline, users) {
            Ok(pinger) => pinger,
            Err(CommandError::Usage(e) | CommandError::Failed(e)) => panic!("{e}"),
            Err(CommandError::Stopped(_)) => unreachable!(),
        };
        let report = pinger.shutdown(Duration::ZERO).await;
        assert!(report.undelivered.is_empty());
    }

    fn user_table(ids: &[&str]) -> UserTable {
        let mut users = UserTable::new();
        for id in ids {
            users.add(id).unwrap();
        }
        users
    }

    /// A Pinger that sends nothing for an hour (the debounce), so its users stay pending
    /// until the test kills its delivery task.
    fn idle_pinger() -> Pinger {
        Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
            .base_url("http://127.0.0.1:9")
            .debounce(Duration::from_secs(3600))
            .spawn()
            .unwrap()
    }

    /// Hands `users` over to `pinger` and waits as the command does, with an hour's
    /// deadline: the paused clock jumps to it if nothing else ends the wait.
    async fn wait_for_delivery(
        pinger: &Pinger,
        events: &mut broadcast::Receiver<PingEvent>,
        tally: &mut Tally,
        users: &mut UserTable,
    ) -> (Stopped, usize) {
        let mut hand_over = HandOver {
            pinger,
            events,
            tally,
            users,
            handed_over: 0,
        };
        let until = Instant::now() + Duration::from_secs(3600);
        let stopped = hand_over
            .run(until, std::future::pending())
            .await
            .unwrap_or_else(|_| panic!("the wait failed"));
        (stopped, hand_over.handed_over)
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_delivery_task_ends_the_wait_at_once() {
        let pinger = idle_pinger();
        let mut events = pinger.events();
        let mut users = user_table(&["u1", "u2"]);
        let mut tally = quiet_tally();
        pingpull::testing::panic_the_delivery_loop(&pinger);
        let (stopped, handed_over) =
            wait_for_delivery(&pinger, &mut events, &mut tally, &mut users).await;
        // Not the deadline, an hour away on the paused clock.
        assert_eq!((stopped, handed_over), (Stopped::Delivery, 2));
        let reason = tally.delivery_stopped.clone().unwrap();
        assert!(
            reason.starts_with("the delivery task panicked: a panic in the delivery loop"),
            "{reason}"
        );

        // The summary names each user and why; the command then fails with that reason.
        let report = pinger.shutdown(Duration::ZERO).await;
        let seen = Seen {
            given_up: 0,
            missed: 0,
            delivery_stopped: tally.delivery_stopped.clone(),
        };
        let started = Instant::now();
        let record = Record::from(&report);
        let summary = Summary::new(
            &mut users,
            handed_over,
            &record,
            &seen,
            stopped,
            3600.0,
            started,
        );
        let mut text = Vec::new();
        summary.write(false, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with("delivered 0, failed 2 (0 given up, 2 still pending; 0 request(s) answered 2xx); delivery stopped\n"),
            "{text}"
        );
        assert!(
            text.contains("failed u1 (not delivered: delivery stopped)\n"),
            "{text}"
        );
        let mut json = Vec::new();
        summary.write(true, &mut json).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["delivery_stopped"], reason.as_str());
        match outcome(stopped, summary.failed_count, Some(&reason)) {
            Err(CommandError::Failed(line)) => assert_eq!(
                line,
                format!("delivery stopped: {reason}; the users not delivered can be pinged again")
            ),
            _ => panic!("a dead delivery task is a failure (exit status 1)"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_task_dead_before_the_hand_over_ends_the_wait_at_once() {
        let pinger = idle_pinger();
        let mut earlier = pinger.events();
        pingpull::testing::panic_the_delivery_loop(&pinger);
        while !matches!(earlier.recv().await, Ok(PingEvent::Stopped { .. })) {}
        // Subscribed after the last event: only `ping`'s refusal tells.
        let mut events = pinger.events();
        let mut users = user_table(&["u1"]);
        let mut tally = quiet_tally();
        let (stopped, handed_over) =
            wait_for_delivery(&pinger, &mut events, &mut tally, &mut users).await;
        assert_eq!((stopped, handed_over), (Stopped::Delivery, 0));
        match outcome(stopped, 1, None) {
            Err(CommandError::Failed(line)) => assert_eq!(
                line,
                "delivery stopped: the Pinger's delivery task ended; the users not delivered can be pinged again"
            ),
            _ => panic!("a dead delivery task is a failure (exit status 1)"),
        }
    }

    fn quiet_tally() -> Tally {
        Tally::new(Feedback {
            delivered_lines: false,
            retry_lines: false,
            progress: None,
            users: 0,
        })
    }

    #[test]
    fn events_set_each_users_fate_and_the_retrying_count() {
        let mut users = UserTable::new();
        for user in ["u1", "u2", "u3"] {
            users.add(user).unwrap();
        }
        let mut tally = quiet_tally();
        let retrying = |user: &str, failure| PingEvent::Retrying {
            user_id: user.into(),
            attempt: 1,
            delay: Duration::from_secs(1),
            failure,
        };
        for event in [
            retrying("u1", Failure::Status(500)),
            retrying("u2", Failure::Timeout),
            retrying("u2", Failure::Status(503)),
            PingEvent::Delivered {
                user_id: "u1".into(),
                attempts: 2,
            },
            PingEvent::GaveUp {
                user_id: "u2".into(),
                failure: Failure::TooOld,
            },
            PingEvent::GaveUp {
                user_id: "u3".into(),
                failure: Failure::Status(405),
            },
        ] {
            assert!(tally.record(event, &mut users).is_continue());
        }
        assert_eq!(
            users.fates(),
            [Fate::Delivered, Fate::TooOld, Fate::Refused]
        );
        assert_eq!(users.last_failure(1), Some(&Failure::Status(503)));
        assert_eq!(users.last_failure(2), Some(&Failure::Status(405)));
        assert_eq!((tally.retrying, tally.gave_up), (0, 2));
        assert_eq!(tally.wrong_server, Some(StatusCode::METHOD_NOT_ALLOWED));
    }
}
