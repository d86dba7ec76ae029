//! Scheduled cleanup: deletes expired sessions, each with a DeleteItem conditioned on it
//! still being expired, so a session refreshed after the scan survives; stamps an expiry
//! on items the Django backend wrote without one; stops before the invocation deadline
//! and resumes where it stopped on the next run.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use futures::future::BoxFuture;
use lambda_runtime::{Context, LambdaEvent};
use serde::Serialize;
use serde_json::{Value, json};
use session_store::expiry::MAX_IDLE_TIMEOUT;
use session_store::item::{self, Item, number};
use session_store::metrics::{Emf, Unit};
use session_store::retry::delay;
use session_store::{
    CleanupConfig, Clock, Codec, ConfigError, Expiry, SessionKey, StoreConfig, SystemClock,
    Timestamp,
};
use tokio::sync::{Mutex, Semaphore};
use tracing::warn;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Key of the item that records where each segment stopped. It is no valid session key,
/// so the API cannot address it, and the sweep skips it.
pub const CHECKPOINT_KEY: &str = "#cleanup-checkpoint";
/// Lambda's longest run, assumed when the context carries no deadline.
const MAX_INVOCATION: Duration = Duration::from_secs(900);
const WRITE_ATTEMPTS: u32 = 6;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(3);
/// No DynamoDB call is started with less time than this left before the run must stop.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);
/// Kept back from the invocation's deadline for the summary, after the checkpoint.
const SUMMARY_TIME: Duration = Duration::from_millis(100);

/// Called with the keys of each page's candidates before any is written; lets tests
/// change sessions between the scan and the writes.
pub type PageHook = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Operator overrides that the schedule's input may carry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Overrides {
    /// Count what would be written, write nothing.
    pub dry_run: bool,
    /// Settle at most this many candidates in this run.
    pub max_items: Option<u64>,
    pub segments: Option<u32>,
}

impl Overrides {
    /// Reads the overrides from an event: a scheduled event, `{}`, or an input object.
    pub fn from_event(event: &Value) -> Result<Self, String> {
        let Value::Object(fields) = event else {
            return Err("the input must be a JSON object".into());
        };
        let dry_run = match fields.get("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("dry_run must be true or false".into()),
        };
        let positive = |name: &str| match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{name} must be a positive whole number")),
        };
        let segments = positive("segments")?
            .map(|n| u32::try_from(n).ok().filter(|n| *n <= 1_000))
            .map(|n| n.ok_or("segments must be at most 1000"))
            .transpose()?;
        Ok(Self {
            dry_run,
            max_items: positive("max_items")?,
            segments,
        })
    }
}

/// What a run did; logged as one EMF line and returned as the handler's result.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub scanned: u64,
    pub deleted: u64,
    pub skipped_refreshed: u64,
    pub legacy_stamped: u64,
    pub errors: u64,
    /// Candidates left for the next run because the deadline came first; their page is
    /// read again then.
    pub deferred: u64,
    pub duration_ms: u64,
    /// The run continued from a checkpoint.
    pub resumed: bool,
    /// Every segment reached the end of the table.
    pub complete: bool,
    pub dry_run: bool,
    pub segments: u32,
}

