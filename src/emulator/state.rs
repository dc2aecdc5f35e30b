//! What the emulator remembers: remote profiles, the last pull of each user, recent
//! events, the registered Pull URL and the queue of pulls to make.

use std::collections::{HashSet, VecDeque};
use std::time::SystemTime;

use super::kept::{KeptEvents, KeptUsers};
use super::records::{EmulatorEvent, PullRecord};
use crate::Profile;
use crate::clock::unix_seconds;
use crate::template::PullUrlTemplate;

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
