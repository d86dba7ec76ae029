//! One run's sweep: segments scanned page by page, candidates settled at a bounded
//! pace, nothing started past the stop point, errors that no retry fixes ending the run.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use session_store::item::{Cursor, Position};
use session_store::retry::delay;
use session_store::{Candidate, Page, SessionStore, StoreError, Upkeep};
use tokio::sync::{Mutex, Semaphore};
use tracing::warn;

use crate::{Cleanup, Overrides, Summary, within};

const WRITE_ATTEMPTS: u32 = 6;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(3);
/// No DynamoDB call is started with less time than this left before the run must stop.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(crate) struct Tally {
    scanned: AtomicU64,
    deleted: AtomicU64,
    skipped_refreshed: AtomicU64,
    skipped_over_cap: AtomicU64,
    legacy_stamped: AtomicU64,
    pub errors: AtomicU64,
    deferred: AtomicU64,
    /// Candidates claimed for settling, against `max_items`.
    settled: AtomicU64,
}

impl Tally {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn summary(
        &self,
        started: Instant,
        resumed: bool,
        complete: bool,
        overrides: &Overrides,
        segments: u32,
    ) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            scanned: get(&self.scanned),
            deleted: get(&self.deleted),
            skipped_refreshed: get(&self.skipped_refreshed),
            skipped_over_cap: get(&self.skipped_over_cap),
            legacy_stamped: get(&self.legacy_stamped),
            errors: get(&self.errors),
            deferred: get(&self.deferred),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            resumed,
            complete,
            dry_run: overrides.dry_run,
            segments,
            lease_busy: false,
        }
    }
}

/// Spaces writes evenly at no more than the configured rate, across all segments.
pub(crate) struct RateLimiter {
    period: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            period: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next free slot; `false`, without waiting, when it comes after `by`.
    async fn wait(&self, by: Instant) -> bool {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            if slot >= by {
                return false;
            }
            *next = slot + self.period;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
        true
    }
}

/// One run's shared state.
pub(crate) struct Run<'a> {
    pub cleanup: &'a Cleanup,
    pub dry_run: bool,
    /// No call starts after this: the deadline less the margin.
    pub stop_at: Instant,
    /// Calls under way are abandoned here, half the margin later; the other half is the
    /// checkpoint's. A write abandoned may still have taken effect.
    pub finish_by: Instant,
    pub max_items: Option<u64>,
    /// Set by an error that every further request would meet too (access denied, no
    /// such table, a request DynamoDB refuses): the run ends at once.
    pub aborted: AtomicBool,
    pub tally: Tally,
    pub limiter: RateLimiter,
    pub writers: Semaphore,
}

/// Why a segment's Scan stopped without a page.
enum ScanStop {
    /// Throttled or failing through every try: the segment stops here for this run.
    Failed,
    /// The run's time ran out first.
    OutOfTime,
    /// Scan refused the saved cursor: the segment starts over.
    CursorRejected,
    /// An error no retry fixes, of this kind: the run ends.
    Fatal(String),
}

/// How a write failed, as far as the sweep cares.
enum WriteError {
    /// The session changed since the scan (refreshed, written, deleted).
    Changed,
    Retryable(String),
    Fatal(String),
}

fn classify(e: StoreError) -> WriteError {
    match e {
        StoreError::VersionConflict | StoreError::NotFound => WriteError::Changed,
        StoreError::Unavailable(reason) => WriteError::Retryable(reason),
        StoreError::Rejected { code, .. } => WriteError::Fatal(code),
        other => WriteError::Fatal(other.to_string()),
    }
}

/// Errors that every further request of the run would meet too.
fn ends_the_run(kind: &str) -> bool {
    matches!(
        kind,
        "AccessDeniedException"
            | "ResourceNotFoundException"
            | "UnrecognizedClientException"
            | "MissingAuthenticationTokenException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
    )
}

