//! Upkeep from the table's stream, for what the Django backend writes:
//! - an item written without `expires_at` (the backend writes only `data`) gets the
//!   expiry the Scan would stamp on it, from the same rule and with the same conditional
//!   write, as soon as it is written;
//! - a tombstone the backend wrote onto (a request that still held a session the API
//!   removed saved it) is deleted, so that the backend's next load starts afresh.
//!
//! The event source mapping's filter (template.yaml) passes only such writes, so a table
//! written only through the API never invokes this; anything else that arrives is skipped.

use std::time::Instant;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use session_store::item::{Item, View};
use session_store::metrics::Emf;
use session_store::{SessionKey, SessionStore, StoreError};
use tracing::warn;

use crate::{Cleanup, Error};

/// What one batch of stream records came to.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct UpkeepCounts {
    pub stamped: u64,
    /// Tombstones the Django backend wrote onto, deleted.
    pub tombstones_removed: u64,
    /// Records with nothing to do: removals, items that have an expiry by now or are
    /// gone, items that are no session.
    pub skipped: u64,
    /// Items whose data inflates past the cap: the rule in it cannot be read.
    pub skipped_over_cap: u64,
    /// Records reported for a retry: the first that failed and every one after it, or
    /// those not reached before the deadline.
    pub failures: u64,
    pub batch_size: u64,
}

/// How one record ended.
enum Settled {
    Stamped,
    TombstoneRemoved,
    Skipped,
    OverCap,
}

impl Cleanup {
    /// Stamps the items the records show without an expiry, in order. At the first
    /// record that fails, or once `stop_at` is near, it and every later record are
    /// reported as batch item failures, so Lambda retries them.
    pub async fn upkeep(
        &self,
        payload: &Value,
        stop_at: Option<Instant>,
    ) -> Result<(DynamoDbEventResponse, UpkeepCounts), Error> {
        let records = payload
            .get("Records")
            .and_then(Value::as_array)
            .ok_or("the event has no Records array")?;
        let mut response = DynamoDbEventResponse::default();
        let mut counts = UpkeepCounts {
            batch_size: records.len() as u64,
            ..UpkeepCounts::default()
        };
        for (at, raw) in records.iter().enumerate() {
            let out_of_time = stop_at.is_some_and(|t| Instant::now() >= t);
            let settled = if out_of_time {
                Err("the invocation's deadline is near".into())
            } else {
                self.settle_record(raw).await
            };
            match settled {
                Ok(Settled::Stamped) => counts.stamped += 1,
                Ok(Settled::TombstoneRemoved) => counts.tombstones_removed += 1,
                Ok(Settled::Skipped) => counts.skipped += 1,
                Ok(Settled::OverCap) => counts.skipped_over_cap += 1,
                Err(e) => {
                    warn!(error = %e, records = records.len() - at, "left for a retry");
                    for record in &records[at..] {
                        let sequence = record
                            .pointer("/dynamodb/SequenceNumber")
                            .and_then(Value::as_str)
                            .ok_or("a record to retry has no sequence number to report")?;
                        let mut failure = DynamoDbBatchItemFailure::default();
                        failure.item_identifier = Some(sequence.to_owned());
                        response.batch_item_failures.push(failure);
                    }
                    counts.failures = (records.len() - at) as u64;
                    break;
                }
            }
        }
        Ok((response, counts))
    }

    async fn settle_record(&self, raw: &Value) -> Result<Settled, Error> {
        let record = EventRecord::deserialize(raw)
            .map_err(|e| format!("not a DynamoDB stream record ({:?} error)", e.classify()))?;
        if record.event_name == "REMOVE" || record.change.new_image.is_empty() {
            return Ok(Settled::Skipped);
        }
        let image: Item = record.change.new_image.into();
        let old: Item = record.change.old_image.into();
        if View(&old).is_tombstone() && View(&image).is_tombstone() {
            return self.remove_tombstone(&image).await;
        }
        let Some(candidate) = self.store.sweep_candidate(&image) else {
            return Ok(Settled::Skipped);
        };
        if candidate.expires_at.is_some() {
            return Ok(Settled::Skipped);
        }
        if candidate.data_over_cap {
            warn!(session = %candidate.key.fingerprint(12), "data over the decompression cap; no expiry stamped");
            return Ok(Settled::OverCap);
        }
        let now = self.store.now();
        let (at, rule) = self.store.config().expiry.legacy_stamp(
            candidate.data_rule,
            candidate.created,
            now,
            self.config.legacy_age,
        );
        match self.store.stamp_expiry(&candidate.key, at, rule).await {
            Ok(()) => Ok(Settled::Stamped),
            // It has an expiry by now, or is gone: nothing left to do.
            Err(StoreError::VersionConflict) => Ok(Settled::Skipped),
            Err(e) => Err(e.into()),
        }
    }
}

impl Cleanup {
    /// Deletes a tombstone written onto: the API already reads it as absent, and the
    /// Django backend's next load then finds no item and starts a fresh session.
    async fn remove_tombstone(&self, image: &Item) -> Result<Settled, Error> {
        let key = self.store.layout().key_of(image).map(SessionKey::parse);
        let Some(Ok(key)) = key else {
            return Ok(Settled::Skipped);
        };
        match self.store.remove_tombstone(&key).await {
            Ok(()) => Ok(Settled::TombstoneRemoved),
            // Gone already, or no tombstone by now.
            Err(StoreError::VersionConflict) => Ok(Settled::Skipped),
            Err(e) => Err(e.into()),
        }
    }
}

/// A batch's counts as one EMF line.
pub fn upkeep_line(counts: &UpkeepCounts, timestamp_ms: i64) -> String {
    Emf::new("session-cleanup")
        .counts(&[
            ("upkeep_stamped", counts.stamped),
            ("upkeep_tombstones_removed", counts.tombstones_removed),
            ("upkeep_skipped", counts.skipped),
            ("upkeep_skipped_over_cap", counts.skipped_over_cap),
            ("upkeep_failures", counts.failures),
            ("upkeep_batch_size", counts.batch_size),
        ])
        .property("message", json!("upkeep batch"))
        .to_line(timestamp_ms)
}
