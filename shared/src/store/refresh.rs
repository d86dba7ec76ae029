//! DynamoDB writes that refresh a session's expiry: replace, touch, touch-on-read and
//! merge-update. One conditional UpdateItem each, starting from assumptions when
//! nothing was read, and retrying once the item is known when they did not hold.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::dynamo::DynamoStore;
use super::missing_is_unmet;
use super::rules::{Change, Known};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::item::{Guard, Item};
use crate::key::SessionKey;
use crate::principal::Ownership;
use crate::session::{Expected, Session, SessionData};

/// Writes retried after learning the stored expiry rule or deadline.
const RELEARN_ATTEMPTS: u32 = 4;

/// How a conditional refresh ended.
enum Outcome {
    Written(Item),
    /// Missing or expired.
    Gone,
    /// The caller's expectation is not met.
    Conflict,
    /// Alive, but not as assumed or known: here is what it is now.
    Stale(Known),
}

impl DynamoStore {
    /// A refresh that starts from assumptions and, when the item turns out to follow
    /// another expiry rule or to be near its deadline, retries knowing the item.
    pub(super) async fn refresh_relearning(
        &self,
        key: &SessionKey,
        mut change: Change,
        now: Timestamp,
    ) -> Result<Item, StoreError> {
        if !self.rules.can_meet(change.expected) {
            return Err(StoreError::VersionConflict);
        }
        // A tag of a table shared with the Django backend names the data, which no
        // condition can check by its hash: the data is read first and the write compares
        // it whole (one request more than with the json codec).
        // So does a write that changes the session's principal: its place in the listing
        // follows the creation time the item holds, and a revocation that covers the
        // session as read refuses it.
        let gives_owner = change.changes_owner();
        let asked = change.owner.clone();
        let mut known = match change.expected {
            Some(Expected::Tag(_)) if self.rules.layout.has_tombstones() || gives_owner => {
                Some(self.read_known(key, change.expected, now).await?)
            }
            _ if gives_owner => Some(self.read_known(key, change.expected, now).await?),
            _ => None,
        };
        for _ in 0..RELEARN_ATTEMPTS {
            if let Some(k) = &known {
                // Settled against each read afresh: what the item holds may have changed.
                change.owner = asked.clone();
                change.settle_owner(k.principal());
                if change.changes_owner() && self.revoked_owner(k.owner.as_ref()).await? {
                    return Err(missing_is_unmet(StoreError::NotFound, change.expected));
                }
            }
            match self.refresh(key, &change, known.as_ref(), now).await? {
                // Written, but revoked meanwhile: never served. The write kept the time
                // the session got its principal, unless it gave it a new one; either
                // way the watermark read now covers what a revocation answered before.
                Outcome::Written(item) if self.revoked(&item).await? => {
                    return Err(missing_is_unmet(StoreError::NotFound, change.expected));
                }
                Outcome::Written(item) => {
                    if let Ownership::Set(p) = &change.owner {
                        let since = crate::item::View(&item).principal_since();
                        self.counted(p, key, since).await?;
                    }
                    return Ok(item);
                }
                Outcome::Gone => {
                    return Err(missing_is_unmet(StoreError::NotFound, change.expected));
                }
                Outcome::Conflict => return Err(StoreError::VersionConflict),
                Outcome::Stale(read) => known = Some(read),
            }
        }
        Err(StoreError::Contention)
    }

