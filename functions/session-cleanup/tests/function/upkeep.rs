//! The two triggers of the cleanup function against Dynoxide: the stream upkeep that stamps
//! what the Django backend writes, and the Scan's lease that keeps it to one run at a
//! time without holding the stream back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use session_cleanup::{Cleanup, Overrides, handler};
use session_store::item::{Item, LEASE_KEY};
use session_store::{
    CleanupConfig, Clock, CodecConfig, DjangoCodec, DjangoKeys, DjangoSecrets, DynamoStore, Expiry,
    ManualClock, Principals, Secret, SessionKey, SessionStore, StoreConfig, Timestamp, Upkeep,
};
use testkit::{RequestCounter, data};

const NOW: i64 = testkit::START;
const LEGACY_AGE: i64 = 1_209_600;

struct Env {
    client: Client,
    table: String,
    clock: ManualClock,
}

async fn env() -> Env {
    let (client, table) = testkit::fresh_table("upkeep", &RequestCounter::default()).await;
    Env {
        client,
        table,
        clock: ManualClock::at(Timestamp::from_epoch_seconds(NOW)),
    }
}

impl Env {
    fn config(&self) -> StoreConfig {
        StoreConfig {
            table_name: self.table.clone(),
            ..StoreConfig::default()
        }
    }

    fn cleanup(&self) -> Cleanup {
        Cleanup::new(self.client.clone(), self.config(), CleanupConfig::default())
            .unwrap()
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// The Django backend's `save()`: one UpdateItem that sets `data`, with no condition.
    async fn backend_save(&self, key: &str, data: &str) {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("session_key", AttributeValue::S(key.into()))
            .update_expression("SET #data = :data")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":data", AttributeValue::S(data.into()))
            .send()
            .await
            .unwrap();
    }

    /// The Django backend's `create()`: its save with `must_create`, which also writes
    /// `created` (epoch seconds, from the wall clock).
    async fn backend_create(&self, key: &str, data: &str) {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("session_key", AttributeValue::S(key.into()))
            .item("data", AttributeValue::S(data.into()))
            .item("created", AttributeValue::N(wall_clock().to_string()))
            .condition_expression("attribute_not_exists(#data)")
            .expression_attribute_names("#data", "data")
            .send()
            .await
            .unwrap();
    }

