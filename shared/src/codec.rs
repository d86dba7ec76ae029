//! How a session dictionary is stored in the `data` attribute.
//!
//! The store only talks to [`Codec`], so formats that other programs share the table
//! through can be added without touching the DynamoDB code.

use std::fmt::Debug;

use crate::clock::Timestamp;
use crate::expiry::Expiry;
use crate::session::SessionData;

/// Why stored data could not be read back as a session dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("stored data is not valid JSON")]
    Json,
    #[error("stored data is not a JSON object")]
    NotAnObject,
    /// Why a signed format refused the value (never any of the data).
    #[error("stored data is not a valid Django signed value: {0}")]
    Django(String),
    /// The data inflates past the limit on decompressed data: refused, not inflated
    /// further, and never to be read as empty (a merge onto it would lose the data).
    #[error("stored data inflates past {limit} bytes")]
    OverCap { limit: usize },
}

/// Why data could not be written in a codec's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The codec was built to read without the signing key, as the cleanup and the
    /// auditor build it, so it cannot write.
    #[error("this codec holds no signing key: it reads session data but cannot write it")]
    NoKey,
    /// The data's text is over the limit its readers inflate to, so none could read it.
    #[error("session data is {size} bytes as text, the limit is {limit}")]
    OverCap { size: usize, limit: usize },
}

pub trait Codec: Send + Sync + Debug {
    /// Text for the `data` attribute; `now` is for formats that stamp a time.
    fn encode(&self, data: &SessionData, now: Timestamp) -> Result<String, EncodeError>;
    fn decode(&self, raw: &str) -> Result<SessionData, DecodeError>;

    /// Whether stored data can carry its own expiry, so that cleanup must read it.
    fn has_expiry_in_data(&self) -> bool {
        false
    }

    /// Whether the Django backend may write the table too: then removals leave
    /// tombstones and entity tags carry a hash of the data (README, "Sharing the table").
    fn shares_table_with_django(&self) -> bool {
        false
    }

    /// The expiry rule the data carries, for formats that keep one (Django keeps it
    /// under `_session_expiry`); `None` when the format has no such thing.
    fn expiry_of(&self, _data: &SessionData) -> Option<Expiry> {
        None
    }

    /// The user the data says the session belongs to, for formats that keep one (Django
    /// keeps the logged-in user's id under `_auth_user_id`).
    fn principal_in(&self, _data: &SessionData) -> Option<String> {
        None
    }

    /// Writes `rule` into the data, for formats that keep the rule there, so that the
    /// other programs reading the table see the same expiry.
    fn set_expiry(&self, _data: &mut SessionData, _rule: Expiry) {}

    /// The expiry the stored data asks for; cleanup uses it for items that have no
    /// `expires_at`.
    fn expiry_in_data(&self, raw: &str) -> Option<Expiry> {
        if !self.has_expiry_in_data() {
            return None;
        }
        self.expiry_of(&self.decode(raw).ok()?)
    }
}

/// Compact JSON text; numbers keep their exact digits.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn encode(&self, data: &SessionData, _now: Timestamp) -> Result<String, EncodeError> {
        // Serialising a map of JSON values cannot fail: every key is a string.
        Ok(serde_json::to_string(data).unwrap_or_else(|_| String::from("{}")))
    }

    fn decode(&self, raw: &str) -> Result<SessionData, DecodeError> {
        match serde_json::from_str(raw).map_err(|_| DecodeError::Json)? {
            serde_json::Value::Object(map) => Ok(map),
            _ => Err(DecodeError::NotAnObject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_codec_is_compact_and_exact() {
        let raw = r#"{"big":123456789012345678901234567890,"f":0.1,"e":1e+400,"s":"é🚀"}"#;
        let data = JsonCodec.decode(raw).unwrap();
        assert_eq!(
            JsonCodec.encode(&data, Timestamp::from_epoch_seconds(0)),
            Ok(raw.to_owned())
        );
        // Exponents are written in one canonical form; the value is unchanged.
        let other = JsonCodec.decode(r#"{"e":1E400}"#).unwrap();
        assert_eq!(other["e"].to_string(), "1e+400");
    }

    #[test]
    fn json_codec_rejects_what_is_not_an_object() {
        assert_eq!(JsonCodec.decode("[1]"), Err(DecodeError::NotAnObject));
        assert_eq!(JsonCodec.decode("{"), Err(DecodeError::Json));
    }
}