#[derive(Default)]
struct Tally {
    scanned: AtomicU64,
    deleted: AtomicU64,
    skipped_refreshed: AtomicU64,
    legacy_stamped: AtomicU64,
    errors: AtomicU64,
    deferred: AtomicU64,
    /// Candidates claimed for settling, against `max_items`.
    settled: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where a segment is: not started, stopped after a page, or at the end.
#[derive(Debug, Clone, PartialEq)]
enum Position {
    Start,
    After(Item),
    Done,
}

/// Spaces writes evenly at no more than the configured rate, across all segments.
struct RateLimiter {
    period: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
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

pub struct Cleanup {
    client: Client,
    store: StoreConfig,
    config: CleanupConfig,
    codec: Box<dyn Codec>,
    clock: Arc<dyn Clock>,
    page_hook: Option<PageHook>,
}

/// One run's shared state.
struct Run<'a> {
    cleanup: &'a Cleanup,
    dry_run: bool,
    /// No call starts after this: the deadline less the margin.
    stop_at: Instant,
    /// Calls under way are abandoned here, half the margin later; the other half is the
    /// checkpoint's. A write abandoned may still have taken effect.
    finish_by: Instant,
    max_items: Option<u64>,
    /// Set by an error that every further request would meet too (access denied, no
    /// such table, a request DynamoDB refuses): the run ends at once.
    aborted: AtomicBool,
    tally: Tally,
    limiter: RateLimiter,
    writers: Semaphore,
}

impl Cleanup {
    pub fn new(
        client: Client,
        store: StoreConfig,
        config: CleanupConfig,
    ) -> Result<Self, ConfigError> {
        let codec = store.codec.build()?;
        Ok(Self {
            client,
            store,
            config,
            codec,
            clock: Arc::new(SystemClock),
            page_hook: None,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_codec(mut self, codec: Box<dyn Codec>) -> Self {
        self.codec = codec;
        self
    }

    pub fn with_page_hook(mut self, hook: PageHook) -> Self {
        self.page_hook = Some(hook);
        self
    }

    /// Sweeps the table until done, `max_items`, or `deadline` less the margin. Every
    /// segment gets at least one page per run, so successive runs always progress.
    pub async fn run(&self, overrides: Overrides, deadline: Instant) -> Result<Summary, Error> {
        let started = Instant::now();
        let segments = overrides.segments.unwrap_or(self.config.segments);
        let stop_at = deadline
            .checked_sub(self.config.deadline_margin)
            .unwrap_or(started);
        let run = Run {
            cleanup: self,
            dry_run: overrides.dry_run,
            stop_at,
            finish_by: stop_at + self.config.deadline_margin / 2,
            max_items: overrides.max_items,
            aborted: AtomicBool::new(false),
            tally: Tally::default(),
            limiter: RateLimiter::new(self.config.writes_per_second),
            writers: Semaphore::new(self.config.concurrency),
        };
        let saved = if run.dry_run {
            None
        } else {
            within(deadline, self.load_checkpoint(segments)).await??
        };
        let resumed = saved.is_some();
        let start = saved.unwrap_or_else(|| vec![Position::Start; segments as usize]);
        let ends = futures::future::join_all(
            start
                .into_iter()
                .enumerate()
                .map(|(segment, from)| run.sweep(segment as u32, segments, from)),
        )
        .await;
        let complete = ends.iter().all(|p| *p == Position::Done);
        if !run.dry_run {
            let by = deadline.checked_sub(SUMMARY_TIME).unwrap_or(deadline);
            let saved = within(by, self.save_checkpoint(&ends, complete)).await;
            if let Err(e) = saved.and_then(|r| r) {
                warn!(error = %e, "checkpoint not saved; the next run starts over");
                Tally::add(&run.tally.errors, 1);
            }
        }
        let t = &run.tally;
        let summary = Summary {
            scanned: t.scanned.load(Ordering::Relaxed),
            deleted: t.deleted.load(Ordering::Relaxed),
            skipped_refreshed: t.skipped_refreshed.load(Ordering::Relaxed),
            legacy_stamped: t.legacy_stamped.load(Ordering::Relaxed),
            errors: t.errors.load(Ordering::Relaxed),
            deferred: t.deferred.load(Ordering::Relaxed),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            resumed,
            complete,
            dry_run: run.dry_run,
            segments,
        };
        println!("{}", self.summary_line(&summary));
        Ok(summary)
    }

    /// The summary as one EMF log line: CloudWatch makes metrics of the counts.
    pub fn summary_line(&self, s: &Summary) -> String {
        let count = |v: u64| v as f64;
        Emf::new("session-cleanup")
            .metric("scanned", count(s.scanned), Unit::Count)
            .metric("deleted", count(s.deleted), Unit::Count)
            .metric("skipped_refreshed", count(s.skipped_refreshed), Unit::Count)
            .metric("legacy_stamped", count(s.legacy_stamped), Unit::Count)
            .metric("errors", count(s.errors), Unit::Count)
            .metric("deferred", count(s.deferred), Unit::Count)
            .metric("duration_ms", count(s.duration_ms), Unit::Milliseconds)
            .metric("resumed", f64::from(u8::from(s.resumed)), Unit::Count)
            .metric("complete", f64::from(u8::from(s.complete)), Unit::Count)
            .property("message", json!("cleanup summary"))
            .property("dry_run", json!(s.dry_run))
            .property("segments", json!(s.segments))
            .to_line(self.clock.now().epoch_seconds().saturating_mul(1_000))
    }

    fn key_attr(&self) -> &str {
        &self.store.key_attribute
    }

    fn checkpoint_key(&self) -> (String, AttributeValue) {
        (
            self.key_attr().to_owned(),
            AttributeValue::S(CHECKPOINT_KEY.into()),
        )
    }

    /// The positions saved by an unfinished run with the same number of segments.
    async fn load_checkpoint(&self, segments: u32) -> Result<Option<Vec<Position>>, Error> {
        let (k, v) = self.checkpoint_key();
        let out = self
            .client
            .get_item()
            .table_name(&self.store.table_name)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await?;
        let Some(saved) = out.item else {
            return Ok(None);
        };
        let saved_segments = match saved.get("segments") {
            Some(AttributeValue::N(n)) => n.parse::<u32>().ok(),
            _ => None,
        };
        if saved_segments != Some(segments) {
            warn!(
                ?saved_segments,
                segments, "checkpoint is for another segment count; starting over"
            );
            return Ok(None);
        }
        let state = match saved.get("positions") {
            Some(AttributeValue::M(m)) => m.clone(),
            _ => HashMap::new(),
        };
        Ok(Some(
            (0..segments)
                .map(|i| match state.get(&i.to_string()) {
                    Some(AttributeValue::M(cursor)) => Position::After(cursor.clone()),
                    Some(AttributeValue::Bool(true)) => Position::Done,
                    _ => Position::Start,
                })
                .collect(),
        ))
    }

    async fn save_checkpoint(&self, ends: &[Position], complete: bool) -> Result<(), Error> {
        let (k, v) = self.checkpoint_key();
        if complete {
            self.client
                .delete_item()
                .table_name(&self.store.table_name)
                .key(k, v)
                .send()
                .await?;
            return Ok(());
        }
        let positions: HashMap<String, AttributeValue> = ends
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Position::Start => None,
                Position::After(cursor) => Some((i.to_string(), AttributeValue::M(cursor.clone()))),
                Position::Done => Some((i.to_string(), AttributeValue::Bool(true))),
            })
            .collect();
        self.client
            .put_item()
            .table_name(&self.store.table_name)
            .item(k, v)
            .item("segments", number(ends.len()))
            .item("positions", AttributeValue::M(positions))
            .item("updated_at", number(self.clock.now().epoch_seconds()))
            .send()
            .await?;
        Ok(())
    }

    /// When an item without `expires_at` should expire: what its data asks for, else
    /// `created` + the legacy age, else now + the legacy age; and the rule it follows.
    fn legacy_expiry(&self, item: &Item, now: Timestamp) -> (Timestamp, Expiry) {
        let meta = item::meta(item);
        let from_data = match item.get(item::DATA) {
            Some(AttributeValue::S(raw)) => self.codec.expiry_in_data(raw),
            _ => None,
        };
        let base = meta.created.unwrap_or(now);
        let (at, rule) = match from_data {
            // As for every write: no further ahead than the longest idle timeout.
            Some(Expiry::At(t)) => (t.min(now.saturating_add(MAX_IDLE_TIMEOUT)), Expiry::At(t)),
            Some(Expiry::IdleFor(d)) => (base.saturating_add(d), Expiry::IdleFor(d)),
            _ => (base.saturating_add(self.config.legacy_age), Expiry::Default),
        };
        let capped = self
            .store
            .expiry
            .deadline_from(base)
            .map_or(at, |deadline| at.min(deadline));
        (capped, rule)
    }
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
            self.tally
                .settled
                .fetch_add(wanted as u64, Ordering::Relaxed);
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

    async fn sweep(&self, segment: u32, segments: u32, from: Position) -> Position {
        let mut cursor = match from {
            Position::Done => return Position::Done,
            Position::After(c) => Some(c),
            Position::Start => None,
        };
        let c = self.cleanup;
        loop {
            let here = cursor.clone().map_or(Position::Start, Position::After);
            if self.out_of_time() {
                return here;
            }
            let (items, scanned, next) = match self.scan_page(segment, segments, &cursor).await {
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
            let candidates: Vec<Item> = items
                .into_iter()
                .filter(|i| match i.get(c.key_attr()) {
                    Some(AttributeValue::S(k)) => SessionKey::parse(k).is_ok(),
                    _ => false,
                })
                .collect();
            Tally::add(&self.tally.scanned, u64::try_from(scanned).unwrap_or(0));
            if let Some(hook) = &c.page_hook {
                let keys = candidates
                    .iter()
                    .filter_map(|i| match i.get(c.key_attr()) {
                        Some(AttributeValue::S(k)) => Some(k.clone()),
                        _ => None,
                    })
                    .collect();
                hook(keys).await;
            }
            let allowed = self.claim(candidates.len());
            let truncated = allowed < candidates.len();
            let deferred = AtomicU64::new(0);
            futures::stream::iter(candidates.into_iter().take(allowed))
                .for_each_concurrent(c.config.concurrency, |item| async {
                    if !self.settle(item).await {
                        deferred.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await;
            let deferred = deferred.into_inner();
            Tally::add(&self.tally.deferred, deferred);
            if truncated || deferred > 0 {
                // The rest of this page is read again next time.
                return here;
            }
            match next {
                None => return Position::Done,
                Some(n) => cursor = Some(n),
            }
        }
    }

    /// One Scan page: the candidates, how many session items were examined (items that
    /// are no sessions, the checkpoint, are not counted), and where the next page starts.
    async fn scan_page(
        &self,
        segment: u32,
        segments: u32,
        cursor: &Option<Item>,
    ) -> Result<(Vec<Item>, i32, Option<Item>), ScanStop> {
        let c = self.cleanup;
        let mut projection = "#k, #exp, #created".to_owned();
        let mut names = HashMap::from([
            ("#k".to_owned(), c.key_attr().to_owned()),
            ("#exp".to_owned(), item::EXPIRES_AT.to_owned()),
            ("#created".to_owned(), item::CREATED.to_owned()),
        ]);
        if c.codec.has_expiry_in_data() {
            projection.push_str(", #data");
            names.insert("#data".into(), item::DATA.into());
        }
        for attempt in 0..WRITE_ATTEMPTS {
            let request = c
                .client
                .scan()
                .table_name(&c.store.table_name)
                .segment(i32::try_from(segment).unwrap_or(0))
                .total_segments(i32::try_from(segments).unwrap_or(1))
                .limit(i32::try_from(c.config.page_size).unwrap_or(250))
                .projection_expression(&projection)
                .filter_expression("attribute_not_exists(#exp) OR #exp <= :now")
                .set_expression_attribute_names(Some(names.clone()))
                .expression_attribute_values(":now", number(c.clock.now().epoch_seconds()))
                .set_exclusive_start_key(cursor.clone());
            let Some(sent) = self.timed(attempt, request.send()).await else {
                return Err(ScanStop::OutOfTime);
            };
            match sent.map_err(classify) {
                Ok(out) => {
                    let items = out.items.unwrap_or_default();
                    let not_sessions = items
                        .iter()
                        .filter(|i| match i.get(c.key_attr()) {
                            Some(AttributeValue::S(k)) => SessionKey::parse(k).is_err(),
                            _ => true,
                        })
                        .count();
                    let scanned = out.scanned_count - i32::try_from(not_sessions).unwrap_or(0);
                    return Ok((items, scanned, out.last_evaluated_key));
                }
                Err(WriteError::Retryable(reason)) => {
                    warn!(segment, attempt, %reason, "scan failed; backing off");
                }
                Err(WriteError::Fatal { kind, .. })
                    if kind == "ValidationException" && cursor.is_some() =>
                {
                    return Err(ScanStop::CursorRejected);
                }
                Err(WriteError::Fatal { kind, .. } | WriteError::ConditionFailed(kind)) => {
                    return Err(ScanStop::Fatal(kind));
                }
            }
        }
        Err(ScanStop::Failed)
    }

    /// Deletes an expired candidate or stamps an expiry on one that has none; `false`
    /// when the run's time ran out before the candidate was settled.
    async fn settle(&self, candidate: Item) -> bool {
        let c = self.cleanup;
        let meta = item::meta(&candidate);
        let now = c.clock.now();
        let stamp = match meta.expires_at {
            Some(t) if t <= now => None,
            Some(_) => return true,
            None => Some(c.legacy_expiry(&candidate, now)),
        };
        if self.dry_run {
            let counter = if stamp.is_some() {
                &self.tally.legacy_stamped
            } else {
                &self.tally.deleted
            };
            Tally::add(counter, 1);
            return true;
        }
        let Some(key) = candidate.get(c.key_attr()).cloned() else {
            return true;
        };
        let Ok(_permit) = self.writers.acquire().await else {
            return true;
        };
        for attempt in 0..WRITE_ATTEMPTS {
            if self.aborted.load(Ordering::Relaxed) || !self.limiter.wait(self.stop_at).await {
                return false;
            }
            let now = c.clock.now();
            let sent = match stamp {
                None => self.timed(attempt, c.delete_expired(&key, now)).await,
                Some(stamp) => self.timed(attempt, c.stamp(&key, stamp)).await,
            };
            let Some(outcome) = sent else {
                return false;
            };
            let counter = match outcome {
                Ok(()) if stamp.is_some() => &self.tally.legacy_stamped,
                Ok(()) => &self.tally.deleted,
                // Refreshed, written or deleted by someone else since the scan.
                Err(WriteError::ConditionFailed(_)) => &self.tally.skipped_refreshed,
                Err(WriteError::Retryable(reason)) => {
                    warn!(attempt, %reason, "write throttled or failed; backing off");
                    continue;
                }
                Err(WriteError::Fatal { kind, .. }) if ends_the_run(&kind) => {
                    self.abort("a write", &kind);
                    return true;
                }
                Err(WriteError::Fatal { kind, message }) => {
                    warn!(error_kind = %kind, %message, "write failed");
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

impl Cleanup {
    /// Deletes the item only if it is still expired.
    async fn delete_expired(&self, key: &AttributeValue, now: Timestamp) -> Result<(), WriteError> {
        self.client
            .delete_item()
            .table_name(&self.store.table_name)
            .key(self.key_attr(), key.clone())
            .condition_expression("#exp <= :now")
            .expression_attribute_names("#exp", item::EXPIRES_AT)
            .expression_attribute_values(":now", number(now.epoch_seconds()))
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }

    /// Stamps an expiry on an item that still has none.
    async fn stamp(
        &self,
        key: &AttributeValue,
        (at, rule): (Timestamp, Expiry),
    ) -> Result<(), WriteError> {
        self.client
            .update_item()
            .table_name(&self.store.table_name)
            .key(self.key_attr(), key.clone())
            .set_update_expression(Some(stamp_expression(rule)))
            .set_expression_attribute_names(Some(rule_names(rule)))
            .set_expression_attribute_values(Some(rule_values(rule)))
            .condition_expression("attribute_exists(#k) AND attribute_not_exists(#exp)")
            .expression_attribute_names("#k", self.key_attr())
            .expression_attribute_names("#exp", item::EXPIRES_AT)
            .expression_attribute_names("#ver", item::VERSION)
            .expression_attribute_values(":at", number(at.epoch_seconds()))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }
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

/// Runs `call` unless `by` comes first.
async fn within<T>(by: Instant, call: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout_at(by.into(), call)
        .await
        .map_err(|_| Error::from("the invocation's deadline came first"))
}

/// The stamp also records the item's own rule, as the store's writes do, so that reads
/// need not decode the data to learn it.
fn stamp_expression(rule: Expiry) -> String {
    let own = match rule {
        Expiry::Default => "",
        Expiry::IdleFor(_) => ", #idle = :idle",
        Expiry::At(_) => ", #fixed = :fixed",
    };
    format!("SET #exp = :at, #ver = if_not_exists(#ver, :zero) + :one{own}")
}

fn rule_names(rule: Expiry) -> HashMap<String, String> {
    match rule {
        Expiry::Default => HashMap::new(),
        Expiry::IdleFor(_) => HashMap::from([("#idle".into(), item::IDLE_TTL.into())]),
        Expiry::At(_) => HashMap::from([("#fixed".into(), item::EXPIRES_FIXED.into())]),
    }
}

fn rule_values(rule: Expiry) -> HashMap<String, AttributeValue> {
    match rule {
        Expiry::Default => HashMap::new(),
        Expiry::IdleFor(d) => HashMap::from([(":idle".into(), number(d.as_secs()))]),
        Expiry::At(_) => HashMap::from([(":fixed".into(), AttributeValue::Bool(true))]),
    }
}

enum WriteError {
    /// The write's condition failed (the error's kind is kept for scans, which have none).
    ConditionFailed(String),
    Retryable(String),
    Fatal {
        kind: String,
        message: String,
    },
}

fn classify<E, R>(err: SdkError<E, R>) -> WriteError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match &err {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("Unknown").to_owned(),
        _ => String::new(),
    };
    if kind == "ConditionalCheckFailedException" {
        return WriteError::ConditionFailed(kind);
    }
    match session_store::StoreError::from_sdk(err) {
        session_store::StoreError::Unavailable(r) => WriteError::Retryable(r),
        other => WriteError::Fatal {
            kind,
            message: other.to_string(),
        },
    }
}

/// The instant the invocation must end by; a context without one (tests, local
/// invokes) gets Lambda's maximum of 15 minutes.
pub fn deadline_of(context: &Context) -> Instant {
    let now = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    match u128::from(context.deadline).checked_sub(now_ms) {
        _ if context.deadline == 0 => now + MAX_INVOCATION,
        Some(left) => now + Duration::from_millis(u64::try_from(left).unwrap_or(0)),
        None => now,
    }
}

/// The Lambda entry point: a scheduled event, `{}`, or an input with overrides.
pub async fn handler(cleanup: &Cleanup, event: LambdaEvent<Value>) -> Result<Summary, Error> {
    let overrides = Overrides::from_event(&event.payload)?;
    cleanup.run(overrides, deadline_of(&event.context)).await
}
