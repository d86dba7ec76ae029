//! The cleanup's deletes per second against the emulator's ceiling: conditional deletes
//! of known expired keys at the same concurrency, with no scan and no rate limit. Each
//! table on an emulator of its own (`Bench::table_alone`).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::StreamExt;
use serde_json::{Value, json};
use session_cleanup::{Cleanup, Overrides};
use session_store::config::MAX_CLEANUP_WRITES_PER_SECOND;
use session_store::item::Layout;
use session_store::{
    CleanupConfig, Clock, Expiry, SessionKey, SessionMeta, StoreConfig, SystemClock, Timestamp,
    Version,
};
use testkit::RequestCounter;

use crate::figures::{Error, Stats};
use crate::fixture::Bench;

pub async fn deletes(b: &Bench) -> Result<Value, Error> {
    let counter = RequestCounter::default();
    let defaults = CleanupConfig::default();
    // The ceiling has no rate limit, so the cleanup is compared with its limit as high
    // as it can be set (10 µs apart: nothing for 500 items); at the default limit it is
    // measured too, where that limit, not the emulator, is what bounds it.
    let lifted = CleanupConfig {
        writes_per_second: MAX_CLEANUP_WRITES_PER_SECOND,
        ..defaults.clone()
    };
    let (mut ceiling, mut ours, mut limited) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..b.runs {
        ceiling.push(ceiling_rate(b, &counter, defaults.concurrency).await?);
        ours.push(cleanup_rate(b, &counter, &lifted).await?);
        limited.push(cleanup_rate(b, &counter, &defaults).await?);
    }
    let (ceiling, ours) = (Stats::of(ceiling), Stats::of(ours));
    Ok(json!({
        "items_per_run": b.cleanup_items,
        "concurrency": defaults.concurrency,
        "writes_per_second_limit": defaults.writes_per_second,
        "segments": defaults.segments,
        "ours_deletes_per_second": ours.json(),
        "at_default_limit_deletes_per_second": Stats::of(limited).json(),
        "emulator_ceiling_deletes_per_second": ceiling.json(),
        "ours_over_ceiling": ours.median / ceiling.median,
    }))
}

/// The emulator's ceiling: conditional DeleteItem of known expired keys at the cleanup's
/// concurrency, with no scan and no rate limit; deletes per second.
async fn ceiling_rate(
    b: &Bench,
    counter: &RequestCounter,
    concurrency: usize,
) -> Result<f64, Error> {
    let (client, table) = Bench::table_alone("ceiling", counter).await?;
    let keys = expired_items(&client, &table, b.cleanup_items).await?;
    let started = Instant::now();
    let now = SystemClock.now();
    futures::stream::iter(keys)
        .for_each_concurrent(concurrency, |key| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                let layout = Layout::new("session_key");
                let (name, value) = layout.key(&key);
                let guard = layout.still_expired(now).parts();
                let _ = client
                    .delete_item()
                    .table_name(table)
                    .key(name, value)
                    .set_condition_expression(guard.condition)
                    .set_expression_attribute_names(guard.names)
                    .set_expression_attribute_values(guard.values)
                    .send()
                    .await;
            }
        })
        .await;
    let rate = b.cleanup_items as f64 / started.elapsed().as_secs_f64();
    if testkit::item_count(&client, &table).await? != 0 {
        return Err("the ceiling run left items behind".into());
    }
    Ok(rate)
}

/// One cleanup run under `config` over a fresh table of expired items: deletes per second.
async fn cleanup_rate(
    b: &Bench,
    counter: &RequestCounter,
    config: &CleanupConfig,
) -> Result<f64, Error> {
    let (client, table) = Bench::table_alone("cleanup", counter).await?;
    expired_items(&client, &table, b.cleanup_items).await?;
    let cleanup = Cleanup::new(
        client.clone(),
        StoreConfig {
            table_name: table.clone(),
            ..StoreConfig::default()
        },
        config.clone(),
    )?;
    let started = Instant::now();
    let summary = cleanup
        .run(
            Overrides::default(),
            Instant::now() + Duration::from_secs(600),
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    if summary.deleted != b.cleanup_items as u64 {
        return Err(format!("cleanup deleted {} of {}", summary.deleted, b.cleanup_items).into());
    }
    Ok(summary.deleted as f64 / seconds)
}

/// `count` sessions that expired a day ago, written in batches; returns their keys.
async fn expired_items(client: &Client, table: &str, count: usize) -> Result<Vec<String>, Error> {
    let now = SystemClock.now().epoch_seconds();
    let ago = |secs: i64| Some(Timestamp::from_epoch_seconds(now - secs));
    let meta = SessionMeta {
        created: ago(90_000),
        expires_at: ago(86_400),
        expiry: Expiry::Default,
        deadline: None,
        touched_at: ago(90_000),
        version: Version(1),
        data_tag: None,
        tombstone: false,
    };
    let layout = Layout::new("session_key");
    let mut keys = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let key = SessionKey::generate().map_err(|e| format!("no randomness: {e}"))?;
        batch.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(layout.new_item(&key, "{}", &meta)))
                        .build()?,
                )
                .build(),
        );
        keys.push(key.as_str().to_owned());
        if batch.len() == 25 || i + 1 == count {
            let mut pending = std::mem::take(&mut batch);
            while !pending.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
        }
    }
    Ok(keys)
}
