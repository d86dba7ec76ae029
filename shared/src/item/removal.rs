//! The removals of a session: the conditions of a delete and the UpdateItem that turns
//! a session into a tombstone, with what each demands of the item.

use super::expression::{Expr, Write};
use super::{
    DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, IDLE_TTL, Layout, PRINCIPAL, PRINCIPAL_POSITION,
    PRINCIPAL_SINCE, REMOVED_AT, TOUCHED_AT, VERSION, number, text,
};
use crate::clock::Timestamp;
use crate::principal::Principal;
use crate::session::Version;

/// What a tombstone writes (see [`REMOVED_AT`]): the marker, the data the Django
/// backend reads as an empty session, and an expiry for TTL after the grace period.
#[derive(Debug, Clone)]
pub struct Tombstone {
    pub now: Timestamp,
    pub until: Timestamp,
    pub empty: String,
}

/// What a removal demands of the item it turns into a tombstone.
#[derive(Debug, Clone, Copy)]
pub enum Removal<'a> {
    /// An item that is not a tombstone yet, alive or expired (a delete without
    /// `If-Match`: the Django backend would go on loading an expired one).
    Any,
    /// A live session, at this version and holding this data where given.
    Live {
        version: Option<Version>,
        data: Option<&'a str>,
    },
    /// A session that belongs to this principal (a revocation: see
    /// `Layout::revocable`), and had it by `since_at_most` (epoch milliseconds) when
    /// that is given.
    Owned(&'a Principal, Option<i64>),
}

impl Layout {
    /// A delete that demands a live session, at version `version` when one is given.
    pub fn delete_expecting(&self, now: Timestamp, version: Option<Version>) -> Write {
        let mut e = self.expr();
        self.alive(&mut e, now);
        if let Some(v) = version {
            e.version_is(v);
        }
        Write {
            update: None,
            expr: e,
        }
    }

    /// A caller's delete without `If-Match`: anything but an expired session, which is
    /// left for TTL to remove (a missing item passes, so the delete stays idempotent).
    pub fn delete_unless_expired(&self, now: Timestamp) -> Write {
        let mut e = Expr::default();
        e.unexpired(now);
        self.at_home(&mut e);
        Write {
            update: None,
            expr: e,
        }
    }

    /// A cycle's delete of the old key: still alive and still at the version read.
    pub fn unchanged(&self, now: Timestamp, version: Version) -> Write {
        self.delete_expecting(now, Some(version))
    }

    /// The UpdateItem that turns a session into a tombstone under `removal`'s demand.
    pub fn tombstone(&self, t: &Tombstone, removal: Removal<'_>) -> Write {
        let mut e = self.expr();
        match removal {
            Removal::Any => {
                e.condition("attribute_exists(#k)").no_tombstone();
                self.at_home(&mut e);
            }
            Removal::Live { version, data } => {
                self.alive(&mut e, t.now);
                if let Some(v) = version {
                    e.version_is(v);
                }
                if let Some(raw) = data {
                    e.data_is(raw);
                }
            }
            Removal::Owned(p, since) => {
                self.revocable(&mut e, t.now);
                e.owned_by(p);
                if let Some(ms) = since {
                    e.owned_since_at_most(ms);
                }
            }
        }
        e.name("#tomb", REMOVED_AT)
            .name("#data", DATA)
            .name("#exp", EXPIRES_AT)
            .name("#ver", VERSION)
            .name("#idle", IDLE_TTL)
            .name("#fixed", EXPIRES_FIXED)
            .name("#deadline", DEADLINE)
            .name("#touched", TOUCHED_AT)
            .name("#principal", PRINCIPAL)
            .name("#position", PRINCIPAL_POSITION)
            .name("#since", PRINCIPAL_SINCE)
            .value(":now", number(t.now.epoch_seconds()))
            .value(":empty", text(&t.empty))
            .value(":until", number(t.until.epoch_seconds()))
            .value(":zero", number(0))
            .value(":one", number(1));
        Write {
            update: Some(
                "SET #tomb = :now, #data = :empty, #exp = :until, \
                 #ver = if_not_exists(#ver, :zero) + :one \
                 REMOVE #idle, #fixed, #deadline, #touched, #principal, #position, #since"
                    .into(),
            ),
            expr: e,
        }
    }
}
