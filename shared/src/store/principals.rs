//! A principal's sessions in DynamoDB: a Query of the sparse index `by-principal` (keys
//! only, eventually consistent), then one consistent BatchGetItem of the sessions it
//! names, so that what is listed or revoked is what the table holds now.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::dynamo::DynamoStore;
use crate::error::{StoreError, conditional};
use crate::item::{Item, PRINCIPAL_INDEX, Removal, View, Watermark, watermark_key};
use crate::key::SessionKey;
use crate::principal::{
    Listed, ListingPosition, Principal, PrincipalPage, Revocation, SessionHandle,
};

/// Rounds of a BatchGetItem's unprocessed keys before giving up as unavailable.
const BATCH_ATTEMPTS: u32 = 8;

impl DynamoStore {
    /// One page of the index: the keys it names, in order, and where the next page starts.
    async fn index_page(
        &self,
        principal: &Principal,
        limit: usize,
        after: Option<&ListingPosition>,
    ) -> Result<(Vec<(SessionKey, ListingPosition)>, Option<ListingPosition>), StoreError> {
        let q = self.rules.layout.principal_query(principal, after);
        let (names, values) = q.expr.into_parts();
        let request = self
            .client
            .query()
            .table_name(&self.rules.config.table_name)
            .index_name(PRINCIPAL_INDEX)
            .key_condition_expression(q.key_condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        let layout = &self.rules.layout;
        let entries = out
            .items()
            .iter()
            .filter_map(|entry| {
                let key = SessionKey::parse(layout.key_of(entry)?).ok()?;
                Some((key, View(entry).principal_position()?))
            })
            .collect();
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| View(k).principal_position());
        Ok((entries, next))
    }

