//! The upkeep in DynamoDB ([`Upkeep`]): the backfill Scan's pages of expired candidates,
//! a delete that happens only while a session is still expired, an expiry stamped on
//! items without one, the Scan's lease and checkpoint; and the stream upkeep's write to
//! an item the Django backend wrote, decided on its stream record (the expiry stamped,
//! the principal its data names given, both conditioned on the data the record shows,
//! and checked against that principal's revocation watermark).

use super::Upkeep;
use super::dynamo::DynamoStore;
use crate::clock::Timestamp;
use crate::codec::DecodeError;
use crate::error::{StoreError, conditional};
use crate::expiry::Expiry;
use crate::item::{
    CHECKPOINT_KEY, Cursor, Item, Owner, Position, Stamp, View, Write, watermark_key,
};
use crate::key::SessionKey;
use crate::principal::{ListingPosition, Principal};

/// An item the cleanup may have to settle: expired, or without an expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub key: SessionKey,
    pub expires_at: Option<Timestamp>,
    pub created: Option<Timestamp>,
    /// The rule the item's data asks for, for codecs that keep one there; read only
    /// for items without an expiry.
    pub data_rule: Option<Expiry>,
    /// The item has no expiry and its data inflates past the decompression cap, so the
    /// rule in it cannot be read: the cleanup leaves it alone and counts it.
    pub data_over_cap: bool,
}

/// One Scan page of candidates.
#[derive(Debug)]
pub struct Page {
    pub candidates: Vec<Candidate>,
    /// Session items the page examined (the checkpoint is none).
    pub scanned: u64,
    /// Where the next page starts; `None` at the end of the segment.
    pub next: Option<Cursor>,
}

/// What the upkeep's write to an item of the Django backend came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendOutcome {
    /// Written: the expiry stamped, the principal given, or both.
    Written,
    /// Given a principal that a revocation had covered by then: removed at once, as the
    /// revocation would have removed it had the index listed it.
    Revoked,
    /// The item changed or went since the record: a later record carries what it holds.
    Stale,
}

/// The upkeep's write to one item of the Django backend, decided on one stream record.
#[derive(Debug, Clone, Copy)]
pub struct BackendWrite<'a> {
    /// The data the record shows: the write is conditioned on it.
    pub seen: &'a str,
    /// The expiry to stamp, with its rule, for an item that has none yet.
    pub stamp: Option<(Timestamp, Expiry)>,
    /// The user the data names, when the item is not theirs yet.
    pub user: Option<&'a Principal>,
    /// When the backend created the item, if it says: the session had the user by then
    /// at the earliest, so that is the time it got the principal. Without it nothing
    /// proves when, and every revocation of that user covers the session: the upkeep
    /// never dates a login by when it saw the record (a request that loaded a session
    /// before a revocation may save it after, re-creating the item).
    pub created: Option<Timestamp>,
}

