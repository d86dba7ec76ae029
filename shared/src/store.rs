//! Sessions in DynamoDB: every write is conditional, so nothing is resurrected, nothing
//! is overwritten unseen, and each operation costs the fewest requests we could manage
//! (README: "DynamoDB requests per operation").

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use tracing::warn;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::codec::Codec;
use crate::config::{ConfigError, StoreConfig};
use crate::error::StoreError;
use crate::expiry::Expiry;
use crate::item::{self, Item, number};
use crate::key::SessionKey;
use crate::retry::delay;
use crate::session::{Expected, Session, SessionData, SessionMeta, Version};

/// Fresh keys tried before giving up on create; one collision is already astronomically rare.
const CREATE_ATTEMPTS: u32 = 5;
/// Writes retried after learning the stored expiry rule or deadline.
const RELEARN_ATTEMPTS: u32 = 4;
/// A DynamoDB call is not started with less time than this left before the deadline:
/// it could not finish, and the caller would get no answer at all.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

/// What a conditional refresh write knows of the stored item.
enum Basis {
    /// Nothing read: the write assumes the default expiry rule and a deadline that does
    /// not bite, and the condition checks both.
    Assumed,
    /// Read before: the write is guarded by this exact version.
    Known(SessionMeta),
}

/// One conditional write that refreshes a session's expiry and bumps its version.
struct Refresh<'a> {
    /// New encoded data; `None` keeps the stored data.
    data: Option<&'a str>,
    /// New expiry rule; `None` keeps the stored one.
    rule: Option<Expiry>,
    /// What the caller demands of the stored version (`If-Match`).
    expected: Option<Expected>,
}

enum Outcome {
    Written(Item),
    /// Missing or expired.
    Gone,
    /// The caller's expected version is not the stored one.
    Conflict,
    /// Alive, but not as assumed or known: here is what it is now.
    Stale(SessionMeta),
}

/// Expression text plus its name and value placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    conditions: Vec<String>,
}

impl Expr {
    fn new(key_attribute: &str) -> Self {
        let mut e = Self::default();
        // DynamoDB refuses names an expression does not use: `#ver` comes with its use.
        e.name("#k", key_attribute).name("#exp", item::EXPIRES_AT);
        e
    }

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

    /// The item exists and has not expired at `now`.
    fn alive(&mut self, now: Timestamp) -> &mut Self {
        self.value(":now", number(now.epoch_seconds()));
        self.condition("attribute_exists(#k) AND (attribute_not_exists(#exp) OR #exp > :now)")
    }

