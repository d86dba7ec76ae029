//! The expressions of a session's own writes (create, refresh) and what every
//! expression is built from; removals are in `removal`, a principal's items in
//! `principal_writes`, the upkeep's in `upkeep_writes`.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    DATA, DEADLINE, EXPIRES_AT, EXPIRES_FIXED, HOME_REGION, IDLE_TTL, Item, Layout, Names,
    PRINCIPAL, PRINCIPAL_POSITION, PRINCIPAL_SINCE, REMOVED_AT, TOUCHED_AT, VERSION, number, text,
};
use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::principal::{ListingPosition, Principal};
use crate::session::Version;

/// Placeholders and conditions of one request's expressions.
#[derive(Debug, Default)]
pub struct Expr {
    pub names: Names,
    pub values: Item,
    conditions: Vec<String>,
}

impl Expr {
    pub(super) fn name(&mut self, placeholder: &str, attribute: &str) -> &mut Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    pub(super) fn value(&mut self, placeholder: &str, v: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.into(), v);
        self
    }

    pub(super) fn condition(&mut self, c: impl Into<String>) -> &mut Self {
        self.conditions.push(c.into());
        self
    }

    /// The test "the item is at version `v`" (items of the Django backend have none: 0).
    pub(super) fn version_is(&mut self, v: Version) -> &mut Self {
        self.name("#ver", VERSION);
        if v.0 == 0 {
            self.condition("attribute_not_exists(#ver)")
        } else {
            self.value(":expected", number(v.0));
            self.condition("#ver = :expected")
        }
    }

    /// The test "the session belongs to `p`".
    pub(super) fn owned_by(&mut self, p: &Principal) -> &mut Self {
        self.name("#principal", PRINCIPAL)
            .value(":owner", text(p.as_str()))
            .condition("#principal = :owner")
    }

    /// The test "the session's principal, and when it got it, are as read".
    pub(super) fn owner_is(&mut self, read: OwnerRead<'_>) -> &mut Self {
        self.name("#principal", PRINCIPAL)
            .name("#since", PRINCIPAL_SINCE);
        match read.principal {
            Some(p) => self
                .value(":owner_read", text(p))
                .condition("#principal = :owner_read"),
            None => self.condition("attribute_not_exists(#principal)"),
        };
        match read.since_ms {
            Some(ms) => self
                .value(":since_read", number(ms))
                .condition("#since = :since_read"),
            None => self.condition("attribute_not_exists(#since)"),
        }
    }

    /// The test "the session had its principal by `ms`".
    pub(super) fn owned_since_at_most(&mut self, ms: i64) -> &mut Self {
        self.name("#since", PRINCIPAL_SINCE)
            .value(":since", number(ms))
            .condition("attribute_not_exists(#since) OR #since <= :since")
    }

    /// The test "not expired at `now`": no expiry (an item of the Django backend the
    /// upkeep has not stamped yet) or a later one. `SessionMeta::is_alive` is the same
    /// test on an item read, with the tombstone's.
    pub(super) fn unexpired(&mut self, now: Timestamp) -> &mut Self {
        self.name("#exp", EXPIRES_AT)
            .value(":now", number(now.epoch_seconds()))
            .condition("attribute_not_exists(#exp) OR #exp > :now")
    }

    /// The test "expired at `now`"; with `unstamped`, items without an expiry pass too.
    pub(super) fn expired(&mut self, now: Timestamp, unstamped: bool) -> &mut Self {
        self.name("#exp", EXPIRES_AT)
            .value(":now", number(now.epoch_seconds()))
            .condition(if unstamped {
                "attribute_not_exists(#exp) OR #exp <= :now"
            } else {
                "#exp <= :now"
            })
    }

    /// The test "the item is a tombstone" (see [`REMOVED_AT`]).
    pub(super) fn is_tombstone(&mut self) -> &mut Self {
        self.name("#tomb", REMOVED_AT)
            .condition("attribute_exists(#tomb)")
    }

    /// The test "the item is no tombstone".
    pub(super) fn no_tombstone(&mut self) -> &mut Self {
        self.name("#tomb", REMOVED_AT)
            .condition("attribute_not_exists(#tomb)")
    }

    /// The conditions so far, taken out to serve as a Scan's filter.
    pub(super) fn take_conditions(&mut self) -> Option<String> {
        let text = self.condition_text();
        self.conditions.clear();
        text
    }

    /// The test "the item holds exactly the data `raw`", which catches a write of the
    /// Django backend: it changes the data without bumping the version.
    pub(super) fn data_is(&mut self, raw: &str) -> &mut Self {
        self.name("#data", DATA)
            .value(":read", text(raw))
            .condition("#data = :read")
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
/// optionally, new data, a rule to store, a lifetime deadline if none is stored, and a
/// new owner.
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    pub now: Timestamp,
    pub expires: Timestamp,
    pub data: Option<&'a str>,
    pub rule: Option<Expiry>,
    pub deadline: Option<Timestamp>,
    pub owner: Option<Owner<'a>>,
}

