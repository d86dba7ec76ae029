//! When a session dies: an idle timeout refreshed by writes, per-session rules, and an
//! absolute cap on a session's whole life.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::StoreError;

/// Django's `SESSION_COOKIE_AGE`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(1_209_600);
/// Longest idle timeout a caller may ask for (ten years): anything longer is a mistake.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(315_360_000);

/// The table-wide expiry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// How long a session lives after its last write or touch.
    pub idle_timeout: Duration,
    /// The longest a session may live after it was created, however active it is.
    pub max_lifetime: Option<Duration>,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_lifetime: None,
        }
    }
}

/// A session's own expiry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// The policy's idle timeout.
    #[default]
    Default,
    /// Its own idle timeout, refreshed by writes like the default one.
    IdleFor(Duration),
    /// A fixed point in time that activity does not move.
    At(Timestamp),
}

impl Expiry {
    /// An idle timeout given by a caller, checked to be between 1 s and ten years.
    pub fn idle_seconds(secs: u64) -> Result<Self, StoreError> {
        let d = Duration::from_secs(secs);
        if secs == 0 || d > MAX_IDLE_TIMEOUT {
            return Err(StoreError::InvalidData(format!(
                "ttl_seconds must be between 1 and {}",
                MAX_IDLE_TIMEOUT.as_secs()
            )));
        }
        Ok(Self::IdleFor(d))
    }

    /// The one check every write runs on the rule it is about to store: a fixed time that
    /// has already passed would write a session that is dead on arrival.
    pub fn check_for_write(self, now: Timestamp) -> Result<Self, StoreError> {
        match self {
            Self::At(t) if t <= now => Err(StoreError::InvalidData(
                "the expiry time is not in the future".into(),
            )),
            rule => Ok(rule),
        }
    }
}

impl ExpiryPolicy {
    /// The end of a session's life that no activity can move past, for a session
    /// whose life starts at `start`.
    pub fn deadline_from(&self, start: Timestamp) -> Option<Timestamp> {
        self.max_lifetime.map(|max| start.saturating_add(max))
    }

    /// The expiry the cleanup stamps on an item that has none (one the Django backend
    /// wrote): what its data asks for, from `created` (else `now`) for an idle timeout;
    /// without a rule, `created` (else `now`) + `legacy_age`. The same caps as every
    /// write: ten years ahead, and the lifetime deadline counted from `created`.
    pub fn legacy_stamp(
        &self,
        data_rule: Option<Expiry>,
        created: Option<Timestamp>,
        now: Timestamp,
        legacy_age: Duration,
    ) -> (Timestamp, Expiry) {
        let base = created.unwrap_or(now);
        let (at, rule) = match data_rule {
            Some(Expiry::At(t)) => (t.min(now.saturating_add(MAX_IDLE_TIMEOUT)), Expiry::At(t)),
            Some(Expiry::IdleFor(d)) => (base.saturating_add(d), Expiry::IdleFor(d)),
            _ => (base.saturating_add(legacy_age), Expiry::Default),
        };
        let capped = self
            .deadline_from(base)
            .map_or(at, |deadline| at.min(deadline));
        (capped, rule)
    }

    /// When a session written at `now` under `rule` expires: never more than the longest
    /// idle timeout ahead (a fixed time in the year 9999 is a mistake, not a wish), and
    /// never past its deadline.
    pub fn expires_at(
        &self,
        rule: Expiry,
        now: Timestamp,
        deadline: Option<Timestamp>,
    ) -> Timestamp {
        let wanted = match rule {
            Expiry::Default => now.saturating_add(self.idle_timeout),
            Expiry::IdleFor(idle) => now.saturating_add(idle),
            Expiry::At(t) => t.min(now.saturating_add(MAX_IDLE_TIMEOUT)),
        };
        deadline.map_or(wanted, |d| wanted.min(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_epoch_seconds(secs)
    }

    #[test]
    fn default_rule_adds_the_idle_timeout() {
        let policy = ExpiryPolicy::default();
        assert_eq!(
            policy.expires_at(Expiry::Default, t(1_000), None),
            t(1_000 + 1_209_600)
        );
    }

    #[test]
    fn own_idle_timeout_and_fixed_time_override_the_default() {
        let policy = ExpiryPolicy::default();
        let idle = Expiry::idle_seconds(60).unwrap();
        assert_eq!(policy.expires_at(idle, t(1_000), None), t(1_060));
        assert_eq!(policy.expires_at(Expiry::At(t(5)), t(1_000), None), t(5));
    }

    #[test]
    fn the_deadline_caps_every_rule() {
        let policy = ExpiryPolicy {
            idle_timeout: Duration::from_secs(100),
            max_lifetime: Some(Duration::from_secs(150)),
        };
        let deadline = policy.deadline_from(t(0));
        assert_eq!(deadline, Some(t(150)));
        assert_eq!(policy.expires_at(Expiry::Default, t(10), deadline), t(110));
        assert_eq!(policy.expires_at(Expiry::Default, t(90), deadline), t(150));
        assert_eq!(
            policy.expires_at(Expiry::At(t(9_999)), t(90), deadline),
            t(150)
        );
    }

    #[test]
    fn a_fixed_time_beyond_the_longest_idle_timeout_is_capped_there() {
        let policy = ExpiryPolicy::default();
        let year_9999 = t(253_402_300_799);
        let cap = t(1_000).saturating_add(MAX_IDLE_TIMEOUT);
        assert_eq!(
            policy.expires_at(Expiry::At(year_9999), t(1_000), None),
            cap
        );
        let capped = ExpiryPolicy {
            max_lifetime: Some(Duration::from_secs(60)),
            ..policy
        };
        assert_eq!(
            capped.expires_at(
                Expiry::At(year_9999),
                t(1_000),
                capped.deadline_from(t(1_000))
            ),
            t(1_060)
        );
    }

    #[test]
    fn a_fixed_time_that_has_passed_is_refused_for_every_write() {
        assert!(Expiry::At(t(5)).check_for_write(t(5)).is_err());
        assert!(Expiry::At(t(5)).check_for_write(t(9)).is_err());
        assert_eq!(
            Expiry::At(t(6)).check_for_write(t(5)).ok(),
            Some(Expiry::At(t(6)))
        );
        assert!(Expiry::Default.check_for_write(t(5)).is_ok());
    }

    #[test]
    fn idle_timeouts_out_of_range_are_rejected() {
        assert!(Expiry::idle_seconds(0).is_err());
        assert!(Expiry::idle_seconds(MAX_IDLE_TIMEOUT.as_secs() + 1).is_err());
        assert!(Expiry::idle_seconds(MAX_IDLE_TIMEOUT.as_secs()).is_ok());
    }
}
