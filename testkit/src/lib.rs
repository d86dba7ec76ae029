//! Test support: a local DynamoDB (Dynoxide, in process), tables made from
//! `template.yaml`'s definition, and a counter of the requests a client sends.

pub mod emulator;
pub mod proxy;
pub mod runtime_api;
mod ssm;
mod streams;
mod table;

pub use ssm::ssm_endpoint;
pub use streams::{raw_json_call, stream_event};
pub use table::TableSpec;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The epoch second every test clock starts at (2027-01-15), so that expiry arithmetic
/// reads the same in every test.
pub const START: i64 = 1_800_000_000;

/// Session data from a JSON object literal.
pub fn data(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(map) => map,
        other => panic!("session data must be an object, got {other}"),
    }
}

/// The workspace root, where `template.yaml` and `.venv` live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The DynamoDB endpoint for tests: `AWS_ENDPOINT_URL_DYNAMODB` when set, else an
/// in-process Dynoxide (see [`emulator`]) started once for this process on a free
/// loopback port, which ends with the process.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => emulator::serve_memory()
            .map(|server| server.url)
            .unwrap_or_else(|e| panic!("cannot start Dynoxide: {e}")),
    })
}

/// Counts the HTTP requests a client sends, by DynamoDB operation (retries included).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestCounter {
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        if let Ok(mut m) = self.0.lock() {
            *m.entry(target).or_default() += 1;
        }
        Ok(())
    }
}

/// The SDK's HTTP client without its default TLS stack, as the functions build it.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The variables Lambda gives a function, with dummy credentials and every AWS
/// service at `endpoint`: a lookup for `AwsEnv::from_lookup`, so that tests build
/// clients exactly as the functions do.
pub fn lambda_env(endpoint: &str) -> impl Fn(&str) -> Option<String> + use<> {
    let endpoint = endpoint.to_owned();
    move |name| match name {
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    }
}

/// A client for the local endpoint with dummy credentials, counting what it sends.
pub fn client(counter: &RequestCounter) -> Client {
    client_at(endpoint(), counter)
}

/// A client for the DynamoDB endpoint at `url` with dummy credentials, counting what it
/// sends.
pub fn client_at(url: &str, counter: &RequestCounter) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
        .http_client(http_client())
        .endpoint_url(url)
        .interceptor(counter.clone())
        .build();
    Client::from_conf(config)
}

/// A client counting into `counter` and a fresh table made from template.yaml, the
/// start of every test that touches DynamoDB.
pub async fn fresh_table(prefix: &str, counter: &RequestCounter) -> (Client, String) {
    let client = client(counter);
    let table = unique_table_name(prefix);
    TableSpec::of_workspace()
        .unwrap_or_else(|e| panic!("template.yaml defines no table: {e}"))
        .create(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("cannot create table {table}: {e}"));
    (client, table)
}

/// An item as stored, by a consistent GetItem on the `session_key` hash key.
pub async fn raw_item(
    client: &Client,
    table: &str,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("session_key", AttributeValue::S(key.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem: {e}"))
        .item
}

/// A table name no other test in this process uses.
pub fn unique_table_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Items in a table, counted with a full Scan (tests only: tables there are small).
pub async fn item_count(client: &Client, table: &str) -> Result<usize, Error> {
    let mut count = 0;
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await?;
        count += usize::try_from(out.count).unwrap_or(0);
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// A client for a loopback port where nothing listens: every request is refused, as
/// when DynamoDB cannot be reached. It makes the standard three tries, 10 ms apart
/// rather than the SDK's default of up to seconds: what is tested is the refusal.
pub fn unreachable_client() -> Client {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
        .http_client(http_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(10)),
        )
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    Client::from_conf(config)
}

/// Log output captured for the duration of a test: give `writer()` to a subscriber.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// A writer factory (`MakeWriter`) whose writers all append here.
    pub fn writer(&self) -> impl Fn() -> CapturedLogs + Send + Sync + 'static {
        let sink = self.clone();
        move || sink.clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
