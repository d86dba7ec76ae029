//! The DynamoDB item, in one place: the attribute names (here), reading an item
//! (`decode`), writing a whole item (`encode`), every condition, update, projection and
//! filter expression (`expression` for a session's own writes, `removal`, `principal_writes`,
//! `upkeep_writes`), and the cleanup's checkpoint item (`checkpoint`). The store, the
//! cleanup and the auditor go through this module; nothing else names an attribute
//! (docs/store.md).

mod checkpoint;
mod decode;
mod encode;
mod expression;
mod principal_writes;
mod removal;
mod upkeep_writes;

pub use checkpoint::{CHECKPOINT_KEY, Cursor, LEASE_KEY, Position};
pub use decode::{Image, View, meta};
pub use expression::{Expr, Guard, Owner, OwnerRead, Parts, Refresh, Write};
pub use principal_writes::PrincipalQuery;
pub use removal::{Removal, Tombstone};
pub use upkeep_writes::{Scan, Stamp};

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;
/// Expression attribute names: placeholder to attribute.
pub type Names = HashMap<String, String>;

/// The encoded session dictionary (S).
const DATA: &str = "data";
/// Epoch seconds of creation (N); the Django backend writes it on one path only.
const CREATED: &str = "created";
/// Epoch seconds after which the session is dead (N): the table's TTL attribute.
const EXPIRES_AT: &str = "expires_at";
/// Counts writes (N); absent on items of the Django backend (read as 0).
const VERSION: &str = "version";
/// A session's own idle timeout in seconds (N); absent means the configured default.
const IDLE_TTL: &str = "idle_ttl";
/// `true` when the session expires at a fixed time that activity does not move (BOOL).
const EXPIRES_FIXED: &str = "expires_fixed";
/// The absolute end of the session's life under a maximum lifetime (N).
const DEADLINE: &str = "deadline";
/// Last write or touch that refreshed the expiry (N); throttles touch-on-read.
const TOUCHED_AT: &str = "touched_at";
/// The tombstone marker (N): when the API removed the session from a table it shares
/// with the Django backend. An item that has it is no session to any read.
pub const REMOVED_AT: &str = "removed_at";
/// When the cleanup first stamped an expiry on the item (N, epoch seconds): it marks an
/// item the Django backend wrote, so that the upkeep's filter passes the backend's later
/// writes to it (a login saves `_auth_user_id` into an item already stamped).
pub const STAMPED_AT: &str = "stamped_at";
/// The region whose API wrote the session first (S), when the table is a global table
/// (`SESSION_REGION`): only that region writes it.
pub const HOME_REGION: &str = "home_region";
/// The user the session belongs to (S), when it has one: the hash key of the sparse
/// index `by-principal`.
pub const PRINCIPAL: &str = "principal";
/// The session's place in its principal's listing (S): the index's sort key, written
/// with the principal (see `principal::ListingPosition`).
pub const PRINCIPAL_POSITION: &str = "principal_position";
/// When the session got its principal (N, epoch milliseconds): a revocation of all the
/// principal's sessions revokes those that had it by then.
pub const PRINCIPAL_SINCE: &str = "principal_since";
/// A principal's revocation watermark item: under `#revoked#<principal>`, the epoch
/// milliseconds before which (inclusive) its sessions are revoked (N), whether that
/// revocation is still under way (BOOL), and the session it spares (S).
pub const REVOKED_BEFORE: &str = "revoked_before";
pub const REVOKE_PENDING: &str = "revoke_pending";
pub const REVOKE_EXCEPT: &str = "revoke_except";
/// How many sessions the revocation has removed so far (N): the auditor's count.
pub const REVOKED_COUNT: &str = "revoked_count";
/// Where a revocation cut short by its deadline stopped (S): the listing position of the
/// last entry it settled, for a later call of the same time to resume after.
pub const REVOKE_RESUME: &str = "revoke_resume";

/// A principal's watermark, as its item holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Epoch milliseconds: the sessions that had the principal by then are revoked.
    pub before: i64,
    /// The walk that removes them is under way.
    pub pending: bool,
    /// The key of the session the revocation spares.
    pub except: Option<String>,
    /// Where the walk stopped, when it is under way.
    pub resume: Option<crate::principal::ListingPosition>,
    /// Sessions the walk has removed so far.
    pub revoked: u64,
}

impl Watermark {
    /// Whether it covers a session that got its principal at `since_ms` (none: at any
    /// time before, so covered). The one test of "revoked", on a read and in a walk.
    pub fn covers(&self, since_ms: Option<i64>) -> bool {
        since_ms.unwrap_or(0) <= self.before
    }

    /// Where a walk of the sessions it covers starts in the principal's listing: below
    /// every session created after it, which got the principal later.
    pub fn walk_start(&self) -> crate::principal::ListingPosition {
        crate::principal::ListingPosition::above_created_by(
            crate::clock::Timestamp::from_epoch_seconds(self.before.div_euclid(1000)),
        )
    }
}

/// Where principals' watermark items live: no session key has that shape.
pub const WATERMARK_PREFIX: &str = "#revoked#";