impl Run<'_> {
    fn out_of_time(&self) -> bool {
        let budget_spent = self
            .max_items
            .is_some_and(|max| self.tally.settled.load(Ordering::Relaxed) >= max);
        Instant::now() >= self.stop_at || budget_spent || self.aborted.load(Ordering::Relaxed)
    }

    /// Ends the run at once: an error that every further request would meet too.
    fn abort(&self, what: &str, kind: &str) {
        tracing::error!(
            error_kind = kind,
            "{what} failed with an error no retry can fix; ending the run"
        );
        Tally::add(&self.tally.errors, 1);
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// Claims up to `wanted` of the run's `max_items`, atomically across segments.
    fn claim(&self, wanted: usize) -> usize {
        let Some(max) = self.max_items else {
            Tally::add(&self.tally.settled, wanted as u64);
            return wanted;
        };
        let mut granted = 0;
        let _ = self
            .tally
            .settled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |taken| {
                granted = max.saturating_sub(taken).min(wanted as u64);
                Some(taken + granted)
            });
        usize::try_from(granted).unwrap_or(0)
    }

    /// Sleeps the backoff before try `attempt` and runs `call` within the run's time;
    /// `None` when the sleep and the call would not fit before it must stop.
    async fn timed<T>(&self, attempt: u32, call: impl Future<Output = T>) -> Option<T> {
        let wait = delay(attempt, BACKOFF_BASE, BACKOFF_CAP);
        if Instant::now() + wait + MIN_CALL_TIME > self.stop_at {
            return None;
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        within(self.finish_by, call).await.ok()
    }

    pub async fn sweep(&self, segment: u32, segments: u32, from: Position) -> Position {
        let mut cursor = match from {
            Position::Done => return Position::Done,
            Position::After(c) => Some(c),
            Position::Start => None,
        };
        loop {
            let here = cursor.clone().map_or(Position::Start, Position::After);
            if self.out_of_time() {
                return here;
            }
            let page = match self.scan_page(segment, segments, cursor.as_ref()).await {
                Ok(page) => page,
                Err(ScanStop::CursorRejected) => {
                    warn!(
                        segment,
                        "the checkpoint's cursor was rejected by Scan; this segment starts over"
                    );
                    cursor = None;
                    continue;
                }
                Err(ScanStop::OutOfTime) => return here,
                Err(ScanStop::Failed) => {
                    Tally::add(&self.tally.errors, 1);
                    return here;
                }
                Err(ScanStop::Fatal(kind)) => {
                    self.abort("Scan", &kind);
                    return here;
                }
            };
            if !self.settle_page(page.candidates).await {
                // The rest of this page is read again next time.
                return here;
            }
            match page.next {
                None => return Position::Done,
                Some(next) => cursor = Some(next),
            }
        }
    }

    /// Settles a page's candidates; `false` when some were left (budget or time).
    async fn settle_page(&self, candidates: Vec<Candidate>) -> bool {
        let c = self.cleanup;
        if let Some(hook) = &c.page_hook {
            hook(
                candidates
                    .iter()
                    .map(|x| x.key.as_str().to_owned())
                    .collect(),
            )
            .await;
        }
        let allowed = self.claim(candidates.len());
        let truncated = allowed < candidates.len();
        let deferred = AtomicU64::new(0);
        futures::stream::iter(candidates.into_iter().take(allowed))
            .for_each_concurrent(c.config.concurrency, |candidate| async {
                if !self.settle(candidate).await {
                    deferred.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        let deferred = deferred.into_inner();
        Tally::add(&self.tally.deferred, deferred);
        !truncated && deferred == 0
    }

    /// One Scan page, retried with backoff while DynamoDB throttles or fails.
    async fn scan_page(
        &self,
        segment: u32,
        segments: u32,
        cursor: Option<&Cursor>,
    ) -> Result<Page, ScanStop> {
        let c = self.cleanup;
        for attempt in 0..WRITE_ATTEMPTS {
            let scan = c
                .store
                .expired_page(segment, segments, c.config.page_size, cursor);
            let Some(sent) = self.timed(attempt, scan).await else {
                return Err(ScanStop::OutOfTime);
            };
            match sent.map_err(classify) {
                Ok(page) => {
                    Tally::add(&self.tally.scanned, page.scanned);
                    return Ok(page);
                }
                Err(WriteError::Retryable(reason)) => {
                    warn!(segment, attempt, %reason, "scan failed; backing off");
                }
                Err(WriteError::Fatal(kind))
                    if kind == "ValidationException" && cursor.is_some() =>
                {
                    return Err(ScanStop::CursorRejected);
                }
                Err(WriteError::Fatal(kind)) => return Err(ScanStop::Fatal(kind)),
                Err(WriteError::Changed) => return Err(ScanStop::Fatal("Unknown".into())),
            }
        }
        Err(ScanStop::Failed)
    }

    /// Deletes an expired candidate or stamps an expiry on one that has none; `false`
    /// when the run's time ran out before the candidate was settled.
    async fn settle(&self, candidate: Candidate) -> bool {
        let c = self.cleanup;
        let now = c.store.now();
        if candidate.expires_at.is_none() && candidate.data_over_cap {
            warn!(session = %candidate.key.fingerprint(12), "data over the decompression cap; no expiry stamped");
            Tally::add(&self.tally.skipped_over_cap, 1);
            return true;
        }
        let stamp = match candidate.expires_at {
            Some(t) if t <= now => None,
            Some(_) => return true,
            None => Some(c.store.config().expiry.legacy_stamp(
                candidate.data_rule,
                candidate.created,
                now,
                c.config.legacy_age,
            )),
        };
        if self.dry_run {
            let counter = match stamp {
                Some(_) => &self.tally.legacy_stamped,
                None => &self.tally.deleted,
            };
            Tally::add(counter, 1);
            return true;
        }
        let Ok(_permit) = self.writers.acquire().await else {
            return true;
        };
        for attempt in 0..WRITE_ATTEMPTS {
            if self.aborted.load(Ordering::Relaxed) || !self.limiter.wait(self.stop_at).await {
                return false;
            }
            let key = &candidate.key;
            let sent = match stamp {
                None => self.timed(attempt, c.store.delete_expired(key)).await,
                Some((at, rule)) => {
                    self.timed(attempt, c.store.stamp_expiry(key, at, rule))
                        .await
                }
            };
            let Some(outcome) = sent else {
                return false;
            };
            let counter = match outcome.map_err(classify) {
                Ok(()) if stamp.is_some() => &self.tally.legacy_stamped,
                Ok(()) => &self.tally.deleted,
                Err(WriteError::Changed) => &self.tally.skipped_refreshed,
                Err(WriteError::Retryable(reason)) => {
                    warn!(attempt, %reason, "write throttled or failed; backing off");
                    continue;
                }
                Err(WriteError::Fatal(kind)) if ends_the_run(&kind) => {
                    self.abort("a write", &kind);
                    return true;
                }
                Err(WriteError::Fatal(kind)) => {
                    warn!(error_kind = %kind, "write failed");
                    &self.tally.errors
                }
            };
            Tally::add(counter, 1);
            return true;
        }
        Tally::add(&self.tally.errors, 1);
        true
    }
}
