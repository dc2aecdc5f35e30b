//! The host pause: while Livefyre refuses our key (a 403) or cannot be reached (the
//! circuit is open), the engine sends no user's request but one probe per interval, and
//! when an answer shows Livefyre working again it resumes every waiting user at once.
//!
//! Pure: the engine hands in each answer's [`HostSignal`] and the time, and acts on the
//! [`Change`] it gets back.

use std::time::Duration;

use tokio::time::Instant;

use super::later;
use super::policy::{HostSignal, OutageRules};

/// Why delivery to the whole host is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseReason {
    /// Livefyre answered 403: the network key or name is wrong.
    Unauthorized,
    /// Livefyre could not be reached: the circuit is open.
    Unreachable,
}

/// What an answer changed, for the engine to tell and act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing to tell.
    None,
    /// A 403 started a pause (`entering`) or refused a probe again.
    Unauthorized { entering: bool },
    /// The circuit opened: the first probe follows after `probe_in`.
    Opened { probe_in: Duration },
    /// A pause ended after `paused_for`: release the waiting users.
    Resumed {
        reason: PauseReason,
        paused_for: Duration,
    },
}

/// What the engine may send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not paused: users' requests, within the limits.
    Deliver,
    /// Paused: one probe now.
    Probe,
    /// Paused: the next probe is due then.
    WaitUntil(Instant),
    /// Paused, and a request is still out: wait for its answer.
    Idle,
}

/// The pause, if any, and the failures in a row that may start one.
#[derive(Debug)]
pub(crate) struct HostPause {
    /// Between probes in a 403 pause.
    probe_every: Duration,
    outage: OutageRules,
    paused: Option<Paused>,
    streak: FailureStreak,
}

#[derive(Debug)]
struct Paused {
    reason: PauseReason,
    since: Instant,
    next_probe: Instant,
    /// The wait after the last probe; doubles after each failed outage probe.
    interval: Duration,
    probe_in_flight: bool,
}

/// The users whose attempts failed in a row, with no answer from Livefyre between them.
/// Only different users count: a few users failing again and again keep their own
/// schedules, which are gentler than probing.
#[derive(Debug, Default)]
struct FailureStreak {
    users: Vec<String>,
}

impl FailureStreak {
    /// Counts a failure for `user`; `true` once `threshold` different users failed.
    fn failed(&mut self, user: &str, threshold: u32) -> bool {
        if !self.users.iter().any(|u| u == user) {
            self.users.push(user.to_owned());
        }
        self.users.len() >= threshold as usize
    }

    fn reset(&mut self) {
        self.users.clear();
    }
}

impl HostPause {
    pub(crate) fn new(probe_every: Duration, outage: OutageRules) -> Self {
        Self {
            probe_every,
            outage,
            paused: None,
            streak: FailureStreak::default(),
        }
    }

    /// Why delivery is paused, if it is.
    pub(crate) fn reason(&self) -> Option<PauseReason> {
        self.paused.as_ref().map(|p| p.reason)
    }

    /// What may be sent at `now` with `in_flight` requests out.
    pub(crate) fn gate(&self, now: Instant, in_flight: usize) -> Gate {
        match &self.paused {
            None => Gate::Deliver,
            Some(p) if p.probe_in_flight || in_flight > 0 => Gate::Idle,
            Some(p) if now < p.next_probe => Gate::WaitUntil(p.next_probe),
            Some(_) => Gate::Probe,
        }
    }

    /// A probe was sent.
    pub(crate) fn probe_sent(&mut self) {
        if let Some(paused) = &mut self.paused {
            paused.probe_in_flight = true;
        }
    }

