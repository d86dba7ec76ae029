//! The expressions of a principal's items and of its sessions' revocation: the
//! watermark, the registry of the cap, the index's Query.

use aws_sdk_dynamodb::types::AttributeValue;

use super::expression::{Expr, Write};
use super::{
    Item, Layout, PRINCIPAL, PRINCIPAL_POSITION, PRINCIPAL_SINCE, REVOKE_EXCEPT, REVOKE_PENDING,
    REVOKE_RESUME, REVOKED_BEFORE, REVOKED_COUNT, VERSION, Watermark, number, text,
};
use crate::clock::Timestamp;
use crate::principal::{ListingPosition, Principal};
use crate::session::Version;

/// A Query of the index of sessions by principal: its key condition and placeholders.
/// It has no filter: DynamoDB refuses one that names a key attribute of the index.
#[derive(Debug)]
pub struct PrincipalQuery {
    pub key_condition: String,
    pub expr: Expr,
}

impl Layout {
    /// A revocation's delete: a session of `principal` that a revocation may remove
    /// (`Layout::revocable`), which had it by `since_at_most` when that is given.
    pub fn revocation(
        &self,
        now: Timestamp,
        principal: &Principal,
        since_at_most: Option<i64>,
    ) -> Write {
        let mut e = self.expr();
        self.revocable(&mut e, now);
        e.owned_by(principal);
        if let Some(ms) = since_at_most {
            e.owned_since_at_most(ms);
        }
        Write {
            update: None,
            expr: e,
        }
    }

    /// The spared session of a revocation: it gets its principal anew at `since_ms`,
    /// after the watermark, if it is still a live session of `principal`.
    /// A session an earlier watermark (`covered_by`) covers stays revoked: an exception
    /// never brings one back.
    pub fn spare(
        &self,
        now: Timestamp,
        principal: &Principal,
        since_ms: i64,
        covered_by: Option<i64>,
    ) -> Write {
        let mut e = self.expr();
        self.alive(&mut e, now);
        e.owned_by(principal);
        e.name("#since", PRINCIPAL_SINCE)
            .value(":since", number(since_ms));
        if let Some(earlier) = covered_by {
            e.value(":earlier", number(earlier))
                .condition("#since > :earlier");
        }
        Write {
            update: Some("SET #since = :since".into()),
            expr: e,
        }
    }

    /// A principal's watermark item, as a revocation writes it: only ever later.
    pub fn watermark(&self, principal: &Principal, w: &Watermark) -> (Item, Write) {
        let mut item = Item::from([
            self.key(&super::watermark_key(principal)),
            (REVOKED_BEFORE.to_owned(), number(w.before)),
            (REVOKE_PENDING.to_owned(), AttributeValue::Bool(w.pending)),
            (REVOKED_COUNT.to_owned(), number(w.revoked)),
        ]);
        if let Some(k) = &w.except {
            item.insert(REVOKE_EXCEPT.to_owned(), text(k));
        }
        if let Some(at) = &w.resume {
            item.insert(REVOKE_RESUME.to_owned(), text(at.as_str()));
        }
        let mut e = Expr::default();
        e.name("#before", REVOKED_BEFORE)
            .value(":before", number(w.before))
            .condition("attribute_not_exists(#before) OR #before <= :before");
        (
            item,
            Write {
                update: None,
                expr: e,
            },
        )
    }

    /// The key of `principal`'s registry in this table (see [`super::registry_key`]).
    pub fn registry_key(&self, principal: &Principal) -> String {
        super::registry_key(principal, self.region.as_deref())
    }

    /// A principal's registry with `members`, written only over version `read` (0: none
    /// yet), so that of two logins counting at once, one counts again.
    pub fn registry(
        &self,
        principal: &Principal,
        read: Version,
        members: &[&str],
    ) -> (Item, Write) {
        let item = Item::from([
            self.key(&self.registry_key(principal)),
            (VERSION.to_owned(), number(read.0 + 1)),
            (
                super::MEMBERS.to_owned(),
                AttributeValue::L(members.iter().map(|k| text(k)).collect()),
            ),
        ]);
        let mut e = Expr::default();
        e.version_is(read);
        (
            item,
            Write {
                update: None,
                expr: e,
            },
        )
    }

    /// A page of `principal`'s entries in the index, newest first, after `after`.
    pub fn principal_query(
        &self,
        principal: &Principal,
        after: Option<&ListingPosition>,
    ) -> PrincipalQuery {
        let mut e = Expr::default();
        e.name("#principal", PRINCIPAL)
            .value(":principal", text(principal.as_str()));
        let mut key_condition = "#principal = :principal".to_owned();
        if let Some(at) = after {
            e.name("#position", PRINCIPAL_POSITION)
                .value(":after", text(at.as_str()));
            key_condition.push_str(" AND #position < :after");
        }
        PrincipalQuery {
            key_condition,
            expr: e,
        }
    }
}
