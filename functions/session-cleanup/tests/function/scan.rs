//! The cleanup against Dynoxide: what it deletes, what it spares, and how it resumes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use session_cleanup::{CHECKPOINT_KEY, Cleanup, Overrides, Summary, backfill};
use session_store::item::{Item, LEASE_KEY};
use session_store::{AwsEnv, CleanupConfig, ManualClock, SessionKey, StoreConfig, Timestamp};
use testkit::RequestCounter;
use testkit::proxy::{Fault, Proxy};

const NOW: i64 = testkit::START;
const DAY: i64 = 86_400;

struct Env {
    client: Client,
    table: String,
    clock: ManualClock,
}

#[derive(Clone, Copy)]
enum Kind {
    Expired,
    Live,
    LegacyWithCreated,
    LegacyWithoutCreated,
}

async fn env() -> Env {
    let (client, table) = testkit::fresh_table("cleanup", &RequestCounter::default()).await;
    Env {
        client,
        table,
        clock: ManualClock::at(Timestamp::from_epoch_seconds(NOW)),
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Env {
    fn cleanup(&self, configure: impl FnOnce(&mut CleanupConfig)) -> Cleanup {
        self.cleanup_with(self.client.clone(), configure)
    }

    /// A cleanup whose client is built as the function builds it, reaching DynamoDB
    /// through `proxy`.
    fn cleanup_behind(&self, proxy: &Proxy, configure: impl FnOnce(&mut CleanupConfig)) -> Cleanup {
        let aws = AwsEnv::from_lookup(testkit::lambda_env(&proxy.url)).unwrap();
        self.cleanup_with(aws.dynamodb(), configure)
    }

    fn cleanup_with(&self, client: Client, configure: impl FnOnce(&mut CleanupConfig)) -> Cleanup {
        let mut config = CleanupConfig::default();
        configure(&mut config);
        let store = StoreConfig {
            table_name: self.table.clone(),
            ..StoreConfig::default()
        };
        Cleanup::new(client, store, config)
            .unwrap()
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// Writes `count` items of one kind and returns their keys.
    async fn seed(&self, kind: Kind, count: usize) -> Vec<String> {
        let mut keys = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..count {
            let key = SessionKey::generate().unwrap().as_str().to_owned();
            let mut item = Item::from([
                ("session_key".into(), AttributeValue::S(key.clone())),
                ("data".into(), AttributeValue::S("{}".into())),
            ]);
            match kind {
                Kind::Expired => {
                    item.insert("created".into(), n(NOW - 20 * DAY));
                    item.insert("expires_at".into(), n(NOW - DAY));
                    item.insert("version".into(), n(3));
                }
                Kind::Live => {
                    item.insert("created".into(), n(NOW - DAY));
                    item.insert("expires_at".into(), n(NOW + DAY));
                    item.insert("version".into(), n(2));
                }
                Kind::LegacyWithCreated => {
                    item.insert("created".into(), n(NOW - 3_600));
                }
                Kind::LegacyWithoutCreated => {}
            }
            keys.push(key);
            batch.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build(),
            );
            if batch.len() == 25 {
                self.write(std::mem::take(&mut batch)).await;
            }
        }
        if !batch.is_empty() {
            self.write(batch).await;
        }
        keys
    }

    async fn write(&self, batch: Vec<WriteRequest>) {
        let out = self
            .client
            .batch_write_item()
            .request_items(&self.table, batch)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items.is_none_or(|u| u.is_empty()));
    }

    /// A cleanup that reads Django's signed data, as the function does: unverified.
    fn django_cleanup(&self) -> Cleanup {
        let store = StoreConfig {
            table_name: self.table.clone(),
            codec: session_store::CodecConfig::Django(session_store::DjangoSecrets::Unverified),
            ..StoreConfig::default()
        };
        Cleanup::new(self.client.clone(), store, CleanupConfig::default())
            .unwrap()
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// Every item but the Scan's lease, which stays in the table once a run took it.
    async fn all_items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(
                out.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| i.get("session_key") != Some(&AttributeValue::S(LEASE_KEY.into()))),
            );
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        items.sort_by_key(|i| format!("{:?}", i.get("session_key")));
        items
    }

    async fn item(&self, key: &str) -> Option<Item> {
        testkit::raw_item(&self.client, &self.table, key).await
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3_600)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn cleanup_deletes_exactly_the_expired_and_stamps_items_without_expiry() {
    let e = env().await;
    e.seed(Kind::Expired, 2_000).await;
    let live = e.seed(Kind::Live, 500).await;
    let with_created = e.seed(Kind::LegacyWithCreated, 100).await;
    let without_created = e.seed(Kind::LegacyWithoutCreated, 100).await;
    let mut live_before = Vec::new();
    for key in &live {
        live_before.push(e.item(key).await);
    }

    let started = Instant::now();
    let summary = e
        .cleanup(|_| {})
        .run(Overrides::default(), far())
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "cleanup of 2,700 items: {summary:?}; {:.0} deletes per second at the default concurrency",
        summary.deleted as f64 / seconds
    );
    assert_eq!(
        summary,
        Summary {
            scanned: 2_700,
            deleted: 2_000,
            legacy_stamped: 200,
            complete: true,
            segments: 4,
            duration_ms: summary.duration_ms,
            ..Summary::default()
        }
    );

    assert_eq!(e.all_items().await.len(), 700);
    for (key, before) in live.iter().zip(live_before) {
        assert_eq!(e.item(key).await, before, "a live session was touched");
    }
    let age = 1_209_600;
    for key in &with_created {
        let item = e.item(key).await.expect("stamped, not deleted");
        assert_eq!(number(&item, "expires_at"), Some(NOW - 3_600 + age));
        assert_eq!(number(&item, "version"), Some(1));
    }
    for key in &without_created {
        let item = e.item(key).await.expect("stamped, not deleted");
        assert_eq!(number(&item, "expires_at"), Some(NOW + age));
    }
    assert!(e.item(CHECKPOINT_KEY).await.is_none());
}

