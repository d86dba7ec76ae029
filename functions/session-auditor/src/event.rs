//! What an audit line says. It names a session's data by key names, never values, and
//! lists few enough of them that a line stays short.

use std::collections::BTreeSet;

use serde::Serialize;
use session_store::SessionData;

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

pub(crate) fn diff(before: &SessionData, after: &SessionData) -> KeyChanges {
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
}
