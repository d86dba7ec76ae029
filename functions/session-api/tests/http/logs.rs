//! What the API logs. A binary of its own: tracing caches which call sites are enabled
//! process-wide, and tests on other threads without this subscriber would race that cache.

use crate::support::{CapturedLogs, Payload, api, patch};
use serde_json::{Value, json};

#[tokio::test]
async fn logs_hold_one_line_per_request_and_never_a_key_or_data() {
    let logs = CapturedLogs::default();
    let _guard = crate::support::install(&logs);
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
        let latency = line["latency_ms"].to_string();
        let decimals = latency.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 3,
            "latency beyond whole microseconds: {latency}"
        );
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

#[tokio::test]
async fn the_access_line_names_the_front_door_the_request_came_through() {
    let logs = CapturedLogs::default();
    let _guard = crate::support::install(&logs);
    let api = api().await;
    let events = testkit::workspace_root().join("events");
    for (file, door) in [
        ("api-get.json", "http_api"),
        ("url-get.json", "function_url"),
    ] {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(events.join(file)).unwrap()).unwrap();
        let reply = api.send_event(&event).await;
        assert_eq!(reply.status, 404, "{file}: the key is not stored");
        let text = logs.text();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["front_door"], json!(door), "{file}: {last}");
        assert_eq!(last["route"], json!("/sessions/{key}"), "{file}");
    }
}

/// The access lines written, by status.
fn lines_by_status(logs: &CapturedLogs) -> std::collections::BTreeMap<u64, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in logs.text().lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        if line["message"] == json!("request") {
            *counts.entry(line["status"].as_u64().unwrap()).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn a_sample_rate_thins_the_success_lines_and_never_an_error_line() {
    use session_store::AccessLogConfig;
    use std::time::Duration;

    let logs = CapturedLogs::default();
    let _guard = crate::support::install(&logs);
    let api = api().await.with_access_log(AccessLogConfig {
        sample_rate: 0.25,
        slow: Duration::from_secs(60),
    });
    let key = api.create(json!({"n": 1})).await;
    let unknown = format!("/sessions/{}", "c".repeat(32));
    for _ in 0..2_000 {
        assert_eq!(api.get(&format!("/sessions/{key}")).await.status, 200);
    }
    for _ in 0..200 {
        assert_eq!(api.get(&unknown).await.status, 404);
    }
    let counts = lines_by_status(&logs);
    // 2,000 draws at 0.25: 500 expected, standard deviation 19; five of them either way.
    let successes = counts.get(&200).copied().unwrap_or(0);
    assert!(
        (403..=597).contains(&successes),
        "{successes} of 2,000 at 0.25"
    );
    assert_eq!(counts.get(&404), Some(&200), "every error line is written");
}

#[tokio::test]
async fn at_a_rate_of_zero_only_errors_and_slow_requests_are_written() {
    use session_store::AccessLogConfig;
    use std::time::Duration;

    let logs = CapturedLogs::default();
    let _guard = crate::support::install(&logs);
    let quiet = api().await.with_access_log(AccessLogConfig {
        sample_rate: 0.0,
        slow: Duration::from_secs(60),
    });
    let key = quiet.create(json!({"n": 1})).await;
    quiet.get(&format!("/sessions/{key}")).await;
    quiet.get(&format!("/sessions/{}", "c".repeat(32))).await;
    assert_eq!(lines_by_status(&logs), [(404, 1)].into());
    // Every request is slow when the threshold is zero.
    let slow = api().await.with_access_log(AccessLogConfig {
        sample_rate: 0.0,
        slow: Duration::ZERO,
    });
    let key = slow.create(json!({"n": 1})).await;
    slow.get(&format!("/sessions/{key}")).await;
    assert_eq!(
        lines_by_status(&logs),
        [(200, 1), (201, 1), (404, 1)].into()
    );
}

#[tokio::test]
async fn django_data_that_fails_to_verify_reads_as_empty_with_a_warning_that_holds_no_data() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use session_store::{CodecConfig, DjangoKeys, DjangoSecrets, Secret};

    let logs = CapturedLogs::default();
    let _guard = crate::support::install(&logs);
    let secret = "SECRET-KEY-never-logged";
    let api = crate::support::api_with(|c| {
        c.codec = CodecConfig::Django(DjangoSecrets::Keys(DjangoKeys {
            secret_key: Secret::new(secret),
            fallbacks: vec![],
        }))
    })
    .await;
    let marker = "MARKER-8c1d-private";
    let key = api.create(json!({ "note": marker })).await;
    let Some(AttributeValue::S(raw)) = api.raw_item(&key).await.unwrap().remove("data") else {
        panic!("data is a string");
    };
    // Another signature: as if signed with a key this service does not have.
    let (signed, _) = raw.rsplit_once(':').unwrap();
    api.put_raw(
        [
            ("session_key".to_owned(), AttributeValue::S(key.clone())),
            (
                "data".to_owned(),
                AttributeValue::S(format!("{signed}:{}", "A".repeat(43))),
            ),
        ]
        .into(),
    )
    .await;

    let got = api.get(&format!("/sessions/{key}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["data"], json!({}));
    let text = logs.text();
    assert!(text.contains("session data corrupted"), "{text}");
    assert!(text.contains("signature"), "the reason is given: {text}");
    for hidden in [marker, secret, key.as_str(), signed] {
        assert!(!text.contains(hidden), "{hidden} appears in the logs");
    }
}
