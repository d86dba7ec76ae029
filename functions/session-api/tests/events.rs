//! Every API event in `events/` (what `sam local invoke -e` would send) runs through the
//! handler against the store and gets the answer its route promises.

mod support;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use support::{START, api};

/// The key the sample events address.
const KEY: &str = "k3jv8q0m2x7w4z9p1t6r5y8u0e3a2s7d";

#[tokio::test]
async fn every_api_event_file_gets_its_routes_answer() {
    let expected = BTreeMap::from([
        ("api-create.json", 201),
        ("api-cycle.json", 200),
        ("api-delete.json", 204),
        ("api-get.json", 200),
        ("api-head.json", 200),
        ("api-patch.json", 200),
        ("api-replace.json", 200),
        ("api-touch.json", 200),
    ]);
    let dir = testkit::workspace_root().join("events");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("api-") {
            continue;
        }
        let status = *expected
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

        let api = api().await;
        let stored = [
            ("session_key", AttributeValue::S(KEY.into())),
            (
                "data",
                AttributeValue::S(r#"{"cart":["book"],"theme":"dark"}"#.into()),
            ),
            ("created", AttributeValue::N(START.to_string())),
            (
                "expires_at",
                AttributeValue::N((START + 86_400).to_string()),
            ),
            ("touched_at", AttributeValue::N(START.to_string())),
            ("version", AttributeValue::N("1".into())),
        ];
        api.put_raw(stored.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            .await;

        let reply = api.send_event(&event).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        if !reply.text.is_empty() {
            let body = reply.json();
            assert!(body["session_key"].is_string(), "{name}: {body}");
            assert!(body["data"].is_object(), "{name}: {body}");
        }
        match name.as_str() {
            "api-patch.json" => {
                assert_eq!(reply.json()["data"], json!({"cart": ["book", "pen"]}));
            }
            "api-replace.json" => {
                assert_eq!(reply.json()["data"], json!({"cart": [], "theme": "light"}));
            }
            "api-delete.json" => assert!(api.raw_item(KEY).await.is_none()),
            "api-cycle.json" => assert_ne!(reply.key(), KEY),
            _ => {}
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, expected.keys().copied().collect::<Vec<_>>());
}
