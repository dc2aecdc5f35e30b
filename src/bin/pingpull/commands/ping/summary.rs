//! What `ping` says at the end: the totals, from the Pinger's own record, and each user
//! not delivered with why, sorted by id; as text or as one JSON object.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use pingpull::ping::ShutdownReport;
use serde::ser::{Serialize, Serializer};

use super::Stopped;
use super::users::{Fate, UserTable};

/// The totals, and the users failed and unknown (as numbers in the [`UserTable`]).
pub(super) struct Summary<'a> {
    users: &'a UserTable,
    /// Users delivered: those given less those given up and those not delivered.
    pub(super) delivered: usize,
    /// Users given up, as the Pinger counted them.
    given_up: u64,
    /// Users still pending when the command stopped (the shutdown report's), and those
    /// never handed to the Pinger.
    undelivered: usize,
    /// `given_up` and `undelivered` together.
    pub(super) failed_count: usize,
    /// The users failed, sorted by id.
    failed: Vec<u32>,
    /// Users whose fate the lagged event stream lost: delivered or given up (the counts
    /// say how many of each), not which. In the order given.
    unknown: Vec<u32>,
    requests_sent: u64,
    requests_succeeded: u64,
    deadline: f64,
    /// Whether the deadline stopped delivery for some user.
    deadline_reached: bool,
    stopped: Stopped,
    /// Why delivery stopped, if its task died.
    delivery_stopped: Option<String>,
    elapsed: Duration,
    missed_events: u64,
}

/// What the Pinger itself recorded (exact, unlike the event stream): the parts of its
/// shutdown report the summary needs.
pub(super) struct Record<'r> {
    /// Users still pending at the end.
    pub(super) undelivered: &'r [String],
    /// Users given up.
    pub(super) given_up: u64,
    pub(super) sent: u64,
    pub(super) succeeded: u64,
}

impl<'r> From<&'r ShutdownReport> for Record<'r> {
    fn from(report: &'r ShutdownReport) -> Self {
        Self {
            undelivered: &report.undelivered,
            given_up: report.stats.given_up,
            sent: report.stats.sent,
            succeeded: report.stats.succeeded,
        }
    }
}

/// What the events told apart from each user's fate.
pub(super) struct Seen {
    /// Users the events said were given up.
    pub(super) given_up: u64,
    /// Events the stream dropped because they were read too late.
    pub(super) missed: u64,
    /// Why the Pinger's delivery task ended, if it died (`PingEvent::Stopped`).
    pub(super) delivery_stopped: Option<String>,
}

impl<'a> Summary<'a> {
    /// Settles each user's fate from the Pinger's `record` (users still pending, and
    /// those after the first `handed_over`, which never reached the Pinger, were not
    /// delivered) and sums up.
    pub(super) fn new(
        users: &'a mut UserTable,
        handed_over: usize,
        record: &Record<'_>,
        seen: &Seen,
        stopped: Stopped,
        deadline: f64,
        started: Instant,
    ) -> Self {
        for user in record.undelivered {
            if let Some(n) = users.find(user) {
                users.set_fate(n, Fate::Undelivered);
            }
        }
        for n in handed_over..users.len() {
            users.set_fate(n, Fate::Undelivered);
        }
        let undelivered = record.undelivered.len() + (users.len() - handed_over);
        let given_up = record.given_up;
        let given_up_users = usize::try_from(given_up).unwrap_or(usize::MAX);
        let mut unknown = lost_users(users, handed_over, seen.given_up, given_up);
        if unknown.len() as u64 == given_up.saturating_sub(seen.given_up) {
            // All of them were given up: named, though why is lost.
            for n in unknown.drain(..) {
                users.set_fate(n as usize, Fate::GivenUpUnknown);
            }
        }
        let users: &'a UserTable = users;
        let mut failed: Vec<u32> = (0..users.len() as u32)
            .filter(|n| users.fate(*n as usize).failed())
            .collect();
        failed.sort_unstable_by(|a, b| users.id(*a as usize).cmp(users.id(*b as usize)));
        let too_old = users.fates().contains(&Fate::TooOld);
        Self {
            users,
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
            deadline_reached: too_old || stopped == Stopped::Deadline,
            stopped,
            delivery_stopped: seen.delivery_stopped.clone(),
            elapsed: started.elapsed(),
            missed_events: seen.missed,
        }
    }

    /// Why user `n` was not delivered.
    fn reason(&self, n: usize) -> String {
        let deadline = || format!("not delivered: deadline of {} s reached", self.deadline);
        let with_last = |reason: String| match self.users.last_failure(n) {
            Some(last) => format!("{reason}; last attempt: {last}"),
            None => reason,
        };
        match self.users.fate(n) {
            // Given up because the next retry would come after the deadline.
            Fate::TooOld => with_last(deadline()),
            Fate::Refused => match self.users.last_failure(n) {
                Some(failure) => format!("refused: {failure}"),
                None => "refused".to_owned(),
            },
            Fate::GivenUpUnknown => "given up; why was lost with the events read too late".into(),
            _ => with_last(match self.stopped {
                Stopped::Deadline => deadline(),
                Stopped::Unauthorized => "not delivered: Livefyre answered 403".into(),
                Stopped::Signal(signal) => format!("not delivered: stopped by {}", signal.name()),
                Stopped::Delivery => "not delivered: delivery stopped".into(),
                Stopped::Settled => "not delivered".into(),
            }),
        }
    }

