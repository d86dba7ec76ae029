//! Writing a whole item: what create and cycle put, and a refresh done in memory (the
//! in-memory store's write, kept beside the expression so that both stores write the
//! same item).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    CREATED, DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, HOME_REGION, IDLE_TTL, Item, Layout, Owner,
    PRINCIPAL, PRINCIPAL_POSITION, PRINCIPAL_SINCE, REMOVED_AT, Refresh, TOUCHED_AT, Tombstone,
    VERSION, View, number, text,
};
use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::key::SessionKey;
use crate::principal::{ListingPosition, Principal, SessionHandle};
use crate::session::SessionMeta;

impl Layout {
    /// A whole item, as create writes it.
    pub fn new_item(&self, key: &SessionKey, data: &str, meta: &SessionMeta) -> Item {
        let mut item = Item::new();
        item.insert(self.key.clone(), text(key.as_str()));
        item.insert(DATA.into(), text(data));
        write_meta(&mut item, meta);
        if let Some(here) = &self.region {
            item.insert(HOME_REGION.into(), text(here));
        }
        item
    }

    /// A new session's item that belongs to `principal` since `since_ms`.
    pub fn new_owned_item(
        &self,
        key: &SessionKey,
        data: &str,
        meta: &SessionMeta,
        principal: Option<&Principal>,
        since_ms: i64,
    ) -> Item {
        let mut item = self.new_item(key, data, meta);
        if let Some(p) = principal {
            write_owner(&mut item, key, p, meta.created);
            item.insert(PRINCIPAL_SINCE.into(), number(since_ms));
        }
        item
    }

    /// The item a cycle puts: the old one under a new key, with its new expiry and
    /// version, and its place in its principal's listing under the new key's handle.
    pub fn moved(&self, old: &Item, key: &SessionKey, meta: &SessionMeta) -> Item {
        let mut item = old.clone();
        write_meta(&mut item, meta);
        item.insert(self.key.clone(), text(key.as_str()));
        if let Some(p) = View(old).principal() {
            write_owner(&mut item, key, &p, meta.created);
        }
        if let Some(here) = &self.region {
            item.insert(HOME_REGION.into(), text(here));
        }
        item
    }

    /// What `refresh` does to an item, done in memory: the in-memory store's write, kept
    /// here beside the expression so that both stores write the same item.
    pub fn apply_refresh(&self, item: &mut Item, r: &Refresh<'_>) {
        item.insert(EXPIRES_AT.into(), number(r.expires.epoch_seconds()));
        item.insert(TOUCHED_AT.into(), number(r.now.epoch_seconds()));
        let version = View(&*item).version().next();
        item.insert(VERSION.into(), number(version.0));
        if let Some(raw) = r.data {
            item.insert(DATA.into(), text(raw));
        }
        if let Some(rule) = r.rule {
            item.remove(IDLE_TTL);
            item.remove(EXPIRES_FIXED);
            write_rule(item, rule);
        }
        if let Some(d) = r.deadline {
            item.entry(DEADLINE.into())
                .or_insert_with(|| number(d.epoch_seconds()));
        }
        match r.owner {
            None => {}
            Some(Owner::Set {
                principal,
                position,
                since_ms,
            }) => {
                item.insert(PRINCIPAL.into(), text(principal.as_str()));
                item.insert(PRINCIPAL_POSITION.into(), text(position.as_str()));
                item.insert(PRINCIPAL_SINCE.into(), number(since_ms));
            }
            Some(Owner::Clear) => {
                item.remove(PRINCIPAL);
                item.remove(PRINCIPAL_POSITION);
                item.remove(PRINCIPAL_SINCE);
            }
        }
    }
}

impl Layout {
    /// What `spare` does to an item, done in memory.
    pub fn apply_spare(&self, item: &mut Item, since_ms: i64) {
        item.insert(PRINCIPAL_SINCE.into(), number(since_ms));
    }

    /// What `tombstone` does to an item, done in memory, as `apply_refresh` is.
    pub fn apply_tombstone(&self, item: &mut Item, t: &Tombstone) {
        let version = View(&*item).version().next();
        item.insert(REMOVED_AT.into(), number(t.now.epoch_seconds()));
        item.insert(DATA.into(), text(&t.empty));
        item.insert(EXPIRES_AT.into(), number(t.until.epoch_seconds()));
        item.insert(VERSION.into(), number(version.0));
        for name in [
            IDLE_TTL,
            EXPIRES_FIXED,
            DEADLINE,
            TOUCHED_AT,
            PRINCIPAL,
            PRINCIPAL_POSITION,
            PRINCIPAL_SINCE,
        ] {
            item.remove(name);
        }
    }
}

/// The principal and the session's place in its listing, in a whole item.
fn write_owner(item: &mut Item, key: &SessionKey, p: &Principal, created: Option<Timestamp>) {
    let created = created.unwrap_or(Timestamp::from_epoch_seconds(0));
    let position = ListingPosition::of(created, &SessionHandle::of(key));
    item.insert(PRINCIPAL.into(), text(p.as_str()));
    item.insert(PRINCIPAL_POSITION.into(), text(position.as_str()));
}

/// The rule's own attributes in a whole item.
fn write_rule(item: &mut Item, rule: Expiry) {
    match rule {
        Expiry::Default => {}
        Expiry::IdleFor(d) => {
            item.insert(IDLE_TTL.to_owned(), number(d.as_secs()));
        }
        Expiry::At(_) => {
            item.insert(EXPIRES_FIXED.to_owned(), AttributeValue::Bool(true));
        }
    }
}

/// The stored form of `meta` in a whole item (create, cycle).
fn write_meta(item: &mut Item, meta: &SessionMeta) {
    for (name, t) in [
        (CREATED, meta.created),
        (EXPIRES_AT, meta.expires_at),
        (DEADLINE, meta.deadline),
        (TOUCHED_AT, meta.touched_at),
    ] {
        match t {
            Some(t) => item.insert(name.to_owned(), number(t.epoch_seconds())),
            None => item.remove(name),
        };
    }
    item.insert(VERSION.to_owned(), number(meta.version.0));
    item.remove(IDLE_TTL);
    item.remove(EXPIRES_FIXED);
    write_rule(item, meta.expiry);
}
