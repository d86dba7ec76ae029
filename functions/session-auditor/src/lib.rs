//! The audit trail: one JSON line per change to a session, from the table's stream.
//! Lines name a session by a hash of its key and its data by key names, never values.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use session_store::item::{Image, Item, Layout, View};
use session_store::metrics::Emf;
use session_store::{
    Codec, ConfigError, DecodeError, SessionData, SessionKey, StoreConfig, Timestamp,
    invocation_time_left,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Hex digits of the key's SHA-256 in audit lines.
const KEY_HASH_DIGITS: usize = 16;
/// Names listed in each of a line's added, removed and changed lists, and the
/// characters kept of each name: a session with 10,000 keys still makes a short line.
const MAX_NAMES: usize = 20;
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    /// Removed by a caller while it was alive: a logout, a cycled-away key.
    Deleted,
    /// Removed after its expiry: by DynamoDB's TTL, or by a writer the record does not
    /// name (the cleanup and the Django backend's `delete()` look the same in the stream).
    Expired,
    /// Removed by the API from a table shared with the Django backend: the item stays as
    /// a tombstone, which every read treats as absent.
    Tombstoned,
    /// A write onto a tombstone: a Django request that still held the removed session
    /// saved it. Never served; the upkeep deletes the item.
    ResurrectionAttempt,
    /// A tombstone gone: by DynamoDB's TTL after its grace period, or deleted by the
    /// upkeep after a resurrection attempt.
    TombstoneRemoved,
}

/// Who removed an expired session, where the record proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Remover {
    /// DynamoDB's TTL process (the record's `userIdentity` is the DynamoDB service).
    Ttl,
}

/// Names of the data keys a change touched, never values: at most [`MAX_NAMES`] in each
/// list, each cut at [`MAX_NAME_CHARS`] characters, with the full counts beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub added_count: usize,
    pub removed_count: usize,
    pub changed_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub action: Action,
    /// First 16 hex digits of the SHA-256 of the session key.
    pub session: String,
    pub event_id: String,
    pub sequence_number: String,
    pub approximate_time: Option<String>,
    pub table: Option<String>,
    pub size_bytes: i64,
    pub version_before: Option<u64>,
    pub version_after: Option<u64>,
    pub expires_before: Option<String>,
    pub expires_after: Option<String>,
    pub data_keys: Option<KeyChanges>,
    /// The sides (`before`, `after`) whose data the codec could not decode.
    pub data_unreadable: Vec<&'static str>,
    /// The sides whose data inflates past `SESSION_MAX_DECOMPRESSED_BYTES`: not inflated
    /// further, so their key names are not known.
    pub data_over_cap: Vec<&'static str>,
    /// Only on `expired` and `tombstone_removed`, and only where the record proves it:
    /// who removed the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<Remover>,
}

/// Why a record cannot be audited; it is reported as a batch item failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not a DynamoDB stream record: {0}")]
    Shape(String),
    #[error("unknown event name {0:?}")]
    EventName(String),
    #[error("the record's keys hold no {0} string")]
    NoKey(String),
    #[error("the record lacks its {0} image")]
    NoImage(&'static str),
}

/// A revocation of all of a principal's sessions, as its watermark item shows it. The
/// principal is not named: the item's key holds it in clear, and an audit line must
/// not (a hash of a user id is reversed by hashing every id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationEvent {
    /// Always `revoked`.
    pub action: &'static str,
    /// Sessions the revocation has removed so far.
    pub revoked: u64,
    /// `false` while the revocation is under way (its call answered 202).
    pub complete: bool,
    pub event_id: String,
    pub sequence_number: String,
    pub approximate_time: Option<String>,
    pub table: Option<String>,
}

/// What auditing a record gives.
enum Audited {
    Event(Box<AuditEvent>),
    Revocation(RevocationEvent),
    /// An item that is no session (the cleanup's checkpoint).
    NotASession,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub expired: u64,
    pub tombstoned: u64,
    pub resurrection_attempts: u64,
    pub tombstones_removed: u64,
    /// Revocations of all of a principal's sessions, started or finished.
    pub revocations: u64,
    pub skipped: u64,
    pub failures: u64,
    /// Records not reached before the invocation's deadline: reported for a retry.
    pub deferred: u64,
    pub batch_size: u64,
}

/// The audit lines of a batch, the failure to report, and the counts.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub lines: Vec<String>,
    pub response: DynamoDbEventResponse,
    pub counts: BatchCounts,
}