    /// The test "the item is at version `v`" (items of the original backend have none: 0).
    fn version_test(&mut self, v: Version) -> &'static str {
        self.name("#ver", item::VERSION);
        if v.0 == 0 {
            "attribute_not_exists(#ver)"
        } else {
            self.value(":expected", number(v.0));
            "#ver = :expected"
        }
    }

    fn version_is(&mut self, v: Version) -> &mut Self {
        let test = self.version_test(v);
        self.condition(test)
    }

    /// All conditions joined by AND; DynamoDB rejects redundant parentheses.
    fn condition_text(&self) -> String {
        match self.conditions.as_slice() {
            [only] => only.clone(),
            all => all
                .iter()
                .map(|c| format!("({c})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }
}

/// Cheap to clone: clones share the client, settings and codec, and each may carry its
/// own deadline ([`SessionStore::until`]).
#[derive(Clone)]
pub struct SessionStore {
    client: Client,
    config: Arc<StoreConfig>,
    codec: Arc<dyn Codec>,
    clock: Arc<dyn Clock>,
    /// No DynamoDB call runs past this instant (the invocation's deadline less a margin).
    deadline: Option<Instant>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .field("codec", &self.codec)
            .field("clock", &self.clock)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// Fails only when the codec's secret has not been fetched (`StoreConfig::fetch_secrets`).
    pub fn new(client: Client, config: StoreConfig) -> Result<Self, ConfigError> {
        let codec = config.codec.build()?;
        Ok(Self {
            client,
            config: Arc::new(config),
            codec: Arc::from(codec),
            clock: Arc::new(SystemClock),
            deadline: None,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store for one invocation: a call that cannot finish by `deadline` is not
    /// started, one under way is abandoned there, and backoff never sleeps past it; the
    /// operation then fails as [`StoreError::Unavailable`], in time to answer.
    pub fn until(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A new session under a fresh key: one conditional PutItem.
    pub async fn create(
        &self,
        mut data: SessionData,
        expiry: Expiry,
    ) -> Result<Session, StoreError> {
        let now = self.now();
        let expiry = self.settle_rule(&mut data, expiry).check_for_write(now)?;
        let raw = self.encode(&data, now)?;
        let deadline = self.config.expiry.deadline_from(now);
        let meta = SessionMeta {
            created: Some(now),
            expires_at: Some(self.config.expiry.expires_at(expiry, now, deadline)),
            expiry,
            deadline,
            touched_at: Some(now),
            version: Version(1),
        };
        for _ in 0..CREATE_ATTEMPTS {
            let key = new_key()?;
            let mut item = item::meta_attributes(&meta);
            item.insert(self.config.key_attribute.clone(), s(key.as_str()));
            item.insert(item::DATA.into(), s(&raw));
            let request = self
                .client
                .put_item()
                .table_name(&self.config.table_name)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", &self.config.key_attribute)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            match self.call(request.send()).await? {
                Ok(_) => return Ok(Session { key, data, meta }),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    // The SDK retries a try whose answer was lost; the retry then finds
                    // the item that try wrote. That is this session, not a collision.
                    if let PutItemError::ConditionalCheckFailedException(c) = e.into_err()
                        && c.item.as_ref() == Some(&item)
                    {
                        return Ok(Session { key, data, meta });
                    }
                    warn!(session = %key.fingerprint(12), "generated session key already taken; drawing another");
                }
                Err(e) => return Err(StoreError::from_sdk(e)),
            }
        }
        Err(StoreError::Other("no free session key found".into()))
    }

    /// The live session under `key`: one GetItem. Never writes anything.
    pub async fn load(&self, key: &SessionKey) -> Result<Session, StoreError> {
        self.load_with(key, self.config.consistent_read).await
    }

    /// Whether a live session has this key: one GetItem, of two attributes unless the
    /// format may keep the expiry in the data.
    pub async fn exists(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .consistent_read(self.config.consistent_read);
        if !self.codec.has_expiry_in_data() {
            request = request
                .projection_expression("#k, #exp")
                .expression_attribute_names("#k", &self.config.key_attribute)
                .expression_attribute_names("#exp", item::EXPIRES_AT);
        }
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .item
            .is_some_and(|item| self.meta_of(&item, None).is_alive(self.now())))
    }

    /// Replaces the data and the expiry rule: one conditional UpdateItem (two when the
    /// session is near its lifetime cap). Never creates a session.
    pub async fn replace(
        &self,
        key: &SessionKey,
        mut data: SessionData,
        expiry: Expiry,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let now = self.now();
        let expiry = self.settle_rule(&mut data, expiry).check_for_write(now)?;
        let raw = self.encode(&data, now)?;
        let change = Refresh {
            data: Some(&raw),
            rule: Some(expiry),
            expected,
        };
        let item = self.refresh_relearning(key, &change, now).await?;
        Ok(Session {
            key: key.clone(),
            meta: self.meta_of(&item, Some(&data)),
            data,
        })
    }

    /// Refreshes the expiry: one conditional UpdateItem for sessions on the default
    /// rule, two for the others.
    pub async fn touch(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let now = self.now();
        let change = Refresh {
            data: None,
            rule: None,
            expected,
        };
        let item = self.refresh_relearning(key, &change, now).await?;
        Ok(self.session_from_item(key, &item))
    }

    /// Loads, and refreshes the expiry only when the last refresh is older than the
    /// configured interval, so most reads cost a single GetItem.
    pub async fn load_and_touch(&self, key: &SessionKey) -> Result<Session, StoreError> {
        let session = self.load(key).await?;
        let now = self.now();
        if !session.meta.refresh_due(now, self.config.touch_interval) {
            return Ok(session);
        }
        let change = Refresh {
            data: None,
            rule: None,
            expected: None,
        };
        match self
            .refresh(key, &change, &Basis::Known(session.meta), now)
            .await?
        {
            Outcome::Written(item) => Ok(Session {
                meta: self.meta_of(&item, Some(&session.data)),
                ..session
            }),
            Outcome::Gone => Err(StoreError::NotFound),
            // Another writer got there first, and its write refreshed the expiry.
            Outcome::Conflict | Outcome::Stale(_) => Ok(session),
        }
    }

    /// Read-modify-write of the data, guarded by the version read and retried with
    /// backoff when another writer got in between: two requests without contention.
    pub async fn update<F>(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        mut change: F,
    ) -> Result<Session, StoreError>
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError>,
    {
        for attempt in 0..self.config.update_attempts {
            self.pause(attempt).await?;
            let current = self
                .load_with(key, true)
                .await
                .map_err(|e| missing_is_unmet(e, expected))?;
            if expected.is_some_and(|x| !x.is_met_by(current.meta.version)) {
                return Err(StoreError::VersionConflict);
            }
            let mut data = current.data;
            change(&mut data)?;
            let now = self.now();
            // A format that keeps the rule in the data has it changed with the data,
            // and checked like a rule given any other way.
            let rule = self
                .codec
                .expiry_of(&data)
                .map(|rule| rule.check_for_write(now))
                .transpose()?;
            let raw = self.encode(&data, now)?;
            let write = Refresh {
                data: Some(&raw),
                rule,
                expected,
            };
            match self
                .refresh(key, &write, &Basis::Known(current.meta), now)
                .await?
            {
                Outcome::Written(item) => {
                    return Ok(Session {
                        key: key.clone(),
                        meta: self.meta_of(&item, Some(&data)),
                        data,
                    });
                }
                Outcome::Gone => return Err(missing_is_unmet(StoreError::NotFound, expected)),
                Outcome::Conflict => return Err(StoreError::VersionConflict),
                Outcome::Stale(_) => continue,
            }
        }
        Err(StoreError::Contention)
    }

    /// Deletes the session: one DeleteItem. Deleting what is not there succeeds, unless
    /// the caller expected it to be there (at a version, or at all).
    pub async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()));
        let now = self.now();
        if let Some(x) = expected {
            let mut e = Expr::new(&self.config.key_attribute);
            e.alive(now);
            if let Some(v) = x.version() {
                e.version_is(v);
            }
            request = request
                .condition_expression(e.condition_text())
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values))
                .return_values(ReturnValue::AllOld);
        }
        match self.call(request.send()).await? {
            // An item of the original backend whose data says it expired was no live
            // session: removing it is harmless, but the caller's demand was not met.
            Ok(out)
                if expected.is_some()
                    && out
                        .attributes
                        .as_ref()
                        .is_none_or(|old| !self.meta_of(old, None).is_alive(now)) =>
            {
                Err(StoreError::VersionConflict)
            }
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::VersionConflict)
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }

    /// Moves the session to a fresh key: one GetItem and one TransactWriteItems that
    /// puts the new key and deletes the old one only if it is still alive and unchanged.
    pub async fn cycle(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        for attempt in 0..self.config.update_attempts {
            self.pause(attempt).await?;
            let gone = || missing_is_unmet(StoreError::NotFound, expected);
            let old = self.get_item(key, true).await?.ok_or_else(gone)?;
            let data = self.decode_item_data(key, &old);
            let old_meta = self.meta_of(&old, Some(&data));
            let now = self.now();
            if !old_meta.is_alive(now) {
                return Err(gone());
            }
            if expected.is_some_and(|x| !x.is_met_by(old_meta.version)) {
                return Err(StoreError::VersionConflict);
            }
            let deadline = old_meta
                .deadline
                .or_else(|| self.config.expiry.deadline_from(now));
            let meta = SessionMeta {
                expires_at: Some(
                    self.config
                        .expiry
                        .expires_at(old_meta.expiry, now, deadline),
                ),
                deadline,
                touched_at: Some(now),
                version: old_meta.version.next(),
                ..old_meta
            };
            let new = new_key()?;
            let mut new_item = old.clone();
            new_item.extend(item::meta_attributes(&meta));
            new_item.insert(self.config.key_attribute.clone(), s(new.as_str()));

            let put = Put::builder()
                .table_name(&self.config.table_name)
                .set_item(Some(new_item))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", &self.config.key_attribute)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let mut guard = Expr::new(&self.config.key_attribute);
            guard.alive(now).version_is(old_meta.version);
            let delete = Delete::builder()
                .table_name(&self.config.table_name)
                .key(&self.config.key_attribute, s(key.as_str()))
                .condition_expression(guard.condition_text())
                .set_expression_attribute_names(Some(guard.names))
                .set_expression_attribute_values(Some(guard.values))
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().delete(delete).build());
            match self.call(request.send()).await? {
                Ok(_) => {
                    return Ok(Session {
                        key: new,
                        data,
                        meta,
                    });
                }
                // A new key collision, or the old session changed or died meanwhile:
                // read again and retry; the read says "not found" if it is gone.
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        TransactWriteItemsError::TransactionCanceledException(_)
                    ) =>
                {
                    if let TransactWriteItemsError::TransactionCanceledException(c) = e.err() {
                        retry_cancelled(c.cancellation_reasons())?;
                    }
                }
                Err(e) => return Err(StoreError::from_sdk(e)),
            }
        }
        Err(StoreError::Contention)
    }

    /// Runs one DynamoDB call within the deadline: not started when too little time is
    /// left, abandoned when the deadline comes first. The outer error is the deadline's.
    async fn call<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, StoreError> {
        let Some(deadline) = self.deadline else {
            return Ok(call.await);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < MIN_CALL_TIME {
            return Err(out_of_time());
        }
        tokio::time::timeout(left, call)
            .await
            .map_err(|_| out_of_time())
    }

    /// Backoff before try `attempt` of a contended write; fails instead of sleeping when
    /// the sleep and one more call would not fit before the deadline.
    async fn pause(&self, attempt: u32) -> Result<(), StoreError> {
        let wait = delay(
            attempt,
            Duration::from_millis(5),
            Duration::from_millis(100),
        );
        if let Some(deadline) = self.deadline
            && Instant::now() + wait + MIN_CALL_TIME > deadline
        {
            return Err(out_of_time());
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn encode(&self, data: &SessionData, now: Timestamp) -> Result<String, StoreError> {
        let raw = self.codec.encode(data, now);
        if raw.len() > self.config.max_session_bytes {
            return Err(StoreError::TooLarge {
                size: raw.len(),
                limit: self.config.max_session_bytes,
            });
        }
        Ok(raw)
    }

    /// Stored data that cannot be decoded reads as an empty session, as Django does,
    /// with a warning that holds no data.
    fn decode_item_data(&self, key: &SessionKey, item: &Item) -> SessionData {
        let decoded = match item.get(item::DATA) {
            Some(AttributeValue::S(raw)) => self.codec.decode(raw).map_err(|e| e.to_string()),
            _ => Err("the data attribute is missing or not a string".into()),
        };
        decoded.unwrap_or_else(|reason| {
            warn!(session = %key.fingerprint(12), %reason, "session data corrupted; reading it as empty");
            SessionData::new()
        })
    }

    fn session_from_item(&self, key: &SessionKey, item: &Item) -> Session {
        let data = self.decode_item_data(key, item);
        Session {
            key: key.clone(),
            meta: self.meta_of(item, Some(&data)),
            data,
        }
    }

    /// What the item says about itself. Items the original backend wrote have no rule
    /// attributes: their rule is the one their data carries, if the format keeps one,
    /// and a fixed time there is their expiry, enforced as `expires_at` would be.
    /// `data` is the item's data when already decoded.
    fn meta_of(&self, item: &Item, data: Option<&SessionData>) -> SessionMeta {
        let mut meta = item::meta(item);
        if meta.version.0 != 0 || !self.codec.has_expiry_in_data() {
            return meta;
        }
        let rule = match (data, item.get(item::DATA)) {
            (Some(data), _) => self.codec.expiry_of(data),
            (None, Some(AttributeValue::S(raw))) => self.codec.expiry_in_data(raw),
            (None, _) => None,
        };
        if let Some(rule) = rule {
            meta.expiry = rule;
        }
        if let (None, Expiry::At(t)) = (meta.expires_at, meta.expiry) {
            meta.expires_at = Some(t);
        }
        meta
    }

    /// The rule a write stores. For formats that keep the rule in the data, the data
    /// and the item must agree: a rule the caller gives is written into the data, and
    /// without one the data's own rule applies.
    fn settle_rule(&self, data: &mut SessionData, asked: Expiry) -> Expiry {
        if asked != Expiry::Default {
            self.codec.set_expiry(data, asked);
            return asked;
        }
        self.codec.expiry_of(data).unwrap_or(asked)
    }

    async fn get_item(
        &self,
        key: &SessionKey,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let request = self
            .client
            .get_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .consistent_read(consistent);
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        Ok(out.item)
    }

    async fn load_with(&self, key: &SessionKey, consistent: bool) -> Result<Session, StoreError> {
        let item = self
            .get_item(key, consistent)
            .await?
            .ok_or(StoreError::NotFound)?;
        let session = self.session_from_item(key, &item);
        if session.meta.is_alive(self.now()) {
            Ok(session)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// A refresh that starts from assumptions and, when the item turns out to follow
    /// another expiry rule or to be near its deadline, retries knowing the item.
    async fn refresh_relearning(
        &self,
        key: &SessionKey,
        change: &Refresh<'_>,
        now: Timestamp,
    ) -> Result<Item, StoreError> {
        let mut basis = Basis::Assumed;
        for _ in 0..RELEARN_ATTEMPTS {
            match self.refresh(key, change, &basis, now).await? {
                Outcome::Written(item) => return Ok(item),
                Outcome::Gone => {
                    return Err(missing_is_unmet(StoreError::NotFound, change.expected));
                }
                Outcome::Conflict => return Err(StoreError::VersionConflict),
                Outcome::Stale(meta) => basis = Basis::Known(meta),
            }
        }
        Err(StoreError::Contention)
    }

    async fn refresh(
        &self,
        key: &SessionKey,
        change: &Refresh<'_>,
        basis: &Basis,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let policy = &self.config.expiry;
        let (stored_rule, stored_deadline) = match basis {
            Basis::Assumed => (Expiry::Default, None),
            Basis::Known(m) => (m.expiry, m.deadline),
        };
        // An item the original backend wrote has its rule only in its data: store it.
        let rule_to_store = change.rule.or(match basis {
            Basis::Known(m) if m.version.0 == 0 => Some(m.expiry),
            _ => None,
        });
        let rule = rule_to_store.unwrap_or(stored_rule);
        let new_deadline = policy.deadline_from(now);
        let deadline = stored_deadline.or(new_deadline);
        let expires = policy.expires_at(rule, now, deadline);

        let mut e = Expr::new(&self.config.key_attribute);
        e.alive(now)
            .name("#touched", item::TOUCHED_AT)
            .name("#ver", item::VERSION)
            .value(":exp", number(expires.epoch_seconds()))
            .value(":zero", number(0))
            .value(":one", number(1));
        let mut set = vec![
            "#exp = :exp".to_owned(),
            "#touched = :now".to_owned(),
            "#ver = if_not_exists(#ver, :zero) + :one".to_owned(),
        ];
        let mut remove = Vec::new();
        if let Some(raw) = change.data {
            e.name("#data", item::DATA).value(":data", s(raw));
            set.push("#data = :data".into());
        }
        if let Some(rule) = rule_to_store {
            e.name("#idle", item::IDLE_TTL)
                .name("#fixed", item::EXPIRES_FIXED);
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
        if let (None, Some(d)) = (stored_deadline, new_deadline) {
            e.name("#deadline", item::DEADLINE)
                .value(":deadline", number(d.epoch_seconds()));
            set.push("#deadline = if_not_exists(#deadline, :deadline)".into());
        }
        match basis {
            Basis::Assumed => {
                if let Some(v) = change.expected.and_then(Expected::version) {
                    e.version_is(v);
                }
                if change.rule.is_none() {
                    e.name("#idle", item::IDLE_TTL)
                        .name("#fixed", item::EXPIRES_FIXED)
                        .condition("attribute_not_exists(#idle) AND attribute_not_exists(#fixed)");
                }
                if self.codec.has_expiry_in_data() {
                    // Never written here: its data may hold a rule, even one that says it
                    // has expired; read it first.
                    e.condition("attribute_exists(#ver)");
                }
                e.name("#deadline", item::DEADLINE)
                    .condition("attribute_not_exists(#deadline) OR #deadline >= :exp");
            }
            Basis::Known(m) => {
                if change.expected.is_some_and(|x| !x.is_met_by(m.version)) {
                    return Ok(Outcome::Conflict);
                }
                e.version_is(m.version);
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }

        let request = self
            .client
            .update_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .update_expression(update)
            .condition_expression(e.condition_text())
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
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
        let meta = self.meta_of(&old, None);
        Ok(if !meta.is_alive(now) {
            Outcome::Gone
        } else if change.expected.is_some_and(|x| !x.is_met_by(meta.version)) {
            Outcome::Conflict
        } else {
            Outcome::Stale(meta)
        })
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn new_key() -> Result<SessionKey, StoreError> {
    SessionKey::generate()
        .map_err(|e| StoreError::Other(format!("no randomness for a session key: {e}")))
}

fn out_of_time() -> StoreError {
    StoreError::Unavailable("no time left before the invocation's deadline".into())
}

/// A caller who expected the session (`If-Match`) is told its demand failed, not that
/// the session is missing: RFC 9110 answers any failed `If-Match` with 412.
fn missing_is_unmet(e: StoreError, expected: Option<Expected>) -> StoreError {
    match e {
        StoreError::NotFound if expected.is_some() => StoreError::VersionConflict,
        other => other,
    }
}

/// Whether a cancelled cycle transaction is worth reading again and retrying: only a
/// failed condition (a key collision, or the old session changed) or a conflict with
/// another transaction is. Throttling ends the cycle as unavailable at once, since the
/// SDK has already retried it; anything else is a fault of the request itself.
fn retry_cancelled(reasons: &[CancellationReason]) -> Result<(), StoreError> {
    let codes = || reasons.iter().filter_map(CancellationReason::code);
    if let Some(code) = codes().find(|c| {
        !matches!(
            *c,
            "None"
                | "ConditionalCheckFailed"
                | "TransactionConflict"
                | "ProvisionedThroughputExceeded"
                | "ThrottlingError"
                | "RequestLimitExceeded"
        )
    }) {
        tracing::error!(reason = code, "cycle transaction refused");
        return Err(StoreError::Other(format!(
            "the cycle transaction was refused: {code}"
        )));
    }
    if let Some(code) = codes().find(|c| {
        matches!(
            *c,
            "ProvisionedThroughputExceeded" | "ThrottlingError" | "RequestLimitExceeded"
        )
    }) {
        return Err(StoreError::Unavailable(code.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    #[test]
    fn only_failed_conditions_and_conflicts_make_a_cycle_retry() {
        for codes in [
            &["ConditionalCheckFailed", "None"][..],
            &["None", "ConditionalCheckFailed"],
            &["TransactionConflict", "None"],
            &[],
        ] {
            assert!(retry_cancelled(&reasons(codes)).is_ok(), "{codes:?}");
        }
        for code in [
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
            "RequestLimitExceeded",
        ] {
            let r = retry_cancelled(&reasons(&["None", code]));
            assert!(matches!(r, Err(StoreError::Unavailable(_))), "{code}");
        }
        for codes in [
            &["ValidationError", "None"][..],
            &["ItemCollectionSizeLimitExceeded", "ThrottlingError"],
        ] {
            let r = retry_cancelled(&reasons(codes));
            assert!(matches!(r, Err(StoreError::Other(_))), "{codes:?}");
        }
    }
}