    /// Takes in what an answer (`probe`: the probe's) for `user` said about Livefyre.
    pub(crate) fn observe(
        &mut self,
        user: &str,
        signal: HostSignal,
        probe: bool,
        now: Instant,
    ) -> Change {
        if probe && let Some(paused) = &mut self.paused {
            paused.probe_in_flight = false;
        }
        if matches!(
            signal,
            HostSignal::Accepted | HostSignal::Answered | HostSignal::Refused
        ) {
            self.streak.reset();
        }
        let reason = self.reason();
        match (signal, reason) {
            (HostSignal::Refused, Some(PauseReason::Unauthorized)) => {
                self.pause(PauseReason::Unauthorized, self.probe_every, now);
                if probe {
                    Change::Unauthorized { entering: false }
                } else {
                    Change::None
                }
            }
            (HostSignal::Refused, _) => {
                self.pause(PauseReason::Unauthorized, self.probe_every, now);
                Change::Unauthorized { entering: true }
            }
            (HostSignal::Accepted, Some(reason))
            | (HostSignal::Answered, Some(reason @ PauseReason::Unreachable)) => {
                let since = self.paused.take().map_or(now, |p| p.since);
                Change::Resumed {
                    reason,
                    paused_for: now.saturating_duration_since(since),
                }
            }
            (HostSignal::Unreachable, None) => {
                if !self.streak.failed(user, self.outage.threshold) {
                    return Change::None;
                }
                self.streak.reset();
                let probe_in = self.outage.first_probe;
                self.pause(PauseReason::Unreachable, probe_in, now);
                Change::Opened { probe_in }
            }
            (_, Some(_)) if probe => {
                self.probe_failed(signal, now);
                Change::None
            }
            _ => Change::None,
        }
    }

    /// Starts (or keeps) a pause for `reason` with the next probe `interval` from `now`.
    fn pause(&mut self, reason: PauseReason, interval: Duration, now: Instant) {
        let since = match &self.paused {
            Some(paused) => paused.since,
            None => now,
        };
        self.paused = Some(Paused {
            reason,
            since,
            next_probe: later(now, interval),
            interval,
            probe_in_flight: false,
        });
    }

