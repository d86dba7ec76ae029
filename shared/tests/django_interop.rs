//! One table, two programs: sessions written by Django through the original backend
//! (`django-dynamodb-sessions-mwas` 0.7, driven by `tools/django_backend.py`) read here, and
//! the reverse, against Dynoxide.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use session_store::item::Item;
use session_store::{
    CodecConfig, DjangoKeys, DjangoSecrets, DynamoStore, Expiry, Secret, SessionData, SessionKey,
    SessionStore, StoreConfig, Timestamp, Version,
};
use testkit::RequestCounter;

const OLD: &str = "interop-old-secret";
const NEW: &str = "interop-new-secret";
const COOKIE_AGE: i64 = 1_209_600;

struct Env {
    client: Client,
    table: String,
}

async fn env() -> Env {
    let (client, table) = testkit::fresh_table("django", &RequestCounter::default()).await;
    Env { client, table }
}

impl Env {
    fn store(&self, secret: &str, fallbacks: &[&str]) -> DynamoStore {
        let keys = DjangoKeys {
            secret_key: Secret::new(secret),
            fallbacks: fallbacks.iter().map(|f| Secret::new(*f)).collect(),
        };
        let config = StoreConfig {
            table_name: self.table.clone(),
            codec: CodecConfig::Django(DjangoSecrets::Keys(keys)),
            ..StoreConfig::default()
        };
        DynamoStore::new(self.client.clone(), config).unwrap()
    }

