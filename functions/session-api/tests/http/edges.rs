//! Expiry limits, items of the Django backend whose data says they expired, and
//! `If-Match` as RFC 9110 section 13.1.1 defines it: regressions found in review.

use crate::support::{Api, Payload, START, api, api_with, patch, put};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use session_store::{CodecConfig, DjangoCodec, DjangoKeys, DjangoSecrets, Secret, Timestamp};

const SECRET: &str = "edge-test-secret";
const TEN_YEARS: i64 = 315_360_000;

fn keys() -> DjangoKeys {
    DjangoKeys {
        secret_key: Secret::new(SECRET),
        fallbacks: vec![],
    }
}

async fn django_api() -> Api {
    api_with(|c| c.codec = CodecConfig::Django(DjangoSecrets::Keys(keys()))).await
}

fn rfc3339(offset: i64) -> Value {
    json!(Timestamp::from_epoch_seconds(START + offset).to_rfc3339())
}

/// An item as the Django backend writes it: key and signed data, nothing else.
async fn seed_item(api: &Api, data: Value) -> String {
    use session_store::Codec;
    let key = session_store::SessionKey::generate().unwrap();
    let Value::Object(map) = data else {
        panic!("data is an object")
    };
    let raw = DjangoCodec::new(&keys())
        .encode(&map, Timestamp::from_epoch_seconds(START))
        .unwrap();
    api.put_raw(
        [
            (
                "session_key".to_owned(),
                AttributeValue::S(key.as_str().into()),
            ),
            ("data".to_owned(), AttributeValue::S(raw)),
        ]
        .into(),
    )
    .await;
    key.as_str().to_owned()
}

#[tokio::test]
async fn a_fixed_expiry_far_ahead_is_capped_at_ten_years_on_create_replace_and_patch() {
    let api = django_api().await;
    let far = json!({"_session_expiry": "9999-12-31T23:59:59+00:00"});
    let created = api.post_json("/sessions", &json!({ "data": far })).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["expires_at"], rfc3339(TEN_YEARS));
    let key = created.key();

    let replaced = put(&api, &key, &json!({"data": {"a": 1}}), None).await;
    assert_eq!(replaced.json()["expires_at"], rfc3339(1_209_600));
    let patched = patch(&api, &key, &far, None).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["expires_at"], rfc3339(TEN_YEARS));
    let replaced = put(&api, &key, &json!({ "data": far }), None).await;
    assert_eq!(replaced.json()["expires_at"], rfc3339(TEN_YEARS));
    let got = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(got.json()["expires_at"], rfc3339(TEN_YEARS));
}

#[tokio::test]
async fn the_maximum_lifetime_still_caps_a_fixed_expiry() {
    let api = api_with(|c| {
        c.codec = CodecConfig::Django(DjangoSecrets::Keys(keys()));
        c.expiry.max_lifetime = Some(std::time::Duration::from_secs(3_600));
    })
    .await;
    let key = api.create(json!({})).await;
    let patched = patch(
        &api,
        &key,
        &json!({"_session_expiry": "9999-12-31T23:59:59+00:00"}),
        None,
    )
    .await;
    assert_eq!(patched.json()["expires_at"], rfc3339(3_600));
}

#[tokio::test]
async fn a_patch_that_sets_a_past_fixed_expiry_is_400_and_writes_nothing() {
    let api = django_api().await;
    let key = api.create(json!({"a": 1})).await;
    let before = api.raw_item(&key).await;
    for past in [json!("2020-01-01T00:00:00"), json!(-1)] {
        patch(&api, &key, &json!({ "_session_expiry": past }), None)
            .await
            .assert_problem(400);
        put(
            &api,
            &key,
            &json!({"data": { "_session_expiry": past }}),
            None,
        )
        .await
        .assert_problem(400);
    }
    assert_eq!(api.raw_item(&key).await, before);
}

#[tokio::test]
async fn items_of_the_django_backend_whose_data_says_expired_are_404_everywhere() {
    let api = django_api().await;
    for expiry in [json!("2020-01-01T00:00:00"), json!(-60)] {
        let key = seed_item(&api, json!({"user": 7, "_session_expiry": expiry})).await;
        let before = api.raw_item(&key).await;
        let path = format!("/sessions/{key}");
        api.get(&path).await.assert_problem(404);
        api.get(&format!("{path}?touch=true"))
            .await
            .assert_problem(404);
        assert_eq!(
            api.call("HEAD", &path, &[], Payload::None).await.status,
            404
        );
        patch(&api, &key, &json!({"b": 1}), None)
            .await
            .assert_problem(404);
        put(&api, &key, &json!({"data": {"b": 1}}), None)
            .await
            .assert_problem(404);
        for action in ["touch", "cycle"] {
            api.call("POST", &format!("{path}/{action}"), &[], Payload::None)
                .await
                .assert_problem(404);
        }
        assert_eq!(
            api.raw_item(&key).await,
            before,
            "{expiry}: nothing written"
        );
        assert_eq!(api.items().await.len(), 1, "{expiry}: no new key");
        api.delete_raw(&key).await;
    }
}

