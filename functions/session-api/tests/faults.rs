//! DynamoDB failing under the API, injected by a proxy in front of moto: throttling,
//! 500s, no answer, dropped connections. After the client's bounded tries the answer is
//! a 503 with `Retry-After`, and the table holds exactly what it held before.

mod support;

use serde_json::json;
use support::{MERGE, Payload, api_behind_proxy};
use testkit::proxy::Fault;

/// The functions' client tries each request this many times.
const TRIES: u64 = 3;

#[tokio::test]
async fn a_create_refused_by_dynamodb_answers_503_after_three_tries_and_writes_nothing() {
    for fault in [
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::InternalServerError,
        Fault::DropConnection,
    ] {
        let (api, proxy) = api_behind_proxy().await;
        proxy.inject("PutItem", fault, None);
        let reply = api.post_json("/sessions", &json!({"data": {"a": 1}})).await;
        reply.assert_problem(503);
        assert_eq!(reply.header("retry-after"), Some("1"), "{fault:?}");
        assert_eq!(proxy.injected().get(&fault), Some(&TRIES), "{fault:?}");
        assert!(api.items().await.is_empty(), "{fault:?} left an item");
    }
}

#[tokio::test]
async fn throttling_that_passes_within_the_tries_is_invisible_to_the_caller() {
    let (api, proxy) = api_behind_proxy().await;
    proxy.inject("PutItem", Fault::Throttling, Some(1));
    proxy.inject("PutItem", Fault::ProvisionedThroughputExceeded, Some(1));
    let key = api.create(json!({"a": 1})).await;
    assert_eq!(proxy.injected_total(), 2);
    proxy.inject("GetItem", Fault::InternalServerError, Some(2));
    let reply = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["data"], json!({"a": 1}));
    assert_eq!(api.items().await.len(), 1);
}

#[tokio::test]
async fn a_failed_patch_or_replace_leaves_the_session_as_it_was() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"a": 1})).await;
    let path = format!("/sessions/{key}");
    proxy.inject("UpdateItem", Fault::InternalServerError, None);
    let patched = api
        .call(
            "PATCH",
            &path,
            &[MERGE],
            Payload::Text(r#"{"a": 2, "b": 3}"#),
        )
        .await;
    patched.assert_problem(503);
    assert_eq!(patched.header("retry-after"), Some("1"));
    proxy.heal();
    proxy.inject("UpdateItem", Fault::ProvisionedThroughputExceeded, None);
    let replaced = api
        .call(
            "PUT",
            &path,
            &[support::JSON],
            Payload::Text(r#"{"data": {"c": 4}}"#),
        )
        .await;
    replaced.assert_problem(503);
    proxy.heal();
    let reply = api.get(&path).await;
    assert_eq!(reply.json()["data"], json!({"a": 1}));
    assert_eq!(reply.json()["version"], json!(1));
}

#[tokio::test]
async fn a_cycle_whose_transaction_is_dropped_keeps_the_old_key_and_makes_no_new_one() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"cart": [1, 2]})).await;
    proxy.inject("TransactWriteItems", Fault::DropConnection, None);
    let reply = api
        .call(
            "POST",
            &format!("/sessions/{key}/cycle"),
            &[],
            Payload::None,
        )
        .await;
    reply.assert_problem(503);
    assert_eq!(proxy.injected_total(), TRIES);
    proxy.heal();
    let items = api.items().await;
    assert_eq!(items.len(), 1, "the cycle half-wrote: {items:?}");
    assert_eq!(api.get(&format!("/sessions/{key}")).await.status, 200);
}

#[tokio::test]
async fn a_delete_that_fails_answers_503_and_the_session_lives_on() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"a": 1})).await;
    proxy.inject("DeleteItem", Fault::Throttling, None);
    let reply = api
        .call("DELETE", &format!("/sessions/{key}"), &[], Payload::None)
        .await;
    reply.assert_problem(503);
    proxy.heal();
    assert_eq!(api.get(&format!("/sessions/{key}")).await.status, 200);
}

#[tokio::test]
async fn a_dynamodb_that_never_answers_gives_503_once_each_try_has_timed_out() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"a": 1})).await;
    proxy.inject("GetItem", Fault::Timeout, None);
    let reply = api.get(&format!("/sessions/{key}")).await;
    reply.assert_problem(503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(proxy.injected().get(&Fault::Timeout), Some(&TRIES));
}