#[tokio::test]
async fn a_session_refreshed_between_scan_and_delete_survives_and_is_counted_as_skipped() {
    let e = env().await;
    let expired = e.seed(Kind::Expired, 60).await;
    let refreshed = Arc::new(AtomicU64::new(0));
    let (client, table, counter) = (e.client.clone(), e.table.clone(), Arc::clone(&refreshed));
    // After each page is scanned, another writer refreshes every third candidate.
    let hook: session_cleanup::PageHook = Arc::new(move |keys: Vec<String>| {
        let (client, table, counter) = (client.clone(), table.clone(), Arc::clone(&counter));
        Box::pin(async move {
            for key in keys.iter().step_by(3) {
                client
                    .update_item()
                    .table_name(&table)
                    .key("session_key", AttributeValue::S(key.clone()))
                    .update_expression("SET expires_at = :later")
                    .expression_attribute_values(":later", n(NOW + DAY))
                    .send()
                    .await
                    .unwrap();
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let cleanup = e.cleanup(|c| c.page_size = 10).with_page_hook(hook);
    let summary = cleanup.run(Overrides::default(), far()).await.unwrap();
    let refreshed = refreshed.load(Ordering::Relaxed);
    assert!(refreshed >= 20);
    assert_eq!(summary.skipped_refreshed, refreshed);
    assert_eq!(summary.deleted, 60 - refreshed);
    let survivors = e.all_items().await;
    assert_eq!(survivors.len() as u64, refreshed);
    for item in survivors {
        assert_eq!(number(&item, "expires_at"), Some(NOW + DAY));
        let key = match item.get("session_key") {
            Some(AttributeValue::S(k)) => k.clone(),
            _ => panic!("no key"),
        };
        assert!(expired.contains(&key));
    }
}

#[tokio::test]
async fn a_run_cut_short_checkpoints_and_the_next_runs_finish_without_missing_or_double_counting() {
    let e = env().await;
    e.seed(Kind::Expired, 600).await;
    e.seed(Kind::Live, 100).await;
    e.seed(Kind::LegacyWithoutCreated, 50).await;
    let cleanup = e.cleanup(|c| {
        c.page_size = 50;
        c.segments = 2;
        c.writes_per_second = 200;
        c.deadline_margin = Duration::from_secs(1);
    });
    // 300 ms of work per run at 200 writes a second: each run stops mid-table, some
    // mid-page, and the pages it could not finish are read again by the next run.
    let mut runs = Vec::new();
    loop {
        let summary = cleanup
            .run(
                Overrides::default(),
                Instant::now() + Duration::from_millis(1_300),
            )
            .await
            .unwrap();
        let done = summary.complete;
        if !done {
            let checkpoint = e.item(CHECKPOINT_KEY).await;
            assert!(checkpoint.is_some(), "a partial run leaves a checkpoint");
        }
        runs.push(summary);
        if done || runs.len() > 50 {
            break;
        }
    }
    assert!(runs.len() > 2, "the deadline cut the first runs short");
    assert!(!runs[0].resumed && !runs[0].complete);
    assert!(runs[1..].iter().all(|r| r.resumed));
    assert!(runs.last().unwrap().complete);
    let total = |f: fn(&Summary) -> u64| runs.iter().map(f).sum::<u64>();
    assert_eq!(total(|r| r.deleted), 600);
    assert_eq!(total(|r| r.legacy_stamped), 50);
    // Pages cut short are scanned again, their settled items no longer match.
    assert!(total(|r| r.scanned) >= 750);
    assert_eq!(total(|r| r.skipped_refreshed + r.errors), 0);
    assert_eq!(e.all_items().await.len(), 150);
    assert!(e.item(CHECKPOINT_KEY).await.is_none());
    assert!(
        SessionKey::parse(CHECKPOINT_KEY).is_err(),
        "the API cannot address it"
    );
}

#[tokio::test]
async fn max_items_limits_a_run_and_the_next_run_finishes() {
    let e = env().await;
    e.seed(Kind::Expired, 100).await;
    let cleanup = e.cleanup(|_| {});
    let limited = Overrides {
        max_items: Some(30),
        ..Overrides::default()
    };
    let first = cleanup.run(limited, far()).await.unwrap();
    assert_eq!((first.deleted, first.complete), (30, false));
    let second = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert_eq!(
        (second.deleted, second.complete, second.resumed),
        (70, true, true)
    );
    assert!(e.all_items().await.is_empty());
}

#[tokio::test]
async fn dry_run_counts_and_writes_nothing() {
    let e = env().await;
    e.seed(Kind::Expired, 40).await;
    e.seed(Kind::Live, 10).await;
    e.seed(Kind::LegacyWithCreated, 5).await;
    let before = e.all_items().await;
    let dry = Overrides {
        dry_run: true,
        ..Overrides::default()
    };
    let summary = e.cleanup(|_| {}).run(dry, far()).await.unwrap();
    assert!(summary.dry_run);
    assert_eq!(
        (summary.deleted, summary.legacy_stamped, summary.scanned),
        (40, 5, 55)
    );
    assert_eq!(e.all_items().await, before);
}

#[tokio::test]
async fn the_schedule_event_and_operator_inputs_run_through_the_handler() {
    let e = env().await;
    e.seed(Kind::Expired, 5).await;
    let cleanup = e.cleanup(|_| {});
    let path = testkit::workspace_root().join("events/schedule-cleanup.json");
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let summary = backfill(&cleanup, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!((summary.deleted, summary.complete), (5, true));

    let empty = backfill(&cleanup, LambdaEvent::new(json!({}), Context::default())).await;
    assert!(empty.unwrap().complete);
    let input = json!({"dry_run": true, "max_items": 10, "segments": 2});
    let summary = backfill(&cleanup, LambdaEvent::new(input, Context::default()))
        .await
        .unwrap();
    assert_eq!((summary.dry_run, summary.segments), (true, 2));
    for bad in [
        json!({"dry_run": "yes"}),
        json!({"max_items": -1}),
        json!({"segments": 0}),
        json!([]),
    ] {
        let result = backfill(&cleanup, LambdaEvent::new(bad.clone(), Context::default())).await;
        assert!(result.is_err(), "{bad} was accepted");
    }
}

#[tokio::test]
async fn a_local_emulators_deadline_already_past_on_arrival_does_not_stop_the_run() {
    let e = env().await;
    e.seed(Kind::Expired, 3).await;
    let cleanup = e.cleanup(|_| {});
    // `cargo lambda watch` sends its timeout (600000 ms) where Lambda sends an instant.
    let mut context = Context::default();
    context.deadline = 600_000;
    let summary = backfill(&cleanup, LambdaEvent::new(json!({}), context))
        .await
        .unwrap();
    assert_eq!((summary.deleted, summary.complete), (3, true));
}

#[tokio::test]
async fn the_summary_is_one_emf_line() {
    let e = env().await;
    let cleanup = e.cleanup(|_| {});
    let summary = Summary {
        scanned: 3,
        deleted: 2,
        complete: true,
        segments: 4,
        ..Summary::default()
    };
    let line = cleanup.summary_line(&summary);
    let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
    let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    let want = [
        "scanned",
        "deleted",
        "skipped_refreshed",
        "skipped_over_cap",
        "legacy_stamped",
        "errors",
        "deferred",
        "duration_ms",
        "resumed",
        "complete",
    ];
    assert_eq!(names, want);
    assert_eq!(doc["deleted"], json!(2.0));
    assert_eq!(doc["complete"], json!(1.0));
}

#[tokio::test]
async fn django_items_are_stamped_with_the_expiry_their_data_asks_for() {
    use session_store::{Codec, DjangoCodec, DjangoKeys, Secret};

    let e = env().await;
    let keys = DjangoKeys {
        secret_key: Secret::new("cleanup-secret"),
        fallbacks: vec![],
    };
    let codec = DjangoCodec::new(&keys);
    let created = NOW - 3_600;
    let data = |v: serde_json::Value| {
        codec
            .encode(
                v.as_object().unwrap(),
                Timestamp::from_epoch_seconds(created),
            )
            .unwrap()
    };
    let cases = [
        (
            data(json!({ "_session_expiry": 300 })),
            created + 300,
            Some(300),
            false,
        ),
        (
            data(json!({ "_session_expiry": "2027-01-15T10:30:00+00:00" })),
            1_800_009_000,
            None,
            true,
        ),
        (
            data(json!({ "_session_expiry": 0 })),
            created + 1_209_600,
            None,
            false,
        ),
        (
            data(json!({ "cart": [1] })),
            created + 1_209_600,
            None,
            false,
        ),
        ("tampered".to_owned(), created + 1_209_600, None, false),
    ];
    let mut written = Vec::new();
    for (raw, ..) in &cases {
        let key = SessionKey::generate().unwrap().as_str().to_owned();
        e.client
            .put_item()
            .table_name(&e.table)
            .item("session_key", AttributeValue::S(key.clone()))
            .item("data", AttributeValue::S(raw.clone()))
            .item("created", n(created))
            .send()
            .await
            .unwrap();
        written.push(key);
    }
    let summary = e
        .django_cleanup()
        .run(Overrides::default(), far())
        .await
        .unwrap();
    assert_eq!(summary.legacy_stamped, 5);
    for (key, (_, expires, idle, fixed)) in written.iter().zip(cases) {
        let item = e.item(key).await.unwrap();
        assert_eq!(number(&item, "expires_at"), Some(expires), "{key}");
        assert_eq!(number(&item, "idle_ttl"), idle);
        assert_eq!(
            item.get("expires_fixed") == Some(&AttributeValue::Bool(true)),
            fixed
        );
    }
}

#[tokio::test]
async fn an_item_whose_data_inflates_past_the_cap_is_skipped_and_counted_not_stamped() {
    use session_store::{Codec, DjangoCodec, DjangoKeys, Secret};

    let e = env().await;
    let keys = DjangoKeys {
        secret_key: Secret::new("cleanup-secret"),
        fallbacks: vec![],
    };
    // A few kilobytes that inflate to 2 MiB, past the default cap of 1 MiB.
    let pad = json!({ "pad": " ".repeat(2 * 1024 * 1024) });
    let bomb = DjangoCodec::new(&keys)
        .with_max_decompressed(16 * 1024 * 1024)
        .encode(pad.as_object().unwrap(), Timestamp::from_epoch_seconds(NOW))
        .unwrap();
    assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
    let key = SessionKey::generate().unwrap().as_str().to_owned();
    e.client
        .put_item()
        .table_name(&e.table)
        .item("session_key", AttributeValue::S(key.clone()))
        .item("data", AttributeValue::S(bomb))
        .item("created", n(NOW - 60))
        .send()
        .await
        .unwrap();
    let before = e.item(&key).await;
    e.seed(Kind::LegacyWithCreated, 2).await;
    let summary = e
        .django_cleanup()
        .run(Overrides::default(), far())
        .await
        .unwrap();
    assert_eq!(
        (
            summary.skipped_over_cap,
            summary.legacy_stamped,
            summary.errors
        ),
        (1, 2, 0)
    );
    assert_eq!(e.item(&key).await, before, "nothing stamped on it");
}

#[tokio::test]
async fn throttled_deletes_back_off_end_the_run_cleanly_and_the_next_run_deletes_them() {
    let e = env().await;
    let expired = e.seed(Kind::Expired, 4).await;
    e.seed(Kind::Live, 2).await;
    let proxy = Proxy::start(testkit::endpoint()).await.unwrap();
    let cleanup = e.cleanup_behind(&proxy, |c| {
        c.segments = 1;
        c.concurrency = 2;
    });
    // Every try of the 4 deletes: 6 by the cleanup, each tried 3 times by the client.
    // The run's last DeleteItem, of its checkpoint, passes.
    proxy.inject("DeleteItem", Fault::Throttling, Some(40));
    proxy.inject("DeleteItem", Fault::ProvisionedThroughputExceeded, Some(32));
    let first = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert_eq!((first.deleted, first.errors, first.scanned), (0, 4, 6));
    assert_eq!(proxy.injected_total(), 4 * 6 * 3);
    for key in &expired {
        assert!(
            e.item(key).await.is_some(),
            "nothing deleted while throttled"
        );
    }
    proxy.heal();
    let second = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert_eq!((second.deleted, second.errors), (4, 0));
    assert!(second.complete);
    assert_eq!(e.all_items().await.len(), 2);
}

#[tokio::test]
async fn a_scan_that_keeps_failing_stops_the_run_with_a_checkpoint_and_the_next_run_resumes() {
    let e = env().await;
    e.seed(Kind::Expired, 30).await;
    let proxy = Proxy::start(testkit::endpoint()).await.unwrap();
    let cleanup = e.cleanup_behind(&proxy, |c| {
        c.segments = 1;
        c.page_size = 10;
    });
    // The first page passes; every later Scan fails.
    proxy.inject_after("Scan", 1, Fault::DropConnection, None);
    let first = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert!(!first.complete);
    // The first page holds 10 items: sessions, and perhaps the Scan's lease.
    assert_eq!(first.errors, 1);
    assert!((9..=10).contains(&first.deleted), "{first:?}");
    assert!(
        e.item(CHECKPOINT_KEY).await.is_some(),
        "the stop is recorded"
    );
    proxy.heal();
    let second = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert!(second.resumed && second.complete);
    assert_eq!(first.deleted + second.deleted, 30);
    assert_eq!(e.all_items().await.len(), 0);
}

#[tokio::test]
async fn faults_that_pass_within_the_tries_cost_nothing_but_time() {
    let e = env().await;
    e.seed(Kind::Expired, 10).await;
    e.seed(Kind::LegacyWithoutCreated, 3).await;
    let proxy = Proxy::start(testkit::endpoint()).await.unwrap();
    let cleanup = e.cleanup_behind(&proxy, |c| c.segments = 1);
    proxy.inject("Scan", Fault::Timeout, Some(1));
    proxy.inject("Scan", Fault::DropConnection, Some(1));
    proxy.inject("DeleteItem", Fault::InternalServerError, Some(5));
    proxy.inject("UpdateItem", Fault::Throttling, Some(3));
    let summary = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert_eq!(
        (summary.deleted, summary.legacy_stamped, summary.errors),
        (10, 3, 0)
    );
    assert!(summary.complete);
    assert_eq!(proxy.injected_total(), 10);
    assert_eq!(e.all_items().await.len(), 3);
}

#[tokio::test]
async fn a_run_under_constant_throttling_ends_before_its_deadline_with_checkpoint_and_summary() {
    let e = env().await;
    let expired = e.seed(Kind::Expired, 20).await;
    let proxy = Proxy::start(testkit::endpoint()).await.unwrap();
    let cleanup = e.cleanup_behind(&proxy, |c| {
        c.segments = 1;
        c.deadline_margin = Duration::from_millis(1_000);
    });
    proxy.inject("DeleteItem", Fault::Throttling, None);
    let left = Duration::from_millis(3_000);
    let started = Instant::now();
    let summary = cleanup
        .run(Overrides::default(), started + left)
        .await
        .unwrap();
    assert!(
        started.elapsed() < left,
        "the run outlived its deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(summary.deleted, 0);
    assert_eq!(summary.scanned, 20);
    assert_eq!(
        summary.deferred + summary.errors,
        20,
        "every candidate is counted: {summary:?}"
    );
    assert!(summary.deferred > 0, "{summary:?}");
    assert!(!summary.complete);
    assert!(
        e.item(CHECKPOINT_KEY).await.is_some(),
        "the checkpoint is saved"
    );
    proxy.heal();
    let next = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert!(next.resumed && next.complete);
    assert_eq!(next.deleted, 20);
    for key in &expired {
        assert!(e.item(key).await.is_none());
    }
}

#[tokio::test]
async fn a_far_fixed_expiry_in_django_data_is_stamped_no_further_than_ten_years_ahead() {
    use session_store::{Codec, CodecConfig, DjangoCodec, DjangoKeys, DjangoSecrets, Secret};
    let e = env().await;
    let keys = DjangoKeys {
        secret_key: Secret::new("cleanup-secret"),
        fallbacks: vec![],
    };
    let mut data = serde_json::Map::new();
    data.insert("_session_expiry".into(), json!("9999-12-31T23:59:59"));
    let raw = DjangoCodec::new(&keys)
        .encode(&data, Timestamp::from_epoch_seconds(NOW))
        .unwrap();
    let key = SessionKey::generate().unwrap().as_str().to_owned();
    e.client
        .put_item()
        .table_name(&e.table)
        .item("session_key", AttributeValue::S(key.clone()))
        .item("data", AttributeValue::S(raw))
        .send()
        .await
        .unwrap();
    let store = StoreConfig {
        table_name: e.table.clone(),
        codec: CodecConfig::Django(DjangoSecrets::Unverified),
        ..StoreConfig::default()
    };
    let cleanup = Cleanup::new(e.client.clone(), store, CleanupConfig::default())
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let summary = cleanup.run(Overrides::default(), far()).await.unwrap();
    assert_eq!(summary.legacy_stamped, 1);
    let item = e.item(&key).await.unwrap();
    assert_eq!(number(&item, "expires_at"), Some(NOW + 315_360_000));
}