    /// Writes an item as it is, as another program would.
    async fn put_item(&self, item: Item) {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    async fn item(&self, key: &str) -> Option<Item> {
        testkit::raw_item(&self.client, &self.table, key).await
    }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn the_backends_writes_are_stamped_from_the_stream_and_api_writes_are_left_alone() {
    let e = env().await;
    let store = DynamoStore::new(e.client.clone(), e.config())
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let api = store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();
    let api_before = e.item(api.key.as_str()).await;
    let backend = SessionKey::generate().unwrap().as_str().to_owned();
    e.backend_save(&backend, "{}").await;
    assert_eq!(number(&e.item(&backend).await.unwrap(), "expires_at"), None);

    let event = testkit::stream_event(&e.client, &e.table).await.unwrap();
    let answer = handler(
        &e.cleanup(),
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let stamped = e.item(&backend).await.unwrap();
    assert_eq!(number(&stamped, "expires_at"), Some(NOW + LEGACY_AGE));
    assert_eq!(
        e.item(api.key.as_str()).await,
        api_before,
        "an API write needs nothing"
    );

    // The same batch again changes nothing: the stamp is conditional on there being none.
    e.clock.advance(Duration::from_secs(60));
    handler(&e.cleanup(), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(e.item(&backend).await, Some(stamped));
}

#[tokio::test]
async fn a_record_that_fails_and_every_later_one_are_reported_for_a_retry() {
    let e = env().await;
    let first = SessionKey::generate().unwrap().as_str().to_owned();
    e.backend_save(&first, "{}").await;
    let mut event = testkit::stream_event(&e.client, &e.table).await.unwrap();
    let mut broken = event["Records"][0].clone();
    broken["dynamodb"]["SequenceNumber"] = json!("900000000000000000000001");
    broken["eventName"] = json!(["not", "a", "name"]);
    let mut after = event["Records"][0].clone();
    after["dynamodb"]["SequenceNumber"] = json!("900000000000000000000002");
    let records = event["Records"].as_array_mut().unwrap();
    records.push(broken);
    records.push(after);
    let answer = handler(&e.cleanup(), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let failed: Vec<&Value> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["itemIdentifier"])
        .collect();
    assert_eq!(
        failed,
        [
            &json!("900000000000000000000001"),
            &json!("900000000000000000000002")
        ]
    );
    assert!(number(&e.item(&first).await.unwrap(), "expires_at").is_some());
}

#[tokio::test]
async fn one_scan_at_a_time_holds_the_lease_and_a_run_that_finds_it_taken_does_nothing() {
    let e = env().await;
    let backend = SessionKey::generate().unwrap().as_str().to_owned();
    e.backend_save(&backend, "{}").await;
    let store = DynamoStore::new(e.client.clone(), e.config())
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let far = Instant::now() + Duration::from_secs(600);
    let until = e.clock.now().saturating_add(Duration::from_secs(300));
    assert!(store.take_lease("another-run", until).await.unwrap());
    assert!(!store.take_lease("a-third-run", until).await.unwrap());

    let busy = e.cleanup().run(Overrides::default(), far).await.unwrap();
    assert!(busy.lease_busy);
    assert_eq!((busy.scanned, busy.legacy_stamped), (0, 0));
    assert_eq!(number(&e.item(&backend).await.unwrap(), "expires_at"), None);

    // A lease whose holder ran out of time is taken over, and given back at the end.
    e.clock.advance(Duration::from_secs(301));
    let done = e.cleanup().run(Overrides::default(), far).await.unwrap();
    assert!(!done.lease_busy && done.complete);
    assert_eq!(done.legacy_stamped, 1);
    let lease = e.item(LEASE_KEY).await.unwrap();
    assert_eq!(
        number(&lease, "held_until"),
        Some(0),
        "the lease is given back"
    );
    assert!(store.take_lease("a-next-run", until).await.unwrap());
}

#[tokio::test]
async fn the_sample_backend_write_runs_through_the_handler_and_is_stamped() {
    let e = env().await;
    let path = testkit::workspace_root().join("events/stream-backend-write.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key = event["Records"][0]["dynamodb"]["Keys"]["session_key"]["S"]
        .as_str()
        .unwrap()
        .to_owned();
    e.backend_save(&key, "{}").await;
    let answer = handler(&e.cleanup(), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let item = e.item(&key).await.unwrap();
    assert_eq!(number(&item, "expires_at"), Some(NOW + LEGACY_AGE));
}

/// The API's settings and the cleanup's for a table shared with the Django backend.
fn django_configs(e: &Env) -> (StoreConfig, StoreConfig) {
    let signing = StoreConfig {
        codec: CodecConfig::Django(DjangoSecrets::Keys(DjangoKeys {
            secret_key: Secret::new(BACKEND_SECRET),
            fallbacks: vec![],
        })),
        ..e.config()
    };
    let reading = StoreConfig {
        codec: CodecConfig::Django(DjangoSecrets::Unverified),
        ..e.config()
    };
    (signing, reading)
}

const BACKEND_SECRET: &str = "upkeep-test-secret";

/// The Django backend's `load()`: `Item['data']` decoded, or a fresh empty session
/// when there is no item (it then creates one under a new key).
async fn backend_load(e: &Env, key: &str) -> Option<session_store::SessionData> {
    use session_store::Codec;
    let item = e.item(key).await?;
    let Some(AttributeValue::S(raw)) = item.get("data") else {
        panic!("the backend reads Item['data']: {item:?}")
    };
    let codec = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new(BACKEND_SECRET),
        fallbacks: vec![],
    });
    Some(
        codec
            .decode(raw)
            .expect("the backend verifies what it loads"),
    )
}

#[tokio::test]
async fn a_backend_save_onto_a_deleted_session_is_never_served_and_upkeep_removes_it() {
    use session_store::Codec;
    let e = env().await;
    let (signing, reading) = django_configs(&e);
    let api = DynamoStore::new(e.client.clone(), signing)
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let cleanup = Cleanup::new(e.client.clone(), reading, CleanupConfig::default())
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let s = api
        .create(data(json!({"user": 7})), Expiry::Default)
        .await
        .unwrap();
    let kept = api
        .create(data(json!({"user": 8})), Expiry::Default)
        .await
        .unwrap();

    api.delete(&s.key, None).await.unwrap();
    assert_eq!(
        backend_load(&e, s.key.as_str()).await,
        Some(session_store::SessionData::new()),
        "the tombstone loads as an empty session"
    );
    // A Django request that loaded the session before the delete saves it now.
    let stale = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new(BACKEND_SECRET),
        fallbacks: vec![],
    })
    .encode(&data(json!({"user": 7})), e.clock.now())
    .unwrap();
    e.backend_save(s.key.as_str(), &stale).await;
    assert!(matches!(
        api.load(&s.key).await,
        Err(session_store::StoreError::NotFound)
    ));
    assert!(!api.exists(&s.key).await.unwrap());

    let event = testkit::stream_event(&e.client, &e.table).await.unwrap();
    let (answer, counts) = cleanup.upkeep(&event, None).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    // Of the batch, only the write onto the tombstone is acted on: not the creates, nor
    // the delete's own write.
    assert_eq!(
        (counts.tombstones_removed, counts.stamped, counts.skipped),
        (1, 0, counts.batch_size - 1)
    );
    assert_eq!(e.item(s.key.as_str()).await, None, "the upkeep removed it");
    assert_eq!(
        backend_load(&e, s.key.as_str()).await,
        None,
        "a fresh session next"
    );
    assert_eq!(
        api.load(&kept.key).await.unwrap().data,
        data(json!({"user": 8}))
    );
}

#[tokio::test]
async fn the_sample_write_onto_a_tombstone_runs_through_the_handler_and_is_removed() {
    let e = env().await;
    let path = testkit::workspace_root().join("events/stream-tombstone-write.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let image = &event["Records"][0]["dynamodb"]["NewImage"];
    let key = image["session_key"]["S"].as_str().unwrap().to_owned();
    // The item as the record shows it after the save.
    e.client
        .put_item()
        .table_name(&e.table)
        .item("session_key", AttributeValue::S(key.clone()))
        .item(
            "data",
            AttributeValue::S(image["data"]["S"].as_str().unwrap().into()),
        )
        .item(
            "removed_at",
            AttributeValue::N(image["removed_at"]["N"].as_str().unwrap().into()),
        )
        .item(
            "expires_at",
            AttributeValue::N(image["expires_at"]["N"].as_str().unwrap().into()),
        )
        .send()
        .await
        .unwrap();
    let answer = handler(&e.cleanup(), LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(e.item(&key).await, None);
}

/// The Django backend's encoding of `v`, signed with the site's key.
fn backend_data(e: &Env, v: Value) -> String {
    use session_store::Codec;
    DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new(BACKEND_SECRET),
        fallbacks: vec![],
    })
    .encode(&data(v), e.clock.now())
    .unwrap()
}

impl Env {
    /// The Django backend's `delete()`: one DeleteItem, with no condition.
    async fn backend_delete(&self, key: &str) {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("session_key", AttributeValue::S(key.into()))
            .send()
            .await
            .unwrap();
    }

    /// One run of the upkeep over every record the stream holds so far.
    async fn upkeep(&self, cleanup: &Cleanup) -> session_cleanup::UpkeepCounts {
        let event = testkit::stream_event(&self.client, &self.table)
            .await
            .unwrap();
        let (answer, counts) = cleanup.upkeep(&event, None).await.unwrap();
        assert!(answer.batch_item_failures.is_empty(), "{counts:?}");
        counts
    }

    /// The API's store and the upkeep for a table shared with the Django backend, both
    /// on the clock `at`.
    fn shared_table(&self, at: &ManualClock) -> (DynamoStore, Cleanup) {
        let (signing, reading) = django_configs(self);
        let api = DynamoStore::new(self.client.clone(), signing)
            .unwrap()
            .with_clock(Arc::new(at.clone()));
        let cleanup = Cleanup::new(self.client.clone(), reading, CleanupConfig::default())
            .unwrap()
            .with_clock(Arc::new(at.clone()));
        (api, cleanup)
    }
}

fn user(id: &str) -> session_store::Principal {
    session_store::Principal::parse(id).unwrap()
}

fn fresh_key() -> String {
    SessionKey::generate().unwrap().as_str().to_owned()
}

/// Seconds since the epoch on the wall clock, which stamps the stream's records.
fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_backend_login_gives_its_session_the_user_as_principal_whichever_record_comes_first() {
    let e = env().await;
    let (api, cleanup) = e.shared_table(&e.clock);
    let anonymous = backend_data(&e, json!({"cart": 1}));
    let logged_in = backend_data(
        &e,
        json!({"cart": 1, "_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "0f"}),
    );

    // An anonymous visit, stamped before the login.
    let visit = fresh_key();
    e.backend_save(&visit, &anonymous).await;
    assert_eq!(e.upkeep(&cleanup).await.stamped, 1);
    // Django's login: cycle_key() creates a new key with the data and deletes the old
    // one; the upkeep stamps the new key; then the response saves the user into it, an
    // item that has its expiry by now.
    let first = fresh_key();
    e.backend_save(&first, &anonymous).await;
    e.backend_delete(&visit).await;
    e.upkeep(&cleanup).await;
    assert!(e.item(&first).await.unwrap().contains_key("stamped_at"));
    e.backend_save(&first, &logged_in).await;
    let counts = e.upkeep(&cleanup).await;
    assert!(counts.principals_set >= 1, "{counts:?}");
    // A second login whose create and save both come before the upkeep runs.
    let second = fresh_key();
    e.backend_save(&second, &anonymous).await;
    e.backend_save(&second, &logged_in).await;
    e.upkeep(&cleanup).await;

    let listed: Vec<_> = api
        .list(&user("42"), 10, None)
        .await
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect();
    let handle = |k: &str| session_store::SessionHandle::of(&SessionKey::parse(k).unwrap());
    let mut expected = vec![handle(&first), handle(&second)];
    expected.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, expected);
    let session = api.load(&SessionKey::parse(&first).unwrap()).await.unwrap();
    assert_eq!(session.principal, Some(user("42")));

    // Logging out everywhere reaches the backend's sessions: it loads them empty.
    let revoked = api.revoke_all(&user("42"), None).await.unwrap();
    assert_eq!((revoked.revoked, revoked.complete), (2, true));
    for key in [&first, &second] {
        assert_eq!(
            backend_load(&e, key).await,
            Some(session_store::SessionData::new())
        );
    }
    // The upkeep running over the whole stream again neither revives nor re-owns them.
    e.upkeep(&cleanup).await;
    assert!(
        api.list(&user("42"), 10, None)
            .await
            .unwrap()
            .sessions
            .is_empty()
    );
}

#[tokio::test]
async fn a_backend_login_is_dated_by_its_creation_never_by_when_the_upkeep_sees_its_record() {
    let e = env().await;
    let logged_in = backend_data(&e, json!({"_auth_user_id": "7"}));
    // The revocation an hour after the backend's write (the record's time).
    let later = ManualClock::at(Timestamp::from_epoch_seconds(wall_clock() + 3600));
    let (api, cleanup) = e.shared_table(&later);
    let before = fresh_key();
    e.backend_save(&before, &logged_in).await;
    let revocation = api.revoke_all(&user("7"), None).await.unwrap();
    assert_eq!(revocation.revoked, 0, "the index has not listed it yet");
    let counts = e.upkeep(&cleanup).await;
    assert_eq!(
        (counts.revoked, counts.principals_set),
        (1, 0),
        "{counts:?}"
    );
    assert_eq!(
        backend_load(&e, &before).await,
        None,
        "gone: the backend's next load starts a fresh session"
    );
    assert!(matches!(
        api.load(&SessionKey::parse(&before).unwrap()).await,
        Err(session_store::StoreError::NotFound)
    ));

    // A login an hour after a revocation is the user's new session: Django's login
    // creates it (`cycle_key`), and its `created` proves when.
    let e = env().await;
    let earlier = ManualClock::at(Timestamp::from_epoch_seconds(wall_clock() - 3600));
    let (api, cleanup) = e.shared_table(&earlier);
    api.revoke_all(&user("7"), None).await.unwrap();
    let after = fresh_key();
    e.backend_create(&after, &logged_in).await;
    // A request that loaded a session before the revocation and saves it after
    // re-creates the item with no `created`: nothing proves the login came after the
    // revocation, however late the record, so the revocation covers it.
    let resaved = fresh_key();
    e.backend_save(&resaved, &logged_in).await;
    let counts = e.upkeep(&cleanup).await;
    assert_eq!(
        (counts.revoked, counts.principals_set),
        (1, 1),
        "{counts:?}"
    );
    let listed = api.list(&user("7"), 10, None).await.unwrap().sessions;
    assert_eq!(listed.len(), 1);
    assert_eq!(backend_load(&e, &resaved).await, None);
    assert!(backend_load(&e, &after).await.is_some());
}

#[tokio::test]
async fn the_sample_backend_login_runs_through_the_handler_and_gives_the_user_as_principal() {
    let e = env().await;
    let path = testkit::workspace_root().join("events/stream-backend-login.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let record = &event["Records"][0]["dynamodb"];
    let image = &record["NewImage"];
    let key = image["session_key"]["S"].as_str().unwrap().to_owned();
    // The item as the record shows it after the login's save: stamped before, so only
    // the third filter passes the save.
    let mut put = e.client.put_item().table_name(&e.table);
    for (name, value) in image.as_object().unwrap() {
        let value = match (value.get("S"), value.get("N")) {
            (Some(s), _) => AttributeValue::S(s.as_str().unwrap().into()),
            (_, Some(n)) => AttributeValue::N(n.as_str().unwrap().into()),
            _ => panic!("{name}: {value}"),
        };
        put = put.item(name, value);
    }
    put.send().await.unwrap();
    let (_, reading) = django_configs(&e);
    let cleanup = Cleanup::new(e.client.clone(), reading, CleanupConfig::default())
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()));
    let answer = handler(
        &cleanup,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let item = e.item(&key).await.unwrap();
    assert_eq!(item.get("principal"), Some(&AttributeValue::S("42".into())));
    // Dated by the item's creation, which Django's login (a new key) writes, never by
    // the record's time.
    let created_ms = number(&item, "created").unwrap() * 1000;
    assert!(created_ms < record["ApproximateCreationDateTime"].as_i64().unwrap() * 1000);
    assert_eq!(number(&item, "principal_since"), Some(created_ms));
}

/// The API's revocation removes the sessions of its own region that the index lists;
/// a Django site reads the table without the watermark, so each region's upkeep walks
/// the watermark's record: another region's session, and one the index listed only
/// after the revocation's walk, are gone for Django too once it has. So are expired
/// ones awaiting TTL, which Django loads whatever their `expires_at`.
#[tokio::test]
async fn each_regions_upkeep_removes_what_a_revocation_covers_and_django_would_still_load() {
    let e = env().await;
    let (signing, reading) = django_configs(&e);
    let in_region = |config: &StoreConfig, region: &str| StoreConfig {
        region: Some(region.into()),
        ..config.clone()
    };
    let api = |region: &str| {
        DynamoStore::new(e.client.clone(), in_region(&signing, region))
            .unwrap()
            .with_clock(Arc::new(e.clock.clone()))
    };
    let upkeep = |region: &str| {
        Cleanup::new(
            e.client.clone(),
            in_region(&reading, region),
            CleanupConfig::default(),
        )
        .unwrap()
        .with_clock(Arc::new(e.clock.clone()))
    };
    let (here, there) = (api("us-east-1"), api("eu-west-1"));
    let login = || data(json!({"_auth_user_id": "7"}));
    let mine = here.create(login(), Expiry::Default).await.unwrap().key;
    let theirs = there.create(login(), Expiry::Default).await.unwrap().key;
    let late = here.create(login(), Expiry::Default).await.unwrap().key;
    let soon = Expiry::At(e.clock.now().saturating_add(Duration::from_secs(1)));
    let (expired_mine, expired_theirs) = (
        here.create(login(), soon).await.unwrap().key,
        there.create(login(), soon).await.unwrap().key,
    );
    // The index lists `late` only after the revocation's walk.
    let listed = e.item(late.as_str()).await.unwrap();
    let mut unlisted = listed.clone();
    unlisted.remove("principal_position");
    e.put_item(unlisted).await;
    e.clock.advance(Duration::from_secs(1));
    let done = here.revoke_all(&user("7"), None).await.unwrap();
    assert_eq!(
        (done.revoked, done.complete),
        (2, true),
        "and the expired one"
    );
    e.put_item(listed).await;
    let logged_in =
        |d: Option<session_store::SessionData>| d.is_some_and(|d| d.contains_key("_auth_user_id"));
    for key in [&mine, &expired_mine] {
        assert!(!logged_in(backend_load(&e, key.as_str()).await), "{key:?}");
    }
    for key in [&theirs, &late, &expired_theirs] {
        assert!(
            logged_in(backend_load(&e, key.as_str()).await),
            "Django still loads it"
        );
    }
    e.clock.advance(Duration::from_secs(2));
    let here_counts = e.upkeep(&upkeep("us-east-1")).await;
    assert_eq!(here_counts.walk_revoked, 1, "{here_counts:?}");
    assert!(here_counts.watermarks_walked >= 1);
    assert_eq!(
        here_counts.walk_window_ms, 2_000,
        "the revocation's age when the walk ended"
    );
    let there_counts = e.upkeep(&upkeep("eu-west-1")).await;
    assert_eq!(there_counts.walk_revoked, 2, "{there_counts:?}");
    for key in [&mine, &theirs, &late, &expired_mine, &expired_theirs] {
        assert!(!logged_in(backend_load(&e, key.as_str()).await), "{key:?}");
    }
}
