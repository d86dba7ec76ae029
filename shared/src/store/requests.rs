//! How the store sends a request: within the invocation's deadline, with backoff between
//! tries, and with a failed condition read as a version conflict.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

use super::dynamo::DynamoStore;
use crate::error::{StoreError, conditional};
use crate::item::{Item, Write};
use crate::key::SessionKey;
use crate::retry::delay;

/// A DynamoDB call is not started with less time than this left before the deadline:
/// it could not finish, and the caller would get no answer at all.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);
/// Long work (revoking all of a principal's sessions) stops with this much time left,
/// room for a last write and the answer.
const SHORT_TIME: Duration = Duration::from_millis(300);

impl DynamoStore {
    /// Runs one DynamoDB call within the deadline: not started when too little time is
    /// left, abandoned when the deadline comes first. The outer error is the deadline's.
    pub(super) async fn call<T, E>(
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

    /// Whether so little time is left before the deadline that long work should stop
    /// and say so, rather than start a call that would be cut off.
    pub(super) fn time_is_short(&self) -> bool {
        self.deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) < SHORT_TIME)
    }

    /// Backoff before try `attempt` of a contended write; fails instead of sleeping when
    /// the sleep and one more call would not fit before the deadline.
    pub(super) async fn pause(&self, attempt: u32) -> Result<(), StoreError> {
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

    pub(super) async fn get_item(
        &self,
        key: &SessionKey,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.get_raw(key.as_str(), consistent).await
    }

    /// The item under any key, a session's or not.
    pub(super) async fn get_raw(
        &self,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let (name, value) = self.rules.layout.key(key);
        let request = self
            .client
            .get_item()
            .table_name(&self.rules.config.table_name)
            .key(name, value)
            .consistent_read(consistent);
        let out = self
            .call(request.send())
            .await?
            .map_err(StoreError::from_sdk)?;
        Ok(out.item)
    }

    /// A DeleteItem of `key`'s item under `write`'s condition.
    pub(super) fn delete_request(&self, key: &str, write: Write) -> DeleteItemFluentBuilder {
        let (name, value) = self.rules.layout.key(key);
        let w = write.parts();
        self.client
            .delete_item()
            .table_name(&self.rules.config.table_name)
            .key(name, value)
            .set_condition_expression(w.condition)
            .set_expression_attribute_names(w.names)
            .set_expression_attribute_values(w.values)
    }

    /// An UpdateItem of `key`'s item: `write`'s update under its condition.
    pub(super) fn update_request(&self, key: &str, write: Write) -> UpdateItemFluentBuilder {
        let (name, value) = self.rules.layout.key(key);
        let w = write.parts();
        self.client
            .update_item()
            .table_name(&self.rules.config.table_name)
            .key(name, value)
            .set_update_expression(w.update)
            .set_condition_expression(w.condition)
            .set_expression_attribute_names(w.names)
            .set_expression_attribute_values(w.values)
    }

    /// One PutItem of `item` under `guard`'s condition; a failed condition is a version
    /// conflict.
    pub(super) async fn put_guarded(&self, item: Item, guard: Write) -> Result<(), StoreError> {
        let w = guard.parts();
        let request = self
            .client
            .put_item()
            .table_name(&self.rules.config.table_name)
            .set_item(Some(item))
            .set_condition_expression(w.condition)
            .set_expression_attribute_names(w.names)
            .set_expression_attribute_values(w.values);
        conditional(self.call(request.send()).await?).map(|_| ())
    }
}

pub(super) fn out_of_time() -> StoreError {
    StoreError::Unavailable("no time left before the invocation's deadline".into())
}