/// A principal a refresh gives the session, with its place in the listing; or none.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Set {
        principal: &'a Principal,
        position: &'a ListingPosition,
        /// When it got the principal (epoch milliseconds); `None` when nothing proves
        /// it, which every revocation of the principal covers.
        since_ms: Option<i64>,
    },
    Clear,
}

/// What a refresh's condition knows of the stored item.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// Nothing read: the write assumes the default rule (unless it sets one) and a
    /// deadline that does not bite, and checks both; with `rule_in_data`, an item never
    /// written here is refused, since its data may hold another rule.
    Assumed {
        version: Option<Version>,
        keeps_rule: bool,
        rule_in_data: bool,
    },
    /// Read before: the write is guarded by this exact version, by the data read
    /// where it is given (a table shared with the Django backend), and by the principal
    /// and the time it got it where given (writes that do not bump the version change
    /// that time: a revocation's spared session).
    Known {
        version: Version,
        data: Option<&'a str>,
        owner: Option<OwnerRead<'a>>,
    },
}

/// A session's principal and the time it got it (epoch milliseconds), as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerRead<'a> {
    pub principal: Option<&'a str>,
    pub since_ms: Option<i64>,
}

impl Layout {
    pub(super) fn expr(&self) -> Expr {
        let mut e = Expr::default();
        e.name("#k", &self.key);
        e
    }

    /// The item exists and has not expired at `now`, and is no tombstone; and, on a
    /// global table, it is this region's to write.
    pub(super) fn alive(&self, e: &mut Expr, now: Timestamp) {
        e.condition("attribute_exists(#k)").unexpired(now);
        if self.tombstones {
            e.no_tombstone();
        }
        self.at_home(e);
    }

    /// The item a revocation may remove: a session of this region, no tombstone; alive,
    /// unless the Django backend shares the table, since Django loads a session whatever
    /// its `expires_at` until TTL deletes it. `Rules::revocation_reaches` is the same
    /// test on an item read.
    pub(super) fn revocable(&self, e: &mut Expr, now: Timestamp) {
        if self.tombstones {
            e.condition("attribute_exists(#k)").no_tombstone();
            self.at_home(e);
        } else {
            self.alive(e, now);
        }
    }

    /// On a global table: the item has no home, or its home is this region.
    pub(super) fn at_home(&self, e: &mut Expr) {
        if let Some(here) = &self.region {
            e.name("#home", HOME_REGION)
                .value(":here", text(here))
                .condition("attribute_not_exists(#home) OR #home = :here");
        }
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

    /// The projection of an existence check: the key, the expiry, and the principal
    /// with its time (for the revocation check).
    pub fn exists_projection(&self) -> (String, Expr) {
        let mut e = self.expr();
        e.name("#exp", EXPIRES_AT)
            .name("#principal", PRINCIPAL)
            .name("#since", PRINCIPAL_SINCE);
        ("#k, #exp, #principal, #since".into(), e)
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
        if let Some(owner) = r.owner {
            set_owner(&mut e, owner, &mut set, &mut remove);
        }
        guard_refresh(&mut e, guard);
        Write {
            update: Some(set_and_remove(&set, &remove)),
            expr: e,
        }
    }
}

/// An update expression from its SET and (possibly no) REMOVE clauses.
pub(super) fn set_and_remove(set: &[String], remove: &[&str]) -> String {
    let mut update = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        update.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    update
}

/// SET or REMOVE clauses that give the session `owner`'s principal, or take it away.
pub(super) fn set_owner(
    e: &mut Expr,
    owner: Owner<'_>,
    set: &mut Vec<String>,
    remove: &mut Vec<&str>,
) {
    e.name("#principal", PRINCIPAL)
        .name("#position", PRINCIPAL_POSITION)
        .name("#since", PRINCIPAL_SINCE);
    match owner {
        Owner::Set {
            principal,
            position,
            since_ms,
        } => {
            e.value(":principal", text(principal.as_str()))
                .value(":position", text(position.as_str()));
            set.push("#principal = :principal".into());
            set.push("#position = :position".into());
            match since_ms {
                Some(ms) => {
                    e.value(":since", number(ms));
                    set.push("#since = :since".into());
                }
                None => remove.push("#since"),
            }
        }
        Owner::Clear => remove.extend(["#principal", "#position", "#since"]),
    }
}

/// SET and REMOVE clauses that store `rule` in place of whatever rule was stored.
pub(super) fn set_rule(e: &mut Expr, rule: Expiry, set: &mut Vec<String>, remove: &mut Vec<&str>) {
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
        Guard::Known {
            version,
            data,
            owner,
        } => {
            e.version_is(version);
            if let Some(raw) = data {
                e.data_is(raw);
            }
            if let Some(read) = owner {
                e.owner_is(read);
            }
        }
    }
}
