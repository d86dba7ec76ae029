//! A table shared with the Django backend (`SESSION_CODEC=django`): the `ETag` names the
//! data, so a backend save between a client's GET and its write fails the write.

use crate::support::{Api, Payload, START, api_with, patch, put};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use session_store::{CodecConfig, DjangoCodec, DjangoKeys, DjangoSecrets, Secret, Timestamp};

fn keys() -> DjangoKeys {
    DjangoKeys {
        secret_key: Secret::new("shared-table-test-secret"),
        fallbacks: vec![],
    }
}

fn with_django_codec(c: &mut session_store::StoreConfig) {
    c.codec = CodecConfig::Django(DjangoSecrets::Keys(keys()));
}

/// The Django backend's `save()` of `data` under `key`: only `data` changes.
async fn backend_save<S: session_store::Principals>(api: &Api<S>, key: &str, data: Value) {
    use session_store::Codec;
    let Value::Object(map) = data else {
        panic!("data is an object")
    };
    let raw = DjangoCodec::new(&keys())
        .encode(&map, Timestamp::from_epoch_seconds(START))
        .unwrap();
    let mut item = api.raw_item(key).await.unwrap();
    item.insert("data".into(), AttributeValue::S(raw));
    api.put_raw(item).await;
}

/// GET, then a backend save, then writes with the ETag the GET gave: each is a 412,
/// and the ETag of the backend's data works.
async fn a_backend_save_fails_the_etag_read_before_it<S: session_store::Principals>(api: Api<S>) {
    let key = api.create(json!({"cart": ["book"]})).await;
    let path = format!("/sessions/{key}");
    let read = api.get(&path).await;
    let etag = read.header("etag").unwrap().to_owned();
    let (version, hash) = etag.trim_matches('"').split_once('.').unwrap();
    assert_eq!(version, "1");
    assert!(
        hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{etag}"
    );

    backend_save(&api, &key, json!({"cart": ["book", "pen"]})).await;
    let before = api.raw_item(&key).await;
    put(&api, &key, &json!({"data": {"cart": []}}), Some(&etag))
        .await
        .assert_problem(412);
    patch(&api, &key, &json!({"theme": "dark"}), Some(&etag))
        .await
        .assert_problem(412);
    for (method, route) in [("POST", "/touch"), ("POST", "/cycle"), ("DELETE", "")] {
        let reply = api
            .call(
                method,
                &format!("{path}{route}"),
                &[("if-match", &etag)],
                Payload::None,
            )
            .await;
        reply.assert_problem(412);
    }
    // A version alone is a tag this API never issues for a shared table.
    put(&api, &key, &json!({"data": {"cart": []}}), Some("\"1\""))
        .await
        .assert_problem(412);
    assert_eq!(api.raw_item(&key).await, before, "nothing written");

    let now = api.get(&path).await;
    assert_eq!(now.json()["data"], json!({"cart": ["book", "pen"]}));
    let fresh = now.header("etag").unwrap().to_owned();
    assert_ne!(fresh, etag);
    let listed = format!("{etag}, {fresh}");
    let replaced = put(&api, &key, &json!({"data": {"cart": []}}), Some(&listed)).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert!(replaced.header("etag").unwrap().starts_with("\"2."));
}

#[tokio::test]
async fn a_backend_save_after_a_get_fails_a_write_with_that_etag_in_dynamodb() {
    a_backend_save_fails_the_etag_read_before_it(crate::support::api_with(with_django_codec).await)
        .await;
}

#[tokio::test]
async fn djangos_auth_user_id_is_the_principal_and_a_disagreeing_one_is_a_400() {
    let api = api_with(with_django_codec).await;
    let created = api
        .post_json("/sessions", &json!({"data": {"_auth_user_id": "42"}}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["principal"], "42");
    let listed = api.get("/principals/42/sessions").await;
    assert_eq!(listed.json()["sessions"].as_array().unwrap().len(), 1);
    api.post_json(
        "/sessions",
        &json!({"data": {"_auth_user_id": "42"}, "principal": "7"}),
    )
    .await
    .assert_problem(400);
    let key = created.key();
    put(
        &api,
        &key,
        &json!({"data": {"_auth_user_id": "42"}, "principal": null}),
        None,
    )
    .await
    .assert_problem(400);
}
