//! Backoff between tries of a contended or throttled request.

use std::time::Duration;

/// Sleeps before try number `attempt` (the first try, 0, does not wait): a random time
/// up to `base` doubled per try and capped at `cap` ("full jitter"), so that writers
/// that collided spread out instead of colliding again.
pub async fn backoff(attempt: u32, base: Duration, cap: Duration) {
    if attempt == 0 {
        return;
    }
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
    let mut buf = [0u8; 2];
    let fraction = getrandom::fill(&mut buf)
        .map(|()| f64::from(u16::from_le_bytes(buf)) / f64::from(u16::MAX))
        .unwrap_or(0.5);
    tokio::time::sleep(ceiling.mul_f64(fraction)).await;
}
