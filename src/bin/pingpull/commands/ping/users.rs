//! The users `ping` was given: each once, in the order given, with what became of it.
//!
//! Laid out for a million users (an ordinary input): the ids one after another in one
//! string, a 4-byte number per user to find one by id, a byte for its fate and 4 bytes
//! naming its last failure among the distinct failures seen: about 10 bytes per user
//! beside its id, where a `String` and a set entry each would take ten times that.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead};

use hashbrown::HashTable;
use pingpull::ping::Failure;

/// What became of a user, as far as the command knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Not handed to the Pinger yet, or pending with no failed attempt seen.
    Waiting,
    /// Its latest attempt failed; another follows.
    Retrying,
    Delivered,
    /// Given up: Livefyre refused it (the failure is the user's last).
    Refused,
    /// Given up: its next retry would have come too late (after the deadline).
    TooOld,
    /// Given up, but the event that said why was read too late and missed.
    GivenUpUnknown,
    /// Still pending, or never handed to the Pinger, when the command stopped.
    Undelivered,
}

impl Fate {
    /// Whether the summary names the user as failed.
    pub(super) fn failed(self) -> bool {
        matches!(
            self,
            Self::Refused | Self::TooOld | Self::GivenUpUnknown | Self::Undelivered
        )
    }
}

/// No failure recorded for the user.
const NO_FAILURE: u32 = u32::MAX;

/// The users, numbered from 0 in the order first given.
pub(super) struct UserTable {
    /// Every id, one after another.
    text: String,
    /// Where each user's id ends in `text`.
    ends: Vec<u32>,
    /// Each user's number, found by hashing its id with `hasher`.
    index: HashTable<u32>,
    hasher: RandomState,
    fates: Vec<Fate>,
    /// Each user's last failure, in `failures` (`NO_FAILURE`: none).
    last_failure: Vec<u32>,
    /// The distinct failures seen: a million users failing alike share one.
    failures: Vec<Failure>,
    failure_numbers: HashMap<String, u32>,
}

impl UserTable {
    pub(super) fn new() -> Self {
        Self {
            text: String::new(),
            ends: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            fates: Vec::new(),
            last_failure: Vec::new(),
            failures: Vec::new(),
            failure_numbers: HashMap::new(),
        }
    }

    /// Adds `id` unless it was given before.
    ///
    /// # Errors
    ///
    /// When the ids add up to more than 4 GiB, or to more than 4 billion users.
    pub(super) fn add(&mut self, id: &str) -> Result<(), String> {
        let hash = self.hasher.hash_one(id);
        if self.find_hashed(hash, id).is_some() {
            return Ok(());
        }
        let too_many = || "more than 4 GiB of user ids: split the input".to_owned();
        let number = u32::try_from(self.ends.len())
            .ok()
            .filter(|n| *n != u32::MAX)
            .ok_or_else(too_many)?;
        let end = u32::try_from(self.text.len() + id.len()).map_err(|_| too_many())?;
        self.text.push_str(id);
        self.ends.push(end);
        self.fates.push(Fate::Waiting);
        self.last_failure.push(NO_FAILURE);
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.index.insert_unique(hash, number, |&n| {
            hasher.hash_one(id_in(text, ends, n as usize))
        });
        Ok(())
    }

    /// Adds the trimmed non-blank lines `input` reads, each once.
    ///
    /// # Errors
    ///
    /// A read error, a line that is not UTF-8, or too many ids (see [`add`](Self::add)).
    pub(super) fn add_lines(&mut self, mut input: impl BufRead) -> io::Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let text = std::str::from_utf8(&line).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            })?;
            let id = text.trim();
            if !id.is_empty() {
                self.add(id).map_err(io::Error::other)?;
            }
        }
    }

    /// Returns the spare capacity reading left, once every user is in.
    pub(super) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.fates.shrink_to_fit();
        self.last_failure.shrink_to_fit();
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// User `n`'s id.
    pub(super) fn id(&self, n: usize) -> &str {
        id_in(&self.text, &self.ends, n)
    }

    /// The ids, in order.
    pub(super) fn ids(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|n| self.id(n))
    }

    /// The number of the user with this id.
    pub(super) fn find(&self, id: &str) -> Option<usize> {
        self.find_hashed(self.hasher.hash_one(id), id)
    }

    fn find_hashed(&self, hash: u64, id: &str) -> Option<usize> {
        self.index
            .find(hash, |&n| self.id(n as usize) == id)
            .map(|&n| n as usize)
    }

    pub(super) fn fate(&self, n: usize) -> Fate {
        self.fates[n]
    }

    pub(super) fn set_fate(&mut self, n: usize, fate: Fate) {
        self.fates[n] = fate;
    }

    /// The fates, in the users' order.
    pub(super) fn fates(&self) -> &[Fate] {
        &self.fates
    }

    /// User `n`'s last failure, if one was recorded.
    pub(super) fn last_failure(&self, n: usize) -> Option<&Failure> {
        self.failures.get(self.last_failure[n] as usize)
    }

    /// Records `failure` as user `n`'s last.
    pub(super) fn set_last_failure(&mut self, n: usize, failure: Failure) {
        let key = failure.to_string();
        let number = match self.failure_numbers.get(&key) {
            Some(number) => *number,
            None => {
                // Fewer than 4 billion distinct failures, surely; past that, none is kept.
                let Ok(number) = u32::try_from(self.failures.len()) else {
                    return;
                };
                self.failures.push(failure);
                self.failure_numbers.insert(key, number);
                number
            }
        };
        self.last_failure[n] = number;
    }
}

fn id_in<'a>(text: &'a str, ends: &[u32], n: usize) -> &'a str {
    let start = n.checked_sub(1).map_or(0, |before| ends[before] as usize);
    &text[start..ends[n] as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_user_once_in_the_order_first_given() {
        let mut users = UserTable::new();
        users.add_lines(&b"u2\n u1 \r\n\nu2\nu3"[..]).unwrap();
        users.add("u1").unwrap();
        assert_eq!(users.ids().collect::<Vec<_>>(), ["u2", "u1", "u3"]);
        assert_eq!(users.find("u3"), Some(2));
        assert_eq!(users.find("u4"), None);
        assert!(users.fates().iter().all(|fate| *fate == Fate::Waiting));
    }

    #[test]
    fn failures_alike_are_kept_once() {
        let mut users = UserTable::new();
        for n in 0..1000 {
            users.add(&format!("user-{n}")).unwrap();
            users.set_last_failure(n, Failure::Status(503));
        }
        users.set_last_failure(7, Failure::Timeout);
        assert_eq!(users.failures.len(), 2);
        assert_eq!(users.last_failure(6), Some(&Failure::Status(503)));
        assert_eq!(users.last_failure(7), Some(&Failure::Timeout));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error() {
        let error = UserTable::new().add_lines(&b"u1\n\xff\n"[..]).unwrap_err();
        assert_eq!(error.to_string(), "stream did not contain valid UTF-8");
    }
}
