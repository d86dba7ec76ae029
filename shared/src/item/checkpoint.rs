//! The item that records where each cleanup segment stopped, so that a run resumes
//! where the last one ended.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Image, Item, Layout, number};
use crate::clock::Timestamp;

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
