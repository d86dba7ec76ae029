//! The store's behaviour against DynamoDB's API, served by Dynoxide (in process), which
//! refuses what DynamoDB refuses: the behaviours first, then the request budget of each
//! operation and DynamoDB's failures.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use session_store::item::{self, Item};
use session_store::{
    Clock, DynamoStore, Expected, Expiry, ManualClock, Principals, SessionData, SessionKey,
    SessionStore, StoreConfig, StoreError, Timestamp, Version,
};
use testkit::{RequestCounter, START, data};

const DAY: Duration = Duration::from_secs(86_400);

/// A store under test, its clock, and the table behind it.
struct Env<S> {
    store: S,
    clock: ManualClock,
    table: Table,
}

/// The table, reached directly, and the requests the store sent to it.
struct Table {
    client: Client,
    name: String,
    counter: RequestCounter,
}

fn clock() -> ManualClock {
    ManualClock::at(Timestamp::from_epoch_seconds(START))
}

/// A DynamoDB store on a fresh table made from template.yaml.
async fn dynamo_env(configure: impl FnOnce(&mut StoreConfig)) -> Env<DynamoStore> {
    let counter = RequestCounter::default();
    let (client, name) = testkit::fresh_table("sessions", &counter).await;
    let mut config = StoreConfig {
        table_name: name.clone(),
        ..StoreConfig::default()
    };
    configure(&mut config);
    let clock = clock();
    let store = DynamoStore::new(client.clone(), config)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    counter.reset();
    Env {
        store,
        clock,
        table: Table {
            client,
            name,
            counter,
        },
    }
}

impl<S: SessionStore> Env<S> {
    async fn raw_item(&self, key: &SessionKey) -> Option<Item> {
        testkit::raw_item(&self.table.client, &self.table.name, key.as_str()).await
    }

    async fn count(&self) -> usize {
        testkit::item_count(&self.table.client, &self.table.name)
            .await
            .expect("scan")
    }

    async fn put_raw(&self, key: &SessionKey, attributes: &[(&str, AttributeValue)]) {
        let mut item: Item = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        item.insert("session_key".into(), AttributeValue::S(key.as_str().into()));
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .expect("raw PutItem");
    }

    /// A copy of `from`'s item under a new key, whose home is `home`: a session of
    /// another region, as replication brings it.
    async fn copy_homed_in(&self, from: &SessionKey, home: &str) -> SessionKey {
        let key = SessionKey::generate().unwrap();
        let mut copied = self.raw_item(from).await.unwrap();
        copied.remove("session_key");
        copied.insert("home_region".into(), AttributeValue::S(home.into()));
        let attributes: Vec<(&str, AttributeValue)> = copied
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.put_raw(&key, &attributes).await;
        key
    }

    /// DynamoDB's request budget: the number of requests since the last check.
    fn expect_requests(&self, n: u64, why: &str) {
        assert_eq!(self.table.counter.total(), n, "{why}");
        self.table.counter.reset();
    }

    /// The Django backend's `save()`: `UpdateItem SET #data = :data`, no condition, no
    /// version.
    async fn backend_save(&self, key: &SessionKey, raw: &str) {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("session_key", AttributeValue::S(key.as_str().into()))
            .update_expression("SET #data = :data")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":data", AttributeValue::S(raw.into()))
            .send()
            .await
            .expect("the backend's UpdateItem");
    }

    fn reset_requests(&self) {
        self.table.counter.reset();
    }

    fn expect_request_kinds(&self, kinds: &[&str]) {
        assert_eq!(
            self.table.counter.snapshot().keys().collect::<Vec<_>>(),
            kinds
        );
    }
}

impl Env<DynamoStore> {
    /// Another writer on the same table.
    fn other_writer(&self) -> DynamoStore {
        DynamoStore::new(self.table.client.clone(), self.store.config().clone()).unwrap()
    }

    fn requests(&self) -> u64 {
        let n = self.table.counter.total();
        self.table.counter.reset();
        n
    }
}

type Store = DynamoStore;

async fn env() -> Env<DynamoStore> {
    dynamo_env(|_| {}).await
}

async fn env_with(configure: impl FnOnce(&mut StoreConfig)) -> Env<DynamoStore> {
    dynamo_env(configure).await
}

fn t(offset: i64) -> Timestamp {
    Timestamp::from_epoch_seconds(START + offset)
}

fn conflict<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::VersionConflict))
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

/// The key of the Django codec in these tests.
fn django_keys() -> session_store::DjangoKeys {
    session_store::DjangoKeys {
        secret_key: session_store::Secret::new("store-test-secret"),
        fallbacks: vec![],
    }
}

fn django_codec() -> session_store::DjangoCodec {
    session_store::DjangoCodec::new(&django_keys())
}

/// Settings of a store that reads and writes Django's signed format.
fn with_django_codec(c: &mut StoreConfig) {
    use session_store::{CodecConfig, DjangoSecrets};
    c.codec = CodecConfig::Django(DjangoSecrets::Keys(django_keys()));
}

/// Whether `item` is a tombstone as the Django backend would read it: the marker, and
/// data that its key verifies as an empty session.
fn is_tombstone_of_empty_session(item: &Item, removed: Timestamp) -> bool {
    use session_store::Codec;
    let view = item::View(item);
    view.removed_at() == Some(removed)
        && view.expires_at() == Some(removed.saturating_add(DAY))
        && view
            .data()
            .is_some_and(|raw| django_codec().decode(raw) == Ok(SessionData::new()))
}

/// Data as the Django backend signs it.
fn django_codec_data(v: Value) -> String {
    use session_store::Codec;
    django_codec().encode(&data(v), t(0)).unwrap()
}

/// A new empty session of `p`.
async fn owned_by<S: SessionStore>(
    store: &S,
    p: &session_store::Principal,
) -> session_store::Session {
    store
        .create_owned(SessionData::new(), Expiry::Default, Some(p.clone()))
        .await
        .unwrap()
}

/// A login into an existing session: a PUT of `data` that gives it `p`.
async fn log_in<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    data: SessionData,
    p: &session_store::Principal,
) -> session_store::Session {
    let owner = session_store::Ownership::Set(p.clone());
    store
        .replace_owned(key, data, Expiry::Default, owner, None)
        .await
        .unwrap()
}

fn principal(p: &str) -> session_store::Principal {
    session_store::Principal::parse(p).unwrap()
}

/// The handles a listing shows, page by page, `limit` at a time.
async fn listed_handles<S: Principals>(
    store: &S,
    p: &session_store::Principal,
    limit: usize,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(p, limit, after).await.unwrap();
        pages.push(
            page.sessions
                .iter()
                .map(|l| l.id.as_str().to_owned())
                .collect(),
        );
        match page.next {
            Some(cursor) => {
                after = Some(session_store::ListingPosition::from_cursor(&cursor).unwrap())
            }
            None => return pages,
        }
    }
}

fn handle(key: &SessionKey) -> String {
    session_store::SessionHandle::of(key).as_str().to_owned()
}

#[tokio::test]
async fn a_new_session_is_empty_and_loads_back() {
    let e = env().await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert!(s.data.is_empty());
    assert_eq!(s.meta.version, Version(1));
    assert_eq!(s.meta.created, Some(t(0)));
    let loaded = e.store.load(&s.key).await.unwrap();
    assert_eq!(loaded, s);
}

#[tokio::test]
async fn every_json_type_round_trips_exactly() {
    let e = env().await;
    let text = r#"{"null":null,"t":true,"f":false,"int":-42,"big":123456789012345678901234567890,"neg_big":-98765432109876543210987654321,"u64max":18446744073709551615,"float":0.1,"tiny":5e-324,"huge":1.7976931348623157e308,"exp":1E+400,"s":"plain","unicode":"Grüße, 世界, 🚀 and 𝄞","escapes":"quote\" backslash\\ newline\n tab\t nul\u0000","nested":{"a":{"b":[1,2,{"c":null}],"d":{}},"list":[1,"two",3.5,false,[],{}]},"empty_list":[]}"#;
    let original: SessionData = serde_json::from_str(text).unwrap();
    let s = e
        .store
        .create(original.clone(), Expiry::Default)
        .await
        .unwrap();
    let loaded = e.store.load(&s.key).await.unwrap();
    assert_eq!(loaded.data, original);
    assert_eq!(
        serde_json::to_string(&loaded.data).unwrap(),
        serde_json::to_string(&original).unwrap()
    );
    assert_eq!(
        loaded.data["big"].to_string(),
        "123456789012345678901234567890"
    );
    assert_eq!(loaded.data["tiny"].to_string(), "5e-324");
}