    /// Writes the summary (as JSON with `json`) to `out`.
    pub(super) fn write(&self, json: bool, out: &mut impl Write) -> io::Result<()> {
        if json {
            serde_json::to_writer(&mut *out, &self.to_json())?;
            writeln!(out)?;
        } else {
            self.write_text(out)?;
        }
        out.flush()
    }

    /// On stderr: what the missed events mean, if any were missed.
    pub(super) fn missed_events_note(&self) -> Option<String> {
        (self.missed_events > 0).then(|| {
            format!(
                "pingpull: {} event(s) were read too late and missed: some per-user lines are absent, {} user(s) could not be told delivered or given up (the totals are exact)",
                self.missed_events,
                self.unknown.len()
            )
        })
    }

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let mut stopped_by = String::new();
        if self.deadline_reached {
            stopped_by = format!("; the deadline of {} s stopped delivery", self.deadline);
        }
        match self.stopped {
            Stopped::Signal(signal) => {
                stopped_by.push_str(&format!("; {} stopped delivery", signal.name()));
            }
            Stopped::Delivery => stopped_by.push_str("; delivery stopped"),
            _ => {}
        }
        writeln!(
            out,
            "delivered {}, failed {} ({} given up, {} still pending; {} request(s) answered 2xx){stopped_by}",
            self.delivered,
            self.failed_count,
            self.given_up,
            self.undelivered,
            self.requests_succeeded
        )?;
        for n in &self.failed {
            let n = *n as usize;
            writeln!(out, "failed {} ({})", self.users.id(n), self.reason(n))?;
        }
        for n in &self.unknown {
            let user = self.users.id(*n as usize);
            writeln!(
                out,
                "unknown {user} (delivered or given up: its event was read too late)"
            )?;
        }
        Ok(())
    }

    /// The summary as `--json` prints it: the names and reasons written as they are
    /// serialized, never all held at once.
    fn to_json(&self) -> JsonSummary<'_> {
        JsonSummary {
            users: self.users.len(),
            delivered: self.delivered,
            given_up: self.given_up,
            undelivered: self.undelivered,
            failed_count: self.failed_count,
            failed: FailedUsers(self),
            unknown: UnknownUsers(self),
            requests_sent: self.requests_sent,
            requests_succeeded: self.requests_succeeded,
            deadline_s: self.deadline,
            deadline_reached: self.deadline_reached,
            stopped_by_signal: match self.stopped {
                Stopped::Signal(signal) => Some(signal.name()),
                _ => None,
            },
            delivery_stopped: self.delivery_stopped.as_deref(),
            elapsed_s: self.elapsed.as_secs_f64(),
            missed_events: self.missed_events,
        }
    }
}

/// Users neither seen delivered nor known failed, among the first `handed_over`, when
/// the Pinger gave up more users (`given_up`) than the events named (`seen_given_up`):
/// their events were dropped.
fn lost_users(
    users: &UserTable,
    handed_over: usize,
    seen_given_up: u64,
    given_up: u64,
) -> Vec<u32> {
    if given_up <= seen_given_up {
        return Vec::new();
    }
    (0..handed_over)
        .filter(|n| matches!(users.fate(*n), Fate::Waiting | Fate::Retrying))
        .map(|n| n as u32)
        .collect()
}

/// The `--json` summary (its fields are documented in docs/cli.md, "Pinging").
#[derive(serde::Serialize)]
struct JsonSummary<'a> {
    users: usize,
    delivered: usize,
    given_up: u64,
    undelivered: usize,
    failed_count: usize,
    failed: FailedUsers<'a>,
    unknown: UnknownUsers<'a>,
    requests_sent: u64,
    requests_succeeded: u64,
    deadline_s: f64,
    deadline_reached: bool,
    /// `"SIGINT"` or `"SIGTERM"` when one stopped the command, else null.
    stopped_by_signal: Option<&'static str>,
    /// Why the Pinger's delivery task died, when it did (the users left are not
    /// delivered), else null.
    delivery_stopped: Option<&'a str>,
    elapsed_s: f64,
    missed_events: u64,
}

/// `[{"user": ..., "reason": ...}, ...]`, each reason made as it is written.
struct FailedUsers<'a>(&'a Summary<'a>);

impl Serialize for FailedUsers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let summary = self.0;
        serializer.collect_seq(summary.failed.iter().map(|n| {
            let n = *n as usize;
            FailedUser {
                user: summary.users.id(n),
                reason: summary.reason(n),
            }
        }))
    }
}

#[derive(serde::Serialize)]
struct FailedUser<'a> {
    user: &'a str,
    reason: String,
}

/// `["user", ...]`.
struct UnknownUsers<'a>(&'a Summary<'a>);

