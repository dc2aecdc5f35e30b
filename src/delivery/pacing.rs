//! Pacing: how fast the engine may send once Livefyre has answered 429 (Too Many
//! Requests). A 429 speaks for the whole host, not only for the user it answered, so the
//! engine slows down as a whole, AIMD-like:
//!
//! - a 429 halves the allowed rate, once per round: the 429s of requests sent before the
//!   cut (already on their way) do not cut it again. Its user waits its `Retry-After` (or,
//!   without one, an interval at the new pace) as before;
//! - once the pace is down to [`SLOWEST`] (429s that keep coming), a 429 holds every
//!   request back for its `Retry-After`, as a storm calls for;
//! - each request Livefyre then accepts raises the allowed rate by an eighth (by one
//!   request a second at least): once the 429s stop, the pace doubles about every
//!   second, faster as it grows;
//! - pacing ends when the rate is back to what was being sent when the first 429 came.
//!
//! A passing 429 here and there (a few in a hundred) thus costs a short dip, never a
//! stall; a storm of them brings the engine down to one request a second (or one per
//! `Retry-After`), which finds out within about that long that the 429s have stopped.
//! Pure: the engine hands in each start and answer with the time, and asks when the next
//! request may start.

use std::time::Duration;

use tokio::time::Instant;

use super::later;

/// While paced, at least this many requests a second (when no `Retry-After` holds them).
pub(crate) const SLOWEST: f64 = 1.0;

/// Each accepted request raises the allowed rate by this share of it (at least by one
/// request a second). The rate shrinks only if more than one answer in five is a 429
/// (a cut halves it; an eighth up per answer taken balances it at two 429s in ten), so
/// passing 429s leave the pace near what it was.
const RAMP_DIVISOR: f64 = 8.0;

/// What one answer says about the pace Livefyre can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaceSignal {
    /// 429: too fast; its `Retry-After`, if it had one (already clamped).
    TooFast(Option<Duration>),
    /// Livefyre took the request (2xx, or another 4xx about the user).
    Taken,
    /// Tells nothing about the pace (5xx, 403, 408, a timeout, a connection error).
    Neutral,
}

/// A request's place in the order of starts, to tell whether its 429 was already
/// counted in a cut.
pub(crate) type Ticket = u64;

/// The pace, and what it was cut from.
#[derive(Debug)]
pub(crate) struct Pacing {
    /// Requests a second allowed while paced; `None`: not paced (no 429 lately).
    rate: Option<f64>,
    /// Pacing ends once the rate is back to this: the rate measured at the first 429.
    ceiling: f64,
    /// No request starts before this: the `Retry-After` of a 429 at the slowest pace.
    hold_until: Option<Instant>,
    /// While paced, the next request starts no earlier than this.
    next_start: Option<Instant>,
    /// Tickets up to this one were handed out before the last cut.
    cut_after: Ticket,
    issued: Ticket,
    meter: RateMeter,
}

/// Requests started in the current second and the one before: the rate being sent at.
#[derive(Debug)]
struct RateMeter {
    since: Option<Instant>,
    this_second: u32,
    last_second: u32,
}

impl RateMeter {
    fn started(&mut self, now: Instant) {
        self.roll(now);
        self.this_second = self.this_second.saturating_add(1);
    }

    fn roll(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= Duration::from_secs(1) {
            self.last_second = if elapsed >= Duration::from_secs(2) {
                0
            } else {
                self.this_second
            };
            self.this_second = 0;
            self.since = Some(now);
        }
    }

    /// Requests a second, roughly (the busier of the two seconds).
    fn rate(&mut self, now: Instant) -> f64 {
        self.roll(now);
        f64::from(self.this_second.max(self.last_second))
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            rate: None,
            ceiling: SLOWEST,
            hold_until: None,
            next_start: None,
            cut_after: 0,
            issued: 0,
            meter: RateMeter {
                since: None,
                this_second: 0,
                last_second: 0,
            },
        }
    }
}

impl Pacing {
    /// The allowed rate in requests a second while paced; `None` when not paced.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// When the next request may start, if not now: `None` lets it start at `now`.
    pub(crate) fn wait_until(&self, now: Instant) -> Option<Instant> {
        let at = self.hold_until.into_iter().chain(self.next_start).max()?;
        (at > now).then_some(at)
    }

    /// A request starts at `now`: its ticket, for its answer.
    pub(crate) fn started(&mut self, now: Instant) -> Ticket {
        self.meter.started(now);
        if let Some(rate) = self.rate {
            let from = self.next_start.map_or(now, |at| at.max(now));
            self.next_start = Some(later(from, interval(rate)));
        }
        self.issued += 1;
        self.issued
    }

