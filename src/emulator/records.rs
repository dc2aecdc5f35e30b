//! What the emulator records and shows: users as Livefyre knows them, pulls and events.

use serde::Serialize;

use crate::Profile;

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
    /// Why not, if not (with the reason a 500's body gives, docs/protocol.md §6).
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
