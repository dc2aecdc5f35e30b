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
        let pulled = pull(&shared, &client, &next).await;
        shared
            .pull_log
            .log(&next, &pulled.record, pulled.failure, SystemTime::now());
        shared
            .state()
            .record_pull(&next, pulled.record, pulled.profile);
        shared.changed.notify_waiters();
        // Another worker may be needed for what queued meanwhile.
        shared.work.notify_one();
    }
}

/// Pulls one user, retrying 5xx, timeouts and connection errors; not a 500 that says the
/// profile is invalid (docs/protocol.md §6), which another pull seconds later would only
/// get again.
async fn pull(shared: &Shared, client: &HttpClient, user_id: &str) -> Pulled {
    let template = shared.state().pull_url.clone();
    let Some(template) = template else {
        return failed(
            FailureKind::NotRegistered,
            None,
            "no Pull URL registered",
            None,
            0,
        );
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
            Err(error) => failed(
                FailureKind::Unreachable,
                None,
                &error.to_string(),
                None,
                attempts,
            ),
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
fn judge(shared: &Shared, user_id: &str, answer: &Fetched, attempts: u32) -> Pulled {
    let status = Some(answer.status.as_u16());
    if !answer.status.is_success() {
        let kind = if answer.status == http::StatusCode::FORBIDDEN {
            FailureKind::Refused
        } else if invalid_profile(answer) {
            FailureKind::Unservable
        } else {
            FailureKind::OtherStatus
        };
        let mut reason = format!("the Pull endpoint answered {}", answer.status);
        // A 500 may say why the profile could not be served (docs/protocol.md §6).
        if answer.status == http::StatusCode::INTERNAL_SERVER_ERROR
            && let Some(why) = read_unservable(&answer.body)
        {
            reason.push_str(": ");
            reason.push_str(&why);
        }
        return failed(kind, status, &reason, None, attempts);
    }
    // During a key rotation the endpoint lists a signature per key: one that verifies
    // with the key Livefyre holds is enough.
    let signature_verified =
        verify_signature_headers(&shared.network, &answer.headers, &answer.body)
            .map(|verified| verified.is_ok());
    if signature_verified == Some(false) {
        let reason = "X-Profile-Signature does not match the body and network key";
        return failed(
            FailureKind::BadSignature,
            status,
            reason,
            signature_verified,
            attempts,
        );
    }
    match read_tolerant(&answer.body, Some(user_id)) {
        Ok(profile) => Pulled {
            record: PullRecord {
                at: now(),
                status,
                ok: true,
                error: None,
                signature_verified,
                attempts,
            },
            profile: Some(profile),
            failure: None,
        },
        Err(error) => failed(
            FailureKind::InvalidProfile,
            status,
            &error.to_string(),
            signature_verified,
            attempts,
        ),
    }
}

/// A pull's outcome: what is recorded, the profile if one is stored, and otherwise why
/// not, as the log tells it.
struct Pulled {
    record: PullRecord,
    profile: Option<Profile>,
    failure: Option<FailureKind>,
}

fn failed(
    kind: FailureKind,
    status: Option<u16>,
    error: &str,
    signature_verified: Option<bool>,
    attempts: u32,
) -> Pulled {
    Pulled {
        record: PullRecord {
            at: now(),
            status,
            ok: false,
            error: Some(error.to_owned()),
            signature_verified,
            attempts,
        },
        profile: None,
        failure: Some(kind),
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
    /// A 500 whose body lists the profile's violations: the endpoint would not serve it.
    Unservable,
}

impl FailureKind {
    const ALL: [Self; 7] = [
        Self::NotRegistered,
        Self::Unreachable,
        Self::Refused,
        Self::OtherStatus,
        Self::BadSignature,
        Self::InvalidProfile,
        Self::Unservable,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::Unreachable => "unreachable",
            Self::Refused => "refused",
            Self::OtherStatus => "status",
            Self::BadSignature => "bad_signature",
            Self::InvalidProfile => "invalid_profile",
            Self::Unservable => "unservable_profile",
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
            Self::Unservable => {
                "the endpoint would not serve the profile, which fails its validation: fix the data (the error names the fields)"
            }
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

    /// Logs one pull's outcome at `now`: `failure` is why it failed, if it did.
    fn log(
        &self,
        user_id: &str,
        record: &PullRecord,
        failure: Option<FailureKind>,
        now: SystemTime,
    ) {
        let error = record.error.as_deref().unwrap_or("");
        let Some(kind) = failure else {
            tracing::event!(target: "pingpull::emulator", Level::DEBUG, user_id, status = record.status, attempts = record.attempts, "pull succeeded");
            return;
        };
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