#[tokio::test]
async fn items_of_the_django_backend_with_a_future_fixed_expiry_are_served_until_then() {
    let api = django_api().await;
    let at = Timestamp::from_epoch_seconds(START + 600);
    let text = session_store::django::isoformat(at).unwrap();
    let key = seed_item(&api, json!({"user": 7, "_session_expiry": text})).await;
    let got = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["expires_at"], rfc3339(600));
    api.clock.advance(std::time::Duration::from_secs(600));
    api.get(&format!("/sessions/{key}"))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn versions_in_if_match_are_canonical_decimal_integers_only() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    let before = api.raw_item(&key).await;
    for tag in ["\"+1\"", "\"01\"", "\"1.0\"", "\" 1\"", "\"\"", "\"1e0\""] {
        put(&api, &key, &json!({"data": {"a": 2}}), Some(tag))
            .await
            .assert_problem(412);
        patch(&api, &key, &json!({"a": 2}), Some(tag))
            .await
            .assert_problem(412);
    }
    assert_eq!(api.raw_item(&key).await, before);
    let ok = patch(&api, &key, &json!({"a": 2}), Some("\"1\"")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// A PUT, PATCH or DELETE of the session at `path` with these `If-Match` lines.
async fn with_if_match_lines(
    api: &crate::support::Api,
    method: &str,
    path: &str,
    lines: &[&str],
) -> u16 {
    let (content_type, payload) = match method {
        "PUT" => ("application/json", Payload::Text(r#"{"data": {"a": 9}}"#)),
        "PATCH" => ("application/merge-patch+json", Payload::Text(r#"{"a": 9}"#)),
        _ => ("application/json", Payload::None),
    };
    let mut request = api.request(method, path, &[("content-type", content_type)], payload);
    for line in lines {
        request
            .headers_mut()
            .append("if-match", line.parse().unwrap());
    }
    api.send_request(request).await.status
}

#[tokio::test]
async fn an_if_match_list_matches_when_any_strong_member_does_on_one_line_or_several() {
    let api = api().await;
    // Each of these lists holds the session's version (1) as a strong member.
    let matching: [&[&str]; 5] = [
        &["\"7\", \"1\""],
        &["\"7\"", "\"1\""],
        &["W/\"1\", \"1\""],
        &["\"1\", \"1\""],
        &["\"a,b\", , \"1\""],
    ];
    for lines in matching {
        for method in ["PUT", "PATCH", "DELETE"] {
            let key = api.create(json!({"a": 1})).await;
            let status =
                with_if_match_lines(&api, method, &format!("/sessions/{key}"), lines).await;
            let want = if method == "DELETE" { 204 } else { 200 };
            assert_eq!(status, want, "{method} with If-Match {lines:?}");
        }
    }
}

#[tokio::test]
async fn an_if_match_list_without_a_matching_strong_member_or_malformed_is_412() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    let path = format!("/sessions/{key}");
    let before = api.raw_item(&key).await;
    let failing: [&[&str]; 8] = [
        &["\"7\", \"8\""],
        &["\"7\"", "\"8\""],
        &["W/\"1\""],
        &["W/\"1\", W/\"7\""],
        &["*, \"1\""],
        &["*", "\"1\""],
        &["\"1\", 1"],
        &["\"1\" \"7\""],
    ];
    for lines in failing {
        for method in ["PUT", "PATCH", "DELETE"] {
            let status = with_if_match_lines(&api, method, &path, lines).await;
            assert_eq!(status, 412, "{method} with If-Match {lines:?}");
        }
    }
    assert_eq!(api.raw_item(&key).await, before, "a 412 writes nothing");
}

#[tokio::test]
async fn any_if_match_on_a_missing_session_is_412_and_delete_without_it_stays_204() {
    let api = api().await;
    let path = format!("/sessions/{}", "m".repeat(32));
    for tag in ["\"1\"", "\"0\"", "*"] {
        let h = [("if-match", tag)];
        let json_h = [("if-match", tag), crate::support::JSON];
        let merge_h = [("if-match", tag), crate::support::MERGE];
        api.call("DELETE", &path, &h, Payload::None)
            .await
            .assert_problem(412);
        api.call("PUT", &path, &json_h, Payload::Text(r#"{"data": {}}"#))
            .await
            .assert_problem(412);
        api.call("PATCH", &path, &merge_h, Payload::Text(r#"{"a": 1}"#))
            .await
            .assert_problem(412);
        for action in ["touch", "cycle"] {
            api.call("POST", &format!("{path}/{action}"), &h, Payload::None)
                .await
                .assert_problem(412);
        }
    }
    // An expired session is as missing as one never created.
    let key = api.create(json!({})).await;
    api.clock.advance(std::time::Duration::from_secs(1_209_600));
    api.call(
        "DELETE",
        &format!("/sessions/{key}"),
        &[("if-match", "*")],
        Payload::None,
    )
    .await
    .assert_problem(412);
    assert_eq!(api.items().await.len(), 1, "nothing written");
    assert_eq!(
        api.call("DELETE", &path, &[], Payload::None).await.status,
        204
    );
}

#[tokio::test]
async fn if_match_on_touch_and_cycle_guards_them_like_the_other_writes() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    let path = format!("/sessions/{key}");
    for action in ["touch", "cycle"] {
        api.call(
            "POST",
            &format!("{path}/{action}"),
            &[("if-match", "\"5\"")],
            Payload::None,
        )
        .await
        .assert_problem(412);
    }
    let touched = api
        .call(
            "POST",
            &format!("{path}/touch"),
            &[("if-match", "\"1\"")],
            Payload::None,
        )
        .await;
    assert_eq!(touched.status, 200, "{}", touched.text);
    let cycled = api
        .call(
            "POST",
            &format!("{path}/cycle"),
            &[("if-match", "*")],
            Payload::None,
        )
        .await;
    assert_eq!(cycled.status, 200, "{}", cycled.text);
}

/// A few kilobytes of signed Django data that inflate to 2 MiB, past the default cap.
fn bomb() -> String {
    use session_store::Codec;
    let pad = json!({ "pad": " ".repeat(2 * 1024 * 1024) });
    let raw = DjangoCodec::new(&keys())
        .with_max_decompressed(16 * 1024 * 1024)
        .encode(
            pad.as_object().unwrap(),
            Timestamp::from_epoch_seconds(START),
        )
        .unwrap();
    assert!(raw.len() < 8 * 1024, "{} bytes", raw.len());
    raw
}

/// A session created through the API whose stored data is then replaced by `raw`.
async fn session_holding(api: &Api, raw: String) -> String {
    let key = api.create(json!({"cart": ["book"]})).await;
    let mut item = api.raw_item(&key).await.unwrap();
    item.insert("data".into(), AttributeValue::S(raw));
    api.put_raw(item).await;
    key
}

#[tokio::test]
async fn a_session_whose_data_inflates_past_the_cap_is_a_409_and_only_put_or_delete_change_it() {
    let api = django_api().await;
    let raw = bomb();
    let key = session_holding(&api, raw.clone()).await;
    let path = format!("/sessions/{key}");
    let before = api.raw_item(&key).await;

    let read = api.get(&path).await;
    read.assert_problem(409);
    assert_eq!(read.json()["max_decompressed_bytes"], json!(1_048_576));
    assert!(read.json()["detail"].as_str().unwrap().contains("PUT"));
    patch(&api, &key, &json!({"theme": "dark"}), None)
        .await
        .assert_problem(409);
    api.call("POST", &format!("{path}/cycle"), &[], Payload::None)
        .await
        .assert_problem(409);
    assert_eq!(api.raw_item(&key).await, before, "never merged onto {{}}");
    assert_eq!(
        api.call("HEAD", &path, &[], Payload::None).await.status,
        200
    );

    // The tag of a table shared with the Django backend: the version and the data's hash.
    let tag = format!("\"1.{}\"", session_store::DataTag::of(&raw));
    let replaced = put(&api, &key, &json!({"data": {"fresh": true}}), Some(&tag)).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(api.get(&path).await.json()["data"], json!({"fresh": true}));

    let other = session_holding(&api, bomb()).await;
    let deleted = api
        .call("DELETE", &format!("/sessions/{other}"), &[], Payload::None)
        .await;
    assert_eq!(deleted.status, 204);
    let left = api.raw_item(&other).await.unwrap();
    assert!(left.contains_key("removed_at"), "a tombstone: {left:?}");
    api.get(&format!("/sessions/{other}"))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn the_api_never_writes_data_that_would_inflate_past_the_cap() {
    let api = crate::support::api_with(|c| {
        c.codec = CodecConfig::Django(DjangoSecrets::Keys(keys()));
        c.max_decompressed_bytes = 2048;
    })
    .await;
    // 1,500 characters that Django's JSON writes as \u escapes: 9,000 bytes of text.
    let data = json!({"name": "é".repeat(1_500)});
    let created = api.post_json("/sessions", &json!({ "data": data })).await;
    created.assert_problem(413);
    assert!(api.items().await.is_empty());
    let key = api.create(json!({"a": 1})).await;
    put(&api, &key, &json!({ "data": data }), None)
        .await
        .assert_problem(413);
    patch(&api, &key, &data, None).await.assert_problem(413);
    assert_eq!(
        api.get(&format!("/sessions/{key}")).await.json()["data"],
        json!({"a": 1})
    );
}

#[tokio::test]
async fn with_the_json_codec_the_etag_is_the_version_alone() {
    let api = api().await;
    let key = api.create(json!({"a": 1})).await;
    let read = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(read.header("etag"), Some("\"1\""));
    put(&api, &key, &json!({"data": {}}), Some("\"1.0123456789ab\""))
        .await
        .assert_problem(412);
}
