//! Session cleanup, on two triggers. Every read and write goes through the store
//! (`DynamoStore`); this crate keeps the pace, the segments and the deadline.
//! - The table's stream (upkeep.rs), through the event source mapping whose filters in
//!   template.yaml pass the Django backend's writes: stamps `expires_at` on items the
//!   backend wrote without one, deletes tombstones it wrote onto, and gives the item of
//!   a backend login its principal.
//! - The EventBridge schedule's backfill Scan (sweep.rs): deletes expired sessions, each
//!   only while it is still expired, so a session refreshed after the Scan survives;
//!   stamps an expiry on items without one; stops before the invocation's deadline and
//!   resumes where it stopped on the next run.

mod input;
mod sweep;
mod upkeep;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::Client;
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use session_store::item::Position;
use session_store::metrics::{Emf, Unit};
use session_store::{
    CleanupConfig, Clock, ConfigError, DynamoStore, SessionKey, StoreConfig, Upkeep,
    invocation_time_left,
};
use tokio::sync::Semaphore;
use tracing::warn;

pub use input::Overrides;
pub use session_store::item::CHECKPOINT_KEY;
use sweep::{RateLimiter, Run, Tally};
pub use upkeep::{UpkeepCounts, upkeep_line};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Lambda's longest run, assumed when the context carries no deadline.
const MAX_INVOCATION: Duration = Duration::from_secs(900);
/// How long the Scan's lease outlives the invocation's deadline.
const LEASE_SLACK: Duration = Duration::from_secs(60);
/// Kept back from the invocation's deadline for the summary, after the checkpoint.
const SUMMARY_TIME: Duration = Duration::from_millis(100);

/// Called with the keys of each page's candidates before any is written; lets tests
/// change sessions between the scan and the writes.
pub type PageHook = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, ()> + Send + Sync>;

/// What a run did; logged as one EMF line and returned as the handler's result.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub scanned: u64,
    pub deleted: u64,
    pub skipped_refreshed: u64,
    /// Items without an expiry whose data inflates past `SESSION_MAX_DECOMPRESSED_BYTES`:
    /// the expiry their data asks for cannot be read, so none is stamped.
    pub skipped_over_cap: u64,
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
    /// Another run held the Scan's lease: this one scanned nothing.
    pub lease_busy: bool,
}

pub struct Cleanup {
    store: DynamoStore,
    config: CleanupConfig,
    page_hook: Option<PageHook>,
}

impl Cleanup {
    pub fn new(
        client: Client,
        store: StoreConfig,
        config: CleanupConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            store: DynamoStore::new(client, store)?,
            config,
            page_hook: None,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.store = self.store.with_clock(clock);
        self
    }

    pub fn with_page_hook(mut self, hook: PageHook) -> Self {
        self.page_hook = Some(hook);
        self
    }

    /// Sweeps the table until done, `max_items`, or `deadline` less the margin.
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
        // One Scan at a time shares the checkpoint: a lease in the table, held past this
        // invocation's deadline by a minute and given back at the end, says whose turn it
        // is. A dry run writes nothing, checkpoint included, and needs none.
        let holder = if run.dry_run {
            None
        } else {
            let holder = SessionKey::generate()
                .map_err(|e| format!("no randomness for the lease: {e}"))?
                .as_str()
                .to_owned();
            let left = deadline.saturating_duration_since(Instant::now());
            let until = self.store.now().saturating_add(left + LEASE_SLACK);
            if !within(deadline, self.store.take_lease(&holder, until)).await?? {
                warn!("another cleanup run holds the lease; nothing to do");
                let mut summary = run
                    .tally
                    .summary(started, false, false, &overrides, segments);
                summary.lease_busy = true;
                println!("{}", self.summary_line(&summary));
                return Ok(summary);
            }
            Some(holder)
        };
        let saved = if run.dry_run {
            None
        } else {
            within(deadline, self.resume_from(segments)).await??
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
        if !run.dry_run {
            let by = deadline.checked_sub(SUMMARY_TIME).unwrap_or(deadline);
            let saved = within(by, self.store.save_checkpoint(&ends)).await;
            if let Err(e) = saved.and_then(|r| r.map_err(Error::from)) {
                warn!(error = %e, "checkpoint not saved; the next run starts over");
                Tally::add(&run.tally.errors, 1);
            }
        }
        if let Some(holder) = holder {
            let by = deadline.checked_sub(SUMMARY_TIME / 2).unwrap_or(deadline);
            let given = within(by, self.store.give_back_lease(&holder)).await;
            if let Err(e) = given.and_then(|r| r.map_err(Error::from)) {
                warn!(error = %e, "lease not given back; it runs out by itself");
            }
        }
        let complete = ends.iter().all(|p| *p == Position::Done);
        let summary = run
            .tally
            .summary(started, resumed, complete, &overrides, segments);
        println!("{}", self.summary_line(&summary));
        Ok(summary)
    }

