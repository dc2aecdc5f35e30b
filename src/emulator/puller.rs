//! The emulator's pull worker: GETs the registered Pull URL for each queued user with a
//! system token, checks the signature, reads the profile tolerantly, and records it.
//! A failed pull is logged at WARN, at most once a minute for each kind of failure (a wrong
//! key makes every pull fail alike), with how many were left out; a success at DEBUG.

use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use tracing::Level;

use super::Shared;
use super::records::PullRecord;
use super::state::now;
use crate::Profile;
use crate::http::{FetchError, Fetched, HttpClient};
use crate::profile::{
    blames_the_profile, read_tolerant, read_unservable, verify_signature_headers,
};
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};

/// Profiles larger than this are refused (a full one is under 1 KiB).
const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// One worker: takes queued users one at a time; several run side by side.
pub(super) async fn run(shared: Arc<Shared>) {
    let client = HttpClient::new();
    loop {
        let next = {
            let work = shared.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            let next = shared.state().next_pull();
            match next {
                Some(user) => user,
                None => {
                    work.await;
                    continue;
                }
            }
        };
        let (record, profile) = pull(&shared, &client, &next).await;
        shared.pull_log.log(&next, &record, SystemTime::now());
        shared.state().record_pull(&next, record, profile);
        shared.changed.notify_waiters();
        // Another worker may be needed for what queued meanwhile.
        shared.work.notify_one();
    }
}

/// Pulls one user, retrying 5xx, timeouts and connection errors; not a 500 that says the
/// profile is invalid (docs/protocol.md §6), which another pull seconds later would only
/// get again.
async fn pull(
    shared: &Shared,
    client: &HttpClient,
    user_id: &str,
) -> (PullRecord, Option<Profile>) {
    let template = shared.state().pull_url.clone();
    let Some(template) = template else {
        return (failure(None, "no Pull URL registered", None, 0), None);
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let lftoken = shared.token.get(&shared.network);
        let url = template.url_for(user_id, lftoken.as_str());
        let fetched = client
            .fetch(Method::GET, &url, shared.pull_timeout, MAX_PROFILE_BYTES)
            .await;
        let retryable = match &fetched {
            Ok(answer) => answer.status.is_server_error() && !invalid_profile(answer),
            Err(FetchError::Timeout | FetchError::Failed(_)) => true,
            Err(FetchError::TooLarge) => false,
        };
        if retryable && attempts < shared.max_pull_attempts {
            tokio::time::sleep(shared.pull_retries.delay(attempts)).await;
            continue;
        }
        return match fetched {
            Ok(answer) => judge(shared, user_id, &answer, attempts),
            Err(error) => (failure(None, &error.to_string(), None, attempts), None),
        };
    }
}

/// A 500 whose body lists what is wrong with the profile: the profile's fault, not a
/// passing one of the server's.
fn invalid_profile(answer: &Fetched) -> bool {
    answer.status == http::StatusCode::INTERNAL_SERVER_ERROR && blames_the_profile(&answer.body)
}

/// What Livefyre made of a final answer: a 2xx with a good signature (if any) and a
/// profile it can read, or the reason it failed.
fn judge(
    shared: &Shared,
    user_id: &str,
    answer: &Fetched,
    attempts: u32,
) -> (PullRecord, Option<Profile>) {
    let status = Some(answer.status.as_u16());
    if !answer.status.is_success() {
        let mut reason = format!("the Pull endpoint answered {}", answer.status);
        // A 500 may say why the profile could not be served (docs/protocol.md §6).
        if answer.status == http::StatusCode::INTERNAL_SERVER_ERROR
            && let Some(why) = read_unservable(&answer.body)
        {
            reason.push_str(": ");
            reason.push_str(&why);
        }
        return (failure(status, &reason, None, attempts), None);
    }
    // During a key rotation the endpoint lists a signature per key: one that verifies
    // with the key Livefyre holds is enough.
    let signature_verified =
        verify_signature_headers(&shared.network, &answer.headers, &answer.body)
            .map(|verified| verified.is_ok());
    if signature_verified == Some(false) {
        let reason = "X-Profile-Signature does not match the body and network key";
        return (failure(status, reason, signature_verified, attempts), None);
    }
    match read_tolerant(&answer.body, Some(user_id)) {
        Ok(profile) => (
            PullRecord {
                at: now(),
                status,
                ok: true,
                error: None,
                signature_verified,
                attempts,
            },
            Some(profile),
        ),
        Err(error) => (
            failure(status, &error.to_string(), signature_verified, attempts),
            None,
        ),
    }
}

