//! The delivery policy: what one answer from Livefyre means for the user it concerned.
//! Pure: no I/O, no clock, no randomness (the engine hands in the jitter).

use std::time::Duration;

use super::events::Failure;
use super::reply::Reply;
use super::retry::RetrySchedule;
use super::store::Outcome;

/// The rules an engine delivers by.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) schedule: RetrySchedule,
    /// After a 403, one probe this often until a ping is accepted.
    pub(crate) probe_every: Duration,
    /// When Livefyre counts as unreachable, and how often it is probed then.
    pub(crate) outage: OutageRules,
}

/// When the engine stops sending users' requests because Livefyre cannot be reached,
/// and how it finds out that Livefyre is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutageRules {
    /// Different users whose attempts failed in a row (no answer from Livefyre in
    /// between) that open the circuit.
    pub(crate) threshold: u32,
    /// The first probe follows this long after the circuit opened.
    pub(crate) first_probe: Duration,
    /// Each failed probe doubles the wait for the next, up to this.
    pub(crate) longest_probe: Duration,
}

/// What one answer says about Livefyre as a whole, whichever user it concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostSignal {
    /// 2xx: Livefyre is there and accepts pings.
    Accepted,
    /// 403: Livefyre is there and refuses our network key or name.
    Refused,
    /// Another 4xx (but 408 and 429): Livefyre is there; the answer concerns the user.
    Answered,
    /// 408 or 429: Livefyre is there but asks us to slow down; it neither proves nor
    /// disproves that delivery works.
    Busy,
    /// A 5xx, a timeout or a connection error: Livefyre, or the way to it, is down.
    Unreachable,
}

impl HostSignal {
    /// Reads `reply` for what it says about the host.
    pub(crate) fn of(reply: &Reply) -> Self {
        match reply {
            Reply::Status(status, _) if status.is_success() => Self::Accepted,
            Reply::Status(status, _) => match status.as_u16() {
                403 => Self::Refused,
                408 | 429 => Self::Busy,
                500.. => Self::Unreachable,
                _ => Self::Answered,
            },
            Reply::TimedOut | Reply::Failed(_) => Self::Unreachable,
        }
    }
}

impl Policy {
    /// Classifies the answer to attempt `attempt_no` (1-based) of one user. `jitter` in
    /// `0..1` spreads a scheduled retry (0.5: none); a server's `Retry-After` is not spread.
    ///
    /// 2xx delivered; 403 a configuration fault (hold, probe); 408, 429, 5xx, timeouts and
    /// connection errors passing faults (retry); any other status permanent (give up).
    pub(crate) fn classify(&self, reply: Reply, attempt_no: u32, jitter: f64) -> Outcome {
        let retry = |retry_after: Option<Duration>, failure: Failure| {
            let delay = match retry_after {
                Some(after) => self.schedule.clamp_retry_after(after),
                None => self.schedule.jittered_delay(attempt_no, jitter),
            };
            Outcome::RetryAfter(delay, failure)
        };
        match reply {
            Reply::Status(status, _) if status.is_success() => Outcome::Delivered,
            Reply::Status(status, _) if status.as_u16() == 403 => Outcome::Hold(self.probe_every),
            Reply::Status(status, retry_after)
                if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() =>
            {
                retry(retry_after, Failure::Status(status.as_u16()))
            }
            Reply::Status(status, _) => Outcome::GiveUp(Failure::Status(status.as_u16())),
            Reply::TimedOut => retry(None, Failure::Timeout),
            Reply::Failed(message) => retry(None, Failure::Connection(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn policy() -> Policy {
        Policy {
            schedule: RetrySchedule::new([Duration::from_secs(1), Duration::from_secs(10)])
                .jitter(0.2)
                .max_retry_after(Duration::from_secs(60)),
            probe_every: Duration::from_secs(30),
            outage: OutageRules {
                threshold: 10,
                first_probe: Duration::from_secs(1),
                longest_probe: Duration::from_secs(1),
            },
        }
    }

    fn status(code: u16) -> Reply {
        Reply::Status(StatusCode::from_u16(code).unwrap(), None)
    }

    #[test]
    fn every_2xx_is_delivered() {
        for code in [200, 202, 204] {
            assert_eq!(policy().classify(status(code), 1, 0.5), Outcome::Delivered);
        }
    }

    #[test]
    fn forbidden_holds_the_user_until_the_next_probe() {
        assert_eq!(
            policy().classify(status(403), 3, 0.5),
            Outcome::Hold(Duration::from_secs(30))
        );
    }

    #[test]
    fn passing_faults_retry_on_the_schedule_with_jitter() {
        let policy = policy();
        for code in [408, 429, 500, 503] {
            assert_eq!(
                policy.classify(status(code), 1, 0.5),
                Outcome::RetryAfter(Duration::from_secs(1), Failure::Status(code))
            );
        }
        assert_eq!(
            policy.classify(Reply::TimedOut, 2, 1.0),
            Outcome::RetryAfter(Duration::from_secs(12), Failure::Timeout)
        );
        assert_eq!(
            policy.classify(Reply::Failed("refused".into()), 5, 0.0),
            Outcome::RetryAfter(
                Duration::from_secs(8),
                Failure::Connection("refused".into())
            )
        );
    }

    #[test]
    fn retry_after_is_obeyed_unspread_and_clamped() {
        let policy = policy();
        let asked = |secs| {
            let reply = Reply::Status(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(secs)),
            );
            policy.classify(reply, 1, 0.0)
        };
        assert_eq!(
            asked(7),
            Outcome::RetryAfter(Duration::from_secs(7), Failure::Status(429))
        );
        assert_eq!(
            asked(7200),
            Outcome::RetryAfter(Duration::from_secs(60), Failure::Status(429))
        );
    }

    #[test]
    fn other_client_errors_give_up() {
        for code in [400, 401, 404, 410, 422] {
            assert_eq!(
                policy().classify(status(code), 1, 0.5),
                Outcome::GiveUp(Failure::Status(code))
            );
        }
    }

    #[test]
    fn what_an_answer_says_about_the_host() {
        let signal = |code| HostSignal::of(&status(code));
        assert_eq!(signal(200), HostSignal::Accepted);
        assert_eq!(signal(204), HostSignal::Accepted);
        assert_eq!(signal(403), HostSignal::Refused);
        for code in [400, 401, 404, 410] {
            assert_eq!(signal(code), HostSignal::Answered, "{code}");
        }
        assert_eq!(signal(408), HostSignal::Busy);
        assert_eq!(signal(429), HostSignal::Busy);
        for code in [500, 502, 503, 504] {
            assert_eq!(signal(code), HostSignal::Unreachable, "{code}");
        }
        assert_eq!(HostSignal::of(&Reply::TimedOut), HostSignal::Unreachable);
        let refused = Reply::Failed("connection refused".into());
        assert_eq!(HostSignal::of(&refused), HostSignal::Unreachable);
    }
}
