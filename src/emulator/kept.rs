//! The users and events the emulator keeps, within bounds: at most `max_users` users
//! (the least recently pinged go first, in O(log n) per ping) and the last
//! [`EVENTS_KEPT`] events, each readable a page at a time from a cursor.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use super::records::{EmulatorEvent, RemoteUser};

/// How many events `/events` keeps.
pub(crate) const EVENTS_KEPT: usize = 1000;

/// A kept user and when it was last pinged.
struct Kept {
    user: RemoteUser,
    /// Its key in [`KeptUsers::by_recency`].
    touched: u64,
}

/// Users by id (for lookups and pages in id order) and by recency (for eviction).
pub(crate) struct KeptUsers {
    /// Boxed: a B-tree node holds eleven values and is often a third empty, which costs
    /// much more with a user's few hundred bytes inline than with a pointer.
    by_id: BTreeMap<String, Box<Kept>>,
    /// Oldest first: the first entry is the user to evict.
    by_recency: BTreeMap<u64, String>,
    /// The next recency stamp; grows with every ping.
    clock: u64,
    max_users: usize,
    evicted: u64,
}

impl Kept {
    fn new(id: &str) -> Self {
        Self {
            user: RemoteUser {
                id: id.to_owned(),
                profile: None,
                updated_at: None,
                pings: 0,
                last_pull: None,
                signature_verified: None,
                last_failure: None,
                pull_attempts: 0,
            },
            touched: 0,
        }
    }
}

impl KeptUsers {
    /// Keeps at most `max_users` (at least one).
    pub(crate) fn new(max_users: usize) -> Self {
        Self {
            by_id: BTreeMap::new(),
            by_recency: BTreeMap::new(),
            clock: 0,
            max_users: max_users.max(1),
            evicted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn max_users(&self) -> usize {
        self.max_users
    }

    /// Users evicted since the start.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    pub(crate) fn get(&self, id: &str) -> Option<&RemoteUser> {
        self.by_id.get(id).map(|kept| &kept.user)
    }

    /// The user `id`, now the most recently pinged; added (evicting the least recently
    /// pinged if full) if not kept.
    pub(crate) fn pinged(&mut self, id: &str) -> &mut RemoteUser {
        self.clock += 1;
        let stamp = self.clock;
        match self.by_id.get(id) {
            Some(kept) => {
                self.by_recency.remove(&kept.touched);
            }
            None => self.make_room(),
        }
        self.by_recency.insert(stamp, id.to_owned());
        let kept = self
            .by_id
            .entry(id.to_owned())
            .or_insert_with(|| Box::new(Kept::new(id)));
        kept.touched = stamp;
        &mut kept.user
    }

    /// The user `id` without touching its recency; added as most recent if it was
    /// evicted meanwhile (a pull that ends after its user was evicted).
    pub(crate) fn get_or_add(&mut self, id: &str) -> &mut RemoteUser {
        if !self.by_id.contains_key(id) {
            self.clock += 1;
            self.make_room();
            self.by_recency.insert(self.clock, id.to_owned());
        }
        let stamp = self.clock;
        let kept = self.by_id.entry(id.to_owned()).or_insert_with(|| {
            Box::new(Kept {
                touched: stamp,
                ..Kept::new(id)
            })
        });
        &mut kept.user
    }

    /// Evicts the least recently pinged users until one more fits.
    fn make_room(&mut self) {
        while self.by_id.len() >= self.max_users {
            let Some((_, oldest)) = self.by_recency.pop_first() else {
                return;
            };
            self.by_id.remove(&oldest);
            self.evicted += 1;
        }
    }

    /// Users in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &RemoteUser> {
        self.by_id.values().map(|kept| &kept.user)
    }

    /// Up to `limit` users with ids after `after`, in id order, and whether more follow.
    /// Ids only grow along a walk, so each user is seen at most once however users come
    /// and go, and every user kept throughout is seen.
    pub(crate) fn page_after(&self, after: Option<&str>, limit: usize) -> (Vec<RemoteUser>, bool) {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = self
            .by_id
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, kept)| &kept.user);
        let page: Vec<RemoteUser> = range.by_ref().take(limit).cloned().collect();
        let more = range.next().is_some();
        (page, more)
    }
}