fn failure(
    status: Option<u16>,
    error: &str,
    signature_verified: Option<bool>,
    attempts: u32,
) -> PullRecord {
    PullRecord {
        at: now(),
        status,
        ok: false,
        error: Some(error.to_owned()),
        signature_verified,
        attempts,
    }
}

/// Why a pull failed, as an operator would fix it; one log throttle each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    NotRegistered,
    Unreachable,
    Refused,
    OtherStatus,
    BadSignature,
    InvalidProfile,
}

impl FailureKind {
    const ALL: [Self; 6] = [
        Self::NotRegistered,
        Self::Unreachable,
        Self::Refused,
        Self::OtherStatus,
        Self::BadSignature,
        Self::InvalidProfile,
    ];

    fn of(record: &PullRecord) -> Self {
        match record.status {
            None if record.attempts == 0 => Self::NotRegistered,
            None => Self::Unreachable,
            Some(403) => Self::Refused,
            Some(status) if !(200..300).contains(&status) => Self::OtherStatus,
            Some(_) if record.signature_verified == Some(false) => Self::BadSignature,
            Some(_) => Self::InvalidProfile,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::Unreachable => "unreachable",
            Self::Refused => "refused",
            Self::OtherStatus => "status",
            Self::BadSignature => "bad_signature",
            Self::InvalidProfile => "invalid_profile",
        }
    }

    /// What to look at first.
    fn hint(self) -> &'static str {
        match self {
            Self::NotRegistered => "register the Pull URL (POST / or --pull-url)",
            Self::Unreachable => {
                "no answer from the registered URL: is the Pull endpoint running there?"
            }
            Self::Refused => "the endpoint refused the token: does it use this network and key?",
            Self::OtherStatus => "the endpoint did not answer 200",
            Self::BadSignature => "the endpoint signs with another key",
            Self::InvalidProfile => "the endpoint answered a profile Livefyre cannot read",
        }
    }
}

/// The emulator's log of pulls: one throttle per [`FailureKind`].
#[derive(Debug)]
pub(super) struct PullLog {
    throttles: [LogThrottle; FailureKind::ALL.len()],
}

impl PullLog {
    pub(super) fn new() -> Self {
        Self {
            throttles: FailureKind::ALL.map(|_| LogThrottle::new(ONCE_A_MINUTE)),
        }
    }

    /// Logs one pull's outcome at `now`.
    fn log(&self, user_id: &str, record: &PullRecord, now: SystemTime) {
        let error = record.error.as_deref().unwrap_or("");
        if record.ok {
            tracing::event!(target: "pingpull::emulator", Level::DEBUG, user_id, status = record.status, attempts = record.attempts, "pull succeeded");
            return;
        }
        let kind = FailureKind::of(record);
        let index = FailureKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        if let Some(suppressed) = self.throttles[index].allow(now) {
            tracing::event!(target: "pingpull::emulator", Level::WARN, user_id, kind = kind.name(), status = record.status, error, attempts = record.attempts, suppressed, "pull failed: {}", kind.hint());
        } else {
            tracing::event!(target: "pingpull::emulator", Level::DEBUG, user_id, kind = kind.name(), status = record.status, error, "pull failed");
        }
    }
}
