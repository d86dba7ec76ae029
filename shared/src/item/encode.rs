//! Writing a whole item: what create and cycle put, and a refresh done in memory (the
//! in-memory store's write, kept beside the expression so that both stores write the
//! same item).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    CREATED, DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, IDLE_TTL, Item, Layout, REMOVED_AT,
    Refresh, TOUCHED_AT, Tombstone, VERSION, View, number, text,
};
use crate::expiry::Expiry;
use crate::session::SessionMeta;

impl Layout {
    /// A whole item, as create writes it.
    pub fn new_item(&self, key: &str, data: &str, meta: &SessionMeta) -> Item {
        let mut item = Item::new();
        item.insert(self.key.clone(), text(key));
        item.insert(DATA.into(), text(data));
        write_meta(&mut item, meta);
        item
    }

    /// The item a cycle puts: the old one under a new key, with its new expiry and version.
    pub fn moved(&self, old: &Item, key: &str, meta: &SessionMeta) -> Item {
        let mut item = old.clone();
        write_meta(&mut item, meta);
        item.insert(self.key.clone(), text(key));
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
    }
}

impl Layout {
    /// What `tombstone` does to an item, done in memory, as `apply_refresh` is.
    pub fn apply_tombstone(&self, item: &mut Item, t: &Tombstone<'_>) {
        let version = View(&*item).version().next();
        item.insert(REMOVED_AT.into(), number(t.now.epoch_seconds()));
        item.insert(DATA.into(), text(t.empty));
        item.insert(EXPIRES_AT.into(), number(t.until.epoch_seconds()));
        item.insert(VERSION.into(), number(version.0));
        for name in [IDLE_TTL, EXPIRES_FIXED, DEADLINE, TOUCHED_AT] {
            item.remove(name);
        }
    }
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
