//! The expressions of the upkeep: the backfill Scan, its conditional delete and stamp,
//! and the stream upkeep's writes to what the Django backend wrote.

use super::expression::{Expr, Owner, Write, set_and_remove, set_owner, set_rule};
use super::{CREATED, DATA, EXPIRES_AT, Layout, STAMPED_AT, VERSION, number};
use crate::clock::Timestamp;
use crate::expiry::Expiry;

/// A Scan's parts: projection, filter, and their placeholders.
#[derive(Debug)]
pub struct Scan {
    pub projection: String,
    pub filter: String,
    pub expr: Expr,
}

/// What the cleanup stamps on an item without an expiry (see [`Layout::stamp`]).
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub at: Timestamp,
    pub rule: Expiry,
    pub now: Timestamp,
    /// The data the stamp was decided on, when it must still be that.
    pub seen: Option<&'a str>,
    pub owner: Option<Owner<'a>>,
}

impl Layout {
    /// The upkeep's delete of a tombstone the Django backend wrote onto: only while it
    /// is still a tombstone.
    pub fn still_tombstone(&self) -> Write {
        let mut e = Expr::default();
        e.is_tombstone();
        Write {
            update: None,
            expr: e,
        }
    }

    /// The cleanup's Scan for candidates: items without an expiry or past it, with the
    /// data too when the codec keeps an expiry in it.
    pub fn expired_scan(&self, now: Timestamp, with_data: bool) -> Scan {
        let mut e = self.expr();
        e.name("#created", CREATED);
        let filter = e.expired(now, true).take_conditions().unwrap_or_default();
        let mut projection = "#k, #exp, #created".to_owned();
        if with_data {
            e.name("#data", DATA);
            projection.push_str(", #data");
        }
        Scan {
            projection,
            filter,
            expr: e,
        }
    }

    /// The cleanup's delete: only if the session is still expired at `now`.
    pub fn still_expired(&self, now: Timestamp) -> Write {
        let mut e = Expr::default();
        e.expired(now, false);
        Write {
            update: None,
            expr: e,
        }
    }

    /// The cleanup's stamp on an item without an expiry: the expiry, and the rule's own
    /// attributes as the store's writes keep them, so reads need not decode the data;
    /// the marker that the Django backend wrote the item; and, from the stream, the
    /// principal its data names, on the condition that the data is still what was read.
    pub fn stamp(&self, s: &Stamp<'_>) -> Write {
        let mut e = self.expr();
        e.name("#exp", EXPIRES_AT)
            .name("#ver", VERSION)
            .name("#stamped", STAMPED_AT)
            .value(":at", number(s.at.epoch_seconds()))
            .value(":stamped", number(s.now.epoch_seconds()))
            .value(":zero", number(0))
            .value(":one", number(1))
            .condition("attribute_exists(#k) AND attribute_not_exists(#exp)");
        let mut set = vec![
            "#exp = :at".to_owned(),
            "#stamped = if_not_exists(#stamped, :stamped)".to_owned(),
            "#ver = if_not_exists(#ver, :zero) + :one".to_owned(),
        ];
        let mut remove = Vec::new();
        set_rule(&mut e, s.rule, &mut set, &mut remove);
        if let Some(owner) = s.owner {
            set_owner(&mut e, owner, &mut set, &mut remove);
        }
        if let Some(raw) = s.seen {
            e.data_is(raw);
        }
        Write {
            update: Some(set_and_remove(&set, &remove)),
            expr: e,
        }
    }

    /// The upkeep's new principal for an item the Django backend owns, after the backend
    /// wrote data `seen` naming another user (a login) or none (the version moves, as
    /// the session's representation does): only while the data is still that, and the
    /// item no tombstone.
    pub fn backend_owner(&self, seen: &str, owner: Owner<'_>) -> Write {
        let mut e = Expr::default();
        e.name("#stamped", STAMPED_AT)
            .name("#ver", VERSION)
            .value(":zero", number(0))
            .value(":one", number(1))
            .condition("attribute_exists(#stamped)")
            .no_tombstone();
        e.data_is(seen);
        let mut set = vec!["#ver = if_not_exists(#ver, :zero) + :one".to_owned()];
        let mut remove = Vec::new();
        set_owner(&mut e, owner, &mut set, &mut remove);
        Write {
            update: Some(set_and_remove(&set, &remove)),
            expr: e,
        }
    }
}