#[derive(Debug)]
pub struct Auditor {
    layout: Layout,
    codec: Box<dyn Codec>,
}

impl Auditor {
    pub fn new(store: &StoreConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            layout: Layout::new(&store.key_attribute),
            codec: store.codec.build(store.max_decompressed_bytes)?,
        })
    }

    /// Audits the records in order and stops at the first that fails: the stream is
    /// ordered, so Lambda retries from that record, and the ones before it are not
    /// audited twice.
    pub fn audit_batch(&self, payload: &Value) -> Result<BatchReport, Error> {
        self.audit_batch_within(payload, || false)
    }

    /// As [`Auditor::audit_batch`], and once `out_of_time` says so, every record not yet
    /// reached is reported as a batch item failure instead of audited, so that Lambda
    /// retries it rather than losing it to the function's timeout.
    pub fn audit_batch_within(
        &self,
        payload: &Value,
        out_of_time: impl Fn() -> bool,
    ) -> Result<BatchReport, Error> {
        let records = payload
            .get("Records")
            .and_then(Value::as_array)
            .ok_or("the event has no Records array")?;
        let mut report = BatchReport::default();
        report.counts.batch_size = records.len() as u64;
        for (at, raw) in records.iter().enumerate() {
            if out_of_time() {
                let left = &records[at..];
                tracing::warn!(
                    records = left.len(),
                    "deadline near; the rest of the batch is left for a retry"
                );
                for record in left {
                    let sequence = sequence_of(record)
                        .ok_or("a record left for a retry has no sequence number to report")?;
                    report.response.batch_item_failures.push(failure(sequence));
                }
                report.counts.deferred = left.len() as u64;
                break;
            }
            match self.audit_record(raw) {
                Ok(Audited::Event(event)) => {
                    let counter = match event.action {
                        Action::Created => &mut report.counts.created,
                        Action::Updated => &mut report.counts.updated,
                        Action::Deleted => &mut report.counts.deleted,
                        Action::Expired => &mut report.counts.expired,
                        Action::Tombstoned => &mut report.counts.tombstoned,
                        Action::ResurrectionAttempt => &mut report.counts.resurrection_attempts,
                        Action::TombstoneRemoved => &mut report.counts.tombstones_removed,
                    };
                    *counter += 1;
                    report.lines.push(serde_json::to_string(&event)?);
                }
                Ok(Audited::Revocation(event)) => {
                    report.counts.revocations += 1;
                    report.lines.push(serde_json::to_string(&event)?);
                }
                Ok(Audited::NotASession) => report.counts.skipped += 1,
                Err(e) => {
                    let sequence = sequence_of(raw)
                        .ok_or_else(|| format!("{e}, and it has no sequence number to report"))?;
                    tracing::warn!(sequence_number = sequence, error = %e, "record failed");
                    report.counts.failures += 1;
                    report.response.batch_item_failures.push(failure(sequence));
                    break;
                }
            }
        }
        Ok(report)
    }

    fn audit_record(&self, raw: &Value) -> Result<Audited, RecordError> {
        // serde's messages can quote the offending value; report only its category.
        let record = EventRecord::deserialize(raw)
            .map_err(|e| RecordError::Shape(format!("{:?} error", e.classify())))?;
        let sequence_number = record
            .change
            .sequence_number
            .clone()
            .ok_or_else(|| RecordError::Shape("no SequenceNumber".into()))?;
        let time = record.change.approximate_creation_date_time.timestamp();
        let (action, removed_by) = action(&record, time)?;
        let keys: Item = record.change.keys.into();
        let Some(raw_key) = self.layout.key_of(&keys) else {
            return Err(RecordError::NoKey(self.layout.key_attribute().to_owned()));
        };
        let Ok(key) = SessionKey::parse(raw_key) else {
            let revocation = raw_key
                .starts_with(session_store::item::WATERMARK_PREFIX)
                .then(|| View(&Stream(&record.change.new_image)).revocation())
                .flatten();
            return Ok(match revocation {
                Some((revoked, complete)) => Audited::Revocation(RevocationEvent {
                    action: "revoked",
                    revoked,
                    complete,
                    event_id: record.event_id,
                    sequence_number,
                    approximate_time: approximate_time(time),
                    table: record.event_source_arn.as_deref().and_then(table_of),
                }),
                None => Audited::NotASession,
            });
        };
        // The images stay as deserialized: the audit reads three of their attributes,
        // and converting whole images (data included) would cost most of its time.
        let (old, new) = (&record.change.old_image, &record.change.new_image);

        let needs_old = !matches!(action, Action::Created);
        let needs_new = matches!(
            action,
            Action::Created | Action::Updated | Action::Tombstoned | Action::ResurrectionAttempt
        );
        if needs_old && old.is_empty() {
            return Err(RecordError::NoImage("old"));
        }
        if needs_new && new.is_empty() {
            return Err(RecordError::NoImage("new"));
        }
        let before = needs_old.then(|| self.side(old));
        let after = needs_new.then(|| self.side(new));
        let (mut unreadable, mut over_cap) = (Vec::new(), Vec::new());
        for (name, side) in [("before", &before), ("after", &after)] {
            match side {
                Some(Side { over_cap: true, .. }) => over_cap.push(name),
                Some(Side { data: None, .. }) => unreadable.push(name),
                _ => {}
            }
        }
        let empty = SessionData::new();
        let data_keys = match (data_of(&before, &empty), data_of(&after, &empty)) {
            (Some(b), Some(a)) => Some(diff(b, a)),
            _ => None,
        };
        Ok(Audited::Event(Box::new(AuditEvent {
            action,
            session: key.fingerprint(KEY_HASH_DIGITS),
            event_id: record.event_id,
            sequence_number,
            approximate_time: approximate_time(time),
            table: record.event_source_arn.as_deref().and_then(table_of),
            size_bytes: record.change.size_bytes,
            version_before: before.as_ref().map(|s| s.version),
            version_after: after.as_ref().map(|s| s.version),
            expires_before: before.as_ref().and_then(|s| s.expires.clone()),
            expires_after: after.as_ref().and_then(|s| s.expires.clone()),
            data_keys,
            data_unreadable: unreadable,
            data_over_cap: over_cap,
            removed_by,
        })))
    }

    /// Version, expiry and data, read through the item module's view of the image.
    fn side(&self, image: &serde_dynamo::Item) -> Side {
        let view = View(&Stream(image));
        let decoded = view.data().map(|raw| self.codec.decode(raw));
        Side {
            version: view.version().0,
            expires: view.expires_at().and_then(Timestamp::to_rfc3339),
            over_cap: matches!(decoded, Some(Err(DecodeError::OverCap { .. }))),
            data: decoded.and_then(Result::ok),
        }
    }
}