#[tokio::test]
async fn a_saved_session_exists_and_a_deleted_one_does_not() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    assert!(e.store.exists(&s.key).await.unwrap());
    e.store.delete(&s.key, None).await.unwrap();
    assert!(!e.store.exists(&s.key).await.unwrap());
    assert!(not_found(e.store.load(&s.key).await));
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn deleting_a_missing_key_succeeds_unless_the_caller_expected_it() {
    let e = env().await;
    let key = SessionKey::generate().unwrap();
    e.store.delete(&key, None).await.unwrap();
    for expected in [Expected::from(Version(3)), Expected::Exists] {
        assert!(matches!(
            e.store.delete(&key, Some(expected)).await,
            Err(StoreError::VersionConflict)
        ));
    }
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn loading_an_unknown_key_is_not_found_and_writes_nothing() {
    let e = env().await;
    let key = SessionKey::generate().unwrap();
    assert!(not_found(e.store.load(&key).await));
    assert!(not_found(e.store.load_and_touch(&key).await));
    assert!(!e.store.exists(&key).await.unwrap());
    e.expect_request_kinds(&["GetItem"]);
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn malformed_keys_are_rejected_before_any_request() {
    let e = env().await;
    for raw in [
        "",
        "abcdefg",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF",
        "abcdefghijklmnopqrstuvwxyz0123456",
        "abcdefghijklmnopqrstuvwxyz01234ü",
    ] {
        let parsed = SessionKey::parse(raw).map_err(StoreError::from);
        assert!(
            matches!(parsed, Err(StoreError::InvalidKey(_))),
            "{raw:?} was accepted"
        );
    }
    e.expect_requests(0, "");
}

#[tokio::test]
async fn create_never_reuses_a_key() {
    let e = env().await;
    let mut keys = HashSet::new();
    for i in 0..150 {
        let s = e
            .store
            .create(data(json!({"i": i})), Expiry::Default)
            .await
            .unwrap();
        assert!(keys.insert(s.key.as_str().to_owned()), "key reused");
    }
    assert_eq!(e.count().await, 150);
}

#[tokio::test]
async fn cycle_keeps_the_data_removes_the_old_key_and_returns_a_new_one() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"user": 7, "cart": [1, 2]})), Expiry::Default)
        .await
        .unwrap();
    let cycled = e.store.cycle(&s.key, None).await.unwrap();
    assert_ne!(cycled.key, s.key);
    assert_eq!(cycled.data, s.data);
    assert_eq!(cycled.meta.created, s.meta.created);
    assert_eq!(cycled.meta.version, Version(2));
    assert!(not_found(e.store.load(&s.key).await));
    assert_eq!(e.store.load(&cycled.key).await.unwrap(), cycled);
    assert_eq!(e.count().await, 1);
}

#[tokio::test]
async fn cycling_a_missing_key_fails_and_creates_nothing() {
    let e = env().await;
    let key = SessionKey::generate().unwrap();
    assert!(not_found(e.store.cycle(&key, None).await));
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn replace_after_a_concurrent_delete_fails_and_leaves_no_item() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    let other_writer = e.other_writer();
    other_writer.delete(&s.key, None).await.unwrap();

    assert!(not_found(
        e.store
            .replace(&s.key, data(json!({"a": 2})), Expiry::Default, None)
            .await
    ));
    // A caller who expected the session is told its expectation failed (If-Match: 412).
    assert!(matches!(
        e.store
            .replace(
                &s.key,
                SessionData::new(),
                Expiry::Default,
                Some(Version(1).into())
            )
            .await,
        Err(StoreError::VersionConflict)
    ));
    assert!(not_found(e.store.touch(&s.key, None).await));
    assert!(not_found(
        e.store
            .update(&s.key, None, |d| {
                d.insert("b".into(), json!(1));
                Ok(())
            })
            .await
    ));
    assert!(not_found(e.store.cycle(&s.key, None).await));
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn an_expired_session_is_not_loaded_replaced_touched_or_cycled() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(1_209_600));
    assert!(not_found(e.store.load(&s.key).await));
    assert!(!e.store.exists(&s.key).await.unwrap());
    assert!(not_found(
        e.store
            .replace(&s.key, data(json!({"a": 2})), Expiry::Default, None)
            .await
    ));
    assert!(not_found(e.store.touch(&s.key, None).await));
    assert!(not_found(e.store.load_and_touch(&s.key).await));
    assert!(not_found(e.store.update(&s.key, None, |_| Ok(())).await));
    assert!(not_found(e.store.cycle(&s.key, None).await));
    // Nothing was written: the dead item is exactly as it was, awaiting TTL.
    let raw = e.raw_item(&s.key).await.expect("item still there");
    assert_eq!(item::meta(&raw), s.meta);
    assert_eq!(e.count().await, 1);
}

#[tokio::test]
async fn default_expiry_is_the_idle_timeout_after_the_last_write() {
    let e = env().await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(1_209_600)));
    e.clock.advance(DAY);
    let touched = e.store.touch(&s.key, None).await.unwrap();
    assert_eq!(touched.meta.expires_at, Some(t(86_400 + 1_209_600)));
    e.clock.advance(Duration::from_secs(1_209_599));
    assert!(e.store.load(&s.key).await.is_ok());
    e.clock.advance(Duration::from_secs(1));
    assert!(not_found(e.store.load(&s.key).await));
}

#[tokio::test]
async fn the_idle_timeout_is_read_from_the_configuration() {
    let e = env_with(|c| c.expiry.idle_timeout = Duration::from_secs(600)).await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(600)));
}

#[tokio::test]
async fn a_custom_idle_timeout_is_kept_across_writes_and_touches() {
    let e = env().await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::idle_seconds(60).unwrap())
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(60)));
    e.clock.advance(Duration::from_secs(30));
    e.reset_requests();
    let touched = e.store.touch(&s.key, None).await.unwrap();
    assert_eq!(touched.meta.expires_at, Some(t(90)));
    // The first write assumes the default rule; the item's own rule costs a second one.
    e.expect_requests(2, "");
    assert_eq!(
        touched.meta.expiry,
        Expiry::IdleFor(Duration::from_secs(60))
    );
    e.clock.advance(Duration::from_secs(30));
    let updated = e
        .store
        .update(&s.key, None, |d| {
            d.insert("x".into(), json!(1));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(updated.meta.expires_at, Some(t(120)));
    e.clock.advance(Duration::from_secs(60));
    assert!(not_found(e.store.load(&s.key).await));
}

#[tokio::test]
async fn an_absolute_expiry_is_not_moved_by_activity() {
    let e = env().await;
    let at = Expiry::At(t(3_600));
    let s = e.store.create(SessionData::new(), at).await.unwrap();
    assert_eq!(s.meta.expires_at, Some(t(3_600)));
    e.clock.advance(Duration::from_secs(1_800));
    assert_eq!(
        e.store.touch(&s.key, None).await.unwrap().meta.expires_at,
        Some(t(3_600))
    );
    let replaced = e
        .store
        .replace(&s.key, data(json!({"a": 1})), at, None)
        .await
        .unwrap();
    assert_eq!(replaced.meta.expires_at, Some(t(3_600)));
    e.clock.advance(Duration::from_secs(1_800));
    assert!(not_found(e.store.load(&s.key).await));
    assert!(matches!(
        e.store.create(SessionData::new(), Expiry::At(t(0))).await,
        Err(StoreError::InvalidData(_))
    ));
}

#[tokio::test]
async fn the_lifetime_cap_ends_a_session_however_active_it_is() {
    let e = env_with(|c| {
        c.expiry.idle_timeout = Duration::from_secs(600);
        c.expiry.max_lifetime = Some(Duration::from_secs(1_000));
    })
    .await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(600)));
    assert_eq!(s.meta.deadline, Some(t(1_000)));
    e.clock.advance(Duration::from_secs(300));
    assert_eq!(
        e.store.touch(&s.key, None).await.unwrap().meta.expires_at,
        Some(t(900))
    );
    e.clock.advance(Duration::from_secs(300));
    e.reset_requests();
    let touched = e.store.touch(&s.key, None).await.unwrap();
    e.expect_requests(2, "a refresh cut short by the cap takes a second write");
    assert_eq!(touched.meta.expires_at, Some(t(1_000)));
    let replaced = e
        .store
        .replace(
            &s.key,
            SessionData::new(),
            Expiry::idle_seconds(5_000).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(replaced.meta.expires_at, Some(t(1_000)));
    let cycled = e.store.cycle(&s.key, None).await.unwrap();
    assert_eq!(cycled.meta.deadline, Some(t(1_000)));
    e.clock.set(t(1_000));
    assert!(not_found(e.store.load(&cycled.key).await));
}

