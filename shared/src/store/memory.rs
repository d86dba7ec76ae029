//! An in-memory [`SessionStore`] with the DynamoDB store's semantics: conditional
//! writes, versions, expiry by the injectable clock, no resurrection, an atomic cycle.
//! It keeps the same items as the table would hold, built by the same item module, and
//! the conformance suite (`shared/tests/store.rs`) runs unchanged against both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::rules::{Change, Rules};
use super::{SessionStore, missing_is_unmet, new_key};
use crate::clock::{Clock, Timestamp};
use crate::config::StoreConfig;
use crate::error::{ConfigError, StoreError};
use crate::expiry::Expiry;
use crate::item::{Item, View, watermark_key};
use crate::key::SessionKey;
use crate::principal::{
    Listed, ListingPosition, Ownership, Principal, PrincipalPage, Revocation, SessionHandle,
};
use crate::session::{Expected, Session, SessionData};

type Items = HashMap<String, Item>;

/// Sessions in a map behind a lock, for tests of code that embeds the crate (and the
/// API's own HTTP tests): no emulator, the same answers. Clones share the map.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use session_store::{
///     Expiry, ManualClock, MemoryStore, SessionData, SessionStore, StoreConfig, StoreError,
///     Timestamp,
/// };
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::at(Timestamp::from_epoch_seconds(1_800_000_000));
/// let store = MemoryStore::new(StoreConfig::default())
///     .unwrap()
///     .with_clock(Arc::new(clock.clone()));
/// let session = store.create(SessionData::new(), Expiry::Default).await.unwrap();
/// assert!(store.exists(&session.key).await.unwrap());
/// // Idle past the default timeout (14 days): gone, as it would be in DynamoDB.
/// clock.advance(Duration::from_secs(1_209_600));
/// assert!(matches!(store.load(&session.key).await, Err(StoreError::NotFound)));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    rules: Rules,
    items: Arc<Mutex<Items>>,
    /// Only the revocation of all of a principal's sessions heeds it, as the DynamoDB
    /// store's does: nothing else here waits.
    deadline: Option<Instant>,
}

impl MemoryStore {
    /// Fails only when the codec's secret has not been fetched (`StoreConfig::fetch_secrets`).
    pub fn new(config: StoreConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            rules: Rules::new(config)?,
            items: Arc::default(),
            deadline: None,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.rules.clock = clock;
        self
    }

    /// The item under `key`, as the table would hold it.
    pub fn item(&self, key: &str) -> Option<Item> {
        self.map().get(key).cloned()
    }

    /// Every item, as a Scan of the table would give them.
    pub fn items(&self) -> Vec<Item> {
        self.map().values().cloned().collect()
    }

    /// Puts an item as it is, as another program writing the table would.
    pub fn put_item(&self, item: Item) {
        if let Some(key) = self.rules.layout.key_of(&item).map(str::to_owned) {
            self.map().insert(key, item);
        }
    }

    /// Removes an item as it is, as another program writing the table would.
    pub fn remove_item(&self, key: &str) -> Option<Item> {
        self.map().remove(key)
    }

    /// How many items the store holds.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As `DynamoStore::time_is_short`.
    fn time_is_short(&self) -> bool {
        self.deadline.is_some_and(|d| {
            d.saturating_duration_since(Instant::now()) < super::dynamo::SHORT_TIME
        })
    }

