//! Writing a whole item: what create and cycle put.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    CREATED, DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, HOME_REGION, IDLE_TTL, Item, Layout,
    PRINCIPAL, PRINCIPAL_POSITION, PRINCIPAL_SINCE, TOUCHED_AT, VERSION, View, number, text,
};
use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::key::SessionKey;
use crate::principal::{ListingPosition, Principal};
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
}

/// The principal and the session's place in its listing, in a whole item.
fn write_owner(item: &mut Item, key: &SessionKey, p: &Principal, created: Option<Timestamp>) {
    let position = ListingPosition::of_session(created, key);
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