#[tokio::test]
async fn the_version_increments_on_each_write() {
    let e = env().await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.meta.version, Version(1));
    let s = e
        .store
        .replace(
            &s.key,
            data(json!({"a": 1})),
            Expiry::Default,
            Some(Version(1).into()),
        )
        .await
        .unwrap();
    assert_eq!(s.meta.version, Version(2));
    let s = e.store.touch(&s.key, None).await.unwrap();
    assert_eq!(s.meta.version, Version(3));
    let s = e
        .store
        .update(&s.key, Some(Version(3).into()), |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(s.meta.version, Version(4));
    let s = e
        .store
        .cycle(&s.key, Some(Version(4).into()))
        .await
        .unwrap();
    assert_eq!(s.meta.version, Version(5));
    assert_eq!(e.store.load(&s.key).await.unwrap().meta.version, Version(5));
}

#[tokio::test]
async fn a_stale_expected_version_fails_and_writes_nothing() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    let s = e
        .store
        .replace(&s.key, data(json!({"a": 2})), Expiry::Default, None)
        .await
        .unwrap();
    let before = e.raw_item(&s.key).await;
    let stale = Some(Version(1).into());
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::VersionConflict));
    let replaced = e
        .store
        .replace(&s.key, data(json!({"a": 3})), Expiry::Default, stale);
    assert!(conflict(replaced.await.map(drop)));
    let updated = e.store.update(&s.key, stale, |d| {
        d.insert("b".into(), json!(1));
        Ok(())
    });
    assert!(conflict(updated.await.map(drop)));
    assert!(conflict(e.store.cycle(&s.key, stale).await.map(drop)));
    assert!(conflict(e.store.delete(&s.key, stale).await));
    assert_eq!(e.raw_item(&s.key).await, before);
    assert_eq!(e.count().await, 1);
    e.store
        .delete(&s.key, Some(Version(2).into()))
        .await
        .unwrap();
    assert_eq!(e.count().await, 0);
}

#[tokio::test]
async fn concurrent_merge_updates_lose_nothing() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"counter": 0})), Expiry::Default)
        .await
        .unwrap();
    let store = Arc::new(e.store);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let key = s.key.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                store
                    .update(&key, None, |d| {
                        let n = d.get("counter").and_then(Value::as_u64).unwrap_or(0);
                        d.insert("counter".into(), json!(n + 1));
                        Ok(())
                    })
                    .await
                    .expect("update succeeds within its retries");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let end = store.load(&s.key).await.unwrap();
    assert_eq!(end.data["counter"], json!(200));
    assert_eq!(end.meta.version, Version(201));
}

#[tokio::test]
async fn oversize_data_is_rejected_before_any_request() {
    let e = env_with(|c| c.max_session_bytes = 1_000).await;
    let big = data(json!({"blob": "x".repeat(1_000)}));
    assert!(matches!(
        e.store.create(big.clone(), Expiry::Default).await,
        Err(StoreError::TooLarge { limit: 1_000, .. })
    ));
    e.expect_requests(0, "");
    let s = e
        .store
        .create(data(json!({"blob": "x".repeat(900)})), Expiry::Default)
        .await
        .unwrap();
    e.reset_requests();
    assert!(matches!(
        e.store.replace(&s.key, big, Expiry::Default, None).await,
        Err(StoreError::TooLarge { .. })
    ));
    e.expect_requests(0, "");
    assert_eq!(e.store.load(&s.key).await.unwrap().data, s.data);
}

#[tokio::test]
async fn touch_on_read_writes_only_when_the_last_refresh_is_old() {
    let e = env_with(|c| c.touch_interval = Duration::from_secs(300)).await;
    let s = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(299));
    e.reset_requests();
    let read = e.store.load_and_touch(&s.key).await.unwrap();
    assert_eq!(read.meta, s.meta);
    e.expect_requests(1, "");
    e.clock.advance(Duration::from_secs(1));
    let read = e.store.load_and_touch(&s.key).await.unwrap();
    e.expect_requests(2, "");
    assert_eq!(read.meta.expires_at, Some(t(300 + 1_209_600)));
    assert_eq!(read.meta.touched_at, Some(t(300)));
    assert_eq!(e.store.load(&s.key).await.unwrap().meta, read.meta);
}

#[tokio::test]
async fn items_without_version_or_expiry_load_and_gain_both_on_their_first_write() {
    let e = env().await;
    let key = SessionKey::generate().unwrap();
    e.put_raw(
        &key,
        &[("data", AttributeValue::S(r#"{"legacy":true}"#.into()))],
    )
    .await;
    let s = e.store.load(&key).await.unwrap();
    assert_eq!(s.meta.version, Version(0));
    assert_eq!(s.meta.expires_at, None);
    assert_eq!(s.data, data(json!({"legacy": true})));
    let s = e
        .store
        .replace(
            &key,
            data(json!({"legacy": false})),
            Expiry::Default,
            Some(Version(0).into()),
        )
        .await
        .unwrap();
    assert_eq!(s.meta.version, Version(1));
    assert_eq!(s.meta.expires_at, Some(t(1_209_600)));
}

#[tokio::test]
async fn corrupted_data_reads_as_an_empty_session() {
    let e = env().await;
    let key = SessionKey::generate().unwrap();
    e.put_raw(
        &key,
        &[
            ("data", AttributeValue::S("not json".into())),
            ("version", AttributeValue::N("3".into())),
        ],
    )
    .await;
    let s = e.store.load(&key).await.unwrap();
    assert!(s.data.is_empty());
    assert_eq!(s.meta.version, Version(3));
}

const TEN_YEARS: i64 = 315_360_000;

#[tokio::test]
async fn a_fixed_expiry_is_never_more_than_ten_years_ahead() {
    let e = env().await;
    let twenty_years = Expiry::At(t(2 * TEN_YEARS));
    let s = e
        .store
        .create(SessionData::new(), twenty_years)
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(TEN_YEARS)));
    let s = e
        .store
        .replace(&s.key, data(json!({"a": 1})), twenty_years, None)
        .await
        .unwrap();
    assert_eq!(s.meta.expires_at, Some(t(TEN_YEARS)));
    // The capped time is the session's fixed time from then on: activity keeps it.
    e.clock.advance(DAY);
    let touched = e.store.touch(&s.key, None).await.unwrap();
    assert_eq!(touched.meta.expires_at, Some(t(TEN_YEARS)));
    let cycled = e.store.cycle(&s.key, None).await.unwrap();
    assert_eq!(cycled.meta.expires_at, Some(t(TEN_YEARS)));
    let loaded = e.store.load(&cycled.key).await.unwrap();
    assert_eq!(loaded.meta.expires_at, Some(t(TEN_YEARS)));
}

#[tokio::test]
async fn a_fixed_expiry_that_has_passed_is_refused_by_every_write() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    let past = Expiry::At(t(-1));
    let refused = |r: Result<_, StoreError>| matches!(r, Err(StoreError::InvalidData(_)));
    assert!(refused(e.store.create(SessionData::new(), past).await));
    assert!(refused(
        e.store
            .replace(&s.key, SessionData::new(), Expiry::At(t(0)), None)
            .await
    ));
    assert_eq!(e.count().await, 1);
    assert_eq!(e.store.load(&s.key).await.unwrap(), s);
}

/// A store that reads and writes Django's signed format.
async fn django_env() -> Env<Store> {
    env_with(with_django_codec).await
}

