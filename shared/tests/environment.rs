//! A container's start-up path: settings and the client come from the environment alone.
//! This binary holds a single test because it changes its own process environment.

use session_store::{DynamoStore, Expiry, SessionData, SessionStore, StoreConfig};
use testkit::{RequestCounter, TableSpec};

#[tokio::test]
async fn the_store_runs_on_settings_and_a_client_from_the_environment() {
    let endpoint = testkit::endpoint();
    let table = testkit::unique_table_name("env");
    TableSpec::of_workspace()
        .unwrap()
        .create(&testkit::client(&RequestCounter::default()), &table)
        .await
        .unwrap();
    let vars = [
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("SESSION_TABLE", table.as_str()),
        ("SESSION_IDLE_TTL_SECONDS", "120"),
    ];
    for (name, value) in vars {
        // SAFETY: the only test in this binary; no other thread reads the environment now.
        unsafe { std::env::set_var(name, value) };
    }

    let (aws, config) = session_store::start().await.unwrap();
    assert_eq!(config.table_name, table);
    assert_eq!(config, StoreConfig::from_env().unwrap());
    let store = DynamoStore::new(aws.dynamodb(), config).unwrap();
    let created = store
        .create(SessionData::new(), Expiry::Default)
        .await
        .unwrap();
    let loaded = store.load(&created.key).await.unwrap();
    assert_eq!(loaded, created);
    let lifetime = created
        .meta
        .expires_at
        .unwrap()
        .since(created.meta.created.unwrap());
    assert_eq!(lifetime.as_secs(), 120);
}