    /// A probe did not end the pause: the next one follows after the interval, doubled
    /// (up to the longest) while Livefyre stays unreachable.
    fn probe_failed(&mut self, signal: HostSignal, now: Instant) {
        let longest = self.outage.longest_probe;
        if let Some(paused) = &mut self.paused {
            if paused.reason == PauseReason::Unreachable && signal == HostSignal::Unreachable {
                paused.interval = paused.interval.saturating_mul(2).min(longest);
            }
            paused.next_probe = later(now, paused.interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn rules(threshold: u32, first: u64, longest: u64) -> HostPause {
        HostPause::new(
            Duration::from_secs(60),
            OutageRules {
                threshold,
                first_probe: Duration::from_secs(first),
                longest_probe: Duration::from_secs(longest),
            },
        )
    }

    /// Fails `n` attempts, for users u0, u1, ... in turn; the last change.
    fn fail_users(pause: &mut HostPause, n: u32, now: Instant) -> Change {
        (0..n)
            .map(|i| pause.observe(&format!("u{i}"), HostSignal::Unreachable, false, now))
            .last()
            .unwrap_or(Change::None)
    }

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row() {
        let now = Instant::now();
        let mut pause = rules(3, 1, 30);
        assert_eq!(fail_users(&mut pause, 2, now), Change::None);
        assert_eq!(pause.gate(now, 0), Gate::Deliver);
        assert_eq!(
            pause.observe("u2", HostSignal::Unreachable, false, now),
            Change::Opened { probe_in: SECOND }
        );
        assert_eq!(pause.reason(), Some(PauseReason::Unreachable));
        assert_eq!(pause.gate(now, 0), Gate::WaitUntil(now + SECOND));
        assert_eq!(
            pause.gate(now + SECOND, 1),
            Gate::Idle,
            "a straggler is out"
        );
        assert_eq!(pause.gate(now + SECOND, 0), Gate::Probe);
    }

    #[test]
    fn an_answer_from_livefyre_breaks_the_streak() {
        let now = Instant::now();
        let mut pause = rules(3, 1, 30);
        fail_users(&mut pause, 2, now);
        pause.observe("x", HostSignal::Answered, false, now);
        assert_eq!(fail_users(&mut pause, 2, now), Change::None);
        // A 429 neither counts nor breaks it.
        pause.observe("x", HostSignal::Busy, false, now);
        assert!(matches!(
            pause.observe("u9", HostSignal::Unreachable, false, now),
            Change::Opened { .. }
        ));
    }

    #[test]
    fn a_4xx_answer_resets_the_count_of_failures() {
        let now = Instant::now();
        let mut pause = rules(3, 1, 30);
        fail_users(&mut pause, 2, now);
        // A 404 for some user: Livefyre is there, so the users before it no longer count.
        assert_eq!(
            pause.observe("x", HostSignal::Answered, false, now),
            Change::None
        );
        for user in ["v0", "v1"] {
            assert_eq!(
                pause.observe(user, HostSignal::Unreachable, false, now),
                Change::None,
                "{user}"
            );
        }
        assert_eq!(pause.reason(), None);
        assert!(matches!(
            pause.observe("v2", HostSignal::Unreachable, false, now),
            Change::Opened { .. }
        ));
    }

    #[test]
    fn fewer_users_than_the_threshold_failing_again_and_again_do_not_open_it() {
        let now = Instant::now();
        let mut pause = rules(3, 1, 30);
        for _ in 0..20 {
            for user in ["a", "b"] {
                pause.observe(user, HostSignal::Unreachable, false, now);
            }
        }
        assert_eq!(pause.reason(), None);
        assert!(matches!(
            pause.observe("c", HostSignal::Unreachable, false, now),
            Change::Opened { .. }
        ));
    }

    #[test]
    fn failed_probes_double_the_interval_up_to_the_longest() {
        let mut now = Instant::now();
        let mut pause = rules(2, 1, 5);
        fail_users(&mut pause, 2, now);
        let mut waits = Vec::new();
        for _ in 0..5 {
            let Gate::WaitUntil(at) = pause.gate(now, 0) else {
                panic!("not waiting")
            };
            waits.push((at - now).as_secs());
            now = at;
            pause.probe_sent();
            assert_eq!(pause.gate(now, 0), Gate::Idle);
            pause.observe("u0", HostSignal::Unreachable, true, now);
        }
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn an_answer_ends_an_outage_and_tells_how_long_it_lasted() {
        let start = Instant::now();
        let mut pause = rules(2, 1, 1);
        fail_users(&mut pause, 2, start);
        pause.probe_sent();
        let back = start + Duration::from_secs(42);
        assert_eq!(
            pause.observe("u0", HostSignal::Answered, true, back),
            Change::Resumed {
                reason: PauseReason::Unreachable,
                paused_for: Duration::from_secs(42)
            }
        );
        assert_eq!(pause.gate(back, 0), Gate::Deliver);
    }

    #[test]
    fn a_busy_probe_keeps_the_circuit_open() {
        let now = Instant::now();
        let mut pause = rules(2, 1, 30);
        fail_users(&mut pause, 2, now);
        pause.probe_sent();
        assert_eq!(
            pause.observe("u0", HostSignal::Busy, true, now + SECOND),
            Change::None
        );
        assert_eq!(
            pause.gate(now + SECOND, 0),
            Gate::WaitUntil(now + SECOND * 2)
        );
    }

    #[test]
    fn a_403_pause_ends_only_with_a_2xx() {
        let now = Instant::now();
        let mut pause = rules(2, 1, 1);
        assert_eq!(
            pause.observe("u0", HostSignal::Refused, false, now),
            Change::Unauthorized { entering: true }
        );
        let probe_at = now + Duration::from_secs(60);
        assert_eq!(pause.gate(now, 0), Gate::WaitUntil(probe_at));
        pause.probe_sent();
        assert_eq!(
            pause.observe("u0", HostSignal::Answered, true, probe_at),
            Change::None
        );
        assert_eq!(pause.reason(), Some(PauseReason::Unauthorized));
        pause.probe_sent();
        assert_eq!(
            pause.observe("u0", HostSignal::Refused, true, probe_at),
            Change::Unauthorized { entering: false }
        );
        assert!(matches!(
            pause.observe("u0", HostSignal::Accepted, true, probe_at),
            Change::Resumed {
                reason: PauseReason::Unauthorized,
                ..
            }
        ));
    }

    #[test]
    fn a_403_while_unreachable_turns_the_pause_into_a_403_pause() {
        let now = Instant::now();
        let mut pause = rules(2, 1, 1);
        fail_users(&mut pause, 2, now);
        pause.probe_sent();
        assert_eq!(
            pause.observe("u0", HostSignal::Refused, true, now),
            Change::Unauthorized { entering: true }
        );
        assert_eq!(pause.reason(), Some(PauseReason::Unauthorized));
        assert_eq!(
            pause.gate(now, 0),
            Gate::WaitUntil(now + Duration::from_secs(60))
        );
    }
}
