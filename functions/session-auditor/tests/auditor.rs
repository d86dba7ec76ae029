//! The auditor on real stream records from Dynoxide, on the sample events, on a bad record
//! in the middle of a batch, and on what it must never print.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use session_auditor::{Auditor, BatchReport, handler, render};
use session_store::{CodecConfig, DjangoKeys, DjangoSecrets, Secret};
use session_store::{DynamoStore, Expiry, Principals, SessionData, SessionStore, StoreConfig};
use testkit::{RequestCounter, data};

fn auditor() -> Auditor {
    Auditor::new(&StoreConfig::default()).unwrap()
}

fn lines(report: &BatchReport) -> Vec<Value> {
    report
        .lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn event_file(name: &str) -> Value {
    let path = testkit::workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A table with a stream, sessions written through the store, and the stream's records.
async fn recorded(writes: impl AsyncFnOnce(&DynamoStore)) -> Value {
    recorded_in(CodecConfig::Json, writes).await
}

async fn recorded_in(codec: CodecConfig, writes: impl AsyncFnOnce(&DynamoStore)) -> Value {
    let (client, table) = testkit::fresh_table("audit", &RequestCounter::default()).await;
    let store = DynamoStore::new(
        client.clone(),
        StoreConfig {
            table_name: table.clone(),
            codec,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    writes(&store).await;
    testkit::stream_event(&client, &table).await.unwrap()
}

#[tokio::test]
async fn real_stream_records_give_one_audit_event_per_change() {
    let mut key = None;
    let event = recorded(async |store: &DynamoStore| {
        let s = store
            .create(
                data(json!({"cart": ["book"], "theme": "dark"})),
                Expiry::Default,
            )
            .await
            .unwrap();
        store
            .update(&s.key, None, |d| {
                d.remove("cart");
                d.insert("theme".into(), json!("light"));
                d.insert("user".into(), json!(7));
                Ok(())
            })
            .await
            .unwrap();
        store.delete(&s.key, None).await.unwrap();
        key = Some(s.key);
    })
    .await;
    let key = key.unwrap();
    let report = auditor().audit_batch(&event).unwrap();
    assert!(report.response.batch_item_failures.is_empty());
    let got = lines(&report);
    assert_eq!(got.len(), 3, "{got:?}");
    let hash = key.fingerprint(16);
    for line in &got {
        assert_eq!(line["session"], json!(hash));
        assert!(line["sequence_number"].is_string() && line["event_id"].is_string());
        assert!(line["table"].as_str().unwrap().starts_with("audit-"));
    }
    assert_eq!(got[0]["action"], json!("created"));
    assert_eq!(
        (
            got[0]["version_before"].clone(),
            got[0]["version_after"].clone()
        ),
        (Value::Null, json!(1))
    );
    assert_eq!(
        got[0]["data_keys"],
        json!({"added": ["cart", "theme"], "removed": [], "changed": [], "added_count": 2, "removed_count": 0, "changed_count": 0})
    );
    assert_eq!(got[1]["action"], json!("updated"));
    assert_eq!(
        (
            got[1]["version_before"].clone(),
            got[1]["version_after"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(
        got[1]["data_keys"],
        json!({"added": ["user"], "removed": ["cart"], "changed": ["theme"], "added_count": 1, "removed_count": 1, "changed_count": 1})
    );
    assert!(got[1]["expires_after"].is_string());
    assert_eq!(got[2]["action"], json!("deleted"));
    assert_eq!(got[2]["version_before"], json!(2));
    assert_eq!(
        got[2]["data_keys"],
        json!({"added": [], "removed": ["theme", "user"], "changed": [], "added_count": 0, "removed_count": 2, "changed_count": 0})
    );
    assert_eq!(
        report.counts.created + report.counts.updated + report.counts.deleted,
        3
    );
}

#[tokio::test]
async fn the_sample_events_give_their_actions_and_the_ttl_one_gives_expired() {
    for (file, action, removed_by) in [
        ("stream-insert.json", "created", Value::Null),
        ("stream-modify.json", "updated", Value::Null),
        ("stream-remove.json", "deleted", Value::Null),
        ("stream-expire.json", "expired", json!("ttl")),
        ("stream-backend-write.json", "created", Value::Null),
        ("stream-backend-login.json", "updated", Value::Null),
        (
            "stream-tombstone-write.json",
            "resurrection_attempt",
            Value::Null,
        ),
    ] {
        let event = event_file(file);
        let report = auditor().audit_batch(&event).unwrap();
        assert_eq!(lines(&report)[0]["action"], json!(action), "{file}");
        assert_eq!(lines(&report)[0]["removed_by"], removed_by, "{file}");
        let response = handler(&auditor(), LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty(), "{file}");
    }
    let modify = lines(
        &auditor()
            .audit_batch(&event_file("stream-modify.json"))
            .unwrap(),
    );
    assert_eq!(modify[0]["approximate_time"], json!("2026-11-28T10:01:40Z"));
    assert_eq!(modify[0]["table"], json!("sessions"));
}

#[tokio::test]
async fn a_malformed_record_is_reported_and_the_ones_before_it_are_audited_once() {
    let mut records = Vec::new();
    for file in [
        "stream-insert.json",
        "stream-modify.json",
        "stream-remove.json",
    ] {
        records.push(event_file(file)["Records"][0].clone());
    }
    let mut bad = records[1].clone();
    bad["eventName"] = json!("SCRAMBLE");
    bad["dynamodb"]["SequenceNumber"] = json!("222000000000000000000009");
    records.insert(2, bad);
    let batch = json!({"Records": records});

    let report = auditor().audit_batch(&batch).unwrap();
    let failures: Vec<_> = report
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, [Some("222000000000000000000009".to_owned())]);
    assert_eq!(report.lines.len(), 2, "the records before it, once each");
    assert_eq!(report.counts.failures, 1);
    assert_eq!(report.counts.batch_size, 4);

    // A record that is not even shaped like one fails the same way.
    let mut shapeless =
        json!({"Records": [records[0].clone(), {"dynamodb": {"SequenceNumber": "333"}}]});
    let report = auditor().audit_batch(&shapeless).unwrap();
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some("333")
    );
    // Without a sequence number there is nothing to report: the whole batch fails.
    shapeless["Records"][1] = json!({"eventName": "INSERT"});
    assert!(auditor().audit_batch(&shapeless).is_err());
}

#[tokio::test]
async fn the_cleanup_checkpoint_is_not_audited_as_a_session() {
    let mut event = event_file("stream-insert.json");
    event["Records"][0]["dynamodb"]["Keys"]["session_key"]["S"] = json!("#cleanup-checkpoint");
    let report = auditor().audit_batch(&event).unwrap();
    assert!(report.lines.is_empty());
    assert_eq!(report.counts.skipped, 1);
    assert!(report.response.batch_item_failures.is_empty());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_data_value_and_no_key_reach_the_output() {
    let marker = "MARKER-9d1e-value";
    let mut keys = Vec::new();
    let event = recorded(async |store: &DynamoStore| {
        let s = store
            .create(
                data(json!({"secret": marker, "nested": {"deep": marker}})),
                Expiry::Default,
            )
            .await
            .unwrap();
        let s2 = store.cycle(&s.key, None).await.unwrap();
        store
            .update(&s2.key, None, |d| {
                d.insert("secret".into(), json!(format!("{marker}-2")));
                Ok(())
            })
            .await
            .unwrap();
        keys.push(s.key.as_str().to_owned());
        keys.push(s2.key.as_str().to_owned());
    })
    .await;
    let mut records = event["Records"].as_array().unwrap().clone();
    // A malformed record that carries the marker as an attribute value.
    let mut bad = records[0].clone();
    bad["dynamodb"]["NewImage"]["data"] = json!({"X": marker});
    bad["dynamodb"]["SequenceNumber"] = json!("999");
    records.push(bad);
    let batch = json!({"Records": records});

    let logs = Captured::default();
    let sink = logs.clone();
    let _guard =
        tracing::subscriber::set_default(session_store::telemetry::subscriber(move || {
            sink.clone()
        }));
    let report = auditor().audit_batch(&batch).unwrap();
    assert_eq!(
        report.lines.len(),
        4,
        "created, cycled (created + deleted), updated"
    );
    assert_eq!(report.response.batch_item_failures.len(), 1);
    let output = format!(
        "{}\n{}",
        render(&report),
        String::from_utf8_lossy(&logs.0.lock().unwrap())
    );
    assert!(output.contains("secret"), "key names are reported");
    for secret in keys.iter().map(String::as_str).chain([marker]) {
        assert!(
            !output.contains(secret),
            "{secret} reached the output:\n{output}"
        );
    }
}

#[tokio::test]
async fn throughput_on_a_10000_record_batch() {
    let template = event_file("stream-modify.json")["Records"][0].clone();
    let records: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut r = template.clone();
            r["dynamodb"]["SequenceNumber"] = json!(format!("{:024}", i));
            r
        })
        .collect();
    let batch = json!({"Records": records});
    let auditor = auditor();
    let started = Instant::now();
    let report = auditor.audit_batch(&batch).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.counts.updated, 10_000);
    println!(
        "auditor: 10,000 records in {:.1} ms, {:.0} records per second (this build's profile)",
        seconds * 1e3,
        10_000.0 / seconds
    );
}

#[tokio::test]
async fn django_data_signed_by_the_api_is_listed_by_the_auditor_without_the_key() {
    let keys = DjangoKeys {
        secret_key: Secret::new("only-the-api-has-it"),
        fallbacks: vec![],
    };
    let event = recorded_in(
        CodecConfig::Django(DjangoSecrets::Keys(keys)),
        async |store: &DynamoStore| {
            let s = store
                .create(data(json!({"cart": ["book"]})), Expiry::Default)
                .await
                .unwrap();
            store
                .update(&s.key, None, |d| {
                    d.insert("user".into(), json!(7));
                    Ok(())
                })
                .await
                .unwrap();
        },
    )
    .await;
    // As the deployed auditor reads its settings: the codec named, no key anywhere.
    let settings = |name: &str| match name {
        "SESSION_CODEC" => Some("django".to_owned()),
        "DJANGO_SECRET_KEY" => Some("only-the-api-has-it".to_owned()),
        _ => None,
    };
    let config = StoreConfig::reader_from_lookup(settings).unwrap();
    assert_eq!(config.codec, CodecConfig::Django(DjangoSecrets::Unverified));
    let report = Auditor::new(&config).unwrap().audit_batch(&event).unwrap();
    let got = lines(&report);
    assert_eq!(
        got[0]["data_keys"],
        json!({"added": ["cart"], "removed": [], "changed": [], "added_count": 1, "removed_count": 0, "changed_count": 0})
    );
    assert_eq!(
        got[1]["data_keys"],
        json!({"added": ["user"], "removed": [], "changed": [], "added_count": 1, "removed_count": 0, "changed_count": 0})
    );
    assert!(
        got.iter().all(|l| l["data_unreadable"] == json!([])),
        "{got:?}"
    );
}

#[tokio::test]
async fn undecodable_data_is_reported_as_such_and_is_no_failure() {
    let mut event = event_file("stream-modify.json");
    event["Records"][0]["dynamodb"]["NewImage"]["data"] = json!({"S": "not json"});
    let report = auditor().audit_batch(&event).unwrap();
    assert!(report.response.batch_item_failures.is_empty());
    let line = &lines(&report)[0];
    assert_eq!(line["action"], json!("updated"));
    assert_eq!(line["data_unreadable"], json!(["after"]));
    assert_eq!(line["data_keys"], Value::Null);
}

#[tokio::test]
async fn data_that_inflates_past_the_cap_is_marked_on_the_line_and_the_batch_goes_on() {
    use session_store::{Codec, DjangoCodec, Timestamp};
    let keys = DjangoKeys {
        secret_key: Secret::new("audit-secret"),
        fallbacks: vec![],
    };
    // A few kilobytes that inflate to 2 MiB, past the default cap of 1 MiB.
    let pad = json!({ "pad": " ".repeat(2 * 1024 * 1024) });
    let bomb = DjangoCodec::new(&keys)
        .with_max_decompressed(16 * 1024 * 1024)
        .encode(pad.as_object().unwrap(), Timestamp::from_epoch_seconds(5))
        .unwrap();
    assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
    let fine = DjangoCodec::new(&keys)
        .encode(&data(json!({"cart": 1})), Timestamp::from_epoch_seconds(5))
        .unwrap();
    let mut event = event_file("stream-modify.json");
    let mut second = event["Records"][0].clone();
    let first = &mut event["Records"][0]["dynamodb"];
    first["OldImage"]["data"] = json!({ "S": bomb });
    first["NewImage"]["data"] = json!({ "S": bomb });
    second["dynamodb"]["SequenceNumber"] = json!("111000000000000000000009");
    second["dynamodb"]["OldImage"]["data"] = json!({ "S": fine });
    second["dynamodb"]["NewImage"]["data"] = json!({ "S": bomb });
    event["Records"].as_array_mut().unwrap().push(second);
    let reader = Auditor::new(&StoreConfig {
        codec: CodecConfig::Django(DjangoSecrets::Unverified),
        ..StoreConfig::default()
    })
    .unwrap();
    let report = reader.audit_batch(&event).unwrap();
    assert!(report.response.batch_item_failures.is_empty());
    let got = lines(&report);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["data_over_cap"], json!(["before", "after"]));
    assert_eq!(got[1]["data_over_cap"], json!(["after"]));
    for line in &got {
        assert_eq!(line["action"], json!("updated"));
        assert_eq!(line["data_unreadable"], json!([]));
        assert_eq!(line["data_keys"], Value::Null, "no names are claimed");
    }
}

#[tokio::test]
async fn a_session_with_ten_thousand_keys_gives_a_short_line_with_the_full_counts() {
    let long = "k".repeat(300);
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for i in 0..10_000 {
        before.insert(format!("{long}{i:05}"), json!(i));
        after.insert(format!("added{i:05}"), json!(i));
    }
    before.insert("kept".into(), json!(1));
    after.insert("kept".into(), json!(2));
    let mut event = event_file("stream-modify.json");
    let images = &mut event["Records"][0]["dynamodb"];
    images["OldImage"]["data"] = json!({ "S": Value::Object(before).to_string() });
    images["NewImage"]["data"] = json!({ "S": Value::Object(after).to_string() });
    let report = auditor().audit_batch(&event).unwrap();
    let line = &report.lines[0];
    assert!(line.len() < 4_096, "{} bytes", line.len());
    let keys = &lines(&report)[0]["data_keys"];
    assert_eq!(
        (
            &keys["added_count"],
            &keys["removed_count"],
            &keys["changed_count"]
        ),
        (&json!(10_000), &json!(10_000), &json!(1))
    );
    assert_eq!(keys["added"].as_array().unwrap().len(), 20);
    assert_eq!(keys["removed"].as_array().unwrap().len(), 20);
    assert_eq!(keys["changed"], json!(["kept"]));
    let cut = keys["removed"][0].as_str().unwrap();
    assert_eq!(cut, &long[..64], "names are cut at 64 characters");
    assert!(line.contains("added00019") && !line.contains("added00020"));
}

#[tokio::test]
async fn records_not_reached_before_the_deadline_are_reported_for_a_retry_not_lost() {
    let mut records = Vec::new();
    for i in 0..5 {
        let mut r = event_file("stream-modify.json")["Records"][0].clone();
        r["dynamodb"]["SequenceNumber"] = json!(format!("55500000000000000000000{i}"));
        records.push(r);
    }
    let batch = json!({ "Records": records });
    // Time runs out after two records.
    let asked = std::cell::Cell::new(0);
    let report = auditor()
        .audit_batch_within(&batch, || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        })
        .unwrap();
    assert_eq!(report.lines.len(), 2);
    let failed: Vec<&str> = report
        .response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.as_deref())
        .collect();
    assert_eq!(
        failed,
        [
            "555000000000000000000002",
            "555000000000000000000003",
            "555000000000000000000004"
        ]
    );
    assert_eq!((report.counts.deferred, report.counts.failures), (3, 0));

    // Through the handler, with a deadline already this close: nothing is audited, all
    // of it is left for the retry.
    let mut context = Context::default();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_millis(500);
    context.deadline = soon
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let response = handler(&auditor(), LambdaEvent::new(batch, context))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 5);
}