/// The record's time as a line shows it; none when the record carries none (0).
fn approximate_time(time: i64) -> Option<String> {
    (time > 0)
        .then(|| Timestamp::from_epoch_seconds(time).to_rfc3339())
        .flatten()
}

fn sequence_of(record: &Value) -> Option<&str> {
    record
        .pointer("/dynamodb/SequenceNumber")
        .and_then(Value::as_str)
}

fn failure(sequence: &str) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence.to_owned());
    failure
}

/// What the record did to the session, and who removed it when it was removed expired.
fn action(record: &EventRecord, time: i64) -> Result<(Action, Option<Remover>), RecordError> {
    let tombstone = |image| View(&Stream(image)).is_tombstone();
    let (old, new) = (&record.change.old_image, &record.change.new_image);
    Ok(match record.event_name.as_str() {
        "INSERT" => (Action::Created, None),
        "MODIFY" => match (tombstone(old), tombstone(new)) {
            (false, true) => (Action::Tombstoned, None),
            (true, true) => (Action::ResurrectionAttempt, None),
            _ => (Action::Updated, None),
        },
        "REMOVE" => {
            let by_ttl = record.user_identity.as_ref().is_some_and(|u| {
                u.type_ == "Service" && u.principal_id == "dynamodb.amazonaws.com"
            });
            let remover = by_ttl.then_some(Remover::Ttl);
            // Past its expiry when removed: the cleanup's delete, or the Django backend's
            // unconditional one, which the stream cannot tell apart; the API never
            // removes an expired session.
            let was_expired = time > 0
                && View(&Stream(old))
                    .expires_at()
                    .is_some_and(|t| t.epoch_seconds() <= time);
            if tombstone(old) {
                (Action::TombstoneRemoved, remover)
            } else if by_ttl || was_expired {
                (Action::Expired, remover)
            } else {
                (Action::Deleted, None)
            }
        }
        other => return Err(RecordError::EventName(other.to_owned())),
    })
}

/// A stream image as the record holds it: read in place, since converting whole images
/// (data included) would cost most of the audit's time.
struct Stream<'a>(&'a serde_dynamo::Item);