impl Upkeep for DynamoStore {
    /// One page of a parallel Scan for items that are expired or have no expiry.
    async fn expired_page(
        &self,
        segment: u32,
        segments: u32,
        limit: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page, StoreError> {
        let scan = self
            .rules
            .layout
            .expired_scan(self.rules.now(), self.rules.codec.has_expiry_in_data());
        let (names, values) = scan.expr.into_parts();
        let request = self
            .client
            .scan()
            .table_name(&self.rules.config.table_name)
            .segment(i32::try_from(segment).unwrap_or(0))
            .total_segments(i32::try_from(segments).unwrap_or(1))
            .limit(i32::try_from(limit).unwrap_or(250))
            .projection_expression(scan.projection)
            .filter_expression(scan.filter)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_exclusive_start_key(cursor.map(|c| c.0.clone()));
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        let items = out.items.unwrap_or_default();
        let candidates: Vec<Candidate> = items
            .iter()
            .filter_map(|i| self.sweep_candidate(i))
            .collect();
        let not_sessions = items.len() - candidates.len();
        let scanned = u64::try_from(out.scanned_count).unwrap_or(0);
        Ok(Page {
            scanned: scanned.saturating_sub(not_sessions as u64),
            candidates,
            next: out.last_evaluated_key.map(Cursor),
        })
    }

    /// What the sweep and the stream upkeep need of an item; `None` for one that is no
    /// session (the checkpoint, the lease).
    fn sweep_candidate(&self, item: &Item) -> Option<Candidate> {
        let key = SessionKey::parse(self.rules.layout.key_of(item)?).ok()?;
        let view = View(item);
        let meta = view.meta();
        let codec = &self.rules.codec;
        let decoded = match view.data() {
            Some(raw) if meta.expires_at.is_none() && codec.has_expiry_in_data() => {
                Some(codec.decode(raw))
            }
            _ => None,
        };
        Some(Candidate {
            key,
            expires_at: meta.expires_at,
            created: meta.created,
            data_over_cap: matches!(decoded, Some(Err(DecodeError::OverCap { .. }))),
            data_rule: decoded.and_then(|d| codec.expiry_of(&d.ok()?)),
        })
    }

    /// The user that data in the table names (Django's `_auth_user_id`), for codecs that
    /// keep one there; `None` as well for data that cannot be read or names no valid
    /// principal.
    fn user_in(&self, raw: &str) -> Option<Principal> {
        let codec = &self.rules.codec;
        let user = codec.principal_in(&codec.decode(raw).ok()?)?;
        Principal::parse(&user).ok()
    }

    /// Deletes the session only if it is still expired at the store's now; a version
    /// conflict when it is not (refreshed, or gone, since the scan).
    async fn delete_expired(&self, key: &SessionKey) -> Result<(), StoreError> {
        let guard = self.rules.layout.still_expired(self.rules.now());
        let request = self.delete_request(key.as_str(), guard);
        conditional(self.call(request.send()).await?).map(|_| ())
    }

    /// Stamps an expiry, and the rule it follows, on an item that still has none; a
    /// version conflict when it has one by now, or is gone.
    async fn stamp_expiry(
        &self,
        key: &SessionKey,
        at: Timestamp,
        rule: Expiry,
    ) -> Result<(), StoreError> {
        let stamp = Stamp {
            at,
            rule,
            now: self.rules.now(),
            seen: None,
            owner: None,
        };
        let request = self.update_request(key.as_str(), self.rules.layout.stamp(&stamp));
        conditional(self.call(request.send()).await?).map(|_| ())
    }

    /// Deletes a tombstone that the Django backend wrote onto, so that its next load
    /// starts a fresh session; a version conflict when it is no tombstone by now, or gone.
    async fn remove_tombstone(&self, key: &SessionKey) -> Result<(), StoreError> {
        let request = self.delete_request(key.as_str(), self.rules.layout.still_tombstone());
        conditional(self.call(request.send()).await?).map(|_| ())
    }

    /// Takes the Scan's lease for `holder` until `until`, unless another run holds it
    /// still: `false` then.
    async fn take_lease(&self, holder: &str, until: Timestamp) -> Result<bool, StoreError> {
        let free = self.rules.layout.lease_free(self.rules.now());
        self.put_lease(holder, until, free).await
    }

    /// Gives the lease back, if `holder` still holds it: it is then held by nobody.
    /// A PutItem rather than a DeleteItem, so that the lease item stays and the Scan's
    /// own deletes are all sessions.
    async fn give_back_lease(&self, holder: &str) -> Result<(), StoreError> {
        let held = self.rules.layout.lease_held_by(holder);
        self.put_lease("", Timestamp::from_epoch_seconds(0), held)
            .await
            .map(|_| ())
    }

    /// The positions an unfinished run saved, and the segment count they are for.
    async fn checkpoint(&self) -> Result<Option<(Option<u32>, Vec<Position>)>, StoreError> {
        let item = self.get_raw(CHECKPOINT_KEY, true).await?;
        Ok(item.map(|i| self.rules.layout.positions(&i)))
    }

    /// Saves where each segment stopped, or, when all are done, removes the checkpoint.
    async fn save_checkpoint(&self, positions: &[Position]) -> Result<(), StoreError> {
        let table = &self.rules.config.table_name;
        if positions.iter().all(|p| *p == Position::Done) {
            let request = self.delete_request(CHECKPOINT_KEY, Write::unconditional());
            self.call(request.send())
                .await?
                .map_err(StoreError::from_sdk)?;
            return Ok(());
        }
        let item = self.rules.layout.checkpoint(positions, self.rules.now());
        let request = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item));
        self.call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Stamps an item of the Django backend and gives it the principal its data names
    /// (see [`BackendWrite`]). A principal given is checked against its watermark after
    /// the write, as the API's writes are: a revocation that answered before then has
    /// covered this session, which the index may not have listed yet.
    async fn settle_backend_write(
        &self,
        key: &SessionKey,
        w: BackendWrite<'_>,
    ) -> Result<BackendOutcome, StoreError> {
        let now = self.rules.now();
        let layout = &self.rules.layout;
        let position = ListingPosition::of_session(w.created, key);
        let since_ms = w.created.map(|t| t.epoch_seconds().saturating_mul(1000));
        let owner = w.user.map(|principal| Owner::Set {
            principal,
            position: &position,
            since_ms,
        });
        let write = match (w.stamp, owner) {
            (Some((at, rule)), owner) => layout.stamp(&Stamp {
                at,
                rule,
                now,
                seen: Some(w.seen),
                owner,
            }),
            (None, Some(owner)) => layout.backend_owner(w.seen, owner),
            (None, None) => return Ok(BackendOutcome::Stale),
        };
        let sent = self
            .call(self.update_request(key.as_str(), write).send())
            .await?;
        match conditional(sent) {
            Ok(_) => {}
            Err(StoreError::VersionConflict) => return Ok(BackendOutcome::Stale),
            Err(e) => return Err(e),
        }
        let Some(principal) = w.user else {
            return Ok(BackendOutcome::Written);
        };
        let mark = self
            .get_raw(&watermark_key(principal), true)
            .await?
            .and_then(|m| View(&m).watermark());
        match mark {
            // Deleted rather than left a tombstone, whose empty session only the API
            // can sign: the backend's next load finds nothing and starts afresh, as
            // after the upkeep's removal of a tombstone.
            Some(mark) if mark.covers(since_ms) => {
                Ok(
                    match self.delete_owned(key, principal, Some(mark.before)).await? {
                        true => BackendOutcome::Revoked,
                        // Gone, or given to someone else, since.
                        false => BackendOutcome::Stale,
                    },
                )
            }
            _ => Ok(BackendOutcome::Written),
        }
    }

    /// The walk of a revocation's own (see `Principals::revoke_all`), from the stored
    /// watermark: one consistent GetItem, then per 100 index entries one Query, one
    /// BatchGetItem and a conditional write for each session it removes.
    async fn walk_watermark(
        &self,
        principal: &Principal,
    ) -> Result<Option<super::WatermarkWalk>, StoreError> {
        self.walk_covered(principal).await
    }
}

impl DynamoStore {
    async fn put_lease(
        &self,
        holder: &str,
        until: Timestamp,
        condition: Write,
    ) -> Result<bool, StoreError> {
        let parts = condition.parts();
        let request = self
            .client
            .put_item()
            .table_name(&self.rules.config.table_name)
            .set_item(Some(self.rules.layout.lease(holder, until)))
            .set_condition_expression(parts.condition)
            .set_expression_attribute_names(parts.names)
            .set_expression_attribute_values(parts.values);
        match conditional(self.call(request.send()).await?) {
            Ok(_) => Ok(true),
            Err(StoreError::VersionConflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
