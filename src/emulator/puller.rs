//! The emulator's pull worker: GETs the registered Pull URL for each queued user with a
//! system token, checks the signature, reads the profile tolerantly, and records it.

use std::sync::Arc;

use http::Method;
use tracing::Level;

use super::Shared;
use super::state::{PullRecord, now};
use crate::Profile;
use crate::http_client::{FetchError, Fetched, HttpClient};
use crate::profile::{SIGNATURE_HEADER, read_tolerant, verify_body_signature};

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
        tracing::event!(
            target: "pingpull::emulator",
            Level::DEBUG,
            user_id = next.as_str(),
            ok = record.ok,
            status = record.status,
            error = record.error.as_deref().unwrap_or(""),
            "pull"
        );
        shared.state().record_pull(&next, record, profile);
        shared.changed.notify_waiters();
        // Another worker may be needed for what queued meanwhile.
        shared.work.notify_one();
    }
}

/// Pulls one user, retrying 5xx, timeouts and connection errors.
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
            Ok(answer) => answer.status.is_server_error(),
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
        let reason = format!("the Pull endpoint answered {}", answer.status);
        return (failure(status, &reason, None, attempts), None);
    }
    let signature_verified = answer.headers.get(SIGNATURE_HEADER).map(|value| {
        value
            .to_str()
            .ok()
            .is_some_and(|v| verify_body_signature(&shared.network, v, &answer.body).is_ok())
    });
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