impl Image for Stream<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(serde_dynamo::AttributeValue::S(s)) => Some(s),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(serde_dynamo::AttributeValue::N(n)) => Some(n),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match self.0.get(name) {
            Some(serde_dynamo::AttributeValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

/// One image of the item, as far as the audit cares.
struct Side {
    version: u64,
    expires: Option<String>,
    data: Option<SessionData>,
    over_cap: bool,
}

/// A side's data: empty where the change has no such side, `None` where unreadable.
fn data_of<'a>(side: &'a Option<Side>, empty: &'a SessionData) -> Option<&'a SessionData> {
    match side {
        None => Some(empty),
        Some(s) => s.data.as_ref(),
    }
}

fn diff(before: &SessionData, after: &SessionData) -> KeyChanges {
    let old: BTreeSet<&String> = before.keys().collect();
    let new: BTreeSet<&String> = after.keys().collect();
    let added: Vec<&String> = new.difference(&old).copied().collect();
    let removed: Vec<&String> = old.difference(&new).copied().collect();
    let changed: Vec<&String> = old
        .intersection(&new)
        .filter(|k| before.get(**k) != after.get(**k))
        .copied()
        .collect();
    KeyChanges {
        added_count: added.len(),
        removed_count: removed.len(),
        changed_count: changed.len(),
        added: listed(&added),
        removed: listed(&removed),
        changed: listed(&changed),
    }
}

/// The first [`MAX_NAMES`] names, each cut at [`MAX_NAME_CHARS`] characters.
fn listed(names: &[&String]) -> Vec<String> {
    names
        .iter()
        .take(MAX_NAMES)
        .map(|n| n.chars().take(MAX_NAME_CHARS).collect())
        .collect()
}

/// The table name in a stream ARN (`arn:aws:dynamodb:region:account:table/NAME/stream/...`).
fn table_of(arn: &str) -> Option<String> {
    let rest = arn.split_once(":table/")?.1;
    Some(rest.split('/').next()?.to_owned())
}

/// The batch's counts as one EMF line.
pub fn metrics_line(counts: &BatchCounts, timestamp_ms: i64) -> String {
    Emf::new("session-auditor")
        .counts(&[
            ("created", counts.created),
            ("updated", counts.updated),
            ("deleted", counts.deleted),
            ("expired", counts.expired),
            ("tombstoned", counts.tombstoned),
            ("resurrection_attempts", counts.resurrection_attempts),
            ("tombstones_removed", counts.tombstones_removed),
            ("revocations", counts.revocations),
            ("skipped", counts.skipped),
            ("failures", counts.failures),
            ("deferred", counts.deferred),
            ("batch_size", counts.batch_size),
        ])
        .property("message", json!("audit batch"))
        .to_line(timestamp_ms)
}

/// Kept back from the invocation's deadline to print the lines and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The Lambda entry point: prints the audit lines and the batch metrics, and reports
/// the first failed record, and any it did not reach before its deadline, so Lambda
/// retries from there.
pub async fn handler(
    auditor: &Auditor,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let left = invocation_time_left(event.context.deadline, SystemTime::now());
    let stop_at = left.map(|d| Instant::now() + d.saturating_sub(DEADLINE_MARGIN));
    let report = auditor.audit_batch_within(&event.payload, || {
        stop_at.is_some_and(|at| Instant::now() >= at)
    })?;
    println!("{}", render(&report));
    Ok(report.response)
}

/// What the handler prints for a batch: its audit lines, then its metrics line.
pub fn render(report: &BatchReport) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut out = String::new();
    for line in &report.lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&metrics_line(&report.counts, now_ms));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_name_added_removed_and_changed_keys() {
        let before: SessionData = serde_json::from_str(r#"{"a":1,"b":2,"c":3}"#).unwrap();
        let after: SessionData = serde_json::from_str(r#"{"a":1,"b":5,"d":4}"#).unwrap();
        let d = diff(&before, &after);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["c"]);
        assert_eq!(d.changed, ["b"]);
    }

    #[test]
    fn the_table_name_comes_from_the_stream_arn() {
        let arn =
            "arn:aws:dynamodb:us-east-1:123456789012:table/sessions/stream/2026-11-28T00:00:00.000";
        assert_eq!(table_of(arn).as_deref(), Some("sessions"));
        assert_eq!(table_of("nonsense"), None);
    }
}