#[tokio::test]
async fn a_principals_live_sessions_are_listed_newest_first_by_handle_never_by_key() {
    let e = env().await;
    let alice = principal("user-1");
    let mut made = Vec::new();
    for i in 0..3 {
        let s = e
            .store
            .create_owned(data(json!({"n": i})), Expiry::Default, Some(alice.clone()))
            .await
            .unwrap();
        assert_eq!(s.principal.as_ref(), Some(&alice));
        assert_eq!(
            e.store.load(&s.key).await.unwrap().principal,
            Some(alice.clone())
        );
        made.push(s);
        e.clock.advance(Duration::from_secs(10));
    }
    let other = e
        .store
        .create_owned(
            SessionData::new(),
            Expiry::Default,
            Some(principal("user-2")),
        )
        .await
        .unwrap();
    let anonymous = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(anonymous.principal, None);
    let newest_first: Vec<String> = made.iter().rev().map(|s| handle(&s.key)).collect();
    let pages = listed_handles(&e.store, &alice, 2).await;
    assert_eq!(pages.concat(), newest_first);
    assert_eq!(pages[0].len(), 2);
    let page = e.store.list(&alice, 2, None).await.unwrap();
    let cursor = page.next.unwrap();
    for s in &made {
        assert!(!cursor.contains(s.key.as_str()) && !handle(&s.key).contains(s.key.as_str()));
    }
    assert_eq!(page.sessions[0].created, made[2].meta.created);
    assert_eq!(page.sessions[0].expires_at, made[2].meta.expires_at);
    assert_eq!(
        listed_handles(&e.store, &principal("user-2"), 50).await,
        [[handle(&other.key)]]
    );
    assert_eq!(
        listed_handles(&e.store, &principal("nobody"), 50).await,
        [Vec::<String>::new()]
    );
}

#[tokio::test]
async fn a_session_leaves_its_principals_listing_when_it_dies_moves_or_changes_hands() {
    let e = env().await;
    let alice = principal("alice");
    let bob = principal("bob");
    let own = |p: &session_store::Principal| Some(p.clone());
    let deleted = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own(&alice))
        .await
        .unwrap();
    let _expiring = e
        .store
        .create_owned(
            SessionData::new(),
            Expiry::idle_seconds(60).unwrap(),
            own(&alice),
        )
        .await
        .unwrap();
    let cycled = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own(&alice))
        .await
        .unwrap();
    let handed = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own(&alice))
        .await
        .unwrap();
    let cleared = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own(&alice))
        .await
        .unwrap();
    let login = e
        .store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();

    e.store.delete(&deleted.key, None).await.unwrap();
    let moved = e.store.cycle(&cycled.key, None).await.unwrap();
    assert_eq!(moved.principal, own(&alice));
    use session_store::Ownership;
    let to_bob = log_in(&e.store, &handed.key, SessionData::new(), &bob).await;
    assert_eq!(to_bob.principal, own(&bob));
    let none = e
        .store
        .replace_owned(
            &cleared.key,
            SessionData::new(),
            Expiry::Default,
            Ownership::Clear,
            None,
        )
        .await
        .unwrap();
    assert_eq!(none.principal, None);
    let logged_in = log_in(&e.store, &login.key, data(json!({"cart": 1})), &alice).await;
    assert_eq!(
        e.store.load(&login.key).await.unwrap().principal,
        own(&alice)
    );
    assert_eq!(logged_in.meta.created, login.meta.created);
    e.clock.advance(Duration::from_secs(61));

    let mut listed = listed_handles(&e.store, &alice, 50).await.concat();
    listed.sort();
    let mut wanted = vec![handle(&moved.key), handle(&login.key)];
    wanted.sort();
    assert_eq!(
        listed, wanted,
        "not the deleted, expired, cycled-away, handed-over or cleared ones"
    );
    assert_eq!(
        listed_handles(&e.store, &bob, 50).await.concat(),
        [handle(&handed.key)]
    );
}

#[tokio::test]
async fn revoking_a_session_by_handle_removes_it_and_only_for_its_principal() {
    let e = env().await;
    let alice = principal("alice");
    let s = owned_by(&e.store, &alice).await;
    let kept = owned_by(&e.store, &alice).await;
    let id = session_store::SessionHandle::of(&s.key);
    assert!(not_found(e.store.revoke(&principal("mallory"), &id).await));
    assert!(e.store.exists(&s.key).await.unwrap());
    e.store.revoke(&alice, &id).await.unwrap();
    assert!(not_found(e.store.load(&s.key).await));
    assert!(not_found(e.store.revoke(&alice, &id).await), "only once");
    let unknown = session_store::SessionHandle::of(&SessionKey::generate().unwrap());
    assert!(not_found(e.store.revoke(&alice, &unknown).await));
    assert_eq!(
        listed_handles(&e.store, &alice, 50).await.concat(),
        [handle(&kept.key)]
    );
}

#[tokio::test]
async fn each_of_more_sessions_than_one_index_page_is_revoked_by_its_handle() {
    let e = env().await;
    let alice = principal("alice");
    let mut keys = Vec::new();
    for _ in 0..130 {
        keys.push(owned_by(&e.store, &alice).await.key);
    }
    // Oldest first: the first ones are on the index's second page of 100.
    for (n, key) in keys.iter().enumerate() {
        let id = session_store::SessionHandle::of(key);
        e.store.revoke(&alice, &id).await.unwrap();
        assert!(not_found(e.store.load(key).await), "session {n}");
        if n == 0 {
            assert_eq!(
                listed_handles(&e.store, &alice, 100).await.concat().len(),
                129
            );
        }
    }
    assert!(
        listed_handles(&e.store, &alice, 100)
            .await
            .concat()
            .is_empty()
    );
}

#[tokio::test]
async fn after_a_revoke_of_all_answers_no_earlier_session_of_the_principal_is_served() {
    let e = env().await;
    let alice = principal("alice");
    let own = || Some(alice.clone());
    let listed = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    let mine = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    let bobs = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, Some(principal("bob")))
        .await
        .unwrap();
    // A session the index does not list yet (its entry is written, the index lags).
    let unlisted = SessionKey::generate().unwrap();
    let mut item = e.raw_item(&listed.key).await.unwrap();
    item.remove("principal_position");
    item.remove("session_key");
    let attributes: Vec<(&str, AttributeValue)> =
        item.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    e.put_raw(&unlisted, &attributes).await;
    assert!(e.store.exists(&unlisted).await.unwrap());

    let done = e.store.revoke_all(&alice, Some(&mine.key)).await.unwrap();
    assert_eq!(
        done,
        session_store::Revocation {
            revoked: 1,
            complete: true
        }
    );
    for key in [&listed.key, &unlisted] {
        assert!(not_found(e.store.load(key).await));
        assert!(!e.store.exists(key).await.unwrap());
        assert!(not_found(e.store.touch(key, None).await));
        assert!(not_found(e.store.update(key, None, |_| Ok(())).await));
        assert!(not_found(e.store.cycle(key, None).await));
    }
    assert!(
        e.store.load(&mine.key).await.is_ok(),
        "the caller's own session survives"
    );
    assert!(e.store.load(&bobs.key).await.is_ok());
    assert_eq!(
        listed_handles(&e.store, &alice, 50).await.concat(),
        [handle(&mine.key)]
    );

    // A session that gets the principal after the revoke survives it: a new login, and
    // an older anonymous session logged in.
    e.clock.advance(Duration::from_secs(1));
    let anonymous = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    let later = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    log_in(&e.store, &anonymous.key, SessionData::new(), &alice).await;
    assert!(e.store.load(&later.key).await.is_ok());
    assert!(e.store.load(&anonymous.key).await.is_ok());
    let mut now_listed = listed_handles(&e.store, &alice, 50).await.concat();
    now_listed.sort();
    let mut wanted = vec![
        handle(&mine.key),
        handle(&later.key),
        handle(&anonymous.key),
    ];
    wanted.sort();
    assert_eq!(now_listed, wanted);
}

/// Takes `key`'s entry out of the principal index, as an index that has not listed the
/// session yet would (the item keeps its principal and the time it got it).
async fn unlisted<S: SessionStore>(e: &Env<S>, key: &SessionKey) {
    let mut item = e.raw_item(key).await.unwrap();
    item.remove("principal_position");
    item.remove("session_key");
    let attributes: Vec<(&str, AttributeValue)> =
        item.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    e.put_raw(key, &attributes).await;
}

