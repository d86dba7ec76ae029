//! Cycling a session's key in DynamoDB: one GetItem and one TransactWriteItems that puts
//! the new key and deletes the old one only if it is still alive and unchanged.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, Delete, Put, TransactWriteItem, Update};

use super::dynamo::DynamoStore;
use super::{missing_is_unmet, new_key};
use crate::error::StoreError;
use crate::item::{Removal, Write};
use crate::key::SessionKey;
use crate::session::{Expected, Session};

impl DynamoStore {
    pub(super) async fn move_to_new_key(
        &self,
        key: &SessionKey,
        expected: Option<Expected>,
    ) -> Result<Session, StoreError> {
        let gone = || missing_is_unmet(StoreError::NotFound, expected);
        for attempt in 0..self.rules.config.update_attempts {
            self.pause(attempt).await?;
            let old = self.get_item(key, true).await?.ok_or_else(gone)?;
            let data = self.rules.decode(key, &old);
            let old_meta = self.rules.meta_of(&old, data.as_ref().ok());
            let now = self.rules.now();
            if !old_meta.is_alive(now) {
                return Err(gone());
            }
            if let Some(home) = self.rules.layout.elsewhere(&old) {
                return Err(StoreError::Misdirected { home });
            }
            if expected.is_some_and(|x| !x.is_met_by(&old_meta)) {
                return Err(StoreError::VersionConflict);
            }
            let data = data?;
            let meta = self.rules.cycled(&old_meta, now);
            let new = new_key()?;
            let layout = &self.rules.layout;
            let put = put(self, layout.moved(&old, &new, &meta))?;
            // The old key goes only if it is as read; with the Django codec it stays as a
            // tombstone, and "as read" includes its data, which the backend may change.
            let known = self.rules.known(&old, old_meta);
            let old_key = if layout.has_tombstones() {
                let t = self.rules.tombstone(now)?;
                let removal = Removal::Live {
                    version: Some(old_meta.version),
                    data: known.data.as_deref(),
                };
                TransactWriteItem::builder()
                    .update(update(self, key, layout.tombstone(&t, removal))?)
                    .build()
            } else {
                let delete = delete(self, key, layout.unchanged(now, old_meta.version))?;
                TransactWriteItem::builder().delete(delete).build()
            };
            let request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(old_key);
            match self.call(request.send()).await? {
                // The new key keeps the principal and the time it got it: a revocation
                // of the principal, checked after the move, covers it as it did the old.
                Ok(_) if self.revoked(&old).await? => return Err(gone()),
                Ok(_) => {
                    let principal = crate::item::View(&old).principal();
                    if let Some(p) = &principal {
                        self.within_cap(p, &new).await?;
                    }
                    return Ok(Session {
                        key: new,
                        data,
                        meta,
                        principal,
                    });
                }
                // A new key collision, or the old session changed or died meanwhile:
                // read again and retry; the read says "not found" if it is gone.
                Err(e) => cancelled(e)?,
            }
        }
        Err(StoreError::Contention)
    }
}

/// The transaction's put of the new key, which must be free.
fn put(store: &DynamoStore, item: crate::item::Item) -> Result<Put, StoreError> {
    put_under(store, item, store.rules.layout.absent())
}

/// A transaction's Put of `item` under `guard`'s condition.
pub(super) fn put_under(
    store: &DynamoStore,
    item: crate::item::Item,
    guard: Write,
) -> Result<Put, StoreError> {
    let g = guard.parts();
    Put::builder()
        .table_name(&store.rules.config.table_name)
        .set_item(Some(item))
        .set_condition_expression(g.condition)
        .set_expression_attribute_names(g.names)
        .set_expression_attribute_values(g.values)
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))
}

pub(super) fn delete(
    store: &DynamoStore,
    key: &SessionKey,
    guard: Write,
) -> Result<Delete, StoreError> {
    let (name, value) = store.rules.layout.key(key.as_str());
    let g = guard.parts();
    Delete::builder()
        .table_name(&store.rules.config.table_name)
        .key(name, value)
        .set_condition_expression(g.condition)
        .set_expression_attribute_names(g.names)
        .set_expression_attribute_values(g.values)
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))
}

/// The transaction's tombstone in place of the old key, under `write`'s condition.
pub(super) fn update(
    store: &DynamoStore,
    key: &SessionKey,
    write: Write,
) -> Result<Update, StoreError> {
    let (name, value) = store.rules.layout.key(key.as_str());
    let w = write.parts();
    Update::builder()
        .table_name(&store.rules.config.table_name)
        .key(name, value)
        .set_update_expression(w.update)
        .set_condition_expression(w.condition)
        .set_expression_attribute_names(w.names)
        .set_expression_attribute_values(w.values)
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))
}

/// Whether a cancelled cycle transaction is worth reading again and retrying: only a
/// failed condition (a key collision, or the old session changed) or a conflict with
/// another transaction is. Throttling ends the cycle as unavailable at once, since the
/// SDK has already retried it; anything else is a fault of the request itself.
/// A transaction's failure: `Ok` when it was cancelled for a reason that a fresh read
/// and another try may get past, the error otherwise.
pub(super) fn cancelled(
    e: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Result<(), StoreError> {
    match &e {
        SdkError::ServiceError(s) => match s.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                retry_cancelled(c.cancellation_reasons())
            }
            _ => Err(StoreError::from_sdk(e)),
        },
        _ => Err(StoreError::from_sdk(e)),
    }
}

fn retry_cancelled(reasons: &[CancellationReason]) -> Result<(), StoreError> {
    const RETRY: &[&str] = &["None", "ConditionalCheckFailed", "TransactionConflict"];
    const THROTTLED: &[&str] = &[
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "RequestLimitExceeded",
    ];
    let codes = || reasons.iter().filter_map(CancellationReason::code);
    if let Some(code) = codes().find(|c| !RETRY.contains(c) && !THROTTLED.contains(c)) {
        tracing::error!(reason = code, "transaction refused");
        return Err(StoreError::Other(format!(
            "the transaction was refused: {code}"
        )));
    }
    if let Some(code) = codes().find(|c| THROTTLED.contains(c)) {
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
