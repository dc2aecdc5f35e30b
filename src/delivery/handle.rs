//! The handle both front-ends wrap: stats, events, the client, and shutdown, over one
//! spawned engine.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::Level;

use super::engine::{Engine, Running};
use super::events::{PingEvent, PingStats, ShutdownReport};
use super::health::Health;
use super::options::Checked;
use super::pause::PauseReason;
use super::store::PendingStore;
use crate::livefyre::LivefyreClient;

/// A cheap handle to a spawned engine. When the last clone is dropped, the engine
/// delivers what it owes and stops.
pub(crate) struct Delivery<S: PendingStore> {
    running: Arc<Running<S>>,
}

impl<S: PendingStore> Clone for Delivery<S> {
    fn clone(&self) -> Self {
        Self {
            running: self.running.clone(),
        }
    }
}

impl<S: PendingStore> Delivery<S> {
    /// Spawns an engine over `store` on the runtime `checked` was made in.
    pub(crate) fn spawn(store: S, checked: Checked, poll_every: Option<Duration>) -> Self {
        let runtime = checked.runtime.clone();
        let engine = Arc::new(Engine::new(store, checked, poll_every));
        Self {
            running: Arc::new(Running::spawn(&runtime, engine)),
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn engine(&self) -> &Arc<Engine<S>> {
        &self.running.engine
    }

    /// Counts an accepted `ping` call; a new pending user wakes the engine, a ping folded
    /// into a pending or in-flight user counts as coalesced.
    pub(crate) fn pinged(&self, new_user: bool) {
        let engine = &self.running.engine;
        engine.reporter.pinged(!new_user);
        if new_user {
            engine.wake();
        }
    }

    pub(crate) fn store(&self) -> &S {
        &self.running.engine.store
    }

    pub(crate) fn stats(&self) -> PingStats {
        let engine = &self.running.engine;
        engine.reporter.stats(engine.store.counts())
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.running.engine.reporter.subscribe()
    }

    /// The engine's health, with what the store knows: its pending users and since when
    /// the oldest has waited.
    pub(crate) fn health(&self, pending: u64, oldest_pending: Option<Duration>) -> Health {
        let engine = &self.running.engine;
        let (last_delivered, consecutive_failures) = engine.reporter.health.read();
        let paused = engine.paused();
        Health {
            last_delivered,
            consecutive_failures,
            unauthorized: paused == Some(PauseReason::Unauthorized),
            unreachable: paused == Some(PauseReason::Unreachable),
            pending,
            oldest_pending,
            checked_at: engine.reporter.now(),
        }
    }

    pub(crate) fn client(&self) -> &LivefyreClient {
        &self.running.engine.client
    }

    /// Closes the store, lets the engine deliver until `deadline` has passed, and reports
    /// what the store could not deliver. A second call waits for the first and reports
    /// nothing more.
    pub(crate) async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.store().close();
        // A second caller waits here for the first, then finds nothing left to report.
        self.running.stop(deadline).await;
        let undelivered = self.store().take_undelivered().await;
        if !undelivered.is_empty() {
            tracing::event!(
                target: "pingpull::ping",
                Level::WARN,
                undelivered = undelivered.len(),
                "{}",
                S::UNDELIVERED_WARNING
            );
        }
        ShutdownReport {
            undelivered,
            stats: self.stats(),
        }
    }
}
