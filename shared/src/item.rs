//! The DynamoDB item, in one place: the attribute names, the mapping of a session to
//! attributes and back, and every condition, update, projection and filter expression.
//! Both stores, the cleanup and the auditor go through this module; nothing else names
//! an attribute (docs/store.md).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::session::{SessionMeta, Version};

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

/// Key of the item that records where each cleanup segment stopped. It is no valid
/// session key, so the API cannot address it, and the sweep skips it.
pub const CHECKPOINT_KEY: &str = "#cleanup-checkpoint";
const SEGMENTS: &str = "segments";
const POSITIONS: &str = "positions";
const UPDATED_AT: &str = "updated_at";

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn text(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Read-only access to one image of an item, whatever types hold it: the SDK's items,
/// and the stream images the auditor reads without converting them.
pub trait Image {
    fn text(&self, name: &str) -> Option<&str>;
    fn number(&self, name: &str) -> Option<&str>;
    fn flag(&self, name: &str) -> Option<bool>;
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

    /// Everything the item says about itself except its key and data.
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
        }
    }
}

/// [`View::meta`] of an SDK item.
pub fn meta(item: &Item) -> SessionMeta {
    View(item).meta()
}

/// Placeholders and conditions of one request's expressions.
#[derive(Debug, Default)]
pub struct Expr {
    pub names: Names,
    pub values: Item,
    conditions: Vec<String>,
}

