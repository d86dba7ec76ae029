//! Sessions in DynamoDB: every write is conditional, and each operation costs the
//! fewest requests we could manage (docs/store.md).

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use tracing::warn;

use super::rules::{Change, Known, Rules};
use super::{Principals, SessionStore, missing_is_unmet, new_key};
use crate::clock::{Clock, Timestamp};
use crate::config::StoreConfig;
use crate::error::{ConfigError, StoreError, conditional};
use crate::expiry::Expiry;
use crate::item::{Item, Removal, View, watermark_key};
use crate::key::SessionKey;
use crate::principal::{
    ListingPosition, Ownership, Principal, PrincipalPage, Revocation, SessionHandle,
};
use crate::session::{Expected, Session, SessionData};

/// Fresh keys tried before giving up on create; one collision is already astronomically rare.
const CREATE_ATTEMPTS: u32 = 5;

/// The DynamoDB implementation of [`SessionStore`]. Cheap to clone: clones share the
/// client, settings and codec, and each may carry its own deadline.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) rules: Rules,
    /// No DynamoDB call runs past this instant (the invocation's deadline less a margin).
    pub(super) deadline: Option<Instant>,
}

impl DynamoStore {
    /// Fails only when the codec's secret has not been fetched (`StoreConfig::fetch_secrets`).
    pub fn new(client: Client, config: StoreConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client,
            rules: Rules::new(config)?,
            deadline: None,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.rules.clock = clock;
        self
    }

    /// The item layout of the store's table.
    pub fn layout(&self) -> &crate::item::Layout {
        &self.rules.layout
    }

    /// The store's clock.
    pub fn now(&self) -> Timestamp {
        self.rules.now()
    }

    /// The store's clock in epoch milliseconds, as revocations compare times.
    pub fn now_millis(&self) -> i64 {
        self.rules.clock.now_millis()
    }

    pub(super) async fn load_with(
        &self,
        key: &SessionKey,
        consistent: bool,
    ) -> Result<Session, StoreError> {
        let item = self
            .get_item(key, consistent)
            .await?
            .ok_or(StoreError::NotFound)?;
        let session = self
            .rules
            .live_session(key, &item)?
            .ok_or(StoreError::NotFound)?;
        if self.revoked(&item).await? {
            return Err(StoreError::NotFound);
        }
        Ok(session)
    }

    /// Whether the session in `item` was revoked with all of its principal's sessions
    /// after it got that principal: one consistent GetItem of the principal's watermark,
    /// made only for a session that has a principal.
    pub(super) async fn revoked(&self, item: &Item) -> Result<bool, StoreError> {
        let view = View(item);
        self.revoked_owner(Some(&(view.principal(), view.principal_since())))
            .await
    }

    /// Whether a session with this principal, got at this time (epoch milliseconds),
    /// is covered by its principal's watermark; `None` when not read.
    pub(super) async fn revoked_owner(
        &self,
        owner: Option<&(Option<Principal>, Option<i64>)>,
    ) -> Result<bool, StoreError> {
        let Some((Some(p), since)) = owner else {
            return Ok(false);
        };
        let Some(mark) = self.get_raw(&watermark_key(p), true).await? else {
            return Ok(false);
        };
        Ok(View(&mark).covers(*since))
    }

    /// One conditional PutItem of a new session's item; `Ok(false)` when the key is taken.
    async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        let absent = self.rules.layout.absent().parts();
        let request = self
            .client
            .put_item()
            .table_name(&self.rules.config.table_name)
            .set_item(Some(item.clone()))
            .set_condition_expression(absent.condition)
            .set_expression_attribute_names(absent.names)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match self.call(request.send()).await? {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                // The SDK retries a try whose answer was lost; the retry then finds the
                // item that try wrote. That is this session, not a collision.
                Ok(matches!(e.into_err(),
                    PutItemError::ConditionalCheckFailedException(c) if c.item.as_ref() == Some(&item)))
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }

    /// The item as a write that demands `expected` must find it: alive and meeting the
    /// demand. One consistent GetItem.
    pub(super) async fn read_known(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        now: Timestamp,
    ) -> Result<Known, StoreError> {
        let gone = || missing_is_unmet(StoreError::NotFound, expected);
        let item = self.get_item(key, true).await?.ok_or_else(gone)?;
        let meta = self.rules.meta_of(&item, None);
        self.rules.writable_here(&item, &meta, expected, now)?;
        Ok(self.rules.known(&item, meta))
    }