    /// Takes in the answer at `now` to the request with `ticket`. For a 429, returns how
    /// long its user waits: its `Retry-After`, or one interval at the new pace.
    pub(crate) fn observe(
        &mut self,
        signal: PaceSignal,
        ticket: Ticket,
        now: Instant,
    ) -> Option<Duration> {
        match signal {
            PaceSignal::TooFast(retry_after) => Some(self.too_fast(retry_after, ticket, now)),
            PaceSignal::Taken => {
                self.taken();
                None
            }
            PaceSignal::Neutral => None,
        }
    }

    fn too_fast(
        &mut self,
        retry_after: Option<Duration>,
        ticket: Ticket,
        now: Instant,
    ) -> Duration {
        if ticket > self.cut_after {
            let from = match self.rate {
                Some(rate) => rate,
                None => {
                    let measured = self.meter.rate(now).max(SLOWEST);
                    self.ceiling = measured;
                    measured
                }
            };
            // Already as slow as pacing goes, and still refused: a storm. Its Retry-After
            // holds everyone.
            if from <= SLOWEST
                && let Some(after) = retry_after
            {
                let until = later(now, after);
                self.hold_until = Some(self.hold_until.map_or(until, |at| at.max(until)));
            }
            let rate = (from / 2.0).max(SLOWEST);
            self.rate = Some(rate);
            self.cut_after = self.issued;
            // The new pace applies from now, not from a slot booked at the old one.
            self.next_start = Some(later(now, interval(rate)));
        }
        retry_after.unwrap_or_else(|| interval(self.rate.unwrap_or(SLOWEST)))
    }

    fn taken(&mut self) {
        let Some(rate) = self.rate else {
            return;
        };
        let rate = rate + (rate / RAMP_DIVISOR).max(1.0);
        if rate >= self.ceiling {
            self.rate = None;
            self.next_start = None;
        } else {
            self.rate = Some(rate);
        }
    }
}

