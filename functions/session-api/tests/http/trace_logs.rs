//! Whatever log level is asked for, nothing logs a session key, a data value, a
//! caller's `Authorization` or the function's credentials: the binary runs a whole
//! session's life as Lambda runs it (a local Runtime API, Dynoxide behind it) at
//! `RUST_LOG=trace`, and its whole output is searched.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{JSON, MERGE, Payload, http_event};
use serde_json::{Value, json};
use testkit::RequestCounter;
use testkit::runtime_api::RuntimeApi;

const TOKEN: &str = "SESSION-TOKEN-4e1b-never-logged";
const SECRET_ACCESS_KEY: &str = "SECRET-ACCESS-KEY-77aa-never-logged";
const CALLER_SIGNATURE: &str = "CALLER-SIGNATURE-0c9d-never-logged";

/// One invocation: the status and the body of the answer the function posted.
async fn invoke(runtime: &mut RuntimeApi, event: Value) -> (u16, Value) {
    let posted = tokio::time::timeout(
        Duration::from_secs(30),
        runtime.invoke(event.to_string().into_bytes()),
    )
    .await
    .expect("the function answers within 30 s")
    .expect("the Runtime API is up");
    let answer: Value = serde_json::from_slice(&posted.body).expect("a JSON answer");
    let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// An HTTP API event as a signed caller sends it through IAM authorization.
fn signed(method: &str, path: &str, content_type: Option<(&str, &str)>, body: Payload) -> Value {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDCALLER/20270101/us-east-1/execute-api/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={CALLER_SIGNATURE}"
    );
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend(content_type);
    http_event(method, path, &headers, body)
}

#[tokio::test]
async fn at_trace_level_no_key_data_authorization_or_token_reaches_the_logs() {
    let (_, table) = testkit::fresh_table("trace", &RequestCounter::default()).await;
    let mut runtime = RuntimeApi::start()
        .await
        .expect("a Runtime API on 127.0.0.1");
    let log_path = std::env::temp_dir().join(format!("session-api-trace-{}.log", table));
    let log = std::fs::File::create(&log_path).expect("a log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-api"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "session-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "trace")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "trace")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDFUNCTION")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_ENDPOINT_URL_DYNAMODB", testkit::endpoint())
        .env("SESSION_TABLE", &table)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file twice"))
        .stderr(log)
        .spawn()
        .expect("the session-api binary starts");

    let marker = "DATA-VALUE-91f2-never-logged";
    let create = json!({"data": {"note": marker}}).to_string();
    let (status, created) = invoke(
        &mut runtime,
        signed("POST", "/sessions", Some(JSON), Payload::Text(&create)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["session_key"].as_str().unwrap().to_owned();
    let path = format!("/sessions/{key}");
    let later = "DATA-VALUE-5b7e-never-logged";
    let change = json!({ "more": later }).to_string();
    let steps = [
        signed("GET", &path, None, Payload::None),
        signed("PATCH", &path, Some(MERGE), Payload::Text(&change)),
        signed("POST", &format!("{path}/touch"), None, Payload::None),
    ];
    for event in steps {
        let (status, body) = invoke(&mut runtime, event).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, cycled) = invoke(
        &mut runtime,
        signed("POST", &format!("{path}/cycle"), None, Payload::None),
    )
    .await;
    assert_eq!(status, 200, "{cycled}");
    let new_key = cycled["session_key"].as_str().unwrap().to_owned();
    let new_path = format!("/sessions/{new_key}");
    let (status, read) = invoke(&mut runtime, signed("GET", &new_path, None, Payload::None)).await;
    assert_eq!(
        (status, &read["data"]),
        (200, &json!({"note": marker, "more": later}))
    );
    let (status, _) = invoke(
        &mut runtime,
        signed("DELETE", &new_path, None, Payload::None),
    )
    .await;
    assert_eq!(status, 204);
    let _ = child.kill();
    let _ = child.wait();

    let text = std::fs::read_to_string(&log_path).expect("the log");
    let _ = std::fs::remove_file(&log_path);
    let access_lines = text
        .lines()
        .filter(|l| l.contains("\"message\":\"request\""))
        .count();
    assert_eq!(access_lines, 7, "one access line per request: {text}");
    for secret in [
        key.as_str(),
        new_key.as_str(),
        marker,
        later,
        TOKEN,
        SECRET_ACCESS_KEY,
        CALLER_SIGNATURE,
    ] {
        assert!(
            !text.contains(secret),
            "{secret} appears in the logs:\n{text}"
        );
    }
    let lower = text.to_ascii_lowercase();
    for header in ["authorization", "x-amz-security-token"] {
        assert!(
            !lower.contains(header),
            "{header} appears in the logs:\n{text}"
        );
    }
}