/// The key of `principal`'s watermark item.
pub fn watermark_key(principal: &crate::principal::Principal) -> String {
    format!("{WATERMARK_PREFIX}{}", principal.as_str())
}

/// Where principals' registries live (`SESSION_MAX_PER_PRINCIPAL`): the keys of the
/// sessions the API gave the principal (L of S), under a version (N) that every change
/// of the list is conditioned on, so that concurrent logins count one after another.
pub const REGISTRY_PREFIX: &str = "#sessions#";
pub const MEMBERS: &str = "members";

/// The principal whose watermark item has this key, if it is one.
pub fn watermark_principal(key: &str) -> Option<crate::principal::Principal> {
    crate::principal::Principal::parse(key.strip_prefix(WATERMARK_PREFIX)?).ok()
}

/// How long the index takes at most, by assumption, to list a session written before a
/// watermark: AWS states that writes reach a global secondary index within a second
/// under normal conditions, and documents no bound. A walk of a watermark at least this
/// old finds every session the watermark covers; the upkeep waits for it.
pub const INDEX_LAG: std::time::Duration = std::time::Duration::from_secs(1);

/// The key of `principal`'s registry item. On a global table each region keeps its
/// own (`#sessions#<region>#<principal>`): only a session's home writes it, so each
/// region counts and evicts its own, and no region's write to the registry replaces
/// another's (the last writer wins between regions).
pub fn registry_key(principal: &crate::principal::Principal, region: Option<&str>) -> String {
    match region {
        Some(here) => format!("{REGISTRY_PREFIX}{here}#{}", principal.as_str()),
        None => format!("{REGISTRY_PREFIX}{}", principal.as_str()),
    }
}

/// The index of sessions by principal.
pub const PRINCIPAL_INDEX: &str = "by-principal";

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn text(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// The item layout of one table: its hash key's name is configurable.
#[derive(Debug, Clone)]
pub struct Layout {
    key: String,
    /// Removals leave tombstones, and every write's "alive" refuses one (the table is
    /// shared with the Django backend).
    tombstones: bool,
    /// The region this store writes in (`SESSION_REGION`): new items record it as their
    /// home, and every write's condition refuses an item whose home is another region.
    region: Option<String>,
}

impl Layout {
    pub fn new(key_attribute: &str) -> Self {
        Self {
            key: key_attribute.to_owned(),
            tombstones: false,
            region: None,
        }
    }

    /// The layout of a store that writes in `region` of a global table.
    pub fn with_region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// The home region of `item` when it is another than this store's: a write here is
    /// refused. `None` without a region, for an item without a home (the Django
    /// backend's, or one written before), and for an item of this region.
    pub fn elsewhere(&self, item: &Item) -> Option<String> {
        let here = self.region.as_deref()?;
        let view = View(item);
        let home = view.home_region()?;
        (home != here).then(|| home.to_owned())
    }

    /// The layout of a table shared with the Django backend: removals leave tombstones.
    pub fn with_tombstones(mut self, tombstones: bool) -> Self {
        self.tombstones = tombstones;
        self
    }

    pub fn has_tombstones(&self) -> bool {
        self.tombstones
    }

    pub fn key_attribute(&self) -> &str {
        &self.key
    }

    /// The key of `key`'s item, for GetItem, DeleteItem and UpdateItem.
    pub fn key(&self, key: &str) -> (String, AttributeValue) {
        (self.key.clone(), text(key))
    }

    /// The session key an item holds, if it has one of the key's type.
    pub fn key_of<'a>(&self, item: &'a Item) -> Option<&'a str> {
        item.text(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::Timestamp;
    use crate::expiry::Expiry;
    use crate::session::{SessionMeta, Version};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_epoch_seconds(secs)
    }

    #[test]
    fn items_of_the_django_backend_read_as_version_zero_without_expiry() {
        let item = Item::from([
            ("session_key".into(), AttributeValue::S("k".into())),
            ("data".into(), AttributeValue::S("{}".into())),
        ]);
        let m = meta(&item);
        assert_eq!(m.version, Version(0));
        assert_eq!(m.expires_at, None);
        assert_eq!(m.created, None);
        assert_eq!(m.expiry, Expiry::Default);
    }

    #[test]
    fn meta_survives_a_round_trip_through_attributes() {
        let layout = Layout::new("session_key");
        for expiry in [
            Expiry::Default,
            Expiry::IdleFor(Duration::from_secs(60)),
            Expiry::At(t(500)),
        ] {
            let m = SessionMeta {
                created: Some(t(1)),
                expires_at: Some(t(500)),
                expiry,
                deadline: Some(t(900)),
                touched_at: Some(t(2)),
                version: Version(7),
                data_tag: None,
                tombstone: false,
            };
            let key = crate::key::SessionKey::generate().unwrap();
            assert_eq!(meta(&layout.new_item(&key, "{}", &m)), m);
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        let layout = Layout::new("session_key");
        let cursor = Cursor(Item::from([("session_key".into(), text("abc"))]));
        let positions = vec![Position::Start, Position::After(cursor), Position::Done];
        let item = layout.checkpoint(&positions, t(5));
        assert_eq!(layout.positions(&item), (Some(3), positions));
    }
}