    /// `true` when it wrote (removed the item or left a tombstone).
    async fn delete_item(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if !self.rules.can_meet(expected) {
            return Err(StoreError::VersionConflict);
        }
        if self.rules.layout.has_tombstones() {
            return self.leave_tombstone(key, expected, now).await;
        }
        let request = match expected {
            None => self.delete_request(key.as_str(), self.rules.layout.delete_unless_expired(now)),
            Some(x) => self.delete_request(
                key.as_str(),
                self.rules.layout.delete_expecting(now, x.version()),
            ),
        };
        // Without `If-Match`, a failed condition is an expired session, answered as a
        // missing one.
        removed(conditional(self.call(request.send()).await?), expected).map(|o| o.is_some())
    }

    /// A removal from a table shared with the Django backend: the item becomes a
    /// tombstone, which the backend loads as an empty session and cannot bring back.
    /// One UpdateItem; a tag (which names the data) is checked by a read first.
    async fn leave_tombstone(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let t = self.rules.tombstone(now)?;
        let read = match expected {
            Some(Expected::Tag(_)) => Some(self.read_known(key, expected, now).await?),
            _ => None,
        };
        let removal = match (expected, &read) {
            (None, _) => Removal::Any,
            (_, Some(k)) => Removal::Live {
                version: Some(k.meta.version),
                data: k.data.as_deref(),
            },
            (Some(_), None) => Removal::Live {
                version: None,
                data: None,
            },
        };
        let request = self
            .update_request(key.as_str(), self.rules.layout.tombstone(&t, removal))
            .return_values(ReturnValue::AllOld);
        // Without `If-Match`, a failed condition is a missing item or a tombstone
        // already: nothing to remove.
        match removed(conditional(self.call(request.send()).await?), expected)? {
            // An item of the Django backend whose data says it expired was no live
            // session: turning it into a tombstone is harmless, but the caller's demand
            // was not met.
            Some(out)
                if expected.is_some()
                    && out
                        .attributes
                        .as_ref()
                        .is_none_or(|old| !self.rules.meta_of(old, None).is_alive(now)) =>
            {
                Err(StoreError::VersionConflict)
            }
            written => Ok(written.is_some()),
        }
    }

    /// The home of `key`'s session when only its home region refused a write here: it
    /// is alive and another region's, and, with `owner`, that principal's and not
    /// revoked. A write refused for any other reason is not misdirected.
    pub(super) async fn live_elsewhere(
        &self,
        key: &SessionKey,
        owner: Option<&Principal>,
    ) -> Result<Option<String>, StoreError> {
        if self.rules.config.region.is_none() {
            return Ok(None);
        }
        let Some(item) = self.get_item(key, true).await? else {
            return Ok(None);
        };
        let now = self.rules.now();
        let meta = self.rules.meta_of(&item, None);
        let Err(StoreError::Misdirected { home }) =
            self.rules.writable_here(&item, &meta, None, now)
        else {
            return Ok(None);
        };
        if let Some(p) = owner
            && (View(&item).principal().as_ref() != Some(p) || self.revoked(&item).await?)
        {
            return Ok(None);
        }
        Ok(Some(home))
    }
}

impl SessionStore for DynamoStore {
    fn config(&self) -> &StoreConfig {
        &self.rules.config
    }

