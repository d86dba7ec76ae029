//! Backoff between tries of a contended or throttled request.

use std::time::Duration;

/// How long to wait before try number `attempt` (the first try, 0, does not wait): a
/// random time up to `base` doubled per try and capped at `cap` ("full jitter"), so
/// that writers that collided spread out instead of colliding again.
pub fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
    let mut buf = [0u8; 2];
    let fraction = getrandom::fill(&mut buf)
        .map(|()| f64::from(u16::from_le_bytes(buf)) / f64::from(u16::MAX))
        .unwrap_or(0.5);
    ceiling.mul_f64(fraction)
}

/// Sleeps for [`delay`].
pub async fn backoff(attempt: u32, base: Duration, cap: Duration) {
    let wait = delay(attempt, base, cap);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}
