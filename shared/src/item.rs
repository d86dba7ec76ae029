//! The DynamoDB item layout (README: "Table layout").

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::session::{SessionMeta, Version};

pub type Item = HashMap<String, AttributeValue>;

pub const DATA: &str = "data";
pub const CREATED: &str = "created";
pub const EXPIRES_AT: &str = "expires_at";
pub const VERSION: &str = "version";
/// A session's own idle timeout in seconds; absent means the configured default.
pub const IDLE_TTL: &str = "idle_ttl";
/// `true` when the session expires at a fixed time that activity does not move.
pub const EXPIRES_FIXED: &str = "expires_fixed";
/// The absolute end of the session's life under a maximum lifetime.
pub const DEADLINE: &str = "deadline";
/// Last write or touch that refreshed the expiry (throttles touch-on-read).
pub const TOUCHED_AT: &str = "touched_at";

pub fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn get_i64(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn get_timestamp(item: &Item, name: &str) -> Option<Timestamp> {
    get_i64(item, name).map(Timestamp::from_epoch_seconds)
}

/// Reads what the item says about itself; attributes that are absent or malformed read
/// as the values the original Django backend implied (no expiry, version 0).
pub fn meta(item: &Item) -> SessionMeta {
    let expires_at = get_timestamp(item, EXPIRES_AT);
    let fixed = matches!(item.get(EXPIRES_FIXED), Some(AttributeValue::Bool(true)));
    let expiry = match (fixed, expires_at, get_i64(item, IDLE_TTL)) {
        (true, Some(t), _) => Expiry::At(t),
        (_, _, Some(secs)) if secs > 0 => Expiry::IdleFor(Duration::from_secs(secs.unsigned_abs())),
        _ => Expiry::Default,
    };
    SessionMeta {
        created: get_timestamp(item, CREATED),
        expires_at,
        expiry,
        deadline: get_timestamp(item, DEADLINE),
        touched_at: get_timestamp(item, TOUCHED_AT),
        version: Version(
            get_i64(item, VERSION)
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
        ),
    }
}

/// The stored form of `meta`, for items written whole (create, cycle).
pub fn meta_attributes(meta: &SessionMeta) -> Item {
    let mut item = Item::new();
    let mut put_time = |name: &str, t: Option<Timestamp>| {
        if let Some(t) = t {
            item.insert(name.to_owned(), number(t.epoch_seconds()));
        }
    };
    put_time(CREATED, meta.created);
    put_time(EXPIRES_AT, meta.expires_at);
    put_time(DEADLINE, meta.deadline);
    put_time(TOUCHED_AT, meta.touched_at);
    item.insert(VERSION.to_owned(), number(meta.version.0));
    match meta.expiry {
        Expiry::Default => {}
        Expiry::IdleFor(d) => {
            item.insert(IDLE_TTL.to_owned(), number(d.as_secs()));
        }
        Expiry::At(_) => {
            item.insert(EXPIRES_FIXED.to_owned(), AttributeValue::Bool(true));
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_the_original_backend_read_as_version_zero_without_expiry() {
        let item = Item::from([
            ("session_key".into(), AttributeValue::S("k".into())),
            ("data".into(), AttributeValue::S("{}".into())),
        ]);
        let m = meta(&item);
        assert_eq!(m.version, Version(0));
        assert_eq!(m.expires_at, None);
        assert_eq!(m.created, None);
        assert_eq!(m.expiry, Expiry::Default);
    }

    #[test]
    fn meta_survives_a_round_trip_through_attributes() {
        let t = Timestamp::from_epoch_seconds;
        for expiry in [
            Expiry::Default,
            Expiry::IdleFor(Duration::from_secs(60)),
            Expiry::At(t(500)),
        ] {
            let m = SessionMeta {
                created: Some(t(1)),
                expires_at: Some(t(500)),
                expiry,
                deadline: Some(t(900)),
                touched_at: Some(t(2)),
                version: Version(7),
            };
            assert_eq!(meta(&meta_attributes(&m)), m);
        }
    }
}
