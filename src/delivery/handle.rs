//! The handle both front-ends wrap: stats, events, health, the client, and shutdown, over
//! one spawned engine, whose task it owns.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Level;

use super::engine::{Engine, supervise};
use super::events::{PingEvent, PingStats, ShutdownReport};
use super::health::Health;
use super::later;
use super::options::EngineConfig;
use super::pause::PauseReason;
use super::store::PendingStore;
use crate::livefyre::LivefyreClient;

/// A cheap handle to a spawned engine. When the last clone is dropped, the engine
/// delivers what it owes and stops.
pub(crate) struct Delivery<S: PendingStore> {
    engine: Arc<Engine<S>>,
    task: Arc<Task<S>>,
}

/// The engine's task, shared by the handles only (the task itself holds the engine, not
/// this): when the last handle goes, the engine is closed.
struct Task<S: PendingStore> {
    engine: Arc<Engine<S>>,
    join: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl<S: PendingStore> Drop for Task<S> {
    fn drop(&mut self) {
        self.engine.close(None);
    }
}

impl<S: PendingStore> Clone for Delivery<S> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            task: self.task.clone(),
        }
    }
}

impl<S: PendingStore> Delivery<S> {
    /// Spawns an engine over `store` on the runtime `config` was made in.
    pub(crate) fn spawn(store: S, config: EngineConfig, poll_every: Option<Duration>) -> Self {
        let runtime = config.runtime.clone();
        let engine = Arc::new(Engine::new(store, config, poll_every));
        let join = runtime.spawn(supervise(engine.clone()));
        Self {
            task: Arc::new(Task {
                engine: engine.clone(),
                join: tokio::sync::Mutex::new(Some(join)),
            }),
            engine,
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn engine(&self) -> &Arc<Engine<S>> {
        &self.engine
    }

    /// Wakes the engine: a user may be due now.
    pub(crate) fn wake(&self) {
        self.engine.wake();
    }

    /// Whether the engine's task died (a panic, its runtime shut down): nothing is
    /// delivered any more.
    pub(crate) fn is_stopped(&self) -> bool {
        self.engine.stopped().is_some()
    }

    /// Makes the engine's loop panic, for tests of what a dead task shows.
    pub(crate) fn request_panic(&self) {
        self.engine.request_panic();
    }

    pub(crate) fn store(&self) -> &S {
        &self.engine.store
    }

    pub(crate) fn stats(&self) -> PingStats {
        self.engine.reporter.stats(self.engine.store.counts())
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.engine.reporter.subscribe()
    }

    /// The engine's health, with what the store knows: its pending users and since when
    /// the oldest has waited.
    pub(crate) fn health(&self, pending: u64, oldest_pending: Option<Duration>) -> Health {
        let engine = &self.engine;
        let (last_delivered, consecutive_failures) = engine.reporter.health.read();
        let paused = engine.paused();
        Health {
            last_delivered,
            consecutive_failures,
            unauthorized: paused == Some(PauseReason::Unauthorized),
            unreachable: paused == Some(PauseReason::Unreachable),
            stopped: engine.stopped().is_some(),
            pending,
            oldest_pending,
            checked_at: engine.reporter.now(),
        }
    }

    pub(crate) fn client(&self) -> &LivefyreClient {
        &self.engine.client
    }

    /// Closes the store, lets the engine deliver until `deadline` has passed, and reports
    /// what the store could not deliver. A second call waits for the first and reports
    /// nothing more.
    pub(crate) async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.store().close();
        self.engine.close(Some(later(Instant::now(), deadline)));
        // Held while waiting, so a second caller waits here for the first, then finds
        // nothing left to report.
        let mut join = self.task.join.lock().await;
        if let Some(running) = join.take() {
            let _ = running.await;
        }
        drop(join);
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