    /// Loads, and refreshes the expiry only when the last refresh is older than the
    /// configured interval, so most reads cost a single GetItem.
    pub(super) async fn load_touching(&self, key: &SessionKey) -> Result<Session, StoreError> {
        let session = self
            .load_with(key, self.rules.config.consistent_read)
            .await?;
        let now = self.rules.now();
        if !session
            .meta
            .refresh_due(now, self.rules.config.touch_interval)
        {
            return Ok(session);
        }
        let change = Change::touch(None);
        // A touch leaves the data alone, so it need not compare it.
        let known = Known {
            meta: session.meta,
            data: None,
            owner: None,
        };
        match self.refresh(key, &change, Some(&known), now).await {
            Ok(Outcome::Written(item)) => Ok(Session {
                meta: self.rules.meta_of(&item, Some(&session.data)),
                ..session
            }),
            Ok(Outcome::Gone) => Err(StoreError::NotFound),
            // Another writer got there first, and its write refreshed the expiry.
            Ok(Outcome::Conflict | Outcome::Stale(_)) => Ok(session),
            // Another region's session is read here, and refreshed by its home's writes.
            Err(StoreError::Misdirected { .. }) => Ok(session),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write of the data, guarded by the version read and retried with
    /// backoff when another writer got in between: two requests without contention.
    pub(super) async fn read_modify_write<F>(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        mut change: F,
    ) -> Result<Session, StoreError>
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError> + Send,
    {
        for attempt in 0..self.rules.config.update_attempts {
            self.pause(attempt).await?;
            let gone = || missing_is_unmet(StoreError::NotFound, expected);
            let item = self.get_item(key, true).await?.ok_or_else(gone)?;
            let current = self.rules.live_session(key, &item)?.ok_or_else(gone)?;
            self.rules
                .writable_here(&item, &current.meta, expected, self.rules.now())?;
            // With the Django codec the write also compares the data read, so a backend
            // write in between (which bumps no version) fails it and it starts over.
            let known = self.rules.known(&item, current.meta);
            let mut data = current.data;
            change(&mut data)?;
            let now = self.rules.now();
            let write = self
                .rules
                .rewrite(&data, expected, current.principal.as_ref(), now)?;
            // A write that gives the session another principal must not take it out of
            // a revocation that covers it as read.
            if write.changes_owner() && self.revoked(&item).await? {
                return Err(gone());
            }
            match self.refresh(key, &write, Some(&known), now).await? {
                // Checked after the write, so that a revocation that answered before it
                // is never missed: a session written on meanwhile is still not served.
                Outcome::Written(item) if self.revoked(&item).await? => return Err(gone()),
                Outcome::Written(item) => {
                    if let Ownership::Set(p) = &write.owner {
                        let since = crate::item::View(&item).principal_since();
                        self.counted(p, key, since).await?;
                    }
                    return Ok(self.rules.written(key, &item, data));
                }
                Outcome::Gone => return Err(missing_is_unmet(StoreError::NotFound, expected)),
                Outcome::Conflict => return Err(StoreError::VersionConflict),
                Outcome::Stale(_) => continue,
            }
        }
        Err(StoreError::Contention)
    }

    /// One conditional UpdateItem; `known` is what a read found of the stored item.
    async fn refresh(
        &self,
        key: &SessionKey,
        change: &Change,
        known: Option<&Known>,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let guard = match known {
            None => Guard::Assumed {
                version: change.expected.and_then(Expected::version),
                keeps_rule: change.rule.is_none(),
                rule_in_data: self.rules.codec.has_expiry_in_data(),
            },
            Some(k) if !change.allows(&k.meta) => return Ok(Outcome::Conflict),
            Some(k) => k.guard(),
        };
        let created = known.and_then(|k| k.meta.created);
        let position = change.position(key, created);
        let mut plan = self.rules.plan(change, known.map(|k| &k.meta), now);
        plan.owner = change.owner(position.as_ref(), self.rules.clock.now_millis());
        let write = self.rules.layout.refresh(&plan, guard);
        let request = self
            .update_request(key.as_str(), write)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let old = match self.call(request.send()).await? {
            Ok(out) => return Ok(Outcome::Written(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                }
            }
            Err(e) => return Err(StoreError::from_sdk(e)),
        };
        let Some(old) = old else {
            return Ok(Outcome::Gone);
        };
        let meta = self.rules.meta_of(&old, None);
        Ok(
            match self.rules.writable_here(&old, &meta, change.expected, now) {
                Ok(()) => Outcome::Stale(self.rules.known(&old, meta)),
                Err(e @ StoreError::Misdirected { .. }) => return Err(e),
                Err(_) if !meta.is_alive(now) => Outcome::Gone,
                Err(_) => Outcome::Conflict,
            },
        )
    }
}