/// The last [`EVENTS_KEPT`] events, each with its sequence number (from 1).
#[derive(Default)]
pub(crate) struct KeptEvents {
    events: VecDeque<EmulatorEvent>,
    /// The sequence number of the first kept event, once there is one.
    first: u64,
}

impl KeptEvents {
    pub(crate) fn push(&mut self, event: EmulatorEvent) {
        if self.events.is_empty() {
            self.first = self.first.max(1);
        }
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
            self.first += 1;
        }
        self.events.push_back(event);
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The sequence number of the latest event (0 before any).
    pub(crate) fn last(&self) -> u64 {
        (self.first + self.events.len() as u64).saturating_sub(1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &EmulatorEvent> {
        self.events.iter()
    }

    /// Up to `limit` events after sequence number `after` (0: from the oldest kept),
    /// oldest first, and the sequence number of the last of them (`after` if none);
    /// `None` if `after` is later than the latest event.
    pub(crate) fn page_after(&self, after: u64, limit: usize) -> Option<(Vec<EmulatorEvent>, u64)> {
        if after > self.last() {
            return None;
        }
        // Events already dropped are skipped: the page starts at the oldest kept.
        let start = (after + 1).max(self.first);
        let skip = usize::try_from(start - self.first).unwrap_or(usize::MAX);
        let page: Vec<_> = self.events.iter().skip(skip).take(limit).cloned().collect();
        let reached = if page.is_empty() {
            after
        } else {
            start + page.len() as u64 - 1
        };
        Some((page, reached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_pinged() {
        let mut users = KeptUsers::new(3);
        for id in ["a", "b", "c"] {
            users.pinged(id).pings += 1;
        }
        users.pinged("a");
        users.pinged("d");
        assert!(users.get("b").is_none());
        assert_eq!(users.evicted(), 1);
        users.get_or_add("c").pull_attempts += 1; // a pull does not refresh "c"
        users.pinged("e");
        assert!(users.get("c").is_none());
        let kept: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(kept, ["a", "d", "e"]);
        assert_eq!((users.len(), users.evicted()), (3, 2));
    }

    #[test]
    fn pages_in_id_order_after_the_cursor() {
        let mut users = KeptUsers::new(10);
        for id in ["c", "a", "b", "d"] {
            users.pinged(id);
        }
        let (page, more) = users.page_after(None, 2);
        assert_eq!(page.iter().map(|u| &u.id).collect::<Vec<_>>(), ["a", "b"]);
        assert!(more);
        let (page, more) = users.page_after(Some("b"), 2);
        assert_eq!(page.iter().map(|u| &u.id).collect::<Vec<_>>(), ["c", "d"]);
        assert!(!more);
        // The cursor's user may be gone: the walk goes on after its id.
        let (page, _) = users.page_after(Some("bb"), 10);
        assert_eq!(page.len(), 2);
    }

    #[test]
    fn events_page_from_a_sequence_number_and_skip_what_was_dropped() {
        let mut events = KeptEvents::default();
        assert_eq!(events.page_after(0, 10), Some((vec![], 0)));
        assert_eq!(events.page_after(1, 10), None);
        for n in 0..EVENTS_KEPT + 5 {
            events.push(EmulatorEvent::Registration {
                at: n as f64,
                status: 204,
            });
        }
        assert_eq!(events.last(), EVENTS_KEPT as u64 + 5);
        let at = |e: &EmulatorEvent| match e {
            EmulatorEvent::Registration { at, .. } => *at,
            _ => unreachable!(),
        };
        let (page, reached) = events.page_after(0, 2).unwrap();
        assert_eq!(page.iter().map(at).collect::<Vec<_>>(), [5.0, 6.0]);
        assert_eq!(reached, 7);
        let (page, reached) = events.page_after(EVENTS_KEPT as u64 + 3, 10).unwrap();
        assert_eq!((page.len(), reached), (2, events.last()));
        assert_eq!(events.page_after(reached, 10), Some((vec![], reached)));
        assert_eq!(events.page_after(events.last() + 1, 10), None);
    }
}