#[tokio::test]
async fn each_batch_ends_with_its_counts_as_an_emf_line() {
    let mut records = Vec::new();
    for file in [
        "stream-insert.json",
        "stream-modify.json",
        "stream-expire.json",
    ] {
        records.push(event_file(file)["Records"][0].clone());
    }
    let report = auditor().audit_batch(&json!({"Records": records})).unwrap();
    let printed = render(&report);
    let last: Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        json!("SessionService")
    );
    for (name, value) in [
        ("created", 1.0),
        ("updated", 1.0),
        ("expired", 1.0),
        ("deleted", 0.0),
        ("failures", 0.0),
        ("deferred", 0.0),
        ("batch_size", 3.0),
    ] {
        assert_eq!(last[name], json!(value), "{name}");
    }
    assert_eq!(printed.lines().count(), 4);
}

/// Records damaged the ways a stream can deliver them: each is reported by its sequence
/// number, and the record before it is audited.
#[tokio::test]
async fn each_kind_of_damaged_record_is_reported_by_its_sequence_number() {
    let good = event_file("stream-insert.json")["Records"][0].clone();
    let modify = event_file("stream-modify.json")["Records"][0].clone();
    type Spoil = fn(&mut Value);
    let damage: [(&str, Spoil); 6] = [
        ("no new image on a modify", |r| {
            r["dynamodb"].as_object_mut().unwrap().remove("NewImage");
        }),
        ("a key that is a number", |r| {
            r["dynamodb"]["Keys"] = json!({"session_key": {"N": "1"}});
        }),
        ("no keys at all", |r| {
            r["dynamodb"].as_object_mut().unwrap().remove("Keys");
        }),
        ("an attribute of an unknown type", |r| {
            r["dynamodb"]["NewImage"]["version"] = json!({"Q": "2"});
        }),
        ("an unknown event name", |r| {
            r["eventName"] = json!("TRUNCATE")
        }),
        ("images that are not objects", |r| {
            r["dynamodb"]["NewImage"] = json!([1, 2]);
        }),
    ];
    for (what, spoil) in damage {
        let mut bad = modify.clone();
        spoil(&mut bad);
        bad["dynamodb"]["SequenceNumber"] = json!("444000000000000000000001");
        let report = auditor()
            .audit_batch(&json!({"Records": [good.clone(), bad, good.clone()]}))
            .unwrap();
        let failed: Vec<_> = report
            .response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.as_deref())
            .collect();
        assert_eq!(failed, ["444000000000000000000001"], "{what}");
        assert_eq!(report.lines.len(), 1, "{what}");
    }
}