#[tokio::test]
async fn no_write_brings_back_a_session_that_a_revocation_covers() {
    for codec in ["json", "django"] {
        let e = if codec == "json" {
            env().await
        } else {
            django_env().await
        };
        let alice = principal("42");
        let user_data = || data(json!({"_auth_user_id": "42"}));
        let k = e
            .store
            .create_owned(user_data(), Expiry::Default, Some(alice.clone()))
            .await
            .unwrap()
            .key;
        unlisted(&e, &k).await;
        let since = e.raw_item(&k).await.unwrap()["principal_since"].clone();
        e.clock.advance(Duration::from_secs(1));
        let done = e.store.revoke_all(&alice, None).await.unwrap();
        assert_eq!(done.revoked, 0, "{codec}: the index did not list it");
        assert!(not_found(e.store.load(&k).await), "{codec}");
        e.clock.advance(Duration::from_secs(1));

        let keep = session_store::Ownership::Keep;
        let again = session_store::Ownership::Set(alice.clone());
        let attempts = [
            ("PUT with its principal", again.clone(), user_data()),
            ("PUT with no principal field", keep, user_data()),
        ];
        for (what, owner, body) in attempts {
            let put = e
                .store
                .replace_owned(&k, body, Expiry::Default, owner, None)
                .await;
            assert!(not_found(put), "{codec}: {what}");
        }
        if codec == "json" {
            let cleared = e
                .store
                .replace_owned(
                    &k,
                    SessionData::new(),
                    Expiry::Default,
                    session_store::Ownership::Clear,
                    None,
                )
                .await;
            assert!(not_found(cleared), "{codec}: PUT with principal null");
        }
        assert!(
            not_found(e.store.update(&k, None, |_| Ok(())).await),
            "{codec}"
        );
        assert!(not_found(e.store.touch(&k, None).await), "{codec}");
        assert!(not_found(e.store.cycle(&k, None).await), "{codec}");
        assert!(not_found(e.store.load(&k).await), "{codec}: still dead");
        let item = e.raw_item(&k).await;
        if let Some(item) = item.filter(|i| i.contains_key("principal")) {
            assert_eq!(
                item["principal_since"], since,
                "{codec}: the time it got its principal never moves"
            );
        }
    }
}

#[tokio::test]
async fn with_a_cap_one_session_more_revokes_the_one_that_has_had_the_principal_longest() {
    let e = env_with(|c| c.max_per_principal = Some(2)).await;
    let alice = principal("alice");
    let own = || Some(alice.clone());
    let first = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(1));
    let second = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    let bobs = owned_by(&e.store, &principal("bob")).await;
    let anonymous = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(1));
    let third = e
        .store
        .create_owned(SessionData::new(), Expiry::Default, own())
        .await
        .unwrap();
    assert!(not_found(e.store.load(&first.key).await), "the oldest went");
    for key in [&second.key, &third.key, &bobs.key, &anonymous.key] {
        assert!(e.store.load(key).await.is_ok());
    }
    // A login into an older anonymous session counts as the newest.
    e.clock.advance(Duration::from_secs(1));
    log_in(&e.store, &anonymous.key, SessionData::new(), &alice).await;
    assert!(not_found(e.store.load(&second.key).await));
    // A cycle moves a session: the count stays, nothing else goes.
    let moved = e.store.cycle(&third.key, None).await.unwrap();
    let mut listed = listed_handles(&e.store, &alice, 50).await.concat();
    listed.sort();
    let mut wanted = vec![handle(&moved.key), handle(&anonymous.key)];
    wanted.sort();
    assert_eq!(listed, wanted);
    assert!(
        e.store.load(&bobs.key).await.is_ok(),
        "another principal's are not counted"
    );
}

#[tokio::test]
async fn with_a_cap_concurrent_logins_leave_no_more_than_the_cap_once_all_have_answered() {
    let e = env_with(|c| c.max_per_principal = Some(2)).await;
    let carol = principal("carol");
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = e.other_writer();
        let p = carol.clone();
        logins.spawn(async move {
            store
                .create_owned(SessionData::new(), Expiry::Default, Some(p))
                .await
        });
    }
    let created: Vec<SessionKey> = logins
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap().key)
        .collect();
    // Read on the writers' own clock.
    let reader = e.other_writer();
    let mut live = 0;
    for key in &created {
        live += usize::from(reader.load(key).await.is_ok());
    }
    assert_eq!(
        live, 2,
        "the cap, and no fewer: each login removed only the excess"
    );
    assert_eq!(listed_handles(&reader, &carol, 50).await.concat().len(), 2);
}

#[tokio::test]
async fn on_a_global_table_a_session_is_written_only_in_its_home_region() {
    let e = env_with(|c| c.region = Some("eu-west-1".into())).await;
    let ours = e
        .store
        .create(data(json!({"n": 1})), Expiry::Default)
        .await
        .unwrap();
    let home = |i: Option<Item>| i.and_then(|i| item::View(&i).home_region().map(str::to_owned));
    assert_eq!(
        home(e.raw_item(&ours.key).await).as_deref(),
        Some("eu-west-1")
    );
    // A session of another region, as replication brings it here.
    let theirs = e.copy_homed_in(&ours.key, "us-east-1").await;
    let before = e.raw_item(&theirs).await;
    e.clock.advance(Duration::from_secs(600));
    // Read anywhere, and a read's refresh is left to the home region.
    assert_eq!(
        e.store.load(&theirs).await.unwrap().data,
        data(json!({"n": 1}))
    );
    assert!(e.store.load_and_touch(&theirs).await.is_ok());
    assert!(e.store.exists(&theirs).await.unwrap());
    let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Misdirected { home }) if home == "us-east-1");
    let tag = Some(Expected::Exists);
    assert!(refused(
        e.store
            .replace(&theirs, SessionData::new(), Expiry::Default, None)
            .await
            .map(drop)
    ));
    assert!(refused(
        e.store
            .replace(&theirs, SessionData::new(), Expiry::Default, tag)
            .await
            .map(drop)
    ));
    assert!(refused(e.store.touch(&theirs, None).await.map(drop)));
    assert!(refused(
        e.store.update(&theirs, None, |_| Ok(())).await.map(drop)
    ));
    assert!(refused(e.store.cycle(&theirs, None).await.map(drop)));
    assert!(refused(e.store.delete(&theirs, None).await));
    assert!(refused(e.store.delete(&theirs, tag).await));
    assert_eq!(e.raw_item(&theirs).await, before, "nothing written");
    // This region's own are written as ever, and a cycle keeps this region as home.
    let moved = e.store.cycle(&ours.key, None).await.unwrap();
    assert_eq!(
        home(e.raw_item(&moved.key).await).as_deref(),
        Some("eu-west-1")
    );
    e.store.delete(&moved.key, None).await.unwrap();
    assert!(e.raw_item(&moved.key).await.is_none());
}

#[tokio::test]
async fn each_revocation_covers_its_own_time_and_spares_only_its_own_exception() {
    let e = env().await;
    let alice = principal("alice");
    let attackers = owned_by(&e.store, &alice).await.key;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(owned_by(&e.store, &alice).await.key);
    }
    // An earlier revocation that spared the attacker's session, cut short by its
    // deadline: it is still under way.
    let hurried = e
        .store
        .until(std::time::Instant::now() + Duration::from_millis(250));
    let first = hurried.revoke_all(&alice, Some(&attackers)).await.unwrap();
    assert!(!first.complete);
    for key in &others {
        assert!(
            not_found(e.store.load(key).await),
            "the watermark holds already"
        );
    }
    e.clock.advance(Duration::from_secs(1));
    others.push(owned_by(&e.store, &alice).await.key);
    let users = owned_by(&e.store, &alice).await.key;
    e.clock.advance(Duration::from_secs(1));
    let rest = e.store.revoke_all(&alice, Some(&users)).await.unwrap();
    assert!(rest.complete);
    assert_eq!(first.revoked + rest.revoked, 5);
    assert!(
        not_found(e.store.load(&attackers).await),
        "not spared again"
    );
    assert!(e.store.load(&users).await.is_ok(), "its own exception");
    for key in others.iter().chain([&attackers]) {
        assert!(e.raw_item(key).await.is_none(), "removed");
    }
    // A new call after that one completed sets a new watermark, and spares nothing.
    e.clock.advance(Duration::from_secs(1));
    let again = e.store.revoke_all(&alice, None).await.unwrap();
    assert_eq!(
        again,
        session_store::Revocation {
            revoked: 1,
            complete: true
        }
    );
}