    fn until(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// One conditional PutItem; with a principal under a cap, the cap's count after it.
    async fn create_owned(
        &self,
        mut data: SessionData,
        expiry: Expiry,
        principal: Option<Principal>,
    ) -> Result<Session, StoreError> {
        let principal = self.rules.owner_of_new(&data, principal)?;
        let (raw, meta) = self.rules.new_session(&mut data, expiry)?;
        for _ in 0..CREATE_ATTEMPTS {
            let key = new_key()?;
            let layout = &self.rules.layout;
            let since_ms = self.rules.clock.now_millis();
            let item = layout.new_owned_item(&key, &raw, &meta, principal.as_ref(), since_ms);
            if self.put_new(item).await? {
                if let Some(p) = &principal {
                    self.counted(p, &key, Some(since_ms)).await?;
                }
                return Ok(Session {
                    key,
                    data,
                    meta,
                    principal,
                });
            }
            warn!(session = %key.fingerprint(12), "generated session key already taken; drawing another");
        }
        Err(StoreError::Other("no free session key found".into()))
    }

    /// One GetItem.
    async fn load(&self, key: &SessionKey) -> Result<Session, StoreError> {
        self.load_with(key, self.rules.config.consistent_read).await
    }

    /// One GetItem, projected to the key, the expiry and the principal with its time
    /// unless the format may keep the expiry in the data.
    async fn exists(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let (name, value) = self.rules.layout.key(key.as_str());
        let mut request = self
            .client
            .get_item()
            .table_name(&self.rules.config.table_name)
            .key(name, value)
            .consistent_read(self.rules.config.consistent_read);
        if !self.rules.codec.has_expiry_in_data() {
            let (projection, expr) = self.rules.layout.exists_projection();
            request = request
                .projection_expression(projection)
                .set_expression_attribute_names(expr.into_parts().0);
        }
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        let now = self.rules.now();
        match out.item {
            Some(item) if self.rules.meta_of(&item, None).is_alive(now) => {
                Ok(!self.revoked(&item).await?)
            }
            _ => Ok(false),
        }
    }

    async fn load_and_touch(&self, key: &SessionKey) -> Result<Session, StoreError> {
        self.load_touching(key).await
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
        let item = self.refresh_relearning(key, change, now).await?;
        Ok(self.rules.written(key, &item, data))
    }

    async fn touch(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let now = self.rules.now();
        let item = self
            .refresh_relearning(key, Change::touch(expected), now)
            .await?;
        self.rules.session(key, &item)
    }

    async fn update<F>(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
        change: F,
    ) -> Result<Session, StoreError>
    where
        F: FnMut(&mut SessionData) -> Result<(), StoreError> + Send,
    {
        self.read_modify_write(key, expected, change).await
    }

    /// One DeleteItem, or one UpdateItem that leaves a tombstone (codec `django`).
    async fn delete(&self, key: &SessionKey, expected: Option<Expected>) -> Result<(), StoreError> {
        let deleted = self.delete_item(key, expected, self.rules.now()).await;
        // A delete refused by its condition may have met a session of another region; a
        // delete without If-Match that found nothing to do may have too.
        let unmet = matches!(
            deleted,
            Err(StoreError::VersionConflict | StoreError::NotFound) | Ok(false)
        );
        if unmet && let Some(home) = self.live_elsewhere(key, None).await? {
            return Err(StoreError::Misdirected { home });
        }
        deleted
            .map(|_| ())
            .map_err(|e| missing_is_unmet(e, expected))
    }

    async fn cycle(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        self.move_to_new_key(key, expected).await
    }
}

impl Principals for DynamoStore {
    /// A GetItem of the watermark, an UpdateItem of the spared session, a PutItem of the
    /// watermark before and after, one Query of the index and one consistent
    /// BatchGetItem per 100 entries, and one conditional write per session removed.
    async fn revoke_all(
        &self,
        principal: &Principal,
        except: Option<&SessionKey>,
    ) -> Result<Revocation, StoreError> {
        self.revoke_every(principal, except).await
    }

    /// One Query of the index (keys only) and one consistent BatchGetItem.
    async fn list(
        &self,
        principal: &Principal,
        limit: usize,
        after: Option<ListingPosition>,
    ) -> Result<PrincipalPage, StoreError> {
        self.list_page(principal, limit, after).await
    }

    /// A Query of the index per 100 of the principal's sessions until the handle is
    /// found, then one conditional write.
    async fn revoke(&self, principal: &Principal, id: &SessionHandle) -> Result<(), StoreError> {
        self.revoke_one(principal, id).await
    }
}

/// A removal's answer: `None` when its condition failed on a delete without `If-Match`,
/// which succeeds all the same; with `If-Match` a failed condition is an unmet demand.
fn removed<T>(
    written: Result<T, StoreError>,
    expected: Option<Expected>,
) -> Result<Option<T>, StoreError> {
    match written {
        Ok(out) => Ok(Some(out)),
        Err(StoreError::VersionConflict) if expected.is_none() => Ok(None),
        Err(e) => Err(e),
    }
}
