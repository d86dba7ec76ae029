//! Every API event in `events/` (what `sam local invoke -e` would send) runs through the
//! handler against the store and gets the answer its route promises: `api-*` as the
//! HTTP API sends them, `url-*` as a function URL does.

use std::collections::BTreeMap;

use crate::support::{START, api};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

/// The key the sample events address.
const KEY: &str = "k3jv8q0m2x7w4z9p1t6r5y8u0e3a2s7d";
/// The principal the principal events address, whose session that is.
const PRINCIPAL: &str = "user-42";

fn handle() -> String {
    session_store::SessionHandle::of(&session_store::SessionKey::parse(KEY).unwrap())
        .as_str()
        .to_owned()
}

/// What each principal event leaves: the listing names the session by its handle, a
/// revocation removes it.
fn principal_event_answered(
    name: &str,
    body: &str,
    left: Option<std::collections::HashMap<String, AttributeValue>>,
) {
    match name {
        "principal-sessions.json" => {
            let page: Value = serde_json::from_str(body).unwrap();
            assert_eq!(page["principal"], PRINCIPAL);
            assert_eq!(page["sessions"][0]["id"], handle());
            assert!(!body.contains(KEY), "a listing never shows a key");
            assert!(left.is_some());
        }
        "principal-revoke.json" => assert!(left.is_none(), "{name}"),
        "principal-revoke-all.json" => {
            let done: Value = serde_json::from_str(body).unwrap();
            assert_eq!(done, json!({"revoked": 1, "complete": true}));
            assert!(left.is_none(), "{name}");
        }
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn every_api_event_file_gets_its_routes_answer() {
    let routes = [
        ("create", 201),
        ("cycle", 200),
        ("delete", 204),
        ("get", 200),
        ("head", 200),
        ("patch", 200),
        ("replace", 200),
        ("touch", 200),
        ("principal-sessions", 200),
        ("principal-revoke", 204),
        ("principal-revoke-all", 200),
    ];
    let expected: BTreeMap<String, u16> = ["api", "url"]
        .iter()
        .flat_map(|door| {
            routes
                .iter()
                .map(move |(route, status)| (format!("{door}-{route}.json"), *status))
        })
        .collect();
    let dir = testkit::workspace_root().join("events");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("api-") && !name.starts_with("url-") {
            continue;
        }
        let status = *expected
            .get(&name)
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
            // The principal events address `user-42`'s sessions: this one, by its handle.
            ("principal", AttributeValue::S(PRINCIPAL.into())),
            (
                "principal_position",
                AttributeValue::S(format!("{START:012}#{}", handle())),
            ),
            (
                "principal_since",
                AttributeValue::N((START * 1000).to_string()),
            ),
        ];
        api.put_raw(stored.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            .await;

        let reply = api.send_event(&event).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        if name[4..].starts_with("principal") {
            principal_event_answered(&name[4..], &reply.text, api.raw_item(KEY).await);
            seen.push(name);
            continue;
        }
        if !reply.text.is_empty() {
            let body = reply.json();
            assert!(body["session_key"].is_string(), "{name}: {body}");
            assert!(body["data"].is_object(), "{name}: {body}");
        }
        match &name[4..] {
            "patch.json" => {
                assert_eq!(reply.json()["data"], json!({"cart": ["book", "pen"]}));
            }
            "replace.json" => {
                assert_eq!(reply.json()["data"], json!({"cart": [], "theme": "light"}));
            }
            "delete.json" => assert!(api.raw_item(KEY).await.is_none()),
            "cycle.json" => assert_ne!(reply.key(), KEY),
            "create.json" => {
                let location = reply.headers.get("location").map(|v| v.to_str().unwrap());
                assert_eq!(
                    location,
                    Some(format!("/sessions/{}", reply.key()).as_str())
                );
            }
            _ => {}
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, expected.keys().cloned().collect::<Vec<_>>());
}