    fn map(&self) -> MutexGuard<'_, Items> {
        // A panic under the lock leaves the map as whole as any write left it.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A refresh of a live session meeting `change`'s demand, under the lock.
    fn refresh(
        &self,
        items: &mut Items,
        key: &SessionKey,
        change: &Change,
        now: Timestamp,
    ) -> Result<Item, StoreError> {
        let gone = || missing_is_unmet(StoreError::NotFound, change.expected);
        let current = items.get(key.as_str()).ok_or_else(gone)?;
        if revoked(items, current) {
            return Err(gone());
        }
        let item = items.get_mut(key.as_str()).ok_or_else(gone)?;
        let meta = self.rules.meta_of(item, None);
        if !meta.is_alive(now) {
            return Err(gone());
        }
        if let Some(home) = self.rules.layout.elsewhere(item) {
            return Err(StoreError::Misdirected { home });
        }
        if !change.allows(&meta) {
            return Err(StoreError::VersionConflict);
        }
        let position = change.position(key, meta.created, now);
        let mut plan = self.rules.plan(change, Some(&meta), now);
        plan.owner = change.owner(position.as_ref(), self.rules.clock.now_millis());
        self.rules.layout.apply_refresh(item, &plan);
        Ok(item.clone())
    }

    fn delete_expecting(
        &self,
        items: &mut Items,
        key: &SessionKey,
        expected: Expected,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let meets = items.get(key.as_str()).is_some_and(|item| {
            let view = View(item);
            view.expires_at().is_none_or(|t| t > now)
                && expected.version().is_none_or(|v| v == view.version())
        });
        if !meets {
            return Err(StoreError::VersionConflict);
        }
        match items.remove(key.as_str()) {
            // As in DynamoDB: an item whose data says it expired is removed, but it was
            // no live session.
            Some(old) if self.rules.meta_of(&old, None).is_alive(now) => Ok(()),
            _ => Err(StoreError::VersionConflict),
        }
    }

    /// A removal by the API: the item goes, or, when the table is shared with the
    /// Django backend, becomes a tombstone.
    fn remove(&self, items: &mut Items, key: &str, now: Timestamp) -> Result<(), StoreError> {
        if !self.rules.layout.has_tombstones() {
            items.remove(key);
            return Ok(());
        }
        let t = self.rules.tombstone(now)?;
        if let Some(item) = items.get_mut(key) {
            self.rules.layout.apply_tombstone(item, &t);
        }
        Ok(())
    }

    /// As DynamoStore does with the Django codec: the item becomes a tombstone.
    fn leave_tombstone(
        &self,
        items: &mut Items,
        key: &SessionKey,
        expected: Option<Expected>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let unmet = || match expected {
            Some(_) => Err(StoreError::VersionConflict),
            None => Ok(()),
        };
        let Some(item) = items.get(key.as_str()) else {
            return unmet();
        };
        let meta = self.rules.meta_of(item, None);
        // What DynamoDB's condition sees: the item's own expiry, not one in its data.
        let alive_as_stored = !meta.tombstone && View(item).expires_at().is_none_or(|t| t > now);
        let proceed = match expected {
            None => !meta.tombstone,
            Some(Expected::Exists) => alive_as_stored,
            Some(x) => meta.is_alive(now) && x.is_met_by(&meta),
        };
        if !proceed {
            return unmet();
        }
        self.remove(items, key.as_str(), now)?;
        if expected.is_some() && !meta.is_alive(now) {
            return Err(StoreError::VersionConflict);
        }
        Ok(())
    }
}

impl MemoryStore {
    /// As `DynamoStore::within_cap`, under the lock: the principal's live sessions
    /// (not the Django backend's), and past the cap those that have had it longest
    /// removed, never `key`'s own.
    fn within_cap(
        &self,
        items: &mut Items,
        principal: &Principal,
        key: &SessionKey,
    ) -> Result<(), StoreError> {
        let Some(cap) = self.rules.config.max_per_principal else {
            return Ok(());
        };
        let now = self.rules.now();
        let mut live: Vec<(bool, i64, String)> = items
            .iter()
            .filter(|(_, item)| {
                let view = View(*item);
                view.principal().as_ref() == Some(principal)
                    && !view.is_backend_owned()
                    && self.rules.layout.elsewhere(item).is_none()
                    && self.rules.meta_of(item, None).is_alive(now)
                    && !revoked(items, item)
            })
            .map(|(k, item)| {
                let since = View(item).principal_since().unwrap_or(0);
                (k == key.as_str(), since, k.clone())
            })
            .collect();
        live.sort();
        let excess = live.len().saturating_sub(cap);
        for (_, _, k) in live.into_iter().take(excess) {
            self.remove(items, &k, now)?;
        }
        Ok(())
    }
}

