//! Time as the store sees it: whole epoch seconds, from a clock that tests can move.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time in whole seconds since the Unix epoch, as DynamoDB's TTL wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_epoch_seconds(secs: i64) -> Self {
        Self(secs)
    }

    pub const fn epoch_seconds(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    /// Whole seconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// RFC 3339 in UTC (`2026-01-02T03:04:05Z`), or `None` outside the years 1-9999.
    pub fn to_rfc3339(self) -> Option<String> {
        let t = time::OffsetDateTime::from_unix_timestamp(self.0).ok()?;
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where the store gets "now" from.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;

    /// Milliseconds since the epoch: revocations compare times to the millisecond.
    fn now_millis(&self) -> i64 {
        self.now().epoch_seconds().saturating_mul(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    fn now_millis(&self) -> i64 {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to, so expiry can be tested without sleeping.
/// Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(t.0)))
    }

    pub fn advance(&self, d: Duration) {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// The time left in an invocation whose deadline Lambda gave as `deadline_ms`
/// (milliseconds since the epoch, `Lambda-Runtime-Deadline-Ms`), seen at `now`. `None`
/// when there is none (0, as in tests) and when it is already past on arrival: Lambda
/// hands an event over before its deadline, so such a value comes from a local
/// emulator; `cargo lambda watch` sends its timeout, `600000`, where Lambda sends an
/// instant.
pub fn invocation_time_left(deadline_ms: u64, now: SystemTime) -> Option<Duration> {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    (deadline_ms > 0).then_some(())?;
    deadline.duration_since(now).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_past_or_none_leaves_no_known_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let in_a_minute = 1_800_000_060_000;
        assert_eq!(
            invocation_time_left(in_a_minute, now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(invocation_time_left(0, now), None);
        // What `cargo lambda watch` sends: its 10-minute timeout, not an instant.
        assert_eq!(invocation_time_left(600_000, now), None);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::at(Timestamp::from_epoch_seconds(1_000));
        let other = clock.clone();
        assert_eq!(clock.now().epoch_seconds(), 1_000);
        other.advance(Duration::from_secs(30));
        assert_eq!(clock.now().epoch_seconds(), 1_030);
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        let t = Timestamp::from_epoch_seconds(1_700_000_000);
        assert_eq!(t.to_rfc3339().as_deref(), Some("2023-11-14T22:13:20Z"));
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_epoch_seconds(10);
        let b = Timestamp::from_epoch_seconds(25);
        assert_eq!(b.since(a), Duration::from_secs(15));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