/// Between two starts at `rate` requests a second.
fn interval(rate: f64) -> Duration {
    // `rate` is at least SLOWEST: the interval is at most a second.
    Duration::from_secs_f64(1.0 / rate.max(SLOWEST))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Starts `n` requests at `now`; their tickets.
    fn start(pacing: &mut Pacing, n: usize, now: Instant) -> Vec<Ticket> {
        (0..n).map(|_| pacing.started(now)).collect()
    }

    /// Cuts the pace down to the slowest, with 429s of requests started at `now`.
    fn down_to_the_slowest(pacing: &mut Pacing, now: Instant) {
        while pacing.rate() != Some(SLOWEST) {
            let ticket = pacing.started(now);
            pacing.observe(PaceSignal::TooFast(None), ticket, now);
        }
    }

    #[test]
    fn unpaced_until_a_429() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        for ticket in start(&mut pacing, 100, now) {
            assert_eq!(pacing.observe(PaceSignal::Taken, ticket, now), None);
        }
        assert_eq!(pacing.observe(PaceSignal::Neutral, 1, now), None);
        assert_eq!(pacing.rate(), None);
        assert_eq!(pacing.wait_until(now), None);
    }

    #[test]
    fn a_429_halves_the_measured_rate_and_its_user_waits_its_retry_after() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 40, now);
        let waits = pacing.observe(PaceSignal::TooFast(Some(SECOND * 3)), tickets[0], now);
        assert_eq!(waits, Some(SECOND * 3));
        assert_eq!(pacing.rate(), Some(20.0));
        // Others go on at the new pace: one every 50 ms.
        assert_eq!(pacing.wait_until(now), Some(now + ms(50)));
    }

    #[test]
    fn the_429s_of_one_round_cut_the_rate_once() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 16, now);
        for ticket in &tickets {
            pacing.observe(PaceSignal::TooFast(Some(SECOND)), *ticket, now);
        }
        assert_eq!(
            pacing.rate(),
            Some(8.0),
            "sent before the cut: counted once"
        );
        let after = now + SECOND;
        let ticket = pacing.started(after);
        pacing.observe(PaceSignal::TooFast(Some(SECOND)), ticket, after);
        assert_eq!(pacing.rate(), Some(4.0), "sent after it: a new round");
    }

    #[test]
    fn at_the_slowest_pace_a_429_holds_everyone_for_its_retry_after() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        start(&mut pacing, 8, now);
        down_to_the_slowest(&mut pacing, now);
        assert_eq!(pacing.wait_until(now), Some(now + SECOND));
        let ticket = pacing.started(now + SECOND);
        pacing.observe(PaceSignal::TooFast(Some(SECOND * 5)), ticket, now + SECOND);
        assert_eq!(pacing.wait_until(now + SECOND), Some(now + SECOND * 6));
        // A straggler's shorter Retry-After does not shorten the hold.
        pacing.observe(PaceSignal::TooFast(Some(SECOND)), ticket, now + SECOND * 2);
        assert_eq!(pacing.wait_until(now + SECOND * 2), Some(now + SECOND * 6));
    }

    #[test]
    fn without_retry_after_its_user_waits_one_interval_at_the_new_pace() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 8, now);
        assert_eq!(
            pacing.observe(PaceSignal::TooFast(None), tickets[0], now),
            Some(ms(250))
        );
        assert_eq!(pacing.wait_until(now), Some(now + ms(250)));
    }

    #[test]
    fn paced_requests_are_spaced_at_the_allowed_rate() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 8, now);
        pacing.observe(PaceSignal::TooFast(Some(SECOND)), tickets[0], now);
        // 4 a second: one start every 250 ms.
        let mut at = now;
        let mut starts = Vec::new();
        for _ in 0..4 {
            if let Some(wait) = pacing.wait_until(at) {
                at = wait;
            }
            starts.push(at - now);
            pacing.started(at);
        }
        assert_eq!(starts, [ms(250), ms(500), ms(750), ms(1000)]);
    }

    /// Requests started in 60 s of 429s (each with `retry_after`), after 1000 a second.
    fn storm(retry_after: Option<Duration>) -> usize {
        let mut now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 1000, now);
        pacing.observe(PaceSignal::TooFast(retry_after), tickets[0], now);
        let begin = now;
        let mut starts = 0;
        loop {
            now = pacing.wait_until(now).unwrap_or(now);
            if now - begin >= SECOND * 60 {
                return starts;
            }
            let ticket = pacing.started(now);
            starts += 1;
            pacing.observe(PaceSignal::TooFast(retry_after), ticket, now);
        }
    }

    #[test]
    fn a_storm_slows_to_one_request_a_second_or_one_per_retry_after() {
        // Halving from 500 a second takes 9 rounds (about a second): then one a second.
        let without = storm(None);
        assert!((60..=70).contains(&without), "{without} requests in 60 s");
        let with_one_second = storm(Some(SECOND));
        assert!((60..=70).contains(&with_one_second), "{with_one_second}");
        let with_five = storm(Some(SECOND * 5));
        assert!(
            (12..=22).contains(&with_five),
            "{with_five} requests in 60 s"
        );
    }

    #[test]
    fn accepted_requests_ramp_the_rate_back_up_then_pacing_ends() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        start(&mut pacing, 1000, now);
        down_to_the_slowest(&mut pacing, now);
        let mut at = now;
        let mut accepted = 0;
        while pacing.rate().is_some() {
            at = pacing.wait_until(at).unwrap_or(at);
            let ticket = pacing.started(at);
            pacing.observe(PaceSignal::Taken, ticket, at);
            accepted += 1;
        }
        // One a second more per answer up to 8 a second (7 answers, 2.6 s), then an eighth
        // more (41 answers, 1.1 s) to the 1000 a second measured: unpaced again within
        // five seconds of the first answer taken (a second after the last 429).
        assert_eq!(accepted, 49);
        assert!(at - now < SECOND * 5, "{:?}", at - now);
        assert_eq!(pacing.wait_until(at), None);
    }

    #[test]
    fn passing_429s_leave_the_pace_near_what_it_was() {
        let mut now = Instant::now();
        let mut pacing = Pacing::default();
        start(&mut pacing, 200, now);
        // One answer in twenty is a 429.
        let mut slowest: f64 = 200.0;
        for n in 0..2000 {
            now = pacing.wait_until(now).unwrap_or(now);
            let ticket = pacing.started(now);
            let signal = if n % 20 == 0 {
                PaceSignal::TooFast(Some(SECOND))
            } else {
                PaceSignal::Taken
            };
            pacing.observe(signal, ticket, now);
            slowest = slowest.min(pacing.rate().unwrap_or(200.0));
        }
        assert!(slowest >= 100.0, "down to {slowest} a second");
        assert_eq!(pacing.wait_until(now), None, "{:?}", pacing.rate());
    }

    #[test]
    fn neutral_answers_neither_cut_nor_ramp() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        let tickets = start(&mut pacing, 10, now);
        pacing.observe(PaceSignal::TooFast(None), tickets[0], now);
        let ticket = pacing.started(now + SECOND);
        pacing.observe(PaceSignal::Neutral, ticket, now + SECOND);
        assert_eq!(pacing.rate(), Some(5.0));
    }

    #[test]
    fn an_absurd_retry_after_does_not_overflow() {
        let now = Instant::now();
        let mut pacing = Pacing::default();
        down_to_the_slowest(&mut pacing, now);
        let ticket = pacing.started(now);
        pacing.observe(PaceSignal::TooFast(Some(Duration::MAX)), ticket, now);
        assert!(
            pacing
                .wait_until(now)
                .is_some_and(|at| at > now + SECOND * 86_400)
        );
    }
}
