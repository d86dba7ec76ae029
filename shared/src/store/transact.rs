//! The parts of a TransactWriteItems (cycle, and the cap's registry with its removals)
//! and how a cancelled one is read.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, Delete, Put, Update};

use super::dynamo::DynamoStore;
use crate::error::StoreError;
use crate::item::Write;
use crate::key::SessionKey;

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

/// A transaction's Delete of `key` under `guard`'s condition.
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

/// A transaction's Update of `key`: `write`'s update under its condition.
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

/// A transaction's failure: `Ok` when it was cancelled for a reason that a fresh read
/// and another try may get past (a failed condition, such as a key collision or a
/// session changed meanwhile, or a conflict with another transaction), the error
/// otherwise. Throttling is unavailable at once, since the SDK has already retried it;
/// anything else is a fault of the request itself.
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
