//! The Pinger: a cheap handle whose `ping` records a user, and a background worker that
//! delivers, coalescing and retrying, until Livefyre has answered 2xx for each user
//! after its latest ping.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::sync::broadcast;

use super::error::PingError;
use super::pending::{MemoryStore, PendingSet};
use crate::Network;
use crate::delivery::{
    Delivery, DeliveryOptions, Health, PingEvent, PingStats, ShutdownReport, delivery_setters,
};
use crate::livefyre::{ConfigError, LivefyreClient};
use crate::user_id;

/// Users pending at once unless configured ([`PingerBuilder::max_pending`]).
pub const DEFAULT_MAX_PENDING: usize = 100_000;

/// How long a user's first ping waits for more before it is sent, unless configured
/// ([`PingerBuilder::debounce`]): not at all.
pub const DEFAULT_DEBOUNCE: Duration = Duration::ZERO;

/// `max_pending`: the pending set numbers its users with 32 bits.
const MAX_PENDING_RANGE: RangeInclusive<usize> = 1..=u32::MAX as usize;

/// `debounce`: a change held back longer than a day is not a burst being grouped.
const LONGEST_DEBOUNCE: Duration = Duration::from_secs(86_400);

/// Configures and spawns a [`Pinger`]; start with [`Pinger::builder`].
#[must_use]
#[derive(Debug)]
pub struct PingerBuilder {
    options: DeliveryOptions,
    max_pending: usize,
    debounce: Duration,
}

impl PingerBuilder {
    fn new(network: Network) -> Self {
        Self {
            options: DeliveryOptions::new(network),
            max_pending: DEFAULT_MAX_PENDING,
            debounce: DEFAULT_DEBOUNCE,
        }
    }

    delivery_setters!();

    /// At most this many users pending at once (default [`DEFAULT_MAX_PENDING`], 100 000); beyond it `ping`
    /// returns [`PingError::QueueFull`] for new users, never dropping one. Between 1 and
    /// 4 294 967 295 (the pending set numbers its users with 32 bits), or `spawn` fails
    /// with [`ConfigError::OutOfRange`].
    pub fn max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending;
        self
    }

    /// Waits `window` after a user's first ping before sending, so a burst of changes
    /// becomes one request (default [`DEFAULT_DEBOUNCE`]: send at once). At most 1 day,
    /// or `spawn` fails with [`ConfigError::OutOfRange`].
    pub fn debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }

    /// Spawns the background worker on the current Tokio runtime and returns the handle.
    ///
    /// With the `metrics` feature, the Pinger's metrics are registered now with the
    /// recorder installed at this moment: install the application's recorder first.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad base URL, a setting out of its range (each setter says
    /// its range; the error names the setting), or when called outside a Tokio runtime.
    pub fn spawn(self) -> Result<Pinger, ConfigError> {
        let max_age = self.options.schedule.max_age_duration();
        let config = self.options.check()?;
        if !MAX_PENDING_RANGE.contains(&self.max_pending) {
            return Err(ConfigError::out_of_range(
                "max_pending",
                "between 1 and 4294967295",
            ));
        }
        if self.debounce > LONGEST_DEBOUNCE {
            return Err(ConfigError::out_of_range("debounce", "at most 1 day"));
        }
        let store = MemoryStore::new(PendingSet::new(self.max_pending, self.debounce), max_age);
        Ok(Pinger {
            delivery: Delivery::spawn(store, config, None),
        })
    }
}

/// A cheap handle to the background ping worker; clone it into every update handler.
///
/// When the last handle is dropped without [`shutdown`](Pinger::shutdown), the worker
/// keeps delivering what is pending and then stops.
#[derive(Clone)]
pub struct Pinger {
    delivery: Delivery<MemoryStore>,
}

impl Pinger {
    /// Starts configuring a Pinger for `network`.
    pub fn builder(network: Network) -> PingerBuilder {
        PingerBuilder::new(network)
    }

    /// Records that `user_id`'s profile changed: Livefyre will be pinged for it.
    ///
    /// Never blocks on the network. Pings for a user already pending coalesce into one
    /// request; a ping for a user whose request is in flight causes one more request.
    ///
    /// # Errors
    ///
    /// [`PingError::InvalidUserId`] for an id that cannot stand in the ping URL,
    /// [`PingError::QueueFull`] when `max_pending` users are pending (nothing is dropped:
    /// the caller decides), [`PingError::ShuttingDown`] after [`shutdown`](Self::shutdown),
    /// [`PingError::Stopped`] once the delivery task has died (a panic, its runtime shut
    /// down): a ping then would never be delivered.
    pub fn ping(&self, user_id: &str) -> Result<(), PingError> {
        user_id::validate_for_path(user_id).map_err(PingError::InvalidUserId)?;
        if self.delivery.is_stopped() {
            return Err(PingError::Stopped);
        }
        if self.delivery.store().ping(user_id)? {
            // A new pending user: the engine may have nothing else to look at.
            self.delivery.wake();
        }
        Ok(())
    }

    /// A ping the hook could not record: told at WARN, at most once a minute.
    pub(crate) fn unrecorded(&self, error: &PingError) {
        self.delivery.store().unrecorded(error);
    }

    /// Counters since start and the current pending set.
    pub fn stats(&self) -> PingStats {
        self.delivery.stats()
    }

    /// Whether delivery works, for a health probe: the last 2xx, the failures since, a
    /// 403 pause, an outage (Livefyre unreachable), the pending users and how long the
    /// oldest has waited (see [`Health::healthy`] for the rule).
    ///
    /// It scans the pending set under the lock `ping` takes (about a millisecond per
    /// 100 000 pending users): call it from a probe every few seconds, not per request.
    pub fn health(&self) -> Health {
        let (pending, oldest) = self.delivery.store().pending_and_oldest();
        let oldest = oldest.map(|since| since.elapsed());
        self.delivery.health(pending, oldest)
    }

    /// A stream of [`PingEvent`]s from now on. A subscriber that lags more than the
    /// events capacity misses the oldest (the stats stay exact).
    pub fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.delivery.events()
    }

    /// The client the Pinger delivers with, for one-shot calls such as
    /// [`LivefyreClient::register_pull_url`].
    pub fn client(&self) -> &LivefyreClient {
        self.delivery.client()
    }

    /// Makes the delivery loop panic, for tests of what a dead task shows.
    pub(crate) fn request_panic(&self) {
        self.delivery.request_panic();
    }

    /// Stops accepting pings, delivers what it can until `deadline` has passed, and
    /// returns the users not delivered. A second call (from a clone, say) waits for the
    /// first and reports nothing more.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.delivery.shutdown(deadline).await
    }
}

impl fmt::Debug for Pinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinger")
            .field("client", self.client())
            .field("stats", &self.stats())
            .finish()
    }
}
