//! Drives the API as API Gateway does: JSON events parsed by lambda_http, a store on a
//! fresh moto table made from template.yaml, and a clock that moves only when told.
#![allow(dead_code)]

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use base64::Engine;
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};
use session_api::App;
use session_store::item::Item;
use session_store::{ManualClock, SessionStore, StoreConfig, Timestamp};
use testkit::RequestCounter;

pub const START: i64 = 1_800_000_000;
pub const JSON: (&str, &str) = ("content-type", "application/json");
pub const MERGE: (&str, &str) = ("content-type", "application/merge-patch+json");

pub struct Api {
    pub app: App,
    pub client: Client,
    pub counter: RequestCounter,
    pub clock: ManualClock,
    pub table: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn key(&self) -> String {
        self.json()["session_key"]
            .as_str()
            .expect("a session in the body")
            .to_owned()
    }

    /// Asserts an RFC 9457 problem document with this status.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let problem = self.json();
        assert_eq!(problem["status"], json!(status));
        assert!(problem["title"].is_string() && problem["detail"].is_string());
    }
}

pub async fn api() -> Api {
    api_with(|_| {}).await
}

pub async fn api_with(configure: impl FnOnce(&mut StoreConfig)) -> Api {
    let counter = RequestCounter::default();
    let (client, table) = testkit::fresh_table("api", &counter).await;
    let mut config = StoreConfig {
        table_name: table.clone(),
        ..StoreConfig::default()
    };
    configure(&mut config);
    let clock = ManualClock::at(Timestamp::from_epoch_seconds(START));
    let store = SessionStore::new(client.clone(), config)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    Api {
        app: App::new(store),
        client,
        counter,
        clock,
        table,
    }
}

/// An API whose store reaches DynamoDB through a fault proxy, with the client settings
/// the functions use in AWS (retries, timeouts); `client` still reaches moto directly,
/// so that tests can check the table whatever the proxy does.
pub async fn api_behind_proxy() -> (Api, testkit::proxy::Proxy) {
    let mut api = api().await;
    let proxy = testkit::proxy::Proxy::start(testkit::endpoint())
        .await
        .expect("a proxy on 127.0.0.1");
    let aws = session_store::AwsEnv::from_lookup(testkit::lambda_env(&proxy.url))
        .expect("settings for the proxy");
    let config = api.app.store().config().clone();
    let store = SessionStore::new(aws.dynamodb(), config)
        .unwrap()
        .with_clock(Arc::new(api.clock.clone()));
    api.app = App::new(store);
    (api, proxy)
}

/// The body of a request: text, or raw bytes sent base64-encoded as API Gateway does.
pub enum Payload<'a> {
    None,
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// An API Gateway HTTP API (payload 2.0) event, as the runtime would receive it.
pub fn http_event(method: &str, path: &str, headers: &[(&str, &str)], body: Payload) -> Value {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers.iter().map(|(k, v)| (k.to_lowercase(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "test-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2027:00:00:00 +0000",
            "timeEpoch": 1_798_761_600_000_i64
        },
        "isBase64Encoded": false
    });
    match body {
        Payload::None => {}
        Payload::Text(t) => event["body"] = json!(t),
        Payload::Bytes(b) => {
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
            event["isBase64Encoded"] = json!(true);
        }
    }
    event
}

impl Api {
    pub async fn send_event(&self, event: &Value) -> Reply {
        let request = lambda_http::request::from_str(&event.to_string()).expect("a valid event");
        self.send_request(request).await
    }

    /// The request an HTTP API event makes, to be changed before it is sent.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Payload<'_>,
    ) -> lambda_http::Request {
        let event = http_event(method, path, headers, body);
        lambda_http::request::from_str(&event.to_string()).expect("a valid event")
    }

    pub async fn send_request(&self, request: lambda_http::Request) -> Reply {
        let response = session_api::handle(&self.app, request).await;
        let (parts, body) = response.into_parts();
        let text = match body {
            lambda_http::Body::Empty => String::new(),
            lambda_http::Body::Text(t) => t,
            lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            text,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Payload<'_>,
    ) -> Reply {
        self.send_event(&http_event(method, path, headers, body))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], Payload::None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let text = body.to_string();
        self.call(
            "POST",
            path,
            &[("content-type", "application/json")],
            Payload::Text(&text),
        )
        .await
    }

    /// Creates a session through the API and returns its key.
    pub async fn create(&self, data: Value) -> String {
        let reply = self.post_json("/sessions", &json!({ "data": data })).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.key()
    }

    pub async fn items(&self) -> Vec<Item> {
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default();
        items.sort_by_key(|i| format!("{:?}", i.get("session_key")));
        items
    }

    pub async fn raw_item(&self, key: &str) -> Option<Item> {
        testkit::raw_item(&self.client, &self.table, key).await
    }
}

/// Log output captured from the functions' own subscriber, for the duration of a test.
pub use testkit::CapturedLogs;

pub fn install(logs: &CapturedLogs) -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(session_store::telemetry::subscriber_with(
        "info",
        logs.writer(),
    ))
}

/// PATCH with a merge patch, and `If-Match` when given.
pub async fn patch(api: &Api, key: &str, patch: &Value, if_match: Option<&str>) -> Reply {
    let text = patch.to_string();
    let mut headers = vec![MERGE];
    if let Some(tag) = if_match {
        headers.push(("if-match", tag));
    }
    api.call(
        "PATCH",
        &format!("/sessions/{key}"),
        &headers,
        Payload::Text(&text),
    )
    .await
}

/// PUT with a JSON body, and `If-Match` when given.
pub async fn put(api: &Api, key: &str, body: &Value, if_match: Option<&str>) -> Reply {
    let text = body.to_string();
    let mut headers = vec![JSON];
    if let Some(tag) = if_match {
        headers.push(("if-match", tag));
    }
    api.call(
        "PUT",
        &format!("/sessions/{key}"),
        &headers,
        Payload::Text(&text),
    )
    .await
}