#[tokio::test]
async fn an_exception_never_brings_back_a_session_an_earlier_revocation_covers() {
    let e = env().await;
    let alice = principal("alice");
    let k = owned_by(&e.store, &alice).await.key;
    unlisted(&e, &k).await;
    e.clock.advance(Duration::from_secs(1));
    e.store.revoke_all(&alice, None).await.unwrap();
    assert!(not_found(e.store.load(&k).await));
    e.clock.advance(Duration::from_secs(1));
    e.store.revoke_all(&alice, Some(&k)).await.unwrap();
    assert!(
        not_found(e.store.load(&k).await),
        "not revived by an exception"
    );
}

#[tokio::test]
async fn a_revocation_in_the_same_millisecond_as_another_keeps_none_of_its_exception() {
    let e = env().await;
    let alice = principal("alice");
    let spared = owned_by(&e.store, &alice).await.key;
    let other = owned_by(&e.store, &alice).await.key;
    let first = e.store.revoke_all(&alice, Some(&spared)).await.unwrap();
    assert_eq!((first.revoked, first.complete), (1, true));
    assert!(e.store.load(&spared).await.is_ok());
    assert!(not_found(e.store.load(&other).await));
    // The clock has not moved: the second call still gets a time of its own, later.
    let second = e.store.revoke_all(&alice, None).await.unwrap();
    assert_eq!((second.revoked, second.complete), (1, true));
    assert!(not_found(e.store.load(&spared).await));
}

#[tokio::test]
async fn with_the_django_codec_the_user_in_the_data_is_the_principal() {
    let e = django_env().await;
    let user = principal("42");
    let invalid = |r: Result<_, StoreError>| matches!(r, Err(StoreError::InvalidData(_)));
    let s = e
        .store
        .create(data(json!({"_auth_user_id": "42"})), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.principal, Some(user.clone()));
    let disagreeing = e
        .store
        .create_owned(
            data(json!({"_auth_user_id": "42"})),
            Expiry::Default,
            Some(principal("7")),
        )
        .await;
    assert!(invalid(disagreeing));
    // Django's login into an anonymous session: a merge that adds the user.
    let anonymous = e
        .store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();
    let logged_in = e
        .store
        .update(&anonymous.key, None, |d| {
            d.insert("_auth_user_id".into(), json!("42"));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(logged_in.principal, Some(user.clone()));
    let mut listed = listed_handles(&e.store, &user, 50).await.concat();
    listed.sort();
    let mut wanted = vec![handle(&s.key), handle(&anonymous.key)];
    wanted.sort();
    assert_eq!(listed, wanted);
    // A replace with another user moves the session; clearing it under a user is refused.
    let moved = e
        .store
        .replace(
            &s.key,
            data(json!({"_auth_user_id": 43})),
            Expiry::Default,
            None,
        )
        .await
        .unwrap();
    assert_eq!(moved.principal, Some(principal("43")));
    let cleared = e
        .store
        .replace_owned(
            &s.key,
            data(json!({"_auth_user_id": "43"})),
            Expiry::Default,
            session_store::Ownership::Clear,
            None,
        )
        .await;
    assert!(invalid(cleared));
    assert_eq!(
        listed_handles(&e.store, &user, 50).await.concat(),
        [handle(&anonymous.key)]
    );
}

#[tokio::test]
async fn with_the_django_codec_a_revoked_session_is_a_tombstone_outside_every_listing() {
    let e = django_env().await;
    let alice = principal("alice");
    let s = owned_by(&e.store, &alice).await;
    let gone = owned_by(&e.store, &alice).await;
    e.store
        .revoke(&alice, &session_store::SessionHandle::of(&s.key))
        .await
        .unwrap();
    e.store.delete(&gone.key, None).await.unwrap();
    for key in [&s.key, &gone.key] {
        let item = e.raw_item(key).await.unwrap();
        assert!(is_tombstone_of_empty_session(&item, t(0)));
        assert!(!item.contains_key("principal") && !item.contains_key("principal_position"));
    }
    assert_eq!(
        listed_handles(&e.store, &alice, 50).await,
        [Vec::<String>::new()]
    );
}

/// A session that expired a second ago.
async fn expired_session(e: &Env<Store>) -> session_store::Session {
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::idle_seconds(60).unwrap())
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(61));
    s
}

#[tokio::test]
async fn a_delete_of_an_expired_session_answers_as_for_a_missing_one_and_leaves_it_to_ttl() {
    let e = env().await;
    let s = expired_session(&e).await;
    let before = e.raw_item(&s.key).await;
    e.expect_requests(2, "create and raw read");
    e.store.delete(&s.key, None).await.unwrap();
    e.expect_requests(1, "one conditional DeleteItem");
    assert_eq!(e.raw_item(&s.key).await, before, "nothing written");
    let demanded = e.store.delete(&s.key, Some(Expected::Exists)).await;
    assert!(matches!(demanded, Err(StoreError::VersionConflict)));
    // A live one and a missing one are deleted as ever.
    let live = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    e.store.delete(&live.key, None).await.unwrap();
    assert!(e.raw_item(&live.key).await.is_none());
    e.store.delete(&live.key, None).await.unwrap();
}

#[tokio::test]
async fn with_the_django_codec_a_removal_leaves_a_tombstone_that_reads_as_absent() {
    let e = django_env().await;
    let deleted = e
        .store
        .create(data(json!({"u": 1})), Expiry::Default)
        .await
        .unwrap();
    let cycled_away = e
        .store
        .create(data(json!({"u": 2})), Expiry::Default)
        .await
        .unwrap();
    // The Django backend ignores `expires_at` and would go on loading an expired one.
    let expired = expired_session(&e).await;
    e.store.delete(&deleted.key, None).await.unwrap();
    let cycled = e.store.cycle(&cycled_away.key, None).await.unwrap();
    e.store.delete(&expired.key, None).await.unwrap();
    for key in [&deleted.key, &cycled_away.key, &expired.key] {
        let item = e.raw_item(key).await.unwrap();
        assert!(is_tombstone_of_empty_session(&item, t(61)), "{item:?}");
        assert!(not_found(e.store.load(key).await));
        assert!(not_found(e.store.load_and_touch(key).await));
        assert!(!e.store.exists(key).await.unwrap());
        assert!(not_found(e.store.touch(key, None).await));
        assert!(not_found(
            e.store
                .replace(key, SessionData::new(), Expiry::Default, None)
                .await
        ));
        assert!(not_found(e.store.update(key, None, |_| Ok(())).await));
        assert!(not_found(e.store.cycle(key, None).await));
        let demanded = e.store.delete(key, Some(Expected::Exists)).await;
        assert!(matches!(demanded, Err(StoreError::VersionConflict)));
        e.store.delete(key, None).await.unwrap();
        assert_eq!(
            e.raw_item(key).await,
            Some(item),
            "a tombstone is never rewritten"
        );
    }
    assert_eq!(
        e.store.load(&cycled.key).await.unwrap().data,
        data(json!({"u": 2}))
    );
    // A write of the Django backend onto a tombstone changes its data, not what it is.
    e.backend_save(&deleted.key, &django_codec_data(json!({"u": 1})))
        .await;
    assert!(not_found(e.store.load(&deleted.key).await));
    assert!(!e.store.exists(&deleted.key).await.unwrap());
    assert_eq!(
        e.count().await,
        4,
        "the three tombstones and the cycled session"
    );
}