#[tokio::test]
async fn a_removal_past_expiry_is_expired_without_naming_a_remover_and_only_a_live_one_is_deleted()
{
    use session_store::{Clock, ManualClock, SystemClock, Timestamp};
    let (client, table) = testkit::fresh_table("audit", &RequestCounter::default()).await;
    let config = StoreConfig {
        table_name: table.clone(),
        ..StoreConfig::default()
    };
    // The stream stamps records with the real time: the sessions live an hour earlier.
    let an_hour_ago = SystemClock.now().epoch_seconds() - 3_600;
    let clock = ManualClock::at(Timestamp::from_epoch_seconds(an_hour_ago));
    let store = DynamoStore::new(client.clone(), config.clone())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let short = store
        .create(data(json!({"a": 1})), Expiry::idle_seconds(60).unwrap())
        .await
        .unwrap();
    let logout = store
        .create(data(json!({"b": 2})), Expiry::Default)
        .await
        .unwrap();
    store.delete(&logout.key, None).await.unwrap();
    clock.advance(std::time::Duration::from_secs(1_800));
    let cleanup = session_cleanup::Cleanup::new(
        client.clone(),
        config,
        session_store::CleanupConfig::default(),
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()));
    let summary = cleanup
        .run(
            session_cleanup::Overrides::default(),
            Instant::now() + std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(summary.deleted, 1);

    let event = testkit::stream_event(&client, &table).await.unwrap();
    let report = auditor().audit_batch(&event).unwrap();
    let got = lines(&report);
    let removals: Vec<(Value, Value, Value)> = got
        .iter()
        .filter(|l| l["action"] != "created")
        .map(|l| {
            (
                l["action"].clone(),
                l["session"].clone(),
                l["removed_by"].clone(),
            )
        })
        .collect();
    assert_eq!(
        removals,
        [
            (
                json!("deleted"),
                json!(logout.key.fingerprint(16)),
                Value::Null
            ),
            // The cleanup removed it, but the record cannot prove that: the Django
            // backend's unconditional delete looks the same.
            (
                json!("expired"),
                json!(short.key.fingerprint(16)),
                Value::Null
            ),
        ],
        "{got:?}"
    );
    assert_eq!((report.counts.deleted, report.counts.expired), (1, 1));
}