    /// Runs one command of the Django driver with these keys.
    fn django(&self, command: &str, secret: &str, fallbacks: &[&str], input: Value) -> Value {
        let root = testkit::workspace_root();
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tools/django_backend.py"))
            .arg(command)
            .env("SESSION_TABLE", &self.table)
            .env("AWS_ENDPOINT_URL_DYNAMODB", testkit::endpoint())
            .env("DJANGO_SECRET_KEY", secret)
            .env("DJANGO_SECRET_KEY_FALLBACKS", fallbacks.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "django_backend.py {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn django_write(&self, secret: &str, sessions: Value) -> Vec<SessionKey> {
        let out = self.django("write", secret, &[], json!({ "sessions": sessions }));
        out["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| SessionKey::parse(k.as_str().unwrap()).unwrap())
            .collect()
    }

    /// What Django reads under each key: `None` when the key is unknown to it.
    fn django_read(&self, secret: &str, fallbacks: &[&str], keys: &[&SessionKey]) -> Vec<Value> {
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let out = self.django("read", secret, fallbacks, json!({ "keys": keys }));
        out["sessions"].as_array().unwrap().clone()
    }

    /// What Django reads, and what it logged as suspicious while reading.
    fn django_read_logged(&self, secret: &str, keys: &[&SessionKey]) -> (Vec<Value>, Value) {
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let out = self.django("read", secret, &[], json!({ "keys": keys }));
        (
            out["sessions"].as_array().unwrap().clone(),
            out["warnings"].clone(),
        )
    }

    async fn item(&self, key: &SessionKey) -> Item {
        testkit::raw_item(&self.client, &self.table, key.as_str())
            .await
            .unwrap()
    }
}

/// Dictionaries that exercise the format: unicode beyond the BMP, nesting, integers
/// beyond 64 bits, floats (in Python's `repr` form, so both sides print them alike), an
/// empty dict, and one large enough to be compressed.
fn dictionaries() -> Vec<Value> {
    let cart: Vec<Value> = (0..40)
        .map(|i| json!({ "sku": format!("SKU-{i:04}"), "qty": i, "note": "same words again" }))
        .collect();
    vec![
        json!({}),
        json!({ "greeting": "Grüße, 世界", "astral": "🚀 𝄞 😀", "clé ü": "ключ", "ctl": "tab\t\u{7f}" }),
        json!({ "a": { "b": [1, { "c": [null, true, false, []] }], "d": {} } }),
        serde_json::from_str(
            r#"{"big": 123456789012345678901234567890, "neg": -98765432109876543210, "u64": 18446744073709551616}"#,
        )
        .unwrap(),
        serde_json::from_str(r#"{"f": 3.5, "g": 0.1, "h": -2.25, "e": 1e+100, "tiny": 5e-324}"#)
            .unwrap(),
        json!({ "cart": cart, "user": "Zoë" }),
    ]
}

fn object(v: &Value) -> SessionData {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn sessions_django_writes_read_here_with_the_same_dictionary() {
    let e = env().await;
    let dicts = dictionaries();
    let specs: Vec<Value> = dicts
        .iter()
        .enumerate()
        .map(|(i, d)| json!({ "data": d, "via": if i % 2 == 0 { "create" } else { "save" } }))
        .collect();
    let keys = e.django_write(OLD, Value::Array(specs));
    let store = e.store(OLD, &[]);
    for (i, (key, dict)) in keys.iter().zip(&dicts).enumerate() {
        let session = store.load(key).await.unwrap();
        assert_eq!(Value::Object(session.data), *dict);
        assert_eq!(session.meta.version, Version(0));
        assert_eq!(session.meta.expires_at, None);
        assert_eq!(
            session.meta.created.is_some(),
            i % 2 == 0,
            "created only via create()"
        );
    }
    let compressed = e.item(&keys[5]).await;
    assert!(matches!(&compressed["data"], AttributeValue::S(s) if s.starts_with('.')));
}

#[tokio::test]
async fn sessions_written_here_read_in_django_with_the_same_dictionary() {
    let e = env().await;
    let store = e.store(OLD, &[]);
    let dicts = dictionaries();
    let mut keys = Vec::new();
    for d in &dicts {
        keys.push(store.create(object(d), Expiry::Default).await.unwrap().key);
    }
    let read = e.django_read(OLD, &[], &keys.iter().collect::<Vec<_>>());
    for (got, dict) in read.iter().zip(&dicts) {
        assert_eq!(got["exists"], true);
        assert_eq!(got["data"], *dict);
        assert_eq!(got["expiry_age"], COOKIE_AGE);
    }
    let compressed = e.item(&keys[5]).await;
    assert!(matches!(&compressed["data"], AttributeValue::S(s) if s.starts_with('.')));
}

#[tokio::test]
async fn session_expiry_in_the_data_is_the_expiry_on_both_sides() {
    let e = env().await;
    let store = e.store(OLD, &[]);
    let at = "2031-01-15T10:30:00+00:00";
    let at_ts = Timestamp::from_epoch_seconds(1_926_239_400);

    // Django's rules, read here.
    let keys = e.django_write(
        OLD,
        json!([
            { "data": { "n": 1 }, "expiry": 300 },
            { "data": { "n": 2 }, "expiry": at },
            { "data": { "n": 3 }, "expiry": 0 },
        ]),
    );
    let rules: Vec<Expiry> = [
        Expiry::IdleFor(Duration::from_secs(300)),
        Expiry::At(at_ts),
        Expiry::Default,
    ]
    .into();
    for (key, rule) in keys.iter().zip(&rules) {
        assert_eq!(store.load(key).await.unwrap().meta.expiry, *rule);
    }
    // The first write here stamps the item with the data's rule.
    let before = store.now();
    let touched = store.touch(&keys[0], None).await.unwrap();
    assert_eq!(touched.meta.version, Version(1));
    assert_eq!(touched.meta.expiry, rules[0]);
    let expires = touched.meta.expires_at.unwrap().epoch_seconds();
    assert!((before.epoch_seconds() + 300..=before.epoch_seconds() + 302).contains(&expires));
    let patched = store
        .update(&keys[1], None, |d| {
            d.insert("n".into(), 20.into());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(patched.meta.expires_at, Some(at_ts));
    assert_eq!(patched.meta.expiry, Expiry::At(at_ts));

    // Rules set here, read by Django.
    let idle = store
        .create(
            object(&json!({ "m": 1 })),
            Expiry::IdleFor(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let fixed = store
        .create(object(&json!({ "m": 2 })), Expiry::At(at_ts))
        .await
        .unwrap();
    let by_data = store
        .create(
            object(&json!({ "m": 3, "_session_expiry": 900 })),
            Expiry::Default,
        )
        .await
        .unwrap();
    assert_eq!(
        by_data.meta.expiry,
        Expiry::IdleFor(Duration::from_secs(900))
    );
    let read = e.django_read(OLD, &[], &[&idle.key, &fixed.key, &by_data.key]);
    assert_eq!(read[0]["data"], json!({ "m": 1, "_session_expiry": 600 }));
    assert_eq!(read[0]["expiry_age"], 600);
    assert_eq!(read[1]["data"], json!({ "m": 2, "_session_expiry": at }));
    let age = read[1]["expiry_age"].as_i64().unwrap();
    let wanted = at_ts.epoch_seconds() - store.now().epoch_seconds();
    assert!(
        (wanted - 5..=wanted + 5).contains(&age),
        "{age} vs {wanted}"
    );
    assert_eq!(read[2]["expiry_age"], 900);
}

#[tokio::test]
async fn items_the_seed_wrote_are_replaced_patched_cycled_and_deleted_here() {
    let e = env().await;
    let store = e.store(OLD, &[]);
    let keys = e.django_write(
        OLD,
        json!([
            { "data": { "a": 1 }, "via": "save" },
            { "data": { "b": 1 } },
            { "data": { "c": 1 } },
            { "data": { "d": 1 } },
        ]),
    );
    // Their tags are version 0 and the hash of the data Django wrote.
    let mut tags = Vec::new();
    for key in &keys {
        let tag = store.load(key).await.unwrap().meta.tag();
        assert_eq!(tag.version, Version(0));
        assert!(tag.data.is_some());
        tags.push(Some(tag.into()));
    }
    assert!(
        store
            .delete(&keys[3], Some(Version(0).into()))
            .await
            .is_err(),
        "a version alone is no tag of a shared table"
    );
    let replaced = store
        .replace(
            &keys[0],
            object(&json!({ "a": 2 })),
            Expiry::Default,
            tags[0],
        )
        .await
        .unwrap();
    let patched = store
        .update(&keys[1], tags[1], |d| {
            d.insert("b".into(), 2.into());
            Ok(())
        })
        .await
        .unwrap();
    let cycled = store.cycle(&keys[2], tags[2]).await.unwrap();
    store.delete(&keys[3], tags[3]).await.unwrap();

    for s in [&replaced, &patched, &cycled] {
        assert_eq!(s.meta.version, Version(1));
        assert!(s.meta.expires_at.is_some());
        let stored = e.item(&s.key).await;
        assert!(stored.contains_key("expires_at") && stored.contains_key("version"));
    }
    assert_eq!(cycled.data, object(&json!({ "c": 1 })));
    let read = e.django_read(
        OLD,
        &[],
        &[&replaced.key, &patched.key, &cycled.key, &keys[2], &keys[3]],
    );
    assert_eq!(read[0]["data"], json!({ "a": 2 }));
    assert_eq!(read[1]["data"], json!({ "b": 2 }));
    assert_eq!(read[2]["data"], json!({ "c": 1 }));
    // The old key of a cycle and a deleted session stay as tombstones, which Django
    // loads quietly as empty sessions.
    for (i, what) in [(3, "the old key of a cycle"), (4, "a deleted session")] {
        assert_eq!(read[i]["data"], json!({}), "{what}");
    }
    assert!(e.item(&keys[3]).await.contains_key("removed_at"));
    assert!(store.load(&keys[2]).await.is_err() && store.load(&keys[3]).await.is_err());
}

#[tokio::test]
async fn a_django_save_onto_a_deleted_session_never_brings_it_back_here() {
    let e = env().await;
    let store = e.store(OLD, &[]);
    let s = store
        .create(object(&json!({ "user": 7 })), Expiry::Default)
        .await
        .unwrap();
    store.delete(&s.key, None).await.unwrap();
    let (read, warnings) = e.django_read_logged(OLD, &[&s.key]);
    assert_eq!(
        read[0]["data"],
        json!({}),
        "Django loads the tombstone as empty"
    );
    assert_eq!(
        warnings,
        json!([]),
        "and quietly: no corrupted-session warning"
    );
    // What an unsigned constant in its place would have cost: a warning on every load.
    let unsigned = SessionKey::generate().unwrap();
    e.client
        .put_item()
        .table_name(&e.table)
        .item("session_key", AttributeValue::S(unsigned.as_str().into()))
        .item("data", AttributeValue::S("removed".into()))
        .send()
        .await
        .unwrap();
    let (_, warnings) = e.django_read_logged(OLD, &[&unsigned]);
    assert_eq!(warnings, json!(["Session data corrupted"]));
    // A Django request that still holds the session saves it.
    e.django(
        "save",
        OLD,
        &[],
        json!({ "sessions": [{ "key": s.key.as_str(), "data": { "user": 7 } }] }),
    );
    assert_eq!(
        e.django_read(OLD, &[], &[&s.key])[0]["data"],
        json!({ "user": 7 })
    );
    assert!(matches!(
        store.load(&s.key).await,
        Err(session_store::StoreError::NotFound)
    ));
    assert!(!store.exists(&s.key).await.unwrap());
    assert!(store.touch(&s.key, None).await.is_err());
    assert!(e.item(&s.key).await.contains_key("removed_at"));
}

#[tokio::test]
async fn data_signed_with_a_key_now_in_the_fallbacks_reads_on_both_sides() {
    let e = env().await;
    // Django signed with the old key; this service has rotated to the new one.
    let from_django = e.django_write(OLD, json!([{ "data": { "from": "django" } }]));
    let rotated = e.store(NEW, &[OLD]);
    assert_eq!(
        rotated.load(&from_django[0]).await.unwrap().data,
        object(&json!({ "from": "django" }))
    );
    // Signed here with the old key; Django has rotated.
    let from_here = e
        .store(OLD, &[])
        .create(object(&json!({ "from": "rust" })), Expiry::Default)
        .await
        .unwrap();
    let read = e.django_read(NEW, &[OLD], &[&from_here.key]);
    assert_eq!(read[0]["data"], json!({ "from": "rust" }));
    // Without the fallback neither side can verify it: an empty session, not an error.
    let unrotated = e.store(NEW, &[]);
    assert!(
        unrotated
            .load(&from_django[0])
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let read = e.django_read(NEW, &[], &[&from_here.key]);
    assert_eq!(read[0]["data"], json!({}));
}

#[tokio::test]
async fn data_that_fails_to_verify_or_decode_reads_as_an_empty_session() {
    let e = env().await;
    let store = e.store(OLD, &[]);
    let good = store
        .create(object(&json!({ "x": 1 })), Expiry::Default)
        .await
        .unwrap();
    let AttributeValue::S(raw) = &e.item(&good.key).await["data"] else {
        panic!("data is a string");
    };
    let tampered = raw.replacen(':', "x:", 1);
    for bad in [tampered.as_str(), "", "not signed", "e30:1r31eq:wrong"] {
        let key = SessionKey::generate().unwrap();
        e.client
            .put_item()
            .table_name(&e.table)
            .item("session_key", AttributeValue::S(key.as_str().into()))
            .item("data", AttributeValue::S(bad.into()))
            .send()
            .await
            .unwrap();
        let session = store.load(&key).await.unwrap();
        assert!(session.data.is_empty(), "{bad:?}");
        let read = e.django_read(OLD, &[], &[&key]);
        assert_eq!(read[0]["data"], json!({}), "Django agrees about {bad:?}");
    }
}