#[tokio::test]
async fn with_the_django_codec_a_tag_names_the_data_and_a_backend_write_fails_it() {
    let e = django_env().await;
    let s = e
        .store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();
    let read = e.store.load(&s.key).await.unwrap().meta.tag();
    assert_eq!(read, s.meta.tag());
    assert!(read.data.is_some());
    // The backend saves: the data changes, the version does not.
    e.backend_save(&s.key, &django_codec_data(json!({"cart": 2})))
        .await;
    let now = e.store.load(&s.key).await.unwrap();
    assert_eq!(
        (now.meta.version, now.data.clone()),
        (read.version, data(json!({"cart": 2})))
    );
    assert_ne!(now.meta.tag(), read);
    let before = e.raw_item(&s.key).await;
    let stale = Some(Expected::Tag(read));
    assert!(conflict(
        e.store
            .replace(&s.key, data(json!({"cart": 3})), Expiry::Default, stale)
            .await
    ));
    assert!(conflict(e.store.touch(&s.key, stale).await));
    assert!(conflict(e.store.update(&s.key, stale, |_| Ok(())).await));
    assert!(conflict(e.store.cycle(&s.key, stale).await));
    assert!(conflict(e.store.delete(&s.key, stale).await));
    let version_only = Some(Expected::from(read.version));
    assert!(conflict(e.store.touch(&s.key, version_only).await));
    assert!(conflict(e.store.delete(&s.key, version_only).await));
    assert_eq!(e.raw_item(&s.key).await, before, "nothing written");
    // With the tag of what the backend wrote, the write goes through.
    let replaced = e
        .store
        .replace(
            &s.key,
            data(json!({"cart": 3})),
            Expiry::Default,
            Some(now.meta.tag().into()),
        )
        .await
        .unwrap();
    assert_eq!(replaced.meta.version, read.version.next());
    assert_eq!(
        e.store.load(&s.key).await.unwrap().meta.tag(),
        replaced.meta.tag()
    );
    e.store
        .delete(&s.key, Some(replaced.meta.tag().into()))
        .await
        .unwrap();
    assert!(not_found(e.store.load(&s.key).await));
}

#[tokio::test]
async fn with_the_json_codec_a_tag_with_a_data_hash_never_matches() {
    let e = env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    assert_eq!(s.meta.tag().data, None);
    let foreign = session_store::EntityTag::parse(&format!("{}.0123456789ab", s.meta.version))
        .map(Expected::Tag);
    e.reset_requests();
    assert!(conflict(e.store.touch(&s.key, foreign).await));
    assert!(conflict(
        e.store
            .replace(&s.key, SessionData::new(), Expiry::Default, foreign)
            .await
    ));
    assert!(conflict(e.store.delete(&s.key, foreign).await));
    e.expect_requests(0, "refused before any request");
    assert_eq!(e.store.load(&s.key).await.unwrap(), s);
}

#[tokio::test]
async fn data_inflating_past_the_cap_is_an_error_never_an_empty_session() {
    use session_store::{Codec, DjangoCodec, DjangoKeys, Secret};
    let e = django_env().await;
    let s = e
        .store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();
    let keys = DjangoKeys {
        secret_key: Secret::new("store-test-secret"),
        fallbacks: vec![],
    };
    let pad = json!({ "pad": " ".repeat(2 * 1024 * 1024) });
    let bomb = DjangoCodec::new(&keys)
        .with_max_decompressed(16 * 1024 * 1024)
        .encode(pad.as_object().unwrap(), t(0))
        .unwrap();
    let mut item = e.raw_item(&s.key).await.unwrap();
    item.insert("data".into(), AttributeValue::S(bomb));
    let attributes: Vec<(&str, AttributeValue)> =
        item.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    e.put_raw(&s.key, &attributes).await;
    let over =
        |r: Result<_, StoreError>| matches!(r, Err(StoreError::DataOverCap { limit: 1_048_576 }));
    assert!(over(e.store.load(&s.key).await));
    assert!(over(e.store.load_and_touch(&s.key).await));
    assert!(over(
        e.store
            .update(&s.key, None, |d| {
                d.clear();
                Ok(())
            })
            .await
    ));
    assert!(over(e.store.cycle(&s.key, None).await));
    assert_eq!(e.raw_item(&s.key).await, Some(item), "nothing written");
    assert!(e.store.exists(&s.key).await.unwrap());
    let replaced = e
        .store
        .replace(&s.key, data(json!({"fresh": true})), Expiry::Default, None)
        .await
        .unwrap();
    assert_eq!(replaced.data, data(json!({"fresh": true})));
    assert_eq!(e.store.load(&s.key).await.unwrap().data, replaced.data);
}

#[tokio::test]
async fn a_merge_update_checks_the_rule_it_writes_into_django_data() {
    let e = django_env().await;
    let s = e
        .store
        .create(data(json!({"a": 1})), Expiry::Default)
        .await
        .unwrap();
    let far = e
        .store
        .update(&s.key, None, |d| {
            d.insert("_session_expiry".into(), json!("9999-12-31T23:59:59"));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(far.meta.expires_at, Some(t(TEN_YEARS)));
    let before = e.raw_item(&s.key).await;
    for past in [json!("2020-01-01T00:00:00"), json!(-5)] {
        let r = e
            .store
            .update(&s.key, None, |d| {
                d.insert("_session_expiry".into(), past.clone());
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(StoreError::InvalidData(_))), "{past}");
    }
    assert_eq!(e.raw_item(&s.key).await, before, "nothing written");
}

#[tokio::test]
async fn items_of_the_django_backend_expired_by_their_data_are_never_served_nor_written() {
    use session_store::{Codec, DjangoCodec, DjangoKeys, Secret};
    let e = django_env().await;
    let codec = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new("store-test-secret"),
        fallbacks: vec![],
    });
    for expiry in [json!("2020-01-01T00:00:00"), json!(-1)] {
        let key = SessionKey::generate().unwrap();
        let raw = codec
            .encode(&data(json!({"u": 1, "_session_expiry": expiry})), t(0))
            .unwrap();
        e.put_raw(&key, &[("data", AttributeValue::S(raw))]).await;
        let before = e.raw_item(&key).await;
        assert!(not_found(e.store.load(&key).await), "{expiry}");
        assert!(not_found(e.store.load_and_touch(&key).await));
        assert!(!e.store.exists(&key).await.unwrap());
        assert!(not_found(e.store.touch(&key, None).await));
        assert!(not_found(
            e.store
                .replace(&key, SessionData::new(), Expiry::Default, None)
                .await
        ));
        assert!(not_found(e.store.update(&key, None, |_| Ok(())).await));
        assert!(not_found(e.store.cycle(&key, None).await));
        assert!(matches!(
            e.store
                .replace(
                    &key,
                    SessionData::new(),
                    Expiry::Default,
                    Some(Expected::Exists)
                )
                .await,
            Err(StoreError::VersionConflict)
        ));
        assert_eq!(e.raw_item(&key).await, before, "{expiry}: nothing written");
    }
    assert_eq!(e.count().await, 2, "no new key");
}

#[tokio::test]
async fn requests_per_operation_stay_within_the_budget() {
    let e = dynamo_env(|_| {}).await;
    let mut measured = Vec::new();
    let s = e
        .store
        .create(data(json!({"n": 1})), Expiry::Default)
        .await
        .unwrap();
    measured.push(("create", e.requests(), 1));
    e.store.load(&s.key).await.unwrap();
    measured.push(("get", e.requests(), 1));
    e.store.exists(&s.key).await.unwrap();
    measured.push(("exists", e.requests(), 1));
    let unknown = SessionKey::generate().unwrap();
    assert!(not_found(e.store.load(&unknown).await));
    measured.push(("get of an unknown key", e.requests(), 1));
    e.store
        .replace(&s.key, data(json!({"n": 2})), Expiry::Default, None)
        .await
        .unwrap();
    measured.push(("replace", e.requests(), 1));
    let tag = |v: Version| Some(Expected::from(v));
    let replaced = e
        .store
        .replace(
            &s.key,
            data(json!({"n": 3})),
            Expiry::Default,
            tag(Version(2)),
        )
        .await
        .unwrap();
    measured.push(("replace with If-Match", e.requests(), 1));
    e.store
        .touch(&s.key, tag(replaced.meta.version))
        .await
        .unwrap();
    measured.push(("touch with If-Match", e.requests(), 1));
    e.store.touch(&s.key, None).await.unwrap();
    measured.push(("touch", e.requests(), 1));
    e.store.load_and_touch(&s.key).await.unwrap();
    measured.push(("get with touch, not due", e.requests(), 1));
    e.store
        .update(&s.key, None, |d| {
            d.insert("m".into(), json!(1));
            Ok(())
        })
        .await
        .unwrap();
    measured.push(("merge-update", e.requests(), 2));
    let cycled = e.store.cycle(&s.key, None).await.unwrap();
    measured.push(("cycle", e.requests(), 2));
    e.store.delete(&cycled.key, None).await.unwrap();
    measured.push(("delete", e.requests(), 1));
    within_budget("json codec", &measured);
}