impl Expr {
    fn name(&mut self, placeholder: &str, attribute: &str) -> &mut Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    fn value(&mut self, placeholder: &str, v: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.into(), v);
        self
    }

    fn condition(&mut self, c: impl Into<String>) -> &mut Self {
        self.conditions.push(c.into());
        self
    }

    /// The test "the item is at version `v`" (items of the Django backend have none: 0).
    fn version_is(&mut self, v: Version) -> &mut Self {
        self.name("#ver", VERSION);
        if v.0 == 0 {
            self.condition("attribute_not_exists(#ver)")
        } else {
            self.value(":expected", number(v.0));
            self.condition("#ver = :expected")
        }
    }

    /// All conditions joined by AND; DynamoDB rejects redundant parentheses. `None`
    /// when there are none.
    pub fn condition_text(&self) -> Option<String> {
        match self.conditions.as_slice() {
            [] => None,
            [only] => Some(only.clone()),
            all => Some(
                all.iter()
                    .map(|c| format!("({c})"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
        }
    }

    /// Names and values for the SDK's setters: `None` when empty, which DynamoDB wants
    /// rather than empty maps.
    pub fn into_parts(self) -> (Option<Names>, Option<Item>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}

/// One conditional write: an optional update expression and its condition.
#[derive(Debug)]
pub struct Write {
    pub update: Option<String>,
    pub expr: Expr,
}

/// A write's expressions as the SDK's setters take them.
#[derive(Debug)]
pub struct Parts {
    pub update: Option<String>,
    pub condition: Option<String>,
    pub names: Option<Names>,
    pub values: Option<Item>,
}

impl Write {
    /// No condition at all.
    pub fn unconditional() -> Self {
        Self {
            update: None,
            expr: Expr::default(),
        }
    }

    pub fn parts(self) -> Parts {
        let condition = self.expr.condition_text();
        let (names, values) = self.expr.into_parts();
        Parts {
            update: self.update,
            condition,
            names,
            values,
        }
    }
}

/// What a refresh writes: a new expiry and touch time, the version bumped, and,
/// optionally, new data, a rule to store, and a lifetime deadline if none is stored.
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    pub now: Timestamp,
    pub expires: Timestamp,
    pub data: Option<&'a str>,
    pub rule: Option<Expiry>,
    pub deadline: Option<Timestamp>,
}

/// What a refresh's condition knows of the stored item.
#[derive(Debug, Clone, Copy)]
pub enum Guard {
    /// Nothing read: the write assumes the default rule (unless it sets one) and a
    /// deadline that does not bite, and checks both; with `rule_in_data`, an item never
    /// written here is refused, since its data may hold another rule.
    Assumed {
        version: Option<Version>,
        keeps_rule: bool,
        rule_in_data: bool,
    },
    /// Read before: the write is guarded by this exact version.
    Known(Version),
}

/// A Scan's parts: projection, filter, and their placeholders.
#[derive(Debug)]
pub struct Scan {
    pub projection: String,
    pub filter: String,
    pub expr: Expr,
}

/// Where a cleanup segment stopped: the Scan's `LastEvaluatedKey`, kept as DynamoDB gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor(pub Item);

/// How far a cleanup segment got.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    Start,
    After(Cursor),
    Done,
}

/// The item layout of one table: its hash key's name is configurable.
#[derive(Debug, Clone)]
pub struct Layout {
    key: String,
}

impl Layout {
    pub fn new(key_attribute: &str) -> Self {
        Self {
            key: key_attribute.to_owned(),
        }
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

    fn expr(&self) -> Expr {
        let mut e = Expr::default();
        e.name("#k", &self.key);
        e
    }

    /// The item exists and has not expired at `now`.
    fn alive(&self, e: &mut Expr, now: Timestamp) {
        e.name("#exp", EXPIRES_AT)
            .value(":now", number(now.epoch_seconds()))
            .condition("attribute_exists(#k) AND (attribute_not_exists(#exp) OR #exp > :now)");
    }

    /// Create, and the new key of a cycle: nothing is under this key yet.
    pub fn absent(&self) -> Write {
        let mut e = self.expr();
        e.condition("attribute_not_exists(#k)");
        Write {
            update: None,
            expr: e,
        }
    }

    /// The projection of an existence check: the key and the expiry.
    pub fn exists_projection(&self) -> (String, Expr) {
        let mut e = self.expr();
        e.name("#exp", EXPIRES_AT);
        ("#k, #exp".into(), e)
    }

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

    /// A cycle's delete of the old key: still alive and still at the version read.
    pub fn unchanged(&self, now: Timestamp, version: Version) -> Write {
        self.delete_expecting(now, Some(version))
    }

    /// The UpdateItem of a refresh (replace, merge-update, touch).
    pub fn refresh(&self, r: &Refresh<'_>, guard: Guard) -> Write {
        let mut e = self.expr();
        self.alive(&mut e, r.now);
        e.name("#touched", TOUCHED_AT)
            .name("#ver", VERSION)
            .value(":exp", number(r.expires.epoch_seconds()))
            .value(":zero", number(0))
            .value(":one", number(1));
        let mut set = vec![
            "#exp = :exp".to_owned(),
            "#touched = :now".to_owned(),
            "#ver = if_not_exists(#ver, :zero) + :one".to_owned(),
        ];
        let mut remove = Vec::new();
        if let Some(raw) = r.data {
            e.name("#data", DATA).value(":data", text(raw));
            set.push("#data = :data".into());
        }
        if let Some(rule) = r.rule {
            set_rule(&mut e, rule, &mut set, &mut remove);
        }
        if let Some(d) = r.deadline {
            e.name("#deadline", DEADLINE)
                .value(":deadline", number(d.epoch_seconds()));
            set.push("#deadline = if_not_exists(#deadline, :deadline)".into());
        }
        guard_refresh(&mut e, guard);
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        Write {
            update: Some(update),
            expr: e,
        }
    }

    /// The cleanup's Scan for candidates: items without an expiry or past it, with the
    /// data too when the codec keeps an expiry in it.
    pub fn expired_scan(&self, now: Timestamp, with_data: bool) -> Scan {
        let mut e = self.expr();
        e.name("#exp", EXPIRES_AT)
            .name("#created", CREATED)
            .value(":now", number(now.epoch_seconds()));
        let mut projection = "#k, #exp, #created".to_owned();
        if with_data {
            e.name("#data", DATA);
            projection.push_str(", #data");
        }
        Scan {
            projection,
            filter: "attribute_not_exists(#exp) OR #exp <= :now".into(),
            expr: e,
        }
    }

    /// The cleanup's delete: only if the session is still expired at `now`.
    pub fn still_expired(&self, now: Timestamp) -> Write {
        let mut e = Expr::default();
        e.name("#exp", EXPIRES_AT)
            .value(":now", number(now.epoch_seconds()))
            .condition("#exp <= :now");
        Write {
            update: None,
            expr: e,
        }
    }

    /// The cleanup's stamp on an item without an expiry: the expiry, and the rule's own
    /// attributes as the store's writes keep them, so reads need not decode the data.
    pub fn stamp(&self, at: Timestamp, rule: Expiry) -> Write {
        let mut e = self.expr();
        e.name("#exp", EXPIRES_AT)
            .name("#ver", VERSION)
            .value(":at", number(at.epoch_seconds()))
            .value(":zero", number(0))
            .value(":one", number(1))
            .condition("attribute_exists(#k) AND attribute_not_exists(#exp)");
        let mut set = vec![
            "#exp = :at".to_owned(),
            "#ver = if_not_exists(#ver, :zero) + :one".to_owned(),
        ];
        match rule {
            Expiry::Default => {}
            Expiry::IdleFor(d) => {
                e.name("#idle", IDLE_TTL)
                    .value(":idle", number(d.as_secs()));
                set.push("#idle = :idle".into());
            }
            Expiry::At(_) => {
                e.name("#fixed", EXPIRES_FIXED)
                    .value(":fixed", AttributeValue::Bool(true));
                set.push("#fixed = :fixed".into());
            }
        }
        Write {
            update: Some(format!("SET {}", set.join(", "))),
            expr: e,
        }
    }

    /// The checkpoint item: the segment count and each segment's position.
    pub fn checkpoint(&self, positions: &[Position], now: Timestamp) -> Item {
        let saved: Item = positions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Position::Start => None,
                Position::After(Cursor(c)) => Some((i.to_string(), AttributeValue::M(c.clone()))),
                Position::Done => Some((i.to_string(), AttributeValue::Bool(true))),
            })
            .collect();
        Item::from([
            self.key(CHECKPOINT_KEY),
            (SEGMENTS.into(), number(positions.len())),
            (POSITIONS.into(), AttributeValue::M(saved)),
            (UPDATED_AT.into(), number(now.epoch_seconds())),
        ])
    }

    /// The positions a checkpoint item holds, and the segment count they are for.
    pub fn positions(&self, item: &Item) -> (Option<u32>, Vec<Position>) {
        let segments = item.number(SEGMENTS).and_then(|n| n.parse::<u32>().ok());
        let saved = match item.get(POSITIONS) {
            Some(AttributeValue::M(m)) => m.clone(),
            _ => Item::new(),
        };
        let positions = (0..segments.unwrap_or(0))
            .map(|i| match saved.get(&i.to_string()) {
                Some(AttributeValue::M(cursor)) => Position::After(Cursor(cursor.clone())),
                Some(AttributeValue::Bool(true)) => Position::Done,
                _ => Position::Start,
            })
            .collect();
        (segments, positions)
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

/// SET and REMOVE clauses that store `rule` in place of whatever rule was stored.
fn set_rule(e: &mut Expr, rule: Expiry, set: &mut Vec<String>, remove: &mut Vec<&str>) {
    e.name("#idle", IDLE_TTL).name("#fixed", EXPIRES_FIXED);
    match rule {
        Expiry::Default => remove.extend(["#idle", "#fixed"]),
        Expiry::IdleFor(d) => {
            e.value(":idle", number(d.as_secs()));
            set.push("#idle = :idle".into());
            remove.push("#fixed");
        }
        Expiry::At(_) => {
            e.value(":fixed", AttributeValue::Bool(true));
            set.push("#fixed = :fixed".into());
            remove.push("#idle");
        }
    }
}

/// The conditions of a refresh beyond "alive".
fn guard_refresh(e: &mut Expr, guard: Guard) {
    match guard {
        Guard::Assumed {
            version,
            keeps_rule,
            rule_in_data,
        } => {
            if let Some(v) = version {
                e.version_is(v);
            }
            if keeps_rule {
                e.name("#idle", IDLE_TTL)
                    .name("#fixed", EXPIRES_FIXED)
                    .condition("attribute_not_exists(#idle) AND attribute_not_exists(#fixed)");
            }
            if rule_in_data {
                e.name("#ver", VERSION).condition("attribute_exists(#ver)");
            }
            e.name("#deadline", DEADLINE)
                .condition("attribute_not_exists(#deadline) OR #deadline >= :exp");
        }
        Guard::Known(v) => {
            e.version_is(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_epoch_seconds(secs)
    }

    #[test]
    fn items_of_the_original_backend_read_as_version_zero_without_expiry() {
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
            };
            assert_eq!(meta(&layout.new_item("k", "{}", &m)), m);
        }
    }

    #[test]
    fn a_refresh_in_memory_writes_what_its_expression_sets() {
        let layout = Layout::new("session_key");
        let m = SessionMeta {
            created: Some(t(1)),
            expires_at: Some(t(100)),
            expiry: Expiry::IdleFor(Duration::from_secs(99)),
            deadline: None,
            touched_at: Some(t(1)),
            version: Version(3),
        };
        let mut item = layout.new_item("k", "{}", &m);
        let r = Refresh {
            now: t(10),
            expires: t(50),
            data: Some("{\"a\":1}"),
            rule: Some(Expiry::At(t(50))),
            deadline: Some(t(70)),
        };
        layout.apply_refresh(&mut item, &r);
        let after = meta(&item);
        assert_eq!(after.version, Version(4));
        assert_eq!(after.expiry, Expiry::At(t(50)));
        assert_eq!(
            (after.expires_at, after.deadline),
            (Some(t(50)), Some(t(70)))
        );
        assert_eq!(View(&item).data(), Some("{\"a\":1}"));
        let w = layout.refresh(&r, Guard::Known(Version(3)));
        let update = w.update.unwrap_or_default();
        for clause in [
            "#exp = :exp",
            "#data = :data",
            "#fixed = :fixed",
            "REMOVE #idle",
        ] {
            assert!(update.contains(clause), "{update}");
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