#[tokio::test]
async fn the_trail_tells_a_tombstone_and_a_resurrection_attempt_from_a_live_session() {
    let (client, table) = testkit::fresh_table("audit", &RequestCounter::default()).await;
    let config = |secrets| StoreConfig {
        table_name: table.clone(),
        codec: CodecConfig::Django(secrets),
        ..StoreConfig::default()
    };
    let keys = DjangoKeys {
        secret_key: Secret::new("audit-tombstone-secret"),
        fallbacks: vec![],
    };
    let api = DynamoStore::new(client.clone(), config(DjangoSecrets::Keys(keys))).unwrap();
    let s = api
        .create(data(json!({"user": 7})), Expiry::Default)
        .await
        .unwrap();
    api.delete(&s.key, None).await.unwrap();
    // The Django backend's save onto the tombstone (its data is of no matter here).
    client
        .update_item()
        .table_name(&table)
        .key(
            "session_key",
            aws_sdk_dynamodb::types::AttributeValue::S(s.key.as_str().into()),
        )
        .update_expression("SET #data = :data")
        .expression_attribute_names("#data", "data")
        .expression_attribute_values(
            ":data",
            aws_sdk_dynamodb::types::AttributeValue::S("stale".into()),
        )
        .send()
        .await
        .unwrap();
    let reading = config(DjangoSecrets::Unverified);
    let cleanup = session_cleanup::Cleanup::new(
        client.clone(),
        reading.clone(),
        session_store::CleanupConfig::default(),
    )
    .unwrap();
    let written = testkit::stream_event(&client, &table).await.unwrap();
    cleanup.upkeep(&written, None).await.unwrap();

    let event = testkit::stream_event(&client, &table).await.unwrap();
    let report = Auditor::new(&reading).unwrap().audit_batch(&event).unwrap();
    let got = lines(&report);
    let actions: Vec<&str> = got.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "tombstoned",
            "resurrection_attempt",
            "tombstone_removed"
        ]
    );
    assert_eq!(got[1]["data_keys"]["removed"], json!(["user"]));
    assert_eq!(got[2]["data_unreadable"], json!(["after"]));
    let c = &report.counts;
    assert_eq!(
        (
            c.tombstoned,
            c.resurrection_attempts,
            c.tombstones_removed,
            c.deleted
        ),
        (1, 1, 1, 0)
    );
}

#[tokio::test]
async fn a_revocation_of_all_of_a_principals_sessions_is_audited_as_revoked_with_its_count() {
    let principal = session_store::Principal::parse("alice@example.com").unwrap();
    let event = recorded(async |store: &DynamoStore| {
        for _ in 0..2 {
            store
                .create_owned(SessionData::new(), Expiry::Default, Some(principal.clone()))
                .await
                .unwrap();
        }
        store.revoke_all(&principal, None).await.unwrap();
    })
    .await;
    let report = auditor().audit_batch(&event).unwrap();
    let got = lines(&report);
    let revocations: Vec<&Value> = got.iter().filter(|l| l["action"] == "revoked").collect();
    assert_eq!(revocations.len(), 2, "started, then finished: {got:?}");
    assert_eq!(
        (&revocations[1]["revoked"], &revocations[1]["complete"]),
        (&json!(2), &json!(true))
    );
    assert_eq!(report.counts.revocations, 2);
    assert_eq!(report.counts.deleted, 2);
    for line in &report.lines {
        assert!(
            !line.contains("alice"),
            "the principal in an audit line: {line}"
        );
    }
}
