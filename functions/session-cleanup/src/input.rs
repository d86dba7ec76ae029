//! What the schedule's input may carry: operator overrides of one run.

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

/// Segments a run may be split into at most.
const MAX_SEGMENTS: u32 = 1_000;

/// Operator overrides: `{"dry_run": true, "max_items": 1000, "segments": 8}`. Every
/// field is optional, and other fields (a scheduled event's own) are ignored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// Count what would be written, write nothing.
    #[serde(deserialize_with = "flag")]
    pub dry_run: bool,
    /// Settle at most this many candidates in this run.
    #[serde(deserialize_with = "positive")]
    pub max_items: Option<u64>,
    #[serde(deserialize_with = "segments")]
    pub segments: Option<u32>,
}

impl Overrides {
    /// Reads the overrides from an event: a scheduled event, `{}`, or an input object.
    pub fn from_event(event: &Value) -> Result<Self, String> {
        if !event.is_object() {
            return Err("the input must be a JSON object".into());
        }
        Self::deserialize(event).map_err(|e| e.to_string())
    }
}

/// `true`, `false`, or null (false).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)
        .map_err(|_| D::Error::custom("dry_run must be true or false"))?
        .unwrap_or(false))
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d) {
        Ok(Some(0)) | Err(_) => Err(D::Error::custom(
            "max_items must be a positive whole number",
        )),
        Ok(n) => Ok(n),
    }
}

fn segments<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(d) {
        Ok(Some(n)) if (1..=MAX_SEGMENTS).contains(&n) => Ok(Some(n)),
        Ok(None) => Ok(None),
        _ => Err(D::Error::custom(format!(
            "segments must be a whole number from 1 to {MAX_SEGMENTS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_are_read_from_any_object_and_checked() {
        let all = json!({"dry_run": true, "max_items": 7, "segments": 3, "source": "x"});
        assert_eq!(
            Overrides::from_event(&all),
            Ok(Overrides {
                dry_run: true,
                max_items: Some(7),
                segments: Some(3),
            })
        );
        let nulls = json!({"dry_run": null, "max_items": null, "segments": null});
        assert_eq!(Overrides::from_event(&nulls), Ok(Overrides::default()));
        for bad in [
            json!({"dry_run": "yes"}),
            json!({"max_items": 0}),
            json!({"max_items": -1}),
            json!({"segments": 1_001}),
            json!([]),
            json!("x"),
        ] {
            assert!(Overrides::from_event(&bad).is_err(), "{bad}");
        }
    }
}
