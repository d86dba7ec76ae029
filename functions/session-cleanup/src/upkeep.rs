//! Upkeep from the table's stream, for what the Django backend writes:
//! - an item written without `expires_at` (the backend writes only `data`) gets the
//!   expiry the Scan would stamp on it, from the same rule and with the same conditional
//!   write, as soon as it is written;
//! - an item the backend wrote whose data names a user (`_auth_user_id`, its login)
//!   gets that user as its principal, as the API's writes give it, from the time the
//!   item was created (none: covered by any revocation), and is removed at once if a
//!   revocation of that principal covers that time;
//! - a tombstone the backend wrote onto (a request that still held a session the API
//!   removed saved it) is deleted, so that the backend's next load starts afresh;
//! - a revocation's watermark, written or moved: this region's sessions it covers are
//!   walked and removed (see `walk_watermark`), for readers that never read the
//!   watermark (a Django site) and what the revocation's own walk could not reach.
//!
//! The event source mapping's filter (template.yaml) passes the backend's first writes
//! (no `expires_at`), every later write to an item stamped as the backend's
//! (`stamped_at`), writes onto tombstones, and watermarks written or moved, so a table
//! written only through the API invokes this only for its revocations. A record of a write that moved the version is no backend write
//! (the backend never writes one): the API's, or this function's own, and is skipped
//! without a request.

use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use session_store::item::{INDEX_LAG, Item, View, watermark_principal};
use session_store::metrics::Emf;
use session_store::{BackendOutcome, BackendWrite, SessionKey, SessionStore, StoreError, Upkeep};
use tracing::warn;

use crate::{Cleanup, Error};

/// What one batch of stream records came to.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct UpkeepCounts {
    pub stamped: u64,
    /// Items of the backend given the principal their data names (stamped or not).
    pub principals_set: u64,
    /// Items of the backend given a principal a revocation had covered, so removed.
    pub revoked: u64,
    /// Tombstones the Django backend wrote onto, deleted.
    pub tombstones_removed: u64,
    /// Records with nothing to do: removals, items that have an expiry by now or are
    /// gone, items that are no session.
    pub skipped: u64,
    /// Items whose data inflates past the cap: the rule in it cannot be read.
    pub skipped_over_cap: u64,
    /// Watermarks walked, and the sessions those walks removed.
    pub watermarks_walked: u64,
    pub walk_revoked: u64,
    /// The oldest a watermark was when its walk ended, in milliseconds: the window in
    /// which a Django site could still load a session that revocation covers.
    pub walk_window_ms: u64,
    /// Records reported for a retry: the first that failed and every one after it, or
    /// those not reached before the deadline.
    pub failures: u64,
    pub batch_size: u64,
}

/// How one record ended.
enum Settled {
    Stamped,
    /// Given its principal, and stamped too when `true`.
    PrincipalSet(bool),
    Revoked,
    TombstoneRemoved,
    Skipped,
    OverCap,
    /// A watermark walked: the sessions it removed, and the watermark's age when the
    /// walk ended (milliseconds).
    Walked(u64, u64),
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
                self.settle_record(raw, stop_at).await
            };
            match settled {
                Ok(Settled::Stamped) => counts.stamped += 1,
                Ok(Settled::PrincipalSet(stamped)) => {
                    counts.principals_set += 1;
                    counts.stamped += u64::from(stamped);
                }
                Ok(Settled::Revoked) => counts.revoked += 1,
                Ok(Settled::TombstoneRemoved) => counts.tombstones_removed += 1,
                Ok(Settled::Skipped) => counts.skipped += 1,
                Ok(Settled::OverCap) => counts.skipped_over_cap += 1,
                Ok(Settled::Walked(removed, window_ms)) => {
                    counts.watermarks_walked += 1;
                    counts.walk_revoked += removed;
                    counts.walk_window_ms = counts.walk_window_ms.max(window_ms);
                }
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

    async fn settle_record(&self, raw: &Value, stop_at: Option<Instant>) -> Result<Settled, Error> {
        let record = EventRecord::deserialize(raw)
            .map_err(|e| format!("not a DynamoDB stream record ({:?} error)", e.classify()))?;
        let keys: Item = record.change.keys.clone().into();
        let watermark = self
            .store
            .layout()
            .key_of(&keys)
            .and_then(watermark_principal);
        if let Some(principal) = watermark {
            let image: Item = record.change.new_image.into();
            return match View(&image).watermark() {
                Some(mark) => self.walk_watermark(&principal, mark.before, stop_at).await,
                None => Ok(Settled::Skipped),
            };
        }
        if record.event_name == "REMOVE" || record.change.new_image.is_empty() {
            return Ok(Settled::Skipped);
        }
        let image: Item = record.change.new_image.into();
        let old: Item = record.change.old_image.into();
        if View(&old).is_tombstone() && View(&image).is_tombstone() {
            return self.remove_tombstone(&image).await;
        }
        // Only the API's writes and this function's own move the version.
        let backend_wrote = View(&old).version() == View(&image).version()
            && View(&old).data() != View(&image).data();
        let Some(candidate) = self.store.sweep_candidate(&image) else {
            return Ok(Settled::Skipped);
        };
        let new = View(&image);
        let Some(seen) = new.data().filter(|_| backend_wrote && !new.is_tombstone()) else {
            return Ok(Settled::Skipped);
        };
        // A new user in the data: a login. A save without one leaves the principal as
        // it is (Django's logout flushes: the key is deleted, not saved without a user).
        let user = self
            .store
            .user_in(seen)
            .filter(|u| new.principal().as_ref() != Some(u));
        let stamp = if candidate.expires_at.is_some() {
            None
        } else if candidate.data_over_cap {
            warn!(session = %candidate.key.fingerprint(12), "data over the decompression cap; no expiry stamped");
            return Ok(Settled::OverCap);
        } else {
            Some(self.store.config().expiry.legacy_stamp(
                candidate.data_rule,
                candidate.created,
                self.store.now(),
                self.config.legacy_age,
            ))
        };
        if stamp.is_none() && user.is_none() {
            return Ok(Settled::Skipped);
        }
        let write = BackendWrite {
            seen,
            stamp,
            user: user.as_ref(),
            created: candidate.created,
        };
        Ok(
            match self
                .store
                .settle_backend_write(&candidate.key, write)
                .await?
            {
                BackendOutcome::Written if user.is_some() => Settled::PrincipalSet(stamp.is_some()),
                BackendOutcome::Written => Settled::Stamped,
                BackendOutcome::Revoked => Settled::Revoked,
                // It changed since: a later record shows what it holds now.
                BackendOutcome::Stale => Settled::Skipped,
            },
        )
    }
}

