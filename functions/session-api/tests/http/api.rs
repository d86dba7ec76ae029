//! The session API, route by route and failure by failure, on a fresh table (an
//! unreachable DynamoDB for the 503s).

use std::sync::Arc;
use std::time::Duration;

use crate::support::{Payload, START, api, api_with, patch, put};
use serde_json::{Value, json};

use crate::support::{JSON, MERGE};

fn rfc3339(offset: i64) -> Value {
    json!(session_store::Timestamp::from_epoch_seconds(START + offset).to_rfc3339())
}

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_session() {
    let api = api().await;
    let reply = api
        .post_json("/sessions", &json!({"data": {"cart": ["book"], "big": 123456789012345678901234567890u128}, "ttl_seconds": 3600}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    let key = reply.key();
    assert_eq!(
        reply.header("location"),
        Some(format!("/sessions/{key}").as_str())
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        body["data"],
        json!({"cart": ["book"], "big": 123456789012345678901234567890u128})
    );
    assert_eq!(body["created_at"], rfc3339(0));
    assert_eq!(body["expires_at"], rfc3339(3600));
    assert_eq!(body["version"], json!(1));
    assert!(reply.text.contains("123456789012345678901234567890"));
}

#[tokio::test]
async fn create_without_a_body_makes_an_empty_session_with_the_default_expiry() {
    let api = api().await;
    let reply = api.call("POST", "/sessions", &[], Payload::None).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["data"], json!({}));
    assert_eq!(reply.json()["expires_at"], rfc3339(1_209_600));
}

#[tokio::test]
async fn get_and_head_find_a_live_session_and_404_an_unknown_one() {
    let api = api().await;
    let key = api.create(json!({"user": 7})).await;
    let got = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["data"], json!({"user": 7}));
    assert_eq!(got.json()["session_key"], json!(key));
    assert_eq!(got.header("etag"), Some("\"1\""));
    let head = api
        .call("HEAD", &format!("/sessions/{key}"), &[], Payload::None)
        .await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty());

    let unknown = "a".repeat(32);
    api.get(&format!("/sessions/{unknown}"))
        .await
        .assert_problem(404);
    let head = api
        .call("HEAD", &format!("/sessions/{unknown}"), &[], Payload::None)
        .await;
    assert_eq!(head.status, 404);
    assert!(head.text.is_empty());
    assert_eq!(api.items().await.len(), 1);
}

#[tokio::test]
async fn get_with_touch_refreshes_the_expiry_only_when_the_last_refresh_is_old() {
    let api = api_with(|c| c.touch_interval = Duration::from_secs(300)).await;
    let key = api.create(json!({})).await;
    api.clock.advance(Duration::from_secs(100));
    let early = api.get(&format!("/sessions/{key}?touch=true")).await;
    assert_eq!(early.json()["expires_at"], rfc3339(1_209_600));
    assert_eq!(early.json()["version"], json!(1));
    api.clock.advance(Duration::from_secs(200));
    let due = api.get(&format!("/sessions/{key}?touch=true")).await;
    assert_eq!(due.json()["expires_at"], rfc3339(300 + 1_209_600));
    assert_eq!(due.header("etag"), Some("\"2\""));
    api.get(&format!("/sessions/{key}?touch=maybe"))
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn an_expired_session_is_404_on_every_route() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    api.clock.advance(Duration::from_secs(1_209_600));
    let path = format!("/sessions/{key}");
    api.get(&path).await.assert_problem(404);
    put(&api, &key, &json!({"data": {}}), None)
        .await
        .assert_problem(404);
    patch(&api, &key, &json!({"b": 1}), None)
        .await
        .assert_problem(404);
    api.call("POST", &format!("{path}/touch"), &[], Payload::None)
        .await
        .assert_problem(404);
    api.call("POST", &format!("{path}/cycle"), &[], Payload::None)
        .await
        .assert_problem(404);
    assert_eq!(api.items().await.len(), 1);
}