    /// The items under `keys`, read consistently (at most 100 keys).
    async fn items_of(&self, keys: &[SessionKey]) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let table = &self.rules.config.table_name;
        let mut wanted: Vec<Item> = keys
            .iter()
            .map(|k| Item::from([self.rules.layout.key(k.as_str())]))
            .collect();
        for attempt in 0..BATCH_ATTEMPTS {
            self.pause(attempt).await?;
            let batch = KeysAndAttributes::builder()
                .set_keys(Some(wanted))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let request = self.client.batch_get_item().request_items(table, batch);
            let mut out = self
                .call(request.send())
                .await?
                .map_err(StoreError::from_sdk)?;
            for item in out
                .responses
                .take()
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default()
            {
                if let Some(key) = self.rules.layout.key_of(&item) {
                    found.insert(key.to_owned(), item);
                }
            }
            wanted = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if wanted.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Unavailable(
            "keys left unread after retries".into(),
        ))
    }

    /// The live sessions of `principal` among `keys`, in their order: not revoked by its
    /// watermark, read here too.
    pub(super) async fn live_of(
        &self,
        principal: &Principal,
        keys: &[SessionKey],
    ) -> Result<Vec<(SessionKey, Item)>, StoreError> {
        let mut items = self.items_of(keys).await?;
        let mark = self.get_raw(&watermark_key(principal), true).await?;
        let now = self.rules.now();
        Ok(keys
            .iter()
            .filter_map(|key| {
                let item = items.remove(key.as_str())?;
                let view = View(&item);
                let owned = view.principal().as_ref() == Some(principal);
                let revoked = mark.as_ref().is_some_and(|m| view.revoked_by(&View(m)));
                (owned && !revoked && self.rules.meta_of(&item, None).is_alive(now))
                    .then(|| (key.clone(), item))
            })
            .collect())
    }

    /// Revokes all of the principal's sessions (see `SessionStore::revoke_all`): the
    /// watermark first, at this call's own time and with its own exception, then the
    /// walk of the index entries that time can cover, each session removed on the
    /// condition that the watermark covers it; the watermark's "under way" flag last.
    pub(super) async fn revoke_every(
        &self,
        principal: &Principal,
        except: Option<&SessionKey>,
    ) -> Result<Revocation, StoreError> {
        let stored = self
            .get_raw(&watermark_key(principal), true)
            .await?
            .and_then(|m| View(&m).watermark());
        // Each call has a time of its own, later than the stored one, whose exception it
        // does not share; only a call whose clock has not passed a walk under way with
        // the same exception (another Lambda's clock, the same millisecond) continues
        // that walk, at its time, where it stopped.
        let now = self.rules.clock.now_millis();
        let spared = except.map(|k| k.as_str().to_owned());
        let resumed = stored
            .clone()
            .filter(|w| w.pending && w.except == spared && now <= w.before);
        let before = match (&resumed, &stored) {
            (Some(w), _) => w.before,
            (None, Some(w)) => now.max(w.before + 1),
            (None, None) => now,
        };
        let mut mark = Watermark {
            before,
            pending: true,
            resume: resumed.as_ref().and_then(|w| w.resume.clone()),
            revoked: resumed.map_or(0, |w| w.revoked),
            except: spared,
        };
        // The spared session gets its principal anew just after the watermark, before
        // the watermark exists, so that no read in between refuses it.
        if let Some(k) = except {
            let covered_by = stored.as_ref().map(|w| w.before);
            let write =
                self.rules
                    .layout
                    .spare(self.rules.now(), principal, before + 1, covered_by);
            let sent = self
                .call(self.update_request(k.as_str(), write).send())
                .await?;
            match conditional(sent) {
                Ok(_) => {}
                // Only its home region can spare a session; refused before anything is
                // revoked, so the caller can send the call there.
                Err(StoreError::VersionConflict) => {
                    if let Some(home) = self.live_elsewhere(k, Some(principal)).await? {
                        return Err(StoreError::Misdirected { home });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.put_watermark(principal, &mark).await?;
        let first = mark.revoked;
        let start = mark.resume.clone().unwrap_or_else(|| mark.walk_start());
        let complete = self.walk(principal, start, &mut mark, true).await?;
        mark.pending = !complete;
        if complete {
            mark.resume = None;
        }
        self.put_watermark(principal, &mark).await?;
        Ok(Revocation {
            revoked: mark.revoked - first,
            complete,
        })
    }

    /// The upkeep's walk of `principal`'s watermark (see `Upkeep::walk_watermark`).
    pub(super) async fn walk_covered(
        &self,
        principal: &Principal,
    ) -> Result<Option<super::WatermarkWalk>, StoreError> {
        let Some(mut mark) = self
            .get_raw(&watermark_key(principal), true)
            .await?
            .and_then(|m| View(&m).watermark())
        else {
            return Ok(None);
        };
        mark.revoked = 0;
        let start = mark.walk_start();
        // Deleted, not left as tombstones: only the API holds the key that signs the
        // empty session of one. The Django backend's next load finds no item and
        // starts afresh, logged out.
        let complete = self.walk(principal, start, &mut mark, false).await?;
        Ok(Some(super::WatermarkWalk {
            before: mark.before,
            revoked: mark.revoked,
            complete,
        }))
    }

    /// Removes, page by page from `start` down, each session the watermark covers,
    /// counting them and recording the last entry settled in `mark`: `true` when the
    /// walk reached the end, `false` when the deadline cut it short. The entries are
    /// read first, so that those it can never remove (the spared session, expired
    /// ones awaiting TTL where no Django site reads the table, another region's, one
    /// that got the principal later) cost a read, not a failed write, every time a walk
    /// passes them. With `tombstones`, a
    /// removal leaves one where the table is shared with the Django backend.
    async fn walk(
        &self,
        principal: &Principal,
        start: ListingPosition,
        mark: &mut Watermark,
        tombstones: bool,
    ) -> Result<bool, StoreError> {
        let mut after = Some(start);
        while let Some(at) = after.take() {
            if self.time_is_short() {
                return Ok(false);
            }
            let (entries, next) = self.index_page(principal, 100, Some(&at)).await?;
            let keys: Vec<SessionKey> = entries.iter().map(|(k, _)| k.clone()).collect();
            let items = self.items_of(&keys).await?;
            let now = self.rules.now();
            for (key, position) in entries {
                if self.time_is_short() {
                    return Ok(false);
                }
                let removable = items.get(key.as_str()).is_some_and(|item| {
                    let view = View(item);
                    Some(key.as_str()) != mark.except.as_deref()
                        && view.principal().as_ref() == Some(principal)
                        && mark.covers(view.principal_since())
                        && self.rules.revocation_reaches(item, now)
                });
                let before = Some(mark.before);
                let removed = match (removable, tombstones) {
                    (false, _) => false,
                    (true, true) => self.remove_owned(&key, principal, before).await?,
                    (true, false) => self.delete_owned(&key, principal, before).await?,
                };
                if removed {
                    mark.revoked += 1;
                }
                mark.resume = Some(position);
            }
            after = next;
        }
        Ok(true)
    }

    /// Writes the principal's watermark, unless a later one is there already.
    async fn put_watermark(
        &self,
        principal: &Principal,
        mark: &Watermark,
    ) -> Result<(), StoreError> {
        let (item, write) = self.rules.layout.watermark(principal, mark);
        match self.put_guarded(item, write).await {
            // A later revocation has written its own, which covers this one.
            Ok(_) | Err(StoreError::VersionConflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes `key`'s session if a revocation may (`Layout::revocable`) and it had
    /// `principal` (by `before`, when given), leaving a tombstone with the django codec:
    /// `true` when it did.
    pub(super) async fn remove_owned(
        &self,
        key: &SessionKey,
        principal: &Principal,
        before: Option<i64>,
    ) -> Result<bool, StoreError> {
        let layout = &self.rules.layout;
        if !layout.has_tombstones() {
            return self.delete_owned(key, principal, before).await;
        }
        let t = self.rules.tombstone(self.rules.now())?;
        let write = layout.tombstone(&t, Removal::Owned(principal, before));
        let sent = self
            .call(self.update_request(key.as_str(), write).send())
            .await?;
        removed_if_met(conditional(sent))
    }

    /// Deletes `key`'s session if a revocation may (`Layout::revocable`) and it had
    /// `principal` (by `before`, when given): `true` when it did. No tombstone, whatever
    /// the codec.
    pub(super) async fn delete_owned(
        &self,
        key: &SessionKey,
        principal: &Principal,
        before: Option<i64>,
    ) -> Result<bool, StoreError> {
        let write = self
            .rules
            .layout
            .revocation(self.rules.now(), principal, before);
        let sent = self
            .call(self.delete_request(key.as_str(), write).send())
            .await?;
        removed_if_met(conditional(sent))
    }

    pub(super) async fn list_page(
        &self,
        principal: &Principal,
        limit: usize,
        after: Option<ListingPosition>,
    ) -> Result<PrincipalPage, StoreError> {
        let (entries, next) = self.index_page(principal, limit, after.as_ref()).await?;
        let keys: Vec<SessionKey> = entries.into_iter().map(|(k, _)| k).collect();
        let sessions = self
            .live_of(principal, &keys)
            .await?
            .into_iter()
            .map(|(key, item)| {
                let meta = self.rules.meta_of(&item, None);
                Listed {
                    id: SessionHandle::of(&key),
                    created: meta.created,
                    expires_at: meta.expires_at,
                }
            })
            .collect();
        Ok(PrincipalPage {
            sessions,
            next: next.map(|at| at.to_cursor()),
        })
    }

    /// Finds the session by its handle in the index, page by page (DynamoDB refuses a
    /// filter on the index's sort key, which holds the handle), then removes it on the
    /// condition that it is still alive and still the principal's.
    pub(super) async fn revoke_one(
        &self,
        principal: &Principal,
        id: &SessionHandle,
    ) -> Result<(), StoreError> {
        let mut after = None;
        let key = loop {
            let (entries, next) = self.index_page(principal, 100, after.as_ref()).await?;
            if let Some((key, _)) = entries
                .into_iter()
                .find(|(k, _)| &SessionHandle::of(k) == id)
            {
                break key;
            }
            after = Some(next.ok_or(StoreError::NotFound)?);
        };
        if self.remove_owned(&key, principal, None).await? {
            return Ok(());
        }
        match self.live_elsewhere(&key, Some(principal)).await? {
            Some(home) => Err(StoreError::Misdirected { home }),
            // Gone, expired or given to another principal since the index was read.
            None => Err(StoreError::NotFound),
        }
    }
}

/// A conditional removal's result: `true` when written, `false` when its condition was
/// not met.
fn removed_if_met<T>(sent: Result<T, StoreError>) -> Result<bool, StoreError> {
    match sent {
        Ok(_) => Ok(true),
        Err(StoreError::VersionConflict) => Ok(false),
        Err(e) => Err(e),
    }
}
