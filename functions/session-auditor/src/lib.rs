//! The audit trail: one JSON line per change to a session, from the table's stream.
//! Lines name a session by a hash of its key and its data by key names, never values.

mod event;
mod record;

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use session_store::item::Layout;
use session_store::metrics::Emf;
use session_store::{Codec, ConfigError, StoreConfig, invocation_time_left};

pub use event::{Action, AuditEvent, KeyChanges, Remover, RevocationEvent};
pub use record::RecordError;
use record::{Audited, audit_record};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

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
            match audit_record(&self.layout, self.codec.as_ref(), raw) {
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
