//! What the store decides before it asks DynamoDB: how data is encoded, what an item
//! says about its session (rules kept in Django data included), whether it may be
//! written here, and what a write stores.

use std::sync::Arc;

use tracing::warn;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::codec::{Codec, DecodeError, EncodeError};
use crate::config::StoreConfig;
use crate::error::{ConfigError, StoreError};
use crate::expiry::Expiry;
use crate::item::{Guard, Item, Layout, Owner, OwnerRead, Refresh, Tombstone, View};
use crate::key::SessionKey;
use crate::principal::{ListingPosition, Ownership, Principal};
use crate::session::{DataTag, Expected, Session, SessionData, SessionMeta, Version};

/// A write that refreshes a session's expiry and bumps its version.
pub(crate) struct Change {
    /// New encoded data; `None` keeps the stored data.
    pub data: Option<String>,
    /// New expiry rule; `None` keeps the stored one.
    pub rule: Option<Expiry>,
    pub expected: Option<Expected>,
    pub owner: Ownership,
}

impl Change {
    pub fn touch(expected: Option<Expected>) -> Self {
        Self {
            data: None,
            rule: None,
            expected,
            owner: Ownership::Keep,
        }
    }

    /// The owner this write gives the session, `position` being its place in the
    /// listing when it gets a principal.
    pub fn owner<'a>(
        &'a self,
        position: Option<&'a ListingPosition>,
        since_ms: i64,
    ) -> Option<Owner<'a>> {
        match (&self.owner, position) {
            (Ownership::Set(principal), Some(position)) => Some(Owner::Set {
                principal,
                position,
                since_ms: Some(since_ms),
            }),
            (Ownership::Clear, _) => Some(Owner::Clear),
            _ => None,
        }
    }

    /// The place in the listing that a write giving `key` a principal writes, from the
    /// creation time the item holds (see `ListingPosition::of_session`).
    pub fn position(
        &self,
        key: &SessionKey,
        created: Option<Timestamp>,
    ) -> Option<ListingPosition> {
        matches!(self.owner, Ownership::Set(_)).then(|| ListingPosition::of_session(created, key))
    }

    /// Whether the write changes whom the session belongs to. Such a write reads first,
    /// and is refused when a revocation covers the session as read.
    pub fn changes_owner(&self) -> bool {
        !matches!(self.owner, Ownership::Keep)
    }

    /// The owner settled against the principal read: a write that gives the session the
    /// principal it has, or clears one it lacks, keeps it, with the time it got it (a
    /// revocation that covers the session goes on covering it).
    pub fn settle_owner(&mut self, current: Option<&Principal>) {
        let keeps = match &self.owner {
            Ownership::Set(p) => current == Some(p),
            Ownership::Clear => current.is_none(),
            Ownership::Keep => true,
        };
        if keeps {
            self.owner = Ownership::Keep;
        }
    }

    /// Whether the session in state `current` meets the caller's demand.
    pub fn allows(&self, current: &SessionMeta) -> bool {
        self.expected.is_none_or(|x| x.is_met_by(current))
    }
}

/// What a write based on a read knows of the stored item: its metadata, and its raw
/// data when the table is shared with the Django backend, whose writes only the data
/// tells apart.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub meta: SessionMeta,
    pub data: Option<String>,
    /// The principal and the time it got it, when read with the rest.
    pub owner: Option<(Option<Principal>, Option<i64>)>,
}

impl Known {
    /// The condition of a write that must find the item as read.
    pub fn guard(&self) -> Guard<'_> {
        Guard::Known {
            version: self.meta.version,
            data: self.data.as_deref(),
            owner: self.owner.as_ref().map(|(principal, since_ms)| OwnerRead {
                principal: principal.as_ref().map(Principal::as_str),
                since_ms: *since_ms,
            }),
        }
    }

    /// The principal read, if any.
    pub fn principal(&self) -> Option<&Principal> {
        self.owner.as_ref().and_then(|(p, _)| p.as_ref())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub config: Arc<StoreConfig>,
    pub codec: Arc<dyn Codec>,
    pub clock: Arc<dyn Clock>,
    pub layout: Layout,
}

