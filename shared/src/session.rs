//! A session as callers see it.

use std::fmt;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::key::SessionKey;

/// The session dictionary: always a JSON object.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// Counts writes to a session; 0 for items that the Django backend wrote
/// and that were never written since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u64);

impl Version {
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a conditional write demands of the stored session (HTTP's `If-Match`). With
/// either, a session that is missing or expired fails the demand rather than being
/// "not found": the caller asserted that it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Any live version (`If-Match: *`).
    Exists,
    /// Exactly this version.
    Version(Version),
}

impl Expected {
    /// The version demanded, if one is.
    pub fn version(self) -> Option<Version> {
        match self {
            Self::Exists => None,
            Self::Version(v) => Some(v),
        }
    }

    /// Whether a live session at `current` meets the demand.
    pub fn is_met_by(self, current: Version) -> bool {
        self.version().is_none_or(|v| v == current)
    }
}

impl From<Version> for Expected {
    fn from(v: Version) -> Self {
        Self::Version(v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub key: SessionKey,
    pub data: SessionData,
    pub meta: SessionMeta,
}

/// Everything about a stored session except its key and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMeta {
    /// Absent on items that the Django backend wrote through a plain save.
    pub created: Option<Timestamp>,
    /// Absent only on items that the Django backend wrote and nothing refreshed since.
    pub expires_at: Option<Timestamp>,
    pub expiry: Expiry,
    /// The absolute end of the session's life, when a maximum lifetime applies.
    pub deadline: Option<Timestamp>,
    /// Last write or touch that refreshed the expiry.
    pub touched_at: Option<Timestamp>,
    pub version: Version,
}

impl SessionMeta {
    /// Alive at `now`; items without an expiry count as alive until cleanup stamps one.
    pub fn is_alive(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    /// Whether a touch-on-read is due: the expiry was last refreshed at least
    /// `interval` ago (or never, as far as the item tells).
    pub fn refresh_due(&self, now: Timestamp, interval: Duration) -> bool {
        self.touched_at
            .or(self.created)
            .is_none_or(|last| now.since(last) >= interval)
    }
}
