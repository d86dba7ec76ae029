//! Drives the API as API Gateway does: JSON events parsed by lambda_http, and a clock
//! that moves only when told, on a fresh table made from template.yaml in Dynoxide (the
//! tests' DynamoDB, in process); or behind a fault proxy, or on an unreachable DynamoDB.
#![allow(dead_code)]

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};
use session_api::App;
use session_store::item::Item;
use session_store::{DynamoStore, ManualClock, Principals, StoreConfig, Timestamp};
use testkit::RequestCounter;

pub use testkit::START;
pub const JSON: (&str, &str) = ("content-type", "application/json");
pub const MERGE: (&str, &str) = ("content-type", "application/merge-patch+json");

pub struct Api<S: Principals = DynamoStore> {
    pub app: App<S>,
    pub clock: ManualClock,
    table: Table,
}

/// Where the items behind the API are, for tests that look at or write them directly.
enum Table {
    Dynamo {
        client: Client,
        name: String,
    },
    /// A DynamoDB nobody can reach: no table to look at.
    Unreachable,
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

fn clock() -> ManualClock {
    ManualClock::at(Timestamp::from_epoch_seconds(START))
}

/// The API on a fresh table.
pub async fn api() -> Api {
    api_with(|_| {}).await
}

/// The API on a fresh table with these settings.
pub async fn api_with(configure: impl FnOnce(&mut StoreConfig)) -> Api {
    dynamo_api(None, configure).await
}

/// The API on a fresh table, with `client` as the store's client.
async fn dynamo_api(
    client: Option<Client>,
    configure: impl FnOnce(&mut StoreConfig),
) -> Api<DynamoStore> {
    let (direct, name) = testkit::fresh_table("api", &RequestCounter::default()).await;
    let mut config = StoreConfig {
        table_name: name.clone(),
        ..StoreConfig::default()
    };
    configure(&mut config);
    let clock = clock();
    let store = DynamoStore::new(client.unwrap_or_else(|| direct.clone()), config)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    Api {
        app: App::new(store),
        clock,
        table: Table::Dynamo {
            client: direct,
            name,
        },
    }
}

/// The API on a DynamoDB that refuses every connection (no emulator runs).
pub async fn unreachable_api() -> Api<DynamoStore> {
    let clock = clock();
    let store = DynamoStore::new(testkit::unreachable_client(), StoreConfig::default())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    Api {
        app: App::new(store),
        clock,
        table: Table::Unreachable,
    }
}

/// An API whose store reaches DynamoDB through a fault proxy, with the client settings
/// the functions use in AWS (retries, timeouts); the table itself is still reached
/// directly, so that tests can check it whatever the proxy does.
pub async fn api_behind_proxy() -> (Api<DynamoStore>, testkit::proxy::Proxy) {
    api_behind_proxy_with(|_| {}).await
}

/// [`api_behind_proxy`] with the store's settings changed by `configure`.
pub async fn api_behind_proxy_with(
    configure: impl FnOnce(&mut StoreConfig),
) -> (Api<DynamoStore>, testkit::proxy::Proxy) {
    let proxy = testkit::proxy::Proxy::start(testkit::endpoint())
        .await
        .expect("a proxy on 127.0.0.1");
    let aws = session_store::AwsEnv::from_lookup(testkit::lambda_env(&proxy.url))
        .expect("settings for the proxy");
    (dynamo_api(Some(aws.dynamodb()), configure).await, proxy)
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

impl<S: Principals> Api<S> {
    /// The same API, writing access lines as `config` says.
    pub fn with_access_log(self, config: session_store::AccessLogConfig) -> Self {
        Self {
            app: self.app.with_access_log(config),
            clock: self.clock,
            table: self.table,
        }
    }

    /// The same API, serving the routes by principal or not.
    pub fn with_principal_routes(self, routes: session_store::PrincipalRoutes) -> Self {
        Self {
            app: self.app.with_principal_routes(routes),
            clock: self.clock,
            table: self.table,
        }
    }

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

    /// An event whose invocation ends `left` from now, as Lambda's context tells it.
    pub fn near_deadline(
        &self,
        method: &str,
        path: &str,
        body: Payload<'_>,
        left: std::time::Duration,
    ) -> lambda_http::Request {
        use lambda_http::RequestExt;
        let mut context = lambda_http::Context::default();
        let ends = std::time::SystemTime::now() + left;
        context.deadline = ends
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.request(method, path, &[MERGE], body)
            .with_lambda_context(context)
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

    /// `POST /sessions/{key}/cycle`.
    pub async fn cycle(&self, key: &str) -> Reply {
        self.call(
            "POST",
            &format!("/sessions/{key}/cycle"),
            &[],
            Payload::None,
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
        let mut items = match &self.table {
            Table::Unreachable => Vec::new(),
            Table::Dynamo { client, name } => client
                .scan()
                .table_name(name)
                .consistent_read(true)
                .send()
                .await
                .expect("scan")
                .items
                .unwrap_or_default(),
        };
        items.sort_by_key(|i| format!("{:?}", i.get("session_key")));
        items
    }

    pub async fn raw_item(&self, key: &str) -> Option<Item> {
        match &self.table {
            Table::Dynamo { client, name } => testkit::raw_item(client, name, key).await,
            Table::Unreachable => None,
        }
    }

    /// Deletes an item unconditionally, as another program writing the table would.
    pub async fn delete_raw(&self, key: &str) {
        let Table::Dynamo { client, name } = &self.table else {
            panic!("nothing can be deleted from an unreachable table")
        };
        client
            .delete_item()
            .table_name(name)
            .key("session_key", AttributeValue::S(key.into()))
            .send()
            .await
            .expect("raw DeleteItem");
    }

    /// Writes an item as it is, as another program writing the table would.
    pub async fn put_raw(&self, item: Item) {
        match &self.table {
            Table::Unreachable => panic!("nothing can be written to an unreachable table"),
            Table::Dynamo { client, name } => {
                client
                    .put_item()
                    .table_name(name)
                    .set_item(Some(item))
                    .send()
                    .await
                    .expect("raw PutItem");
            }
        }
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
pub async fn patch<S: Principals>(
    api: &Api<S>,
    key: &str,
    patch: &Value,
    if_match: Option<&str>,
) -> Reply {
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
pub async fn put<S: Principals>(
    api: &Api<S>,
    key: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Reply {
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
