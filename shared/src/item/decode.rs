//! Reading an item: what its attributes say about the session, whatever types hold them.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    CREATED, DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, HOME_REGION, IDLE_TTL, Item, PRINCIPAL,
    PRINCIPAL_POSITION, PRINCIPAL_SINCE, REMOVED_AT, REVOKE_EXCEPT, REVOKE_PENDING, REVOKE_RESUME,
    REVOKED_BEFORE, REVOKED_COUNT, STAMPED_AT, TOUCHED_AT, VERSION, Watermark,
};
use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::principal::{ListingPosition, Principal};
use crate::session::{SessionMeta, Version};

/// Read-only access to one image of an item, whatever types hold it: the SDK's items,
/// and the stream images the auditor reads without converting them.
pub trait Image {
    fn text(&self, name: &str) -> Option<&str>;
    fn number(&self, name: &str) -> Option<&str>;
    fn flag(&self, name: &str) -> Option<bool>;
    /// A list of strings; `None` when absent or of another type. Only SDK items have
    /// lists the store reads.
    fn list_of_text(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}

impl Image for Item {
    fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(AttributeValue::S(s)) => Some(s),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(AttributeValue::N(n)) => Some(n),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(AttributeValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn list_of_text(&self, name: &str) -> Option<Vec<String>> {
        match self.get(name) {
            Some(AttributeValue::L(values)) => Some(
                values
                    .iter()
                    .filter_map(|v| v.as_s().ok().cloned())
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// What an image says about the session it holds. Attributes that are absent or
/// malformed read as the Django backend implied them: no expiry, version 0.
pub struct View<'a, I: ?Sized>(pub &'a I);

impl<I: Image + ?Sized> View<'_, I> {
    fn int(&self, name: &str) -> Option<i64> {
        self.0.number(name).and_then(|n| n.parse().ok())
    }

    fn time(&self, name: &str) -> Option<Timestamp> {
        self.int(name).map(Timestamp::from_epoch_seconds)
    }

    /// The encoded data, when it is a string.
    pub fn data(&self) -> Option<&str> {
        self.0.text(DATA)
    }

    pub fn version(&self) -> Version {
        Version(
            self.int(VERSION)
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
        )
    }

    pub fn expires_at(&self) -> Option<Timestamp> {
        self.time(EXPIRES_AT)
    }

    /// The principal the session belongs to; one that is malformed reads as none.
    pub fn principal(&self) -> Option<Principal> {
        Principal::parse(self.0.text(PRINCIPAL)?).ok()
    }

    /// When the session got its principal, in epoch milliseconds.
    pub fn principal_since(&self) -> Option<i64> {
        self.int(PRINCIPAL_SINCE)
    }

    /// Of a watermark item: the watermark.
    pub fn watermark(&self) -> Option<Watermark> {
        Some(Watermark {
            before: self.int(REVOKED_BEFORE)?,
            pending: self.0.flag(REVOKE_PENDING) == Some(true),
            except: self.0.text(REVOKE_EXCEPT).map(str::to_owned),
            resume: self.0.text(REVOKE_RESUME).and_then(ListingPosition::parse),
            revoked: self
                .int(REVOKED_COUNT)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        })
    }

    /// Of a watermark item: the sessions removed so far, and whether the revocation is
    /// complete.
    pub fn revocation(&self) -> Option<(u64, bool)> {
        let revoked = self
            .int(REVOKED_COUNT)
            .and_then(|n| u64::try_from(n).ok())?;
        Some((revoked, self.0.flag(REVOKE_PENDING) != Some(true)))
    }

    /// Whether a session with this view was revoked by a watermark item `mark`.
    pub fn revoked_by<M: Image + ?Sized>(&self, mark: &View<'_, M>) -> bool {
        mark.covers(self.principal_since())
    }

    /// Of a watermark item: whether it covers a session that got its principal at
    /// `since_ms` (none: at any time before, so covered).
    pub fn covers(&self, since_ms: Option<i64>) -> bool {
        self.watermark().is_some_and(|w| w.covers(since_ms))
    }

    /// The session's place in its principal's listing.
    pub fn principal_position(&self) -> Option<ListingPosition> {
        ListingPosition::parse(self.0.text(PRINCIPAL_POSITION)?)
    }

    /// When the API removed the session, if the item is a tombstone.
    pub fn removed_at(&self) -> Option<Timestamp> {
        self.time(REMOVED_AT)
    }

    /// Of a registry item: its version and the session keys it lists.
    pub fn members(&self) -> Option<Vec<String>> {
        self.0.list_of_text(super::MEMBERS)
    }

    /// The region that is the session's home, on a global table.
    pub fn home_region(&self) -> Option<&str> {
        self.0.text(HOME_REGION)
    }

    /// Whether the Django backend wrote the item (the cleanup stamped it).
    pub fn is_backend_owned(&self) -> bool {
        self.0.number(STAMPED_AT).is_some()
    }

    /// Whether the item is a tombstone, whatever its marker holds.
    pub fn is_tombstone(&self) -> bool {
        self.0.number(REMOVED_AT).is_some()
    }

    /// Everything the item says about itself except its key and data (and so without
    /// the data's hash, which only the codec's rules add).
    pub fn meta(&self) -> SessionMeta {
        let expires_at = self.expires_at();
        let fixed = self.0.flag(EXPIRES_FIXED) == Some(true);
        let expiry = match (fixed, expires_at, self.int(IDLE_TTL)) {
            (true, Some(t), _) => Expiry::At(t),
            (_, _, Some(secs)) if secs > 0 => {
                Expiry::IdleFor(Duration::from_secs(secs.unsigned_abs()))
            }
            _ => Expiry::Default,
        };
        SessionMeta {
            created: self.time(CREATED),
            expires_at,
            expiry,
            deadline: self.time(DEADLINE),
            touched_at: self.time(TOUCHED_AT),
            version: self.version(),
            data_tag: None,
            tombstone: self.is_tombstone(),
        }
    }
}

/// [`View::meta`] of an SDK item.
pub fn meta(item: &Item) -> SessionMeta {
    View(item).meta()
}