/// Whether the session in `item` was revoked with all of its principal's sessions after
/// it got that principal, by the watermark item the map holds.
fn revoked(items: &Items, item: &Item) -> bool {
    let view = View(item);
    view.principal().is_some_and(|p| {
        items
            .get(&watermark_key(&p))
            .is_some_and(|mark| view.revoked_by(&View(mark)))
    })
}

impl SessionStore for MemoryStore {
    fn config(&self) -> &StoreConfig {
        &self.rules.config
    }

    /// Only a revocation of all of a principal's sessions ends early, as in DynamoDB.
    fn until(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    async fn create_owned(
        &self,
        mut data: SessionData,
        expiry: Expiry,
        principal: Option<Principal>,
    ) -> Result<Session, StoreError> {
        let principal = self.rules.owner_of_new(&data, principal)?;
        let (raw, meta) = self.rules.new_session(&mut data, expiry)?;
        let mut items = self.map();
        loop {
            let key = new_key()?;
            if !items.contains_key(key.as_str()) {
                let layout = &self.rules.layout;
                let item = layout.new_owned_item(
                    &key,
                    &raw,
                    &meta,
                    principal.as_ref(),
                    self.rules.clock.now_millis(),
                );
                items.insert(key.as_str().to_owned(), item);
                if let Some(p) = &principal {
                    self.within_cap(&mut items, p, &key)?;
                }
                return Ok(Session {
                    key,
                    data,
                    meta,
                    principal,
                });
            }
        }
    }

    async fn load(&self, key: &SessionKey) -> Result<Session, StoreError> {
        let items = self.map();
        let item = items.get(key.as_str()).ok_or(StoreError::NotFound)?;
        if revoked(&items, item) {
            return Err(StoreError::NotFound);
        }
        self.rules
            .live_session(key, item)?
            .ok_or(StoreError::NotFound)
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let now = self.rules.now();
        let items = self.map();
        Ok(items.get(key.as_str()).is_some_and(|item| {
            self.rules.meta_of(item, None).is_alive(now) && !revoked(&items, item)
        }))
    }

    async fn load_and_touch(&self, key: &SessionKey) -> Result<Session, StoreError> {
        let session = self.load(key).await?;
        let now = self.rules.now();
        if !session
            .meta
            .refresh_due(now, self.rules.config.touch_interval)
        {
            return Ok(session);
        }
        let item = match self.refresh(&mut self.map(), key, &Change::touch(None), now) {
            Ok(item) => item,
            // As DynamoStore: another region's session is read here, not refreshed.
            Err(StoreError::Misdirected { .. }) => return Ok(session),
            Err(e) => return Err(e),
        };
        Ok(Session {
            meta: self.rules.meta_of(&item, Some(&session.data)),
            ..session
        })
    }

    async fn replace_owned(
        &self,
        key: &SessionKey,
        mut data: SessionData,
        expiry: Expiry,
        owner: Ownership,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let now = self.rules.now();
        let owner = self.rules.ownership(&data, owner, None)?;
        let change = self
            .rules
            .replacement(&mut data, expiry, expected, owner, now)?;
        let mut items = self.map();
        let item = self.refresh(&mut items, key, &change, now)?;
        if let Ownership::Set(p) = &change.owner {
            self.within_cap(&mut items, p, key)?;
        }
        Ok(self.rules.written(key, &item, data))
    }

    async fn touch(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let now = self.rules.now();
        let item = self.refresh(&mut self.map(), key, &Change::touch(expected), now)?;
        self.rules.session(key, &item)
    }

    async fn update<F>(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        mut change: F,
    ) -> Result<Session, StoreError>
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError> + Send,
    {
        let mut items = self.map();
        let current = match items.get(key.as_str()) {
            Some(item) if revoked(&items, item) => None,
            Some(item) => self.rules.live_session(key, item)?,
            None => None,
        }
        .ok_or_else(|| missing_is_unmet(StoreError::NotFound, expected))?;
        if let Some(home) = items
            .get(key.as_str())
            .and_then(|i| self.rules.layout.elsewhere(i))
        {
            return Err(StoreError::Misdirected { home });
        }
        if expected.is_some_and(|x| !x.is_met_by(&current.meta)) {
            return Err(StoreError::VersionConflict);
        }
        let mut data = current.data;
        change(&mut data)?;
        let now = self.rules.now();
        let write = self
            .rules
            .rewrite(&data, expected, current.principal.as_ref(), now)?;
        let item = self.refresh(&mut items, key, &write, now)?;
        if let Ownership::Set(p) = &write.owner {
            self.within_cap(&mut items, p, key)?;
        }
        Ok(self.rules.written(key, &item, data))
    }

    async fn delete(&self, key: &SessionKey, expected: Option<Expected>) -> Result<(), StoreError> {
        let now = self.rules.now();
        let mut items = self.map();
        if !self.rules.can_meet(expected) {
            return Err(StoreError::VersionConflict);
        }
        // As DynamoStore: another region's item is never written here; a live session of
        // another region is refused, a dead one is as if gone.
        if let Some(item) = items.get(key.as_str())
            && let Some(home) = self.rules.layout.elsewhere(item)
        {
            return match (self.rules.meta_of(item, None).is_alive(now), expected) {
                (true, _) => Err(StoreError::Misdirected { home }),
                (false, Some(_)) => Err(StoreError::VersionConflict),
                (false, None) => Ok(()),
            };
        }
        if self.rules.layout.has_tombstones() {
            return self.leave_tombstone(&mut items, key, expected, now);
        }
        match expected {
            // As DynamoStore: an expired session stays for TTL.
            None => {
                let expired = items
                    .get(key.as_str())
                    .is_some_and(|item| View(item).expires_at().is_some_and(|t| t <= now));
                if !expired {
                    items.remove(key.as_str());
                }
                Ok(())
            }
            Some(x) => self.delete_expecting(&mut items, key, x, now),
        }
    }

    /// As the index would list them: every entry of the principal counts against
    /// `limit`, and a full page has a cursor even when nothing follows.
    async fn list(
        &self,
        principal: &Principal,
        limit: usize,
        after: Option<ListingPosition>,
    ) -> Result<PrincipalPage, StoreError> {
        let now = self.rules.now();
        let items = self.map();
        let mut entries: Vec<(ListingPosition, &Item)> = items
            .values()
            .filter_map(|item| {
                let view = View(item);
                (view.principal().as_ref() == Some(principal))
                    .then(|| Some((view.principal_position()?, item)))
                    .flatten()
            })
            .filter(|(at, _)| after.as_ref().is_none_or(|a| at < a))
            .collect();
        entries.sort_by(|a, b| b.0.cmp(&a.0));
        entries.truncate(limit);
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|(at, _)| at.to_cursor()))
            .flatten();
        let sessions = entries
            .into_iter()
            .filter_map(|(at, item)| {
                let meta = self.rules.meta_of(item, None);
                if !meta.is_alive(now) || revoked(&items, item) {
                    return None;
                }
                Some(Listed {
                    id: at.handle()?,
                    created: meta.created,
                    expires_at: meta.expires_at,
                })
            })
            .collect();
        Ok(PrincipalPage { sessions, next })
    }

    /// As DynamoStore does it, under the lock: the watermark, then every live session
    /// of the principal that had it by then but the spared one; never incomplete.
    async fn revoke_all(
        &self,
        principal: &Principal,
        except: Option<&SessionKey>,
    ) -> Result<Revocation, StoreError> {
        let now = self.rules.now();
        let layout = &self.rules.layout;
        let mut items = self.map();
        let mark_key = watermark_key(principal);
        let so_far = items
            .get(&mark_key)
            .and_then(|m| View(m).revocation())
            .filter(|(_, complete)| !complete)
            .map_or(0, |r| r.0);
        let mark = items.get(&mark_key).and_then(|m| View(m).watermark());
        let (before, spared) = match mark {
            Some((before, true, spared)) => (before, spared),
            earlier => {
                let before = self
                    .rules
                    .clock
                    .now_millis()
                    .max(earlier.map_or(0, |w| w.0));
                let spared = except.map(|k| k.as_str().to_owned());
                if let Some(item) = spared.as_ref().and_then(|k| items.get_mut(k)) {
                    let alive = self.rules.meta_of(item, None).is_alive(now);
                    let here = layout.elsewhere(item).is_none();
                    if alive && here && View(&*item).principal().as_ref() == Some(principal) {
                        layout.apply_spare(item, before + 1);
                    }
                }
                (before, spared)
            }
        };
        let mark = |pending, revoked| {
            layout
                .watermark(principal, before, pending, spared.as_deref(), revoked)
                .0
        };
        // As DynamoStore: out of time, the watermark holds and the work waits for the
        // same call again.
        if self.time_is_short() {
            items.insert(mark_key, mark(true, so_far));
            return Ok(Revocation {
                revoked: 0,
                complete: false,
            });
        }
        let owned: Vec<String> = items
            .iter()
            .filter(|(key, item)| {
                let view = View(*item);
                // What the index lists: a session has a place in it with its principal.
                Some(key.as_str()) != spared.as_deref()
                    && layout.elsewhere(item).is_none()
                    && view.principal().as_ref() == Some(principal)
                    && view.principal_position().is_some()
                    && view.principal_since().unwrap_or(0) <= before
                    && self.rules.meta_of(item, None).is_alive(now)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let revoked = owned.len() as u64;
        for key in owned {
            self.remove(&mut items, &key, now)?;
        }
        items.insert(mark_key, mark(false, so_far + revoked));
        Ok(Revocation {
            revoked,
            complete: true,
        })
    }

    async fn revoke(&self, principal: &Principal, id: &SessionHandle) -> Result<(), StoreError> {
        let now = self.rules.now();
        let mut items = self.map();
        let key = items
            .iter()
            .find(|(key, item)| {
                let meta = self.rules.meta_of(item, None);
                View(*item).principal().as_ref() == Some(principal)
                    && SessionKey::parse(key).is_ok_and(|k| &SessionHandle::of(&k) == id)
                    && meta.is_alive(now)
                    && self.rules.layout.elsewhere(item).is_none()
            })
            .map(|(key, _)| key.clone())
            .ok_or(StoreError::NotFound)?;
        self.remove(&mut items, &key, now)
    }

    async fn cycle(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let gone = || missing_is_unmet(StoreError::NotFound, expected);
        let now = self.rules.now();
        let mut items = self.map();
        let old = items.get(key.as_str()).ok_or_else(gone)?;
        let data = self.rules.decode(key, old);
        let old_meta = self.rules.meta_of(old, data.as_ref().ok());
        if !old_meta.is_alive(now) || revoked(&items, old) {
            return Err(gone());
        }
        if let Some(home) = self.rules.layout.elsewhere(old) {
            return Err(StoreError::Misdirected { home });
        }
        if expected.is_some_and(|x| !x.is_met_by(&old_meta)) {
            return Err(StoreError::VersionConflict);
        }
        let data = data?;
        let meta = self.rules.cycled(&old_meta, now);
        let new = loop {
            let candidate = new_key()?;
            if !items.contains_key(candidate.as_str()) {
                break candidate;
            }
        };
        let principal = View(old).principal();
        let moved = self.rules.layout.moved(old, &new, &meta);
        self.remove(&mut items, key.as_str(), now)?;
        items.insert(new.as_str().to_owned(), moved);
        if let Some(p) = &principal {
            self.within_cap(&mut items, p, &new)?;
        }
        Ok(Session {
            key: new,
            data,
            meta,
            principal,
        })
    }
}
