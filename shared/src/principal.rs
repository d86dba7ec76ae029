//! Who a session belongs to, and how a principal's sessions are named when listed:
//! by a handle derived from the key, never by the key itself.

use std::fmt;

use crate::clock::Timestamp;
use crate::key::SessionKey;

/// Longest principal, in characters.
pub const MAX_PRINCIPAL_CHARS: usize = 256;

/// Why a string is not a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPrincipal {
    #[error("a principal has 1 to {MAX_PRINCIPAL_CHARS} characters, this one has {0}")]
    Length(usize),
    #[error("a principal holds no control characters")]
    Control,
}

/// The user a session belongs to: an opaque string of 1 to 256 characters (a user id).
/// Personal data: never logged, never in an audit line.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    pub fn parse(s: &str) -> Result<Self, InvalidPrincipal> {
        let chars = s.chars().count();
        if chars == 0 || chars > MAX_PRINCIPAL_CHARS {
            return Err(InvalidPrincipal::Length(chars));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidPrincipal::Control);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Kept out of debug output, as a key is: it is personal data.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Principal(..)")
    }
}

/// A session's name in its principal's listing: 16 hex digits of the SHA-256 of its key.
/// Stable for the key's life, and no way back to the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(String);

impl SessionHandle {
    const DIGITS: usize = 16;

    pub fn of(key: &SessionKey) -> Self {
        Self(key.fingerprint(Self::DIGITS))
    }

    /// A handle as listings show it, or `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == Self::DIGITS
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a session stands in its principal's listing, which is ordered by creation,
/// newest first: the creation time, then the handle to break ties. This is the index's
/// sort key, and the cursor of a listing holds the last one listed, so that neither the
/// cursor nor the index's `LastEvaluatedKey` (which holds the table key) ever reaches a
/// caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListingPosition(String);

impl ListingPosition {
    /// The place of the session `key`, created at `created`: without a creation time,
    /// the oldest place, which every walk of a revocation passes (they start below the
    /// sessions created after their time).
    pub fn of_session(created: Option<Timestamp>, key: &crate::key::SessionKey) -> Self {
        Self::of(
            created.unwrap_or(Timestamp::from_epoch_seconds(0)),
            &SessionHandle::of(key),
        )
    }

    pub fn of(created: Timestamp, handle: &SessionHandle) -> Self {
        Self(format!(
            "{:012}#{}",
            created.epoch_seconds().max(0),
            handle.as_str()
        ))
    }

    /// Where a walk of the sessions that can have had their principal by `t` starts:
    /// above every position of a session created by then (to the second, inclusively),
    /// below those of every session created later, which got their principal later too.
    pub fn above_created_by(t: Timestamp) -> Self {
        Self(format!(
            "{:012}#",
            t.epoch_seconds().max(0).saturating_add(1)
        ))
    }

    /// The stored form, as the index holds it.
    pub fn parse(s: &str) -> Option<Self> {
        let (secs, handle) = s.split_once('#')?;
        let ok = secs.len() == 12 && secs.bytes().all(|b| b.is_ascii_digit());
        (ok && SessionHandle::parse(handle).is_some()).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn handle(&self) -> Option<SessionHandle> {
        SessionHandle::parse(self.0.split_once('#')?.1)
    }

    /// The cursor a listing answers: the position with a `.` for the `#`, which a URL
    /// would take for a fragment. It holds a time and a handle, both listed anyway.
    pub fn to_cursor(&self) -> String {
        self.0.replacen('#', ".", 1)
    }

    /// A cursor of that shape, or `None` for anything else.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let (secs, handle) = cursor.split_once('.')?;
        Self::parse(&format!("{secs}#{handle}"))
    }
}

/// What a write does to a session's principal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Leaves it as it is.
    #[default]
    Keep,
    /// Gives the session to this principal (a login).
    Set(Principal),
    /// Leaves the session without one.
    Clear,
}

/// What revoking all of a principal's sessions came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revocation {
    /// Sessions this call removed.
    pub revoked: u64,
    /// Every session the index listed was settled; when `false`, the invocation's
    /// deadline came first and the same call continues under the same watermark.
    pub complete: bool,
}

/// One live session in its principal's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: SessionHandle,
    pub created: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

/// A page of a principal's live sessions; `next` is `None` only at the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalPage {
    pub sessions: Vec<Listed>,
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_one_to_256_characters_without_control_characters() {
        assert!(Principal::parse("user-42").is_ok());
        assert!(Principal::parse(&"é".repeat(256)).is_ok());
        assert_eq!(Principal::parse(""), Err(InvalidPrincipal::Length(0)));
        assert_eq!(
            Principal::parse(&"a".repeat(257)),
            Err(InvalidPrincipal::Length(257))
        );
        assert_eq!(Principal::parse("a\nb"), Err(InvalidPrincipal::Control));
        assert_eq!(
            format!("{:?}", Principal::parse("secret-user").unwrap()),
            "Principal(..)"
        );
    }

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let key = SessionKey::generate().unwrap();
        let at = ListingPosition::of(
            Timestamp::from_epoch_seconds(1_800_000_000),
            &SessionHandle::of(&key),
        );
        let cursor = at.to_cursor();
        assert!(!cursor.contains(key.as_str()));
        assert_eq!(ListingPosition::from_cursor(&cursor), Some(at.clone()));
        assert_eq!(at.handle(), Some(SessionHandle::of(&key)));
        for bad in [
            "",
            "!!",
            "000000000001#0123456789abcdef",
            "1.0123456789abcdef",
            key.as_str(),
        ] {
            assert_eq!(ListingPosition::from_cursor(bad), None, "{bad}");
        }
    }
}