impl Serialize for UnknownUsers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let summary = self.0;
        serializer.collect_seq(
            summary
                .unknown
                .iter()
                .map(|n| summary.users.id(*n as usize)),
        )
    }
}

#[cfg(test)]
mod tests {
    use pingpull::ping::Failure;

    use super::*;

    const USERS: [&str; 6] = ["u1", "u2", "u3", "u4", "u5", "u6"];

    /// `USERS`, all handed over, with u1 seen delivered and u2 seen given up (404).
    fn table() -> UserTable {
        let mut users = UserTable::new();
        for user in USERS {
            users.add(user).unwrap();
        }
        users.set_fate(0, Fate::Delivered);
        users.set_fate(1, Fate::Refused);
        users.set_last_failure(1, Failure::Status(404));
        users
    }

    fn record(undelivered: &[String], given_up: u64) -> Record<'_> {
        Record {
            undelivered,
            given_up,
            sent: 0,
            succeeded: 0,
        }
    }

    fn text(summary: &Summary<'_>, json: bool) -> String {
        let mut out = Vec::new();
        summary.write(json, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_come_from_the_record_when_events_were_lost() {
        // u1 delivered, u2 given up and u6 pending as the events and report say; u3,
        // u4 and u5 lost with the events. The record gave up 3 users: u2 and two of
        // u3..u5, so one of those was delivered, which one is unknown.
        let mut users = table();
        let undelivered = ["u6".to_owned()];
        let seen = Seen {
            given_up: 1,
            missed: 7,
            delivery_stopped: None,
        };
        let summary = Summary::new(
            &mut users,
            USERS.len(),
            &record(&undelivered, 3),
            &seen,
            Stopped::Deadline,
            5.0,
            Instant::now(),
        );
        assert_eq!(
            (summary.delivered, summary.failed_count, summary.undelivered),
            (2, 4, 1)
        );
        assert_eq!(
            text(&summary, false),
            "delivered 2, failed 4 (3 given up, 1 still pending; 0 request(s) answered 2xx); the deadline of 5 s stopped delivery\n\
             failed u2 (refused: HTTP 404)\n\
             failed u6 (not delivered: deadline of 5 s reached)\n\
             unknown u3 (delivered or given up: its event was read too late)\n\
             unknown u4 (delivered or given up: its event was read too late)\n\
             unknown u5 (delivered or given up: its event was read too late)\n"
        );
        let json: serde_json::Value = serde_json::from_str(&text(&summary, true)).unwrap();
        assert_eq!(json["missed_events"], 7);
        assert_eq!(json["unknown"], serde_json::json!(["u3", "u4", "u5"]));
        assert_eq!(
            json["failed"],
            serde_json::json!([
                {"user": "u2", "reason": "refused: HTTP 404"},
                {"user": "u6", "reason": "not delivered: deadline of 5 s reached"},
            ])
        );
        assert_eq!(json["stopped_by_signal"], serde_json::Value::Null);
        assert_eq!(json["delivery_stopped"], serde_json::Value::Null);
    }

    #[test]
    fn users_lost_with_the_events_are_named_when_all_were_given_up() {
        // The record gave up 4: u2 and every user the events lost.
        let mut users = table();
        let undelivered = ["u6".to_owned()];
        let seen = Seen {
            given_up: 1,
            missed: 3,
            delivery_stopped: None,
        };
        let summary = Summary::new(
            &mut users,
            USERS.len(),
            &record(&undelivered, 4),
            &seen,
            Stopped::Deadline,
            5.0,
            Instant::now(),
        );
        assert_eq!((summary.delivered, summary.failed_count), (1, 5));
        assert!(summary.unknown.is_empty());
        assert_eq!(summary.failed.len(), 5);
        assert!(summary.reason(3).starts_with("given up"));
        assert_eq!(summary.reason(5), "not delivered: deadline of 5 s reached");
    }

    #[test]
    fn users_never_handed_over_are_not_delivered_with_the_reason() {
        // u1..u3 reached the Pinger, which still held u3 when SIGTERM came; u4..u6 never
        // did. u3's last attempt had failed.
        let mut users = table();
        users.set_fate(2, Fate::Retrying);
        users.set_last_failure(2, Failure::Timeout);
        let undelivered = ["u3".to_owned()];
        let seen = Seen {
            given_up: 1,
            missed: 0,
            delivery_stopped: None,
        };
        let summary = Summary::new(
            &mut users,
            3,
            &record(&undelivered, 1),
            &seen,
            Stopped::Signal(crate::signals::StopSignal::Terminate),
            30.0,
            Instant::now(),
        );
        assert_eq!(
            (summary.delivered, summary.given_up, summary.undelivered),
            (1, 1, 4)
        );
        let text = text(&summary, false);
        assert!(
            text.starts_with("delivered 1, failed 5 (1 given up, 4 still pending; 0 request(s) answered 2xx); SIGTERM stopped delivery\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "failed u3 (not delivered: stopped by SIGTERM; last attempt: timed out)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("failed u6 (not delivered: stopped by SIGTERM)\n"),
            "{text}"
        );
    }
}