    /// The summary as one EMF log line: CloudWatch makes metrics of the counts.
    pub fn summary_line(&self, s: &Summary) -> String {
        Emf::new("session-cleanup")
            .counts(&[
                ("scanned", s.scanned),
                ("deleted", s.deleted),
                ("skipped_refreshed", s.skipped_refreshed),
                ("skipped_over_cap", s.skipped_over_cap),
                ("legacy_stamped", s.legacy_stamped),
                ("errors", s.errors),
                ("deferred", s.deferred),
            ])
            .metric("duration_ms", s.duration_ms as f64, Unit::Milliseconds)
            .counts(&[
                ("resumed", u64::from(s.resumed)),
                ("complete", u64::from(s.complete)),
            ])
            .property("message", json!("cleanup summary"))
            .property("dry_run", json!(s.dry_run))
            .property("segments", json!(s.segments))
            .to_line(self.store.now().epoch_seconds().saturating_mul(1_000))
    }

    /// The positions saved by an unfinished run with the same number of segments.
    async fn resume_from(&self, segments: u32) -> Result<Option<Vec<Position>>, Error> {
        let Some((saved_segments, positions)) = self.store.checkpoint().await? else {
            return Ok(None);
        };
        if saved_segments != Some(segments) {
            warn!(
                ?saved_segments,
                segments, "checkpoint is for another segment count; starting over"
            );
            return Ok(None);
        }
        Ok(Some(positions))
    }
}

/// Runs `call` unless `by` comes first.
async fn within<T>(by: Instant, call: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout_at(by.into(), call)
        .await
        .map_err(|_| Error::from("the invocation's deadline came first"))
}

/// The Lambda entry point, for both triggers: a batch of the table's stream (an object
/// with `Records`) goes to the upkeep and answers its batch item failures; anything else
/// is the Scan's input (the schedule's `{}`, or an operator's overrides) and answers
/// its summary.
pub async fn handler(cleanup: &Cleanup, event: LambdaEvent<Value>) -> Result<Value, Error> {
    if event.payload.get("Records").is_some() {
        let left = invocation_time_left(event.context.deadline, SystemTime::now());
        let stop_at = left.map(|d| Instant::now() + d.saturating_sub(UPKEEP_MARGIN));
        let (response, counts) = cleanup.upkeep(&event.payload, stop_at).await?;
        let now_ms = cleanup.store.now().epoch_seconds().saturating_mul(1_000);
        println!("{}", upkeep_line(&counts, now_ms));
        return Ok(serde_json::to_value(response)?);
    }
    Ok(serde_json::to_value(backfill(cleanup, event).await?)?)
}

/// Kept back from an upkeep invocation's deadline to answer.
const UPKEEP_MARGIN: Duration = Duration::from_secs(2);

/// The Scan: a scheduled event, `{}`, or an input with overrides. A context without a
/// usable deadline (tests, local emulators; [`invocation_time_left`]) gets Lambda's
/// maximum of 15 minutes.
pub async fn backfill(cleanup: &Cleanup, event: LambdaEvent<Value>) -> Result<Summary, Error> {
    let overrides = Overrides::from_event(&event.payload)?;
    let left = invocation_time_left(event.context.deadline, SystemTime::now());
    let deadline = Instant::now() + left.unwrap_or(MAX_INVOCATION);
    // Boxed: under the runtime's own layers, the run's future is otherwise nested too
    // deep for the compiler's layout queries.
    Box::pin(cleanup.run(overrides, deadline)).await
}