/// Prints each operation's request count beside its budget, then holds it to it.
fn within_budget(codec: &str, measured: &[(&str, u64, u64)]) {
    for (op, got, budget) in measured {
        println!("requests per operation, {codec}: {op}: {got} (budget {budget})");
    }
    for (op, got, budget) in measured {
        assert_eq!(got, budget, "{codec}: {op}");
    }
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_reported_as_unavailable() {
    let store = DynamoStore::new(testkit::unreachable_client(), StoreConfig::default()).unwrap();
    let key = SessionKey::generate().unwrap();
    assert!(matches!(
        store.load(&key).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.create(SessionData::new(), Expiry::Default).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_missing_table_is_an_error_that_is_not_retryable() {
    let e = dynamo_env(|c| c.table_name = "no-such-table".into()).await;
    let key = SessionKey::generate().unwrap();
    assert!(matches!(
        e.store.load(&key).await,
        Err(StoreError::Rejected { .. })
    ));
}

/// A store of the Django codec on a fresh table.
async fn dynamo_django_env() -> Env<DynamoStore> {
    dynamo_env(with_django_codec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_update_racing_a_backend_save_keeps_the_backends_change() {
    let e = dynamo_django_env().await;
    let s = e
        .store
        .create(data(json!({"cart": 1})), Expiry::Default)
        .await
        .unwrap();
    let mut calls = 0;
    let updated = e
        .store
        .update(&s.key, None, |d| {
            calls += 1;
            if calls == 1 {
                // The backend saves between this update's read and its write.
                let handle = tokio::runtime::Handle::current();
                tokio::task::block_in_place(|| {
                    handle.block_on(e.backend_save(
                        &s.key,
                        &django_codec_data(json!({"cart": 1, "coupon": "X"})),
                    ))
                });
            }
            d.insert("seen".into(), json!(true));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        calls, 2,
        "the write failed on the backend's data and ran again"
    );
    let expected = data(json!({"cart": 1, "coupon": "X", "seen": true}));
    assert_eq!(updated.data, expected);
    assert_eq!(e.store.load(&s.key).await.unwrap().data, expected);
}

#[tokio::test]
async fn requests_per_operation_with_the_django_codec() {
    let e = dynamo_django_env().await;
    let mut measured = Vec::new();
    let s = e
        .store
        .create(data(json!({"n": 1})), Expiry::Default)
        .await
        .unwrap();
    e.requests();
    let tag = |s: &session_store::Session| Some(Expected::Tag(s.meta.tag()));
    let s = e
        .store
        .replace(&s.key, data(json!({"n": 2})), Expiry::Default, None)
        .await
        .unwrap();
    measured.push(("replace", e.requests(), 1));
    let s = e
        .store
        .replace(&s.key, data(json!({"n": 3})), Expiry::Default, tag(&s))
        .await
        .unwrap();
    measured.push(("replace with If-Match", e.requests(), 2));
    let s = e.store.touch(&s.key, tag(&s)).await.unwrap();
    measured.push(("touch with If-Match", e.requests(), 2));
    let s = e.store.update(&s.key, tag(&s), |_| Ok(())).await.unwrap();
    measured.push(("merge-update with If-Match", e.requests(), 2));
    let s = e.store.cycle(&s.key, tag(&s)).await.unwrap();
    measured.push(("cycle with If-Match", e.requests(), 2));
    e.store.delete(&s.key, tag(&s)).await.unwrap();
    measured.push(("delete with If-Match", e.requests(), 2));
    let other = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    e.requests();
    e.store.delete(&other.key, None).await.unwrap();
    measured.push(("delete", e.requests(), 1));
    within_budget("django codec", &measured);
}

#[tokio::test]
async fn a_session_with_a_principal_reads_in_two_requests_and_one_without_in_one() {
    let e = dynamo_env(|_| {}).await;
    let owned = e
        .store
        .create_owned(
            SessionData::new(),
            Expiry::Default,
            Some(principal("alice")),
        )
        .await
        .unwrap();
    let anonymous = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    e.requests();
    e.store.load(&anonymous.key).await.unwrap();
    e.expect_requests(1, "GetItem");
    e.store.load(&owned.key).await.unwrap();
    e.expect_requests(2, "GetItem, and GetItem of the principal's watermark");
    // A PUT that gives a session a principal reads it first (its place in the listing
    // follows its creation time), writes, then reads the watermark.
    log_in(
        &e.store,
        &anonymous.key,
        SessionData::new(),
        &principal("alice"),
    )
    .await;
    e.expect_requests(3, "GetItem, UpdateItem, GetItem of the watermark");
    e.store
        .replace(&owned.key, SessionData::new(), Expiry::Default, None)
        .await
        .unwrap();
    e.expect_requests(2, "UpdateItem, GetItem of the watermark");
}

#[tokio::test]
async fn with_a_cap_a_login_costs_three_requests_more_and_the_registrys_write() {
    let e = dynamo_env(|c| c.max_per_principal = Some(1)).await;
    let alice = principal("alice");
    e.requests();
    owned_by(&e.store, &alice).await;
    e.expect_requests(
        5,
        "PutItem; GetItem of the registry, BatchGetItem of its sessions, GetItem of the \
         watermark; PutItem of the registry",
    );
    owned_by(&e.store, &alice).await;
    e.expect_requests(
        5,
        "the same, the registry's write a TransactWriteItems that removes the oldest",
    );
}

#[tokio::test]
async fn on_a_global_table_a_delete_reads_only_when_its_condition_failed() {
    let e = dynamo_env(|c| c.region = Some("eu-west-1".into())).await;
    let ours = e
        .store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    let theirs = e.copy_homed_in(&ours.key, "us-east-1").await;
    e.requests();
    e.store.delete(&ours.key, None).await.unwrap();
    e.expect_requests(1, "DeleteItem");
    e.store.delete(&ours.key, None).await.unwrap();
    e.expect_requests(1, "DeleteItem of a missing key, which succeeds");
    assert!(matches!(
        e.store.delete(&theirs, None).await,
        Err(StoreError::Misdirected { .. })
    ));
    e.expect_requests(
        2,
        "DeleteItem refused by its condition, GetItem of what is there",
    );
}

/// Django's backend loads a session whatever its `expires_at` until TTL deletes it, so
/// where it shares the table a revocation removes the user's expired sessions too; it
/// leaves other users' sessions, tombstones and the spared session as they are. Without
/// Django, an expired session is left for TTL.
#[tokio::test]
async fn where_django_shares_the_table_a_revocation_removes_expired_sessions_too() {
    for codec in ["json", "django"] {
        let e = if codec == "json" {
            env().await
        } else {
            django_env().await
        };
        let (alice, bob) = (principal("42"), principal("43"));
        let soon = Expiry::At(e.clock.now().saturating_add(Duration::from_secs(1)));
        let make = |owner: &session_store::Principal, expiry: Expiry| {
            let store = &e.store;
            let owner = owner.clone();
            async move {
                let d = data(json!({"_auth_user_id": owner.as_str()}));
                store
                    .create_owned(d, expiry, Some(owner))
                    .await
                    .unwrap()
                    .key
            }
        };
        let expired = make(&alice, soon).await;
        let spared = make(&alice, soon).await;
        let others = make(&bob, soon).await;
        let removed = make(&alice, Expiry::Default).await;
        e.store.delete(&removed, None).await.unwrap();
        let removed_before = e.raw_item(&removed).await;
        e.clock.advance(Duration::from_secs(2));
        let done = e.store.revoke_all(&alice, Some(&spared)).await.unwrap();
        let tombstoned = |k| {
            let e = &e;
            async move {
                e.raw_item(k)
                    .await
                    .is_some_and(|i| i.contains_key("removed_at"))
            }
        };
        if codec == "django" {
            assert_eq!(done.revoked, 1, "{codec}");
            assert!(tombstoned(&expired).await, "{codec}: Django would load it");
        } else {
            assert_eq!(done.revoked, 0, "{codec}");
            assert!(
                e.raw_item(&expired).await.is_some(),
                "{codec}: left for TTL"
            );
        }
        for k in [&spared, &others] {
            let item = e.raw_item(k).await;
            assert!(
                item.is_some_and(|i| !i.contains_key("removed_at")),
                "{codec}"
            );
        }
        assert_eq!(e.raw_item(&removed).await, removed_before, "{codec}");
    }
}
