//! The items of the cleanup's Scan: where each segment stopped, so that a run resumes
//! where the last one ended, and the lease that lets one run at a time use it.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Expr, Image, Item, Layout, Write, number, text};
use crate::clock::Timestamp;

/// Key of the item that one Scan at a time holds: two runs must not share a
/// checkpoint. No valid session key either.
pub const LEASE_KEY: &str = "#cleanup-lease";
const HOLDER: &str = "holder";
const HELD_UNTIL: &str = "held_until";

/// Key of the item that records where each cleanup segment stopped. It is no valid
/// session key, so the API cannot address it, and the sweep skips it.
pub const CHECKPOINT_KEY: &str = "#cleanup-checkpoint";
const SEGMENTS: &str = "segments";
const POSITIONS: &str = "positions";
const UPDATED_AT: &str = "updated_at";

/// Where a cleanup segment stopped: the Scan's `LastEvaluatedKey`, kept as DynamoDB gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor(pub Item);

/// How far a cleanup segment got.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    Start,
    After(Cursor),
    Done,
}

impl Layout {
    /// The lease item: who holds it and until when (a lease given back is held by
    /// nobody until 0). It has no `expires_at`, like the checkpoint: the Scan reads it
    /// and skips it as no session.
    pub fn lease(&self, holder: &str, until: Timestamp) -> Item {
        Item::from([
            self.key(LEASE_KEY),
            (HOLDER.into(), text(holder)),
            (HELD_UNTIL.into(), number(until.epoch_seconds())),
        ])
    }

    /// Taking the lease: nobody holds it, or the holder's time has run out.
    pub fn lease_free(&self, now: Timestamp) -> Write {
        let mut e = Expr::default();
        e.name("#k", &self.key)
            .name("#until", HELD_UNTIL)
            .value(":now", number(now.epoch_seconds()))
            .condition("attribute_not_exists(#k) OR #until < :now");
        Write {
            update: None,
            expr: e,
        }
    }

    /// Giving the lease back: only by its holder.
    pub fn lease_held_by(&self, holder: &str) -> Write {
        let mut e = Expr::default();
        e.name("#holder", HOLDER)
            .value(":holder", text(holder))
            .condition("#holder = :holder");
        Write {
            update: None,
            expr: e,
        }
    }

    /// The checkpoint item: the segment count and each segment's position.
    pub fn checkpoint(&self, positions: &[Position], now: Timestamp) -> Item {
        let saved: Item = positions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Position::Start => None,
                Position::After(Cursor(c)) => Some((i.to_string(), AttributeValue::M(c.clone()))),
                Position::Done => Some((i.to_string(), AttributeValue::Bool(true))),
            })
            .collect();
        Item::from([
            self.key(CHECKPOINT_KEY),
            (SEGMENTS.into(), number(positions.len())),
            (POSITIONS.into(), AttributeValue::M(saved)),
            (UPDATED_AT.into(), number(now.epoch_seconds())),
        ])
    }

    /// The positions a checkpoint item holds, and the segment count they are for.
    pub fn positions(&self, item: &Item) -> (Option<u32>, Vec<Position>) {
        let segments = item.number(SEGMENTS).and_then(|n| n.parse::<u32>().ok());
        let saved = match item.get(POSITIONS) {
            Some(AttributeValue::M(m)) => m.clone(),
            _ => Item::new(),
        };
        let positions = (0..segments.unwrap_or(0))
            .map(|i| match saved.get(&i.to_string()) {
                Some(AttributeValue::M(cursor)) => Position::After(Cursor(cursor.clone())),
                Some(AttributeValue::Bool(true)) => Position::Done,
                _ => Position::Start,
            })
            .collect();
        (segments, positions)
    }
}
