//! Sessions in DynamoDB: every write is conditional, so nothing is resurrected, nothing
//! is overwritten unseen, and each operation costs the fewest requests we could manage
//! (README: "DynamoDB requests per operation").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use tracing::warn;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::codec::Codec;
use crate::config::{ConfigError, StoreConfig};
use crate::error::StoreError;
use crate::expiry::Expiry;
use crate::item::{self, Item, number};
use crate::key::SessionKey;
use crate::retry::backoff;
use crate::session::{Session, SessionData, SessionMeta, Version};

/// Fresh keys tried before giving up on create; one collision is already astronomically rare.
const CREATE_ATTEMPTS: u32 = 5;
/// Writes retried after learning the stored expiry rule or deadline.
const RELEARN_ATTEMPTS: u32 = 4;

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
    /// The version the caller demands (`If-Match`).
    expected: Option<Version>,
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
        for (placeholder, name) in [
            ("#k", key_attribute),
            ("#exp", item::EXPIRES_AT),
            ("#ver", item::VERSION),
        ] {
            e.names.insert(placeholder.into(), name.into());
        }
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

pub struct SessionStore {
    client: Client,
    config: StoreConfig,
    codec: Box<dyn Codec>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .field("codec", &self.codec)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// Fails only when the codec's secret has not been fetched (`StoreConfig::fetch_secrets`).
    pub fn new(client: Client, config: StoreConfig) -> Result<Self, ConfigError> {
        let codec = config.codec.build()?;
        Ok(Self {
            client,
            config,
            codec,
            clock: Arc::new(SystemClock),
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_codec(mut self, codec: Box<dyn Codec>) -> Self {
        self.codec = codec;
        self
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
        let expiry = self.settle_rule(&mut data, expiry);
        check_rule(expiry, now)?;
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
            let sent = self
                .client
                .put_item()
                .table_name(&self.config.table_name)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", &self.config.key_attribute)
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Session { key, data, meta }),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
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

    /// Whether a live session has this key: one GetItem of two attributes.
    pub async fn exists(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .consistent_read(self.config.consistent_read)
            .projection_expression("#k, #exp")
            .expression_attribute_names("#k", &self.config.key_attribute)
            .expression_attribute_names("#exp", item::EXPIRES_AT)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .item
            .is_some_and(|item| item::meta(&item).is_alive(self.now())))
    }

    /// Replaces the data and the expiry rule: one conditional UpdateItem (two when the
    /// session is near its lifetime cap). Never creates a session.
    pub async fn replace(
        &self,
        key: &SessionKey,
        mut data: SessionData,
        expiry: Expiry,
        expected: Option<Version>,
    ) -> Result<Session, StoreError> {
        let now = self.now();
        let expiry = self.settle_rule(&mut data, expiry);
        check_rule(expiry, now)?;
        let raw = self.encode(&data, now)?;
        let change = Refresh {
            data: Some(&raw),
            rule: Some(expiry),
            expected,
        };
        let item = self.refresh_relearning(key, &change, now).await?;
        Ok(Session {
            key: key.clone(),
            data,
            meta: self.meta_of(&item),
        })
    }

    /// Refreshes the expiry: one conditional UpdateItem for sessions on the default
    /// rule, two for the others.
    pub async fn touch(&self, key: &SessionKey) -> Result<Session, StoreError> {
        let now = self.now();
        let change = Refresh {
            data: None,
            rule: None,
            expected: None,
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
                meta: self.meta_of(&item),
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
        expected: Option<Version>,
        mut change: F,
    ) -> Result<Session, StoreError>
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError>,
    {
        for attempt in 0..self.config.update_attempts {
            backoff(
                attempt,
                Duration::from_millis(5),
                Duration::from_millis(100),
            )
            .await;
            let current = self.load_with(key, true).await?;
            if expected.is_some_and(|v| v != current.meta.version) {
                return Err(StoreError::VersionConflict);
            }
            let mut data = current.data;
            change(&mut data)?;
            let now = self.now();
            let raw = self.encode(&data, now)?;
            let write = Refresh {
                data: Some(&raw),
                // A format that keeps the rule in the data has it changed with the data.
                rule: self.codec.expiry_of(&data),
                expected,
            };
            match self
                .refresh(key, &write, &Basis::Known(current.meta), now)
                .await?
            {
                Outcome::Written(item) => {
                    return Ok(Session {
                        key: key.clone(),
                        data,
                        meta: self.meta_of(&item),
                    });
                }
                Outcome::Gone => return Err(StoreError::NotFound),
                Outcome::Conflict => return Err(StoreError::VersionConflict),
                Outcome::Stale(_) => continue,
            }
        }
        Err(StoreError::Contention)
    }

    /// Deletes the session: one DeleteItem. Deleting what is not there succeeds; with an
    /// expected version, a live session at another version is kept.
    pub async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()));
        if let Some(v) = expected {
            let mut e = Expr::new(&self.config.key_attribute);
            e.value(":now", number(self.now().epoch_seconds()));
            let matches = e.version_test(v);
            request = request
                .condition_expression(format!(
                    "attribute_not_exists(#k) OR #exp <= :now OR {matches}"
                ))
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values));
        }
        match request.send().await {
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
        expected: Option<Version>,
    ) -> Result<Session, StoreError> {
        for attempt in 0..self.config.update_attempts {
            backoff(
                attempt,
                Duration::from_millis(5),
                Duration::from_millis(100),
            )
            .await;
            let old = self
                .get_item(key, true)
                .await?
                .ok_or(StoreError::NotFound)?;
            let old_meta = self.meta_of(&old);
            let now = self.now();
            if !old_meta.is_alive(now) {
                return Err(StoreError::NotFound);
            }
            if expected.is_some_and(|v| v != old_meta.version) {
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
            let sent = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().delete(delete).build())
                .send()
                .await;
            match sent {
                Ok(_) => {
                    return Ok(Session {
                        data: self.decode_item_data(&new, &old),
                        key: new,
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
                    continue;
                }
                Err(e) => return Err(StoreError::from_sdk(e)),
            }
        }
        Err(StoreError::Contention)
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
        let mut meta = item::meta(item);
        if meta.version.0 == 0 {
            meta.expiry = self.codec.expiry_of(&data).unwrap_or(meta.expiry);
        }
        Session {
            key: key.clone(),
            data,
            meta,
        }
    }

    /// What the item says about itself. Items the original backend wrote have no rule
    /// attributes: their rule is the one their data carries, if the format keeps one.
    fn meta_of(&self, item: &Item) -> SessionMeta {
        let mut meta = item::meta(item);
        if meta.version.0 == 0
            && self.codec.has_expiry_in_data()
            && let Some(AttributeValue::S(raw)) = item.get(item::DATA)
        {
            meta.expiry = self.codec.expiry_in_data(raw).unwrap_or(meta.expiry);
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
        let out = self
            .client
            .get_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .consistent_read(consistent)
            .send()
            .await
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
                Outcome::Gone => return Err(StoreError::NotFound),
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
                if let Some(v) = change.expected {
                    e.version_is(v);
                }
                if change.rule.is_none() {
                    e.name("#idle", item::IDLE_TTL)
                        .name("#fixed", item::EXPIRES_FIXED)
                        .condition("attribute_not_exists(#idle) AND attribute_not_exists(#fixed)");
                    if self.codec.has_expiry_in_data() {
                        // Never written here: its rule may be in its data; read it first.
                        e.condition("attribute_exists(#ver)");
                    }
                }
                e.name("#deadline", item::DEADLINE)
                    .condition("attribute_not_exists(#deadline) OR #deadline >= :exp");
            }
            Basis::Known(m) => {
                if change.expected.is_some_and(|v| v != m.version) {
                    return Ok(Outcome::Conflict);
                }
                e.version_is(m.version);
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }

        let sent = self
            .client
            .update_item()
            .table_name(&self.config.table_name)
            .key(&self.config.key_attribute, s(key.as_str()))
            .update_expression(update)
            .condition_expression(e.condition_text())
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match sent {
            Ok(out) => return Ok(Outcome::Written(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                match e.into_err() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                }
            }
            Err(e) => return Err(StoreError::from_sdk(e)),
        };
        let Some(old) = old else {
            return Ok(Outcome::Gone);
        };
        let meta = self.meta_of(&old);
        Ok(if !meta.is_alive(now) {
            Outcome::Gone
        } else if change.expected.is_some_and(|v| v != meta.version) {
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

/// A fixed time in the past would make a session that is dead on arrival.
fn check_rule(rule: Expiry, now: Timestamp) -> Result<(), StoreError> {
    match rule {
        Expiry::At(t) if t <= now => Err(StoreError::InvalidData(
            "the expiry time is not in the future".into(),
        )),
        _ => Ok(()),
    }
}
