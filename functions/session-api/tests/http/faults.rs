//! DynamoDB failing under the API, injected by a proxy in front of Dynoxide: throttling,
//! 500s, no answer, dropped connections. After the client's bounded tries the answer is
//! a 503 with `Retry-After`, and the table holds exactly what it held before.

use std::time::{Duration, Instant};

use crate::support::{MERGE, Payload, api_behind_proxy};
use lambda_http::Request;
use serde_json::json;
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
            &[crate::support::JSON],
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
    let reply = api.cycle(&key).await;
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

#[tokio::test]
async fn a_create_whose_answer_was_lost_answers_the_session_it_wrote_and_no_other() {
    let (api, proxy) = api_behind_proxy().await;
    // DynamoDB writes the item, the answer never arrives, the SDK tries again.
    proxy.inject("PutItem", Fault::LoseResponse, Some(1));
    let reply = api.post_json("/sessions", &json!({"data": {"a": 1}})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(proxy.injected().get(&Fault::LoseResponse), Some(&1));
    let items = api.items().await;
    assert_eq!(items.len(), 1, "one session, not two: {items:?}");
    assert_eq!(
        items[0].get("session_key"),
        Some(&aws_sdk_dynamodb::types::AttributeValue::S(reply.key()))
    );
}

#[tokio::test]
async fn a_throttled_cycle_answers_503_after_the_sdk_tries_and_keeps_the_old_key() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"cart": [1]})).await;
    let before = api.items().await;
    proxy.inject("TransactWriteItems", Fault::TransactionThrottled, None);
    let reply = api.cycle(&key).await;
    reply.assert_problem(503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    let tries = proxy.injected_total();
    assert!(
        (1..=TRIES).contains(&tries),
        "{tries} transactions for one throttled cycle"
    );
    proxy.heal();
    assert_eq!(api.items().await, before);
}

#[tokio::test]
async fn a_cycle_transaction_refused_as_invalid_is_500_and_not_retried() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({})).await;
    proxy.inject("TransactWriteItems", Fault::TransactionInvalid, None);
    let reply = api.cycle(&key).await;
    reply.assert_problem(500);
    assert_eq!(proxy.injected_total(), 1);
}

/// An event whose invocation ends `left` from now, as Lambda's context tells it.
fn near_deadline(
    api: &crate::support::Api<session_store::DynamoStore>,
    method: &str,
    path: &str,
    left: Duration,
) -> Request {
    let body = if method == "PATCH" {
        Payload::Text(r#"{"b": 2}"#)
    } else {
        Payload::None
    };
    api.near_deadline(method, path, body, left)
}

#[tokio::test]
async fn a_slow_dynamodb_near_the_deadline_gives_503_before_lambda_cuts_the_function_off() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"a": 1})).await;
    let path = format!("/sessions/{key}");
    proxy.inject("GetItem", Fault::Timeout, None);
    for (method, route) in [("PATCH", path.clone()), ("POST", format!("{path}/cycle"))] {
        let left = Duration::from_millis(1_500);
        let started = Instant::now();
        let reply = api
            .send_request(near_deadline(&api, method, &route, left))
            .await;
        reply.assert_problem(503);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(
            started.elapsed() < left,
            "{method}: answered after the deadline"
        );
    }
    proxy.heal();
    let got = api.get(&path).await;
    assert_eq!(got.json()["data"], json!({"a": 1}));
}

#[tokio::test]
async fn no_dynamodb_call_starts_when_the_deadline_leaves_no_time_for_it() {
    let (api, proxy) = api_behind_proxy().await;
    let key = api.create(json!({"a": 1})).await;
    // Any request that reached DynamoDB would be counted here.
    proxy.inject("", Fault::Throttling, None);
    let reply = api
        .send_request(near_deadline(
            &api,
            "PATCH",
            &format!("/sessions/{key}"),
            Duration::from_millis(550),
        ))
        .await;
    reply.assert_problem(503);
    assert_eq!(proxy.injected_total(), 0);
    let item = api.raw_item(&key).await.unwrap();
    assert_eq!(
        item.get("version"),
        Some(&aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
    );
}
