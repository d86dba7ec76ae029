//! Errors no retry can fix end the cleanup at once, with the error's kind in the log;
//! a saved cursor that Scan refuses is dropped. A binary of its own, because it installs
//! a log subscriber (tracing caches, process-wide, which call sites are enabled).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use session_cleanup::{CHECKPOINT_KEY, Cleanup, Overrides};
use session_store::item::LEASE_KEY;
use session_store::{AwsEnv, CleanupConfig, ManualClock, SessionKey, StoreConfig, Timestamp};
use testkit::proxy::{Fault, Proxy};
use testkit::{CapturedLogs, RequestCounter};

const NOW: i64 = testkit::START;

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3_600)
}

struct Env {
    client: aws_sdk_dynamodb::Client,
    table: String,
    proxy: Proxy,
    cleanup: Cleanup,
}

/// A table of `expired` expired sessions and a cleanup of one segment, pages of 10,
/// reaching DynamoDB through a fault proxy.
async fn env(expired: usize) -> Env {
    let (client, table) = testkit::fresh_table("stops", &RequestCounter::default()).await;
    for _ in 0..expired {
        client
            .put_item()
            .table_name(&table)
            .item(
                "session_key",
                AttributeValue::S(SessionKey::generate().unwrap().as_str().into()),
            )
            .item("data", AttributeValue::S("{}".into()))
            .item("expires_at", AttributeValue::N((NOW - 60).to_string()))
            .item("version", AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
    }
    let proxy = Proxy::start(testkit::endpoint()).await.unwrap();
    let aws = AwsEnv::from_lookup(testkit::lambda_env(&proxy.url)).unwrap();
    let store = StoreConfig {
        table_name: table.clone(),
        ..StoreConfig::default()
    };
    let config = CleanupConfig {
        segments: 1,
        page_size: 10,
        ..CleanupConfig::default()
    };
    let cleanup = Cleanup::new(aws.dynamodb(), store, config)
        .unwrap()
        .with_clock(Arc::new(ManualClock::at(Timestamp::from_epoch_seconds(
            NOW,
        ))));
    Env {
        client,
        table,
        proxy,
        cleanup,
    }
}

fn install(logs: &CapturedLogs) -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(session_store::telemetry::subscriber_with(
        "info",
        logs.writer(),
    ))
}

#[tokio::test]
async fn a_scan_refused_for_good_ends_the_run_at_once_and_names_the_error() {
    for fault in [Fault::AccessDenied, Fault::Validation] {
        let logs = CapturedLogs::default();
        let _guard = install(&logs);
        let e = env(5).await;
        e.proxy.inject("Scan", fault, None);
        let started = Instant::now();
        let summary = e.cleanup.run(Overrides::default(), far()).await.unwrap();
        assert_eq!(summary.errors, 1, "{fault:?}: {summary:?}");
        assert_eq!((summary.scanned, summary.deleted), (0, 0));
        assert_eq!(
            e.proxy.injected().get(&fault),
            Some(&1),
            "{fault:?} is not retried"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{fault:?}");
        let kind = match fault {
            Fault::AccessDenied => "AccessDeniedException",
            _ => "ValidationException",
        };
        let text = logs.text();
        assert!(
            text.lines()
                .any(|l| l.contains("\"error_kind\":\"") && l.contains(kind)),
            "{kind} not named: {text}"
        );
    }
}

#[tokio::test]
async fn a_write_refused_for_good_ends_the_run_instead_of_failing_every_item() {
    let logs = CapturedLogs::default();
    let _guard = install(&logs);
    let e = env(30).await;
    e.proxy.inject("DeleteItem", Fault::AccessDenied, None);
    let summary = e.cleanup.run(Overrides::default(), far()).await.unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.deleted, 0);
    assert!(
        e.proxy.injected_total() <= 8,
        "{} deletes tried after access was denied",
        e.proxy.injected_total()
    );
    assert!(logs.text().contains("AccessDeniedException"));
}

#[tokio::test]
async fn a_checkpoint_cursor_that_scan_rejects_is_dropped_and_the_segment_starts_over() {
    let logs = CapturedLogs::default();
    let _guard = install(&logs);
    let e = env(25).await;
    // A checkpoint whose cursor names a key of the wrong type: Scan refuses it.
    let cursor =
        AttributeValue::M([("session_key".to_owned(), AttributeValue::N("1".into()))].into());
    e.client
        .put_item()
        .table_name(&e.table)
        .item("session_key", AttributeValue::S(CHECKPOINT_KEY.into()))
        .item("segments", AttributeValue::N("1".into()))
        .item(
            "positions",
            AttributeValue::M([("0".to_owned(), cursor)].into()),
        )
        .send()
        .await
        .unwrap();
    // Whether or not the emulator checks cursors, DynamoDB does: the first Scan, the
    // one with the cursor, is refused as DynamoDB refuses it.
    e.proxy.inject("Scan", Fault::Validation, Some(1));
    let summary = e.cleanup.run(Overrides::default(), far()).await.unwrap();
    assert!(summary.resumed);
    assert!(summary.complete, "{summary:?}");
    assert_eq!((summary.deleted, summary.errors), (25, 0));
    assert!(
        logs.text().contains("cursor was rejected"),
        "{}",
        logs.text()
    );
    // All that is left is the Scan's lease, held by nobody.
    let left = testkit::item_count(&e.client, &e.table).await.unwrap();
    assert_eq!(left, 1, "every session deleted and the checkpoint removed");
    let lease = testkit::raw_item(&e.client, &e.table, LEASE_KEY)
        .await
        .unwrap();
    assert_eq!(
        lease.get("held_until"),
        Some(&AttributeValue::N("0".into()))
    );
}
