//! Auditing one stream record: the action it shows and what its images hold. The batch
//! around it only orders, counts and prints what each record gives.

use aws_lambda_events::dynamodb::EventRecord;
use serde::Deserialize;
use serde_json::Value;
use session_store::item::{Image, Item, Layout, View};
use session_store::{Codec, DecodeError, SessionData, SessionKey, Timestamp};

use crate::event::{Action, AuditEvent, Remover, RevocationEvent, diff};

/// Hex digits of the key's SHA-256 in audit lines.
const KEY_HASH_DIGITS: usize = 16;

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

/// What auditing a record gives.
pub(crate) enum Audited {
    Event(Box<AuditEvent>),
    Revocation(RevocationEvent),
    /// An item that is no session (the cleanup's checkpoint).
    NotASession,
}

pub(crate) fn audit_record(
    layout: &Layout,
    codec: &dyn Codec,
    raw: &Value,
) -> Result<Audited, RecordError> {
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
    let Some(raw_key) = layout.key_of(&keys) else {
        return Err(RecordError::NoKey(layout.key_attribute().to_owned()));
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
    let before = needs_old.then(|| side(codec, old));
    let after = needs_new.then(|| side(codec, new));
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
fn side(codec: &dyn Codec, image: &serde_dynamo::Item) -> Side {
    let view = View(&Stream(image));
    let decoded = view.data().map(|raw| codec.decode(raw));
    Side {
        version: view.version().0,
        expires: view.expires_at().and_then(Timestamp::to_rfc3339),
        over_cap: matches!(decoded, Some(Err(DecodeError::OverCap { .. }))),
        data: decoded.and_then(Result::ok),
    }
}

/// The record's time as a line shows it; none when the record carries none (0).
fn approximate_time(time: i64) -> Option<String> {
    (time > 0)
        .then(|| Timestamp::from_epoch_seconds(time).to_rfc3339())
        .flatten()
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
            // Past its expiry when removed: the cleanup's delete, the upkeep's walk of a
            // revocation, or the Django backend's unconditional delete, which the stream
            // cannot tell apart (the API's own removals leave tombstones or spare the
            // expired).
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

/// The table name in a stream ARN (`arn:aws:dynamodb:region:account:table/NAME/stream/...`).
fn table_of(arn: &str) -> Option<String> {
    let rest = arn.split_once(":table/")?.1;
    Some(rest.split('/').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_name_comes_from_the_stream_arn() {
        let arn =
            "arn:aws:dynamodb:us-east-1:123456789012:table/sessions/stream/2026-11-28T00:00:00.000";
        assert_eq!(table_of(arn).as_deref(), Some("sessions"));
        assert_eq!(table_of("nonsense"), None);
    }
}