impl Rules {
    /// Fails only when the codec's secret has not been fetched (`StoreConfig::fetch_secrets`).
    pub fn new(config: StoreConfig) -> Result<Self, ConfigError> {
        let codec = config.codec.build(config.max_decompressed_bytes)?;
        Ok(Self {
            layout: Layout::new(&config.key_attribute)
                .with_tombstones(codec.shares_table_with_django())
                .with_region(config.region.clone()),
            config: Arc::new(config),
            codec: Arc::from(codec),
            clock: Arc::new(SystemClock),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn encode(&self, data: &SessionData, now: Timestamp) -> Result<String, StoreError> {
        let raw = self.codec.encode(data, now).map_err(|e| match e {
            EncodeError::OverCap { size, limit } => StoreError::TooLarge { size, limit },
            other => StoreError::Other(other.to_string()),
        })?;
        if raw.len() > self.config.max_session_bytes {
            return Err(StoreError::TooLarge {
                size: raw.len(),
                limit: self.config.max_session_bytes,
            });
        }
        Ok(raw)
    }

    /// Stored data that cannot be decoded reads as an empty session, as Django does,
    /// with a warning that holds no data; but data that inflates past the cap is an
    /// error, so that no write starts from an empty dictionary in its place.
    pub fn decode(&self, key: &SessionKey, item: &Item) -> Result<SessionData, StoreError> {
        let decoded = match View(item).data() {
            Some(raw) => match self.codec.decode(raw) {
                Err(DecodeError::OverCap { limit }) => {
                    warn!(session = %key.fingerprint(12), limit, "session data over the decompression cap");
                    return Err(StoreError::DataOverCap { limit });
                }
                other => other.map_err(|e| e.to_string()),
            },
            None => Err("the data attribute is missing or not a string".into()),
        };
        Ok(decoded.unwrap_or_else(|reason| {
            warn!(session = %key.fingerprint(12), %reason, "session data corrupted; reading it as empty");
            SessionData::new()
        }))
    }

    /// What the item says about itself. Items the Django backend wrote have no rule
    /// attributes: their rule is the one their data carries, if the format keeps one,
    /// and a fixed time there is their expiry, enforced as `expires_at` would be.
    /// `data` is the item's data when already decoded.
    pub fn meta_of(&self, item: &Item, data: Option<&SessionData>) -> SessionMeta {
        let view = View(item);
        let mut meta = view.meta();
        if self.codec.shares_table_with_django() {
            meta.data_tag = view.data().map(DataTag::of);
        }
        if meta.version.0 != 0 || !self.codec.has_expiry_in_data() {
            return meta;
        }
        let rule = match (data, view.data()) {
            (Some(data), _) => self.codec.expiry_of(data),
            (None, Some(raw)) => self.codec.expiry_in_data(raw),
            (None, None) => None,
        };
        if let Some(rule) = rule {
            meta.expiry = rule;
        }
        if let (None, Expiry::At(t)) = (meta.expires_at, meta.expiry) {
            meta.expires_at = Some(t);
        }
        meta
    }

    /// What a write does to the principal, given the data it writes and what the caller
    /// asked: with a format that keeps the user in the data (Django's `_auth_user_id`),
    /// that user is the principal, and an asked principal that disagrees is refused.
    /// `current` is the session's principal, when read.
    pub fn ownership(
        &self,
        data: &SessionData,
        asked: Ownership,
        current: Option<&Principal>,
    ) -> Result<Ownership, StoreError> {
        let Some(user) = self.codec.principal_in(data) else {
            return Ok(asked);
        };
        let user = Principal::parse(&user)
            .map_err(|e| StoreError::InvalidData(format!("_auth_user_id: {e}")))?;
        match asked {
            Ownership::Set(p) if p != user => Err(StoreError::InvalidData(
                "principal disagrees with the data's _auth_user_id".into(),
            )),
            Ownership::Clear => Err(StoreError::InvalidData(
                "a session whose data holds _auth_user_id keeps that principal".into(),
            )),
            _ if current == Some(&user) => Ok(Ownership::Keep),
            _ => Ok(Ownership::Set(user)),
        }
    }

    /// The principal a new session gets: the one asked for, or the user in its data.
    pub fn owner_of_new(
        &self,
        data: &SessionData,
        asked: Option<Principal>,
    ) -> Result<Option<Principal>, StoreError> {
        let asked = asked.map_or(Ownership::Keep, Ownership::Set);
        Ok(match self.ownership(data, asked, None)? {
            Ownership::Set(p) => Some(p),
            Ownership::Keep | Ownership::Clear => None,
        })
    }

    /// Whether any session could meet `expected`: a tag with a data hash comes only from
    /// a table shared with the Django backend, and one without only from any other.
    /// Writes that meet a demand by a condition, without a read, check this first.
    pub fn can_meet(&self, expected: Option<Expected>) -> bool {
        match expected {
            Some(Expected::Tag(t)) => t.data.is_some() == self.codec.shares_table_with_django(),
            _ => true,
        }
    }

    /// Whether a write that demands `expected` may write the item read as `meta`, here:
    /// a live session (else not found, or an unmet demand when one was made), this
    /// region's to write (else misdirected to its home), meeting the demand. The one
    /// check of every write that reads first; the condition of one that does not is
    /// `Layout::alive` with the demand.
    pub fn writable_here(
        &self,
        item: &Item,
        meta: &SessionMeta,
        expected: Option<Expected>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !meta.is_alive(now) {
            return Err(super::missing_is_unmet(StoreError::NotFound, expected));
        }
        if let Some(home) = self.layout.elsewhere(item) {
            return Err(StoreError::Misdirected { home });
        }
        if expected.is_some_and(|x| !x.is_met_by(meta)) {
            return Err(StoreError::VersionConflict);
        }
        Ok(())
    }

    /// Whether a revocation may remove `item` as read: the test of the condition
    /// `Layout::revocable` writes (this region's, no tombstone, and alive unless the
    /// Django backend shares the table).
    pub fn revocation_reaches(&self, item: &Item, now: Timestamp) -> bool {
        if self.layout.elsewhere(item).is_some() {
            return false;
        }
        if self.layout.has_tombstones() {
            !View(item).is_tombstone()
        } else {
            self.meta_of(item, None).is_alive(now)
        }
    }

    /// What a write based on reading `item` knows of it; `meta` is its metadata.
    pub fn known(&self, item: &Item, meta: SessionMeta) -> Known {
        let shared = self.codec.shares_table_with_django();
        let view = View(item);
        Known {
            owner: Some((view.principal(), view.principal_since())),
            meta,
            data: shared
                .then(|| View(item).data().map(str::to_owned))
                .flatten(),
        }
    }

    /// What a removal writes when the table is shared with the Django backend: an empty
    /// session signed as Django signs it (so its `load()` reads it quietly as empty),
    /// kept for the configured grace period.
    pub fn tombstone(&self, now: Timestamp) -> Result<Tombstone, StoreError> {
        Ok(Tombstone {
            now,
            until: now.saturating_add(self.config.tombstone_grace),
            empty: self.encode(&SessionData::new(), now)?,
        })
    }

    pub fn session(&self, key: &SessionKey, item: &Item) -> Result<Session, StoreError> {
        let data = self.decode(key, item)?;
        Ok(Session {
            key: key.clone(),
            meta: self.meta_of(item, Some(&data)),
            data,
            principal: View(item).principal(),
        })
    }

    /// The session in `item`, if it is alive now. The data is decoded once; data over
    /// the cap is an error only for a session that is alive (an expired one is absent).
    pub fn live_session(
        &self,
        key: &SessionKey,
        item: &Item,
    ) -> Result<Option<Session>, StoreError> {
        let data = self.decode(key, item);
        let meta = self.meta_of(item, data.as_ref().ok());
        if !meta.is_alive(self.now()) {
            return Ok(None);
        }
        Ok(Some(Session {
            key: key.clone(),
            meta,
            data: data?,
            principal: View(item).principal(),
        }))
    }

    /// The rule a write stores. For formats that keep the rule in the data, the data
    /// and the item must agree: a rule the caller gives is written into the data, and
    /// without one the data's own rule applies. Either way it passes the one check
    /// every write runs.
    pub fn settle_rule(
        &self,
        data: &mut SessionData,
        asked: Expiry,
        now: Timestamp,
    ) -> Result<Expiry, StoreError> {
        let rule = if asked == Expiry::Default {
            self.codec.expiry_of(data).unwrap_or(asked)
        } else {
            self.codec.set_expiry(data, asked);
            asked
        };
        rule.check_for_write(now)
    }

    /// The rule a merge-update writes: the one in the changed data, for formats that
    /// keep it there, checked like a rule given any other way.
    pub fn rule_in_data(
        &self,
        data: &SessionData,
        now: Timestamp,
    ) -> Result<Option<Expiry>, StoreError> {
        self.codec
            .expiry_of(data)
            .map(|rule| rule.check_for_write(now))
            .transpose()
    }

    /// What a replace writes: the data with its rule settled, encoded.
    pub fn replacement(
        &self,
        data: &mut SessionData,
        asked: Expiry,
        expected: Option<Expected>,
        owner: Ownership,
        now: Timestamp,
    ) -> Result<Change, StoreError> {
        let rule = self.settle_rule(data, asked, now)?;
        Ok(Change {
            data: Some(self.encode(data, now)?),
            rule: Some(rule),
            expected,
            owner,
        })
    }

    /// What a merge-update writes once its change edited the data: the data, and the
    /// rule it now carries for formats that keep one there.
    pub fn rewrite(
        &self,
        data: &SessionData,
        expected: Option<Expected>,
        current: Option<&Principal>,
        now: Timestamp,
    ) -> Result<Change, StoreError> {
        Ok(Change {
            rule: self.rule_in_data(data, now)?,
            data: Some(self.encode(data, now)?),
            expected,
            owner: self.ownership(data, Ownership::Keep, current)?,
        })
    }

    /// The session a write left: the data it wrote, and what the item says now.
    pub fn written(&self, key: &SessionKey, item: &Item, data: SessionData) -> Session {
        Session {
            key: key.clone(),
            meta: self.meta_of(item, Some(&data)),
            data,
            principal: View(item).principal(),
        }
    }

    /// A new session's stored data and metadata.
    pub fn new_session(
        &self,
        data: &mut SessionData,
        asked: Expiry,
    ) -> Result<(String, SessionMeta), StoreError> {
        let now = self.now();
        let expiry = self.settle_rule(data, asked, now)?;
        let raw = self.encode(data, now)?;
        let policy = &self.config.expiry;
        let deadline = policy.deadline_from(now);
        let meta = SessionMeta {
            created: Some(now),
            expires_at: Some(policy.expires_at(expiry, now, deadline)),
            expiry,
            deadline,
            touched_at: Some(now),
            version: Version(1),
            data_tag: self
                .codec
                .shares_table_with_django()
                .then(|| DataTag::of(&raw)),
            tombstone: false,
        };
        Ok((raw, meta))
    }

    /// What a refresh writes. `known` is the stored session's metadata when it was
    /// read; without it, the default rule and no deadline are assumed (and the write's
    /// condition checks the assumption).
    pub fn plan<'a>(
        &self,
        change: &'a Change,
        known: Option<&SessionMeta>,
        now: Timestamp,
    ) -> Refresh<'a> {
        let policy = &self.config.expiry;
        let (stored_rule, stored_deadline) =
            known.map_or((Expiry::Default, None), |m| (m.expiry, m.deadline));
        // An item the Django backend wrote has its rule only in its data: store it.
        let rule = change.rule.or(match known {
            Some(m) if m.version.0 == 0 => Some(m.expiry),
            _ => None,
        });
        let new_deadline = policy.deadline_from(now);
        let deadline = stored_deadline.or(new_deadline);
        Refresh {
            now,
            expires: policy.expires_at(rule.unwrap_or(stored_rule), now, deadline),
            data: change.data.as_deref(),
            rule,
            deadline: stored_deadline.is_none().then_some(new_deadline).flatten(),
            owner: None,
        }
    }

    /// A cycled session's metadata: a fresh expiry, the next version, the same rule.
    pub fn cycled(&self, old: &SessionMeta, now: Timestamp) -> SessionMeta {
        let policy = &self.config.expiry;
        let deadline = old.deadline.or_else(|| policy.deadline_from(now));
        SessionMeta {
            expires_at: Some(policy.expires_at(old.expiry, now, deadline)),
            deadline,
            touched_at: Some(now),
            version: old.version.next(),
            ..*old
        }
    }
}
