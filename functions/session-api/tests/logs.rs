//! What the API logs. A binary of its own: tracing caches which call sites are enabled
//! process-wide, and tests on other threads without this subscriber would race that cache.

mod support;

use serde_json::{Value, json};
use support::{CapturedLogs, Payload, api, patch};

#[tokio::test]
async fn logs_hold_one_line_per_request_and_never_a_key_or_data() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let api = api().await;
    let marker = "MARKER-5f3a-secret-value";
    let key = api.create(json!({"note": marker})).await;
    let path = format!("/sessions/{key}");
    api.get(&path).await;
    patch(&api, &key, &json!({"more": marker}), None).await;
    let cycled = api
        .call("POST", &format!("{path}/cycle"), &[], Payload::None)
        .await
        .key();
    api.get(&path).await;
    api.call("DELETE", &format!("/sessions/{cycled}"), &[], Payload::None)
        .await;
    let unknown = format!("/sessions/{}", "c".repeat(32));
    api.get(&unknown).await;

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 7, "{text}");
    for line in &lines {
        for field in ["method", "route", "status", "latency_ms"] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
    assert_eq!(lines[0]["route"], json!("/sessions"));
    assert_eq!(lines[1]["route"], json!("/sessions/{key}"));
    assert_eq!(lines[1]["status"], json!(200));
    let fingerprint = session_store::SessionKey::parse(&key)
        .unwrap()
        .fingerprint(12);
    assert_eq!(lines[1]["session"], json!(fingerprint));
    for secret in [key.as_str(), cycled.as_str(), marker, &"c".repeat(32)] {
        assert!(!text.contains(secret), "{secret} appears in the logs");
    }
}
