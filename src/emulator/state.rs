//! What the emulator remembers: remote profiles, the last pull of each user, recent
//! events, the registered Pull URL and the queue of pulls to make.

use std::collections::{HashSet, VecDeque};
use std::time::SystemTime;

use serde::Serialize;

use super::kept::{KeptEvents, KeptUsers};
use crate::Profile;
use crate::clock::unix_seconds;
use crate::template::PullUrlTemplate;

/// A user as the emulator (Livefyre) knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RemoteUser {
    /// The user id.
    pub id: String,
    /// The remote profile: the last profile pulled successfully.
    pub profile: Option<Profile>,
    /// When `profile` was stored, in Unix seconds.
    pub updated_at: Option<f64>,
    /// Pings accepted for this user.
    pub pings: u64,
    /// The last pull, successful or not.
    pub last_pull: Option<PullRecord>,
    /// Whether `X-Profile-Signature` verified on the pull that stored `profile`; `None`
    /// if that answer was not signed or nothing is stored.
    pub signature_verified: Option<bool>,
    /// The latest pull that failed, kept after later successes.
    pub last_failure: Option<PullRecord>,
    /// Attempts of every pull of this user (a retried pull counts each attempt).
    pub pull_attempts: u64,
}

impl RemoteUser {
    /// Whether the last pull failed.
    pub fn failing(&self) -> bool {
        self.last_pull.as_ref().is_some_and(|pull| !pull.ok)
    }
}

/// How a pull ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PullRecord {
    /// When it ended, in Unix seconds.
    pub at: f64,
    /// The HTTP status of the last attempt, if one was answered.
    pub status: Option<u16>,
    /// Whether the profile was stored.
    pub ok: bool,
    /// Why not, if not.
    pub error: Option<String>,
    /// Whether `X-Profile-Signature` verified; `None` if absent.
    pub signature_verified: Option<bool>,
    /// Attempts made (5xx and timeouts are retried).
    pub attempts: u32,
}

/// Something that happened, as `GET /events` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EmulatorEvent {
    /// A ping was answered.
    Ping {
        /// The user pinged.
        user_id: String,
        /// Unix seconds.
        at: f64,
        /// The status answered.
        status: u16,
    },
    /// A Pull URL registration was answered.
    Registration {
        /// Unix seconds.
        at: f64,
        /// The status answered.
        status: u16,
    },
    /// A pull ended.
    Pull {
        /// The user pulled.
        user_id: String,
        /// Unix seconds.
        at: f64,
        /// The HTTP status, if answered.
        status: Option<u16>,
        /// Whether the profile was stored.
        ok: bool,
        /// Why not, if not.
        error: Option<String>,
    },
}

pub(crate) struct EmulatorState {
    pub(crate) users: KeptUsers,
    pub(crate) events: KeptEvents,
    pub(crate) pull_url: Option<PullUrlTemplate>,
    /// Users waiting for a pull, in order; each at most once.
    pub(crate) queue: VecDeque<String>,
    pub(crate) queued: HashSet<String>,
    /// Users whose pull is in progress; a ping for one queues another pull.
    pub(crate) pulling: HashSet<String>,
}

pub(crate) fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

impl EmulatorState {
    /// Empty, keeping at most `max_users` users.
    pub(crate) fn new(max_users: usize) -> Self {
        Self {
            users: KeptUsers::new(max_users),
            events: KeptEvents::default(),
            pull_url: None,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            pulling: HashSet::new(),
        }
    }

    pub(crate) fn event(&mut self, event: EmulatorEvent) {
        self.events.push(event);
    }

    /// Queues a pull for `id` unless one is already waiting. `false` if the queue is full.
    pub(crate) fn enqueue(&mut self, id: &str, max_queue: usize) -> bool {
        if self.queued.contains(id) {
            return true;
        }
        if self.queue.len() >= max_queue {
            return false;
        }
        self.queued.insert(id.to_owned());
        self.queue.push_back(id.to_owned());
        true
    }

    /// The next user to pull, now marked as being pulled.
    pub(crate) fn next_pull(&mut self) -> Option<String> {
        let id = self.queue.pop_front()?;
        self.queued.remove(&id);
        self.pulling.insert(id.clone());
        Some(id)
    }

    pub(crate) fn record_pull(&mut self, id: &str, record: PullRecord, profile: Option<Profile>) {
        self.pulling.remove(id);
        self.event(EmulatorEvent::Pull {
            user_id: id.to_owned(),
            at: record.at,
            status: record.status,
            ok: record.ok,
            error: record.error.clone(),
        });
        let user = self.users.get_or_add(id);
        user.pull_attempts += u64::from(record.attempts);
        if let Some(profile) = profile {
            user.profile = Some(profile);
            user.updated_at = Some(record.at);
            user.signature_verified = record.signature_verified;
        }
        if !record.ok {
            user.last_failure = Some(record.clone());
        }
        user.last_pull = Some(record);
    }
}