#[tokio::test]
async fn put_replaces_data_and_expiry_and_after_delete_is_404_without_creating_anything() {
    let api = api().await;
    let key = api.create(json!({"a": 1, "b": 2})).await;
    let replaced = put(
        &api,
        &key,
        &json!({"data": {"c": 3}, "ttl_seconds": 60}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.json()["data"], json!({"c": 3}));
    assert_eq!(replaced.json()["expires_at"], rfc3339(60));
    assert_eq!(replaced.header("etag"), Some("\"2\""));

    let deleted = api
        .call("DELETE", &format!("/sessions/{key}"), &[], Payload::None)
        .await;
    assert_eq!(deleted.status, 204);
    put(&api, &key, &json!({"data": {"again": true}}), None)
        .await
        .assert_problem(404);
    assert!(api.items().await.is_empty());
}

#[tokio::test]
async fn put_with_a_stale_if_match_is_412_and_leaves_the_data_unchanged() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    assert_eq!(
        put(&api, &key, &json!({"data": {"a": 2}}), None)
            .await
            .status,
        200
    );
    let before = api.raw_item(&key).await;
    put(&api, &key, &json!({"data": {"a": 3}}), Some("\"1\""))
        .await
        .assert_problem(412);
    put(&api, &key, &json!({"data": {"a": 3}}), Some("W/\"2\""))
        .await
        .assert_problem(412);
    put(&api, &key, &json!({"data": {"a": 3}}), Some("\"not-ours\""))
        .await
        .assert_problem(412);
    // Nor do a malformed tag and a list without the current version.
    put(&api, &key, &json!({"data": {"a": 3}}), Some("2"))
        .await
        .assert_problem(412);
    put(&api, &key, &json!({"data": {"a": 3}}), Some("\"1\", \"3\""))
        .await
        .assert_problem(412);
    // A malformed body is a 400 whatever the tag.
    put(&api, &key, &json!({"data": 3}), Some("\"1\""))
        .await
        .assert_problem(400);
    assert_eq!(api.raw_item(&key).await, before);
    assert_eq!(
        put(&api, &key, &json!({"data": {"a": 3}}), Some("*"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn patch_applies_a_json_merge_patch() {
    let api = api().await;
    let key = api
        .create(json!({"keep": 1, "drop": 2, "nested": {"x": 1, "y": 2}}))
        .await;
    let reply = patch(
        &api,
        &key,
        &json!({"drop": null, "nested": {"y": null, "z": [1]}, "new": "v"}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["data"],
        json!({"keep": 1, "nested": {"x": 1, "z": [1]}, "new": "v"})
    );
    assert_eq!(reply.header("etag"), Some("\"2\""));
    patch(&api, &key, &json!({"a": 1}), Some("\"1\""))
        .await
        .assert_problem(412);
}

#[tokio::test]
async fn concurrent_patch_clients_lose_no_increment() {
    let api = Arc::new(api().await);
    let key = api.create(json!({"counter": 0})).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let api = Arc::clone(&api);
        let key = key.clone();
        clients.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..25 {
                loop {
                    let current = api.get(&format!("/sessions/{key}")).await;
                    let n = current.json()["data"]["counter"]
                        .as_u64()
                        .expect("a counter");
                    let tag = current.header("etag").expect("an etag").to_owned();
                    let reply = patch(&api, &key, &json!({"counter": n + 1}), Some(&tag)).await;
                    match reply.status {
                        200 => break,
                        412 => conflicts += 1,
                        other => panic!("unexpected {other}: {}", reply.text),
                    }
                    assert!(conflicts < 10_000, "no progress");
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let end = api.get(&format!("/sessions/{key}")).await.json();
    assert_eq!(end["data"]["counter"], json!(200));
    assert_eq!(end["version"], json!(201));
}

#[tokio::test]
async fn delete_is_idempotent_and_honours_if_match() {
    let api = api().await;
    let key = api.create(json!({})).await;
    let path = format!("/sessions/{key}");
    api.call("DELETE", &path, &[("if-match", "\"7\"")], Payload::None)
        .await
        .assert_problem(412);
    assert_eq!(api.items().await.len(), 1);
    let first = api
        .call("DELETE", &path, &[("if-match", "\"1\"")], Payload::None)
        .await;
    assert_eq!(first.status, 204);
    assert!(first.text.is_empty());
    assert_eq!(
        api.call("DELETE", &path, &[], Payload::None).await.status,
        204
    );
    assert!(api.items().await.is_empty());
}

#[tokio::test]
async fn cycle_moves_the_session_to_a_new_key() {
    let api = api().await;
    let key = api.create(json!({"user": 7})).await;
    let reply = api.cycle(&key).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let new_key = reply.key();
    assert_ne!(new_key, key);
    assert_eq!(reply.json()["data"], json!({"user": 7}));
    api.get(&format!("/sessions/{key}"))
        .await
        .assert_problem(404);
    assert_eq!(
        api.get(&format!("/sessions/{new_key}")).await.json()["data"],
        json!({"user": 7})
    );
    let missing = "b".repeat(32);
    api.cycle(&missing).await.assert_problem(404);
    assert_eq!(api.items().await.len(), 1);
}

#[tokio::test]
async fn touch_refreshes_the_expiry() {
    let api = api().await;
    let key = api.create(json!({})).await;
    api.clock.advance(Duration::from_secs(1_000));
    let reply = api
        .call(
            "POST",
            &format!("/sessions/{key}/touch"),
            &[],
            Payload::None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["expires_at"], rfc3339(1_000 + 1_209_600));
    assert_eq!(reply.header("etag"), Some("\"2\""));
}

#[tokio::test]
async fn a_1_mib_body_is_413_and_data_over_the_limit_too() {
    let api = api().await;
    let key = api.create(json!({"small": true})).await;
    let before = api.items().await;
    let huge = json!({"data": {"blob": "x".repeat(1 << 20)}}).to_string();
    let reply = api
        .call("POST", "/sessions", &[JSON], Payload::Text(&huge))
        .await;
    reply.assert_problem(413);
    let reply = api
        .call(
            "PUT",
            &format!("/sessions/{key}"),
            &[JSON],
            Payload::Text(&huge),
        )
        .await;
    reply.assert_problem(413);
    // Under the body limit, over the stored-data limit.
    let over = json!({"data": {"blob": "x".repeat(360_000)}});
    api.post_json("/sessions", &over).await.assert_problem(413);
    assert_eq!(api.items().await, before);
}

/// Method, path, headers, body, and the status expected.
type BadCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Payload<'a>, u16);

#[tokio::test]
async fn bad_input_gets_a_4xx_problem_and_leaves_the_table_unchanged() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    let one = format!("/sessions/{key}");
    let before = api.items().await;
    let cases: Vec<BadCase> = vec![
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"data\": {"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"data\": [1, 2]}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"data\": \"text\"}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("[]"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"dat\": {}}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": -5}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": 1.5}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": \"60\"}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": 0}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": 99999999999}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![JSON],
            Payload::Bytes(b"{\"data\": {\"a\": \"\xff\xfe\"}}"),
            400,
        ),
        (
            "POST",
            "/sessions".into(),
            vec![("content-type", "text/plain")],
            Payload::Text("{}"),
            415,
        ),
        ("POST", "/sessions".into(), vec![], Payload::Text("{}"), 415),
        (
            "POST",
            "/sessions".into(),
            vec![("content-type", "application/json; charset=latin-1")],
            Payload::Text("{}"),
            415,
        ),
        ("PUT", one.clone(), vec![JSON], Payload::None, 400),
        (
            "PUT",
            one.clone(),
            vec![JSON],
            Payload::Text("{\"ttl_seconds\": 60}"),
            400,
        ),
        (
            "PUT",
            one.clone(),
            vec![JSON],
            Payload::Text("not json"),
            400,
        ),
        (
            "PUT",
            one.clone(),
            vec![MERGE],
            Payload::Text("{\"data\": {}}"),
            415,
        ),
        (
            "PATCH",
            one.clone(),
            vec![JSON],
            Payload::Text("{\"b\": 1}"),
            415,
        ),
        ("PATCH", one.clone(), vec![MERGE], Payload::Text("[1]"), 400),
        (
            "PATCH",
            one.clone(),
            vec![MERGE],
            Payload::Text("{\"b\": "),
            400,
        ),
        ("PATCH", one.clone(), vec![MERGE], Payload::None, 400),
        ("GET", "/nowhere".into(), vec![], Payload::None, 404),
        ("GET", "/".into(), vec![], Payload::None, 404),
        (
            "GET",
            format!("{one}/extra/parts"),
            vec![],
            Payload::None,
            404,
        ),
        ("GET", "/sessions/".into(), vec![], Payload::None, 400),
        ("DELETE", "/sessions".into(), vec![], Payload::None, 405),
        ("GET", "/sessions".into(), vec![], Payload::None, 405),
        ("POST", one.clone(), vec![], Payload::None, 405),
        ("GET", format!("{one}/cycle"), vec![], Payload::None, 405),
        ("PUT", format!("{one}/touch"), vec![], Payload::None, 405),
        ("GET", "/sessions/short".into(), vec![], Payload::None, 400),
        (
            "GET",
            format!("/sessions/{}", key.to_uppercase()),
            vec![],
            Payload::None,
            400,
        ),
        (
            "GET",
            format!("/sessions/{key}a"),
            vec![],
            Payload::None,
            400,
        ),
        (
            "DELETE",
            "/sessions/%C3%A9%C3%A9".into(),
            vec![],
            Payload::None,
            400,
        ),
        (
            "POST",
            "/sessions/not-a-key/cycle".into(),
            vec![],
            Payload::None,
            400,
        ),
    ];
    for (method, path, headers, body, status) in cases {
        let reply = api.call(method, &path, &headers, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
        reply.assert_problem(status);
        if status == 405 {
            assert!(
                reply.header("allow").is_some(),
                "{method} {path} without Allow"
            );
        }
    }
    assert_eq!(api.items().await, before);
}

#[tokio::test]
async fn dynamodb_unavailable_gives_503_with_retry_after() {
    let api = crate::support::unreachable_api().await;
    let reply = api.call("POST", "/sessions", &[], Payload::None).await;
    reply.assert_problem(503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(
        !reply.text.contains("127.0.0.1"),
        "internals leaked: {}",
        reply.text
    );
}

#[tokio::test]
async fn stage_prefixes_and_rest_api_events_route_alike() {
    let api = api().await;
    let mut event = crate::support::http_event("POST", "/prod/sessions", &[], Payload::None);
    event["requestContext"]["stage"] = json!("prod");
    let created = api.send_event(&event).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.key();
    assert_eq!(
        created.header("location"),
        Some(format!("/prod/sessions/{key}").as_str())
    );

    // API Gateway REST API, payload 1.0: the path excludes the stage.
    let rest = json!({
        "resource": "/sessions/{key}",
        "path": format!("/sessions/{key}"),
        "httpMethod": "GET",
        "headers": {"accept": "application/json"},
        "multiValueHeaders": {"accept": ["application/json"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"key": key},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "httpMethod": "GET",
            "path": format!("/prod/sessions/{key}"),
            "requestId": "rest-request",
            "resourcePath": "/sessions/{key}",
            "stage": "prod",
            "identity": {"sourceIp": "127.0.0.1"}
        },
        "body": null,
        "isBase64Encoded": false
    });
    let got = api.send_event(&rest).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["session_key"], json!(key));
}

#[tokio::test]
async fn with_the_django_codec_session_expiry_in_the_data_is_the_expiry() {
    use session_store::{CodecConfig, DjangoKeys, DjangoSecrets, Secret};
    let api = api_with(|c| {
        c.codec = CodecConfig::Django(DjangoSecrets::Keys(DjangoKeys {
            secret_key: Secret::new("api-test-secret"),
            fallbacks: vec![],
        }))
    })
    .await;
    let reply = api
        .post_json(
            "/sessions",
            &json!({"data": {"user": "Zoë"}, "ttl_seconds": 600}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json()["data"],
        json!({"user": "Zoë", "_session_expiry": 600})
    );
    assert_eq!(reply.json()["expires_at"], rfc3339(600));
    let key = reply.key();

    let patched = patch(&api, &key, &json!({"_session_expiry": 60}), None).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["expires_at"], rfc3339(60));
    let patched = patch(&api, &key, &json!({"_session_expiry": null}), None).await;
    assert_eq!(patched.json()["expires_at"], rfc3339(1_209_600));
    assert_eq!(patched.json()["data"], json!({"user": "Zoë"}));
}

#[tokio::test]
async fn a_whole_number_of_seconds_may_be_written_as_a_float() {
    let api = api().await;
    for ttl in ["60.0", "6e1"] {
        let body = format!("{{\"data\": {{}}, \"ttl_seconds\": {ttl}}}");
        let reply = api
            .call("POST", "/sessions", &[JSON], Payload::Text(&body))
            .await;
        assert_eq!(reply.status, 201, "{ttl}: {}", reply.text);
        // The clock stands at START, 2027-01-15T08:00:00Z.
        assert_eq!(
            reply.json()["expires_at"],
            json!("2027-01-15T08:01:00Z"),
            "{ttl}"
        );
    }
}
