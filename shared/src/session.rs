//! A session as callers see it.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::key::SessionKey;
use crate::principal::Principal;

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

/// A short hash of the stored `data`: with the Django codec the Django backend writes the
/// data without bumping the version, so only the data tells its write apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataTag([u8; DataTag::BYTES]);

impl DataTag {
    /// 48 bits: two different data values share a tag once in 2^48, and the write
    /// itself compares the whole data it read.
    const BYTES: usize = 6;

    /// The first bytes of the SHA-256 of the stored text.
    pub fn of(raw: &str) -> Self {
        let digest = Sha256::digest(raw.as_bytes());
        let mut tag = [0; Self::BYTES];
        tag.copy_from_slice(&digest[..Self::BYTES]);
        Self(tag)
    }

    /// The tag as [`fmt::Display`] writes it: 12 lowercase hex digits, nothing else.
    pub fn parse(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 2 * Self::BYTES {
            return None;
        }
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut tag = [0; Self::BYTES];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            tag[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Self(tag))
    }
}

impl fmt::Display for DataTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What identifies one state of a session (HTTP's `ETag`): its version, and with the
/// Django codec the hash of its data too, written `"3"` and `"3.9f2c0a41d5e7"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityTag {
    pub version: Version,
    pub data: Option<DataTag>,
}

impl EntityTag {
    /// The opaque part of an entity tag, as [`fmt::Display`] writes it; a version is
    /// canonical decimal (`0`, or without a leading zero), so `"01"` is no tag of ours.
    pub fn parse(opaque: &str) -> Option<Self> {
        let (digits, data) = match opaque.split_once('.') {
            Some((digits, hex)) => (digits, Some(DataTag::parse(hex)?)),
            None => (opaque, None),
        };
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        let version = Version(canonical.then(|| digits.parse().ok()).flatten()?);
        Some(Self { version, data })
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.data {
            Some(data) => write!(f, "{}.{data}", self.version),
            None => write!(f, "{}", self.version),
        }
    }
}

/// What a conditional write demands of the stored session (HTTP's `If-Match`). With
/// either, a session that is missing or expired fails the demand rather than being
/// "not found": the caller asserted that it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Any live version (`If-Match: *`).
    Exists,
    /// Exactly this state: this version, and this data where the tag has a data hash.
    Tag(EntityTag),
}

impl Expected {
    /// The version demanded, if one is.
    pub fn version(self) -> Option<Version> {
        match self {
            Self::Exists => None,
            Self::Tag(t) => Some(t.version),
        }
    }

    /// Whether a live session in state `current` meets the demand. A tag meets only the
    /// same tag: one with a data hash never matches under a codec that issues none, and
    /// the other way round.
    pub fn is_met_by(self, current: &SessionMeta) -> bool {
        match self {
            Self::Exists => true,
            Self::Tag(t) => t == current.tag(),
        }
    }
}

impl From<Version> for Expected {
    fn from(v: Version) -> Self {
        Self::Tag(EntityTag {
            version: v,
            data: None,
        })
    }
}

impl From<EntityTag> for Expected {
    fn from(t: EntityTag) -> Self {
        Self::Tag(t)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub key: SessionKey,
    pub data: SessionData,
    pub meta: SessionMeta,
    /// The user the session belongs to, if any.
    pub principal: Option<Principal>,
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
    /// The hash of the stored data, kept only with the Django codec (see [`DataTag`]).
    pub data_tag: Option<DataTag>,
    /// The item is a tombstone: the API removed the session but kept the item, so that
    /// the Django backend cannot bring it back (README, "Sharing the table").
    pub tombstone: bool,
}

impl SessionMeta {
    /// Alive at `now`; items without an expiry count as alive until cleanup stamps one,
    /// and a tombstone is never alive.
    pub fn is_alive(&self, now: Timestamp) -> bool {
        !self.tombstone && self.expires_at.is_none_or(|t| t > now)
    }

    /// The session's `ETag`.
    pub fn tag(&self) -> EntityTag {
        EntityTag {
            version: self.version,
            data: self.data_tag,
        }
    }

    /// Whether a touch-on-read is due: the expiry was last refreshed at least
    /// `interval` ago (or never, as far as the item tells).
    pub fn refresh_due(&self, now: Timestamp, interval: Duration) -> bool {
        self.touched_at
            .or(self.created)
            .is_none_or(|last| now.since(last) >= interval)
    }
}