impl Cleanup {
    /// Walks this region's sessions of `principal` that its watermark (at `before`,
    /// epoch milliseconds) covers, once the watermark is [`INDEX_LAG`] old, so that the
    /// index lists every session written before it. Cut short by the deadline, the
    /// record fails, and Lambda's retry walks again.
    async fn walk_watermark(
        &self,
        principal: &session_store::Principal,
        before: i64,
        stop_at: Option<Instant>,
    ) -> Result<Settled, Error> {
        let lag_ms = i64::try_from(INDEX_LAG.as_millis()).unwrap_or(i64::MAX);
        let wait_ms = before.saturating_add(lag_ms) - self.store.now_millis();
        if let Ok(wait) = u64::try_from(wait_ms) {
            let wait = Duration::from_millis(wait);
            if stop_at.is_some_and(|t| Instant::now() + wait >= t) {
                return Err("too little time left to wait for the index".into());
            }
            tokio::time::sleep(wait).await;
        }
        let store = match stop_at {
            Some(t) => self.store.until(t),
            None => self.store.clone(),
        };
        // Boxed: the walk's future nested in the batch's is deeper than the compiler's
        // layout of the handler's future goes.
        match Box::pin(store.walk_watermark(principal)).await? {
            Some(walk) if !walk.complete => Err(format!(
                "the walk of a watermark stopped at the deadline after {} removals",
                walk.revoked
            )
            .into()),
            // The window of this record's revocation: from its own time, even when a
            // later revocation's watermark has replaced it.
            Some(walk) => {
                let age = self.store.now_millis().saturating_sub(before);
                Ok(Settled::Walked(
                    walk.revoked,
                    u64::try_from(age).unwrap_or(0),
                ))
            }
            None => Ok(Settled::Skipped),
        }
    }

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
    let line = Emf::new("session-cleanup")
        .counts(&[
            ("upkeep_stamped", counts.stamped),
            ("upkeep_principals_set", counts.principals_set),
            ("upkeep_revoked", counts.revoked),
            ("upkeep_tombstones_removed", counts.tombstones_removed),
            ("upkeep_skipped", counts.skipped),
            ("upkeep_skipped_over_cap", counts.skipped_over_cap),
            ("upkeep_watermarks_walked", counts.watermarks_walked),
            ("upkeep_walk_revoked", counts.walk_revoked),
            ("upkeep_failures", counts.failures),
            ("upkeep_batch_size", counts.batch_size),
        ])
        .property("message", json!("upkeep batch"));
    // Only from a batch that walked: a zero from every other batch would pull the
    // window's average and percentiles down.
    let line = match counts.watermarks_walked {
        0 => line,
        _ => line.metric(
            "upkeep_walk_window_ms",
            counts.walk_window_ms as f64,
            session_store::metrics::Unit::Milliseconds,
        ),
    };
    line.to_line(timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_window_is_reported_only_by_a_batch_that_walked() {
        let idle = UpkeepCounts {
            stamped: 1,
            batch_size: 1,
            ..UpkeepCounts::default()
        };
        assert!(!upkeep_line(&idle, 0).contains("upkeep_walk_window_ms"));
        let walked = UpkeepCounts {
            watermarks_walked: 1,
            walk_window_ms: 1_500,
            batch_size: 1,
            ..UpkeepCounts::default()
        };
        let line: serde_json::Value = serde_json::from_str(&upkeep_line(&walked, 0)).unwrap();
        assert_eq!(line["upkeep_walk_window_ms"], json!(1_500.0));
    }
}
