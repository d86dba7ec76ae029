//! Test support: a local DynamoDB (Dynoxide, in process), tables made from
//! `template.yaml`'s definition, and a counter of the requests a client sends.

pub mod emulator;
pub mod proxy;
pub mod runtime_api;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde::Deserialize;

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

/// The SSM endpoint for the tests of the Django key parameter: moto's server, which
/// serves SSM (Dynoxide serves DynamoDB only), started once for this process on a free
/// loopback port; the kernel stops it when the process exits.
pub fn ssm_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| start_moto().unwrap_or_else(|e| panic!("cannot start moto's server: {e}")))
}

fn start_moto() -> Result<String, Error> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let program = workspace_root().join(".venv/bin/moto_server");
    let (tx, rx) = mpsc::channel();
    // The server's parent-death signal fires when the spawning thread ends, so spawn
    // from a thread that lives as long as the process.
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let spawned = command
            .spawn()
            .map_err(|e| format!("{}: {e} (run `make venv` first)", program.display()));
        let started = spawned.is_ok();
        let _ = tx.send(spawned.map(|_| ()));
        if started {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()??;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("moto's server did not listen on {addr} within 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("http://{addr}"))
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

#[derive(Debug, Deserialize)]
struct Template {
    #[serde(rename = "Resources")]
    resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Properties", default)]
    properties: serde_yaml_ng::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    attribute_definitions: Vec<AttributeProperty>,
    key_schema: Vec<KeyProperty>,
    billing_mode: Option<String>,
    stream_specification: Option<StreamProperty>,
    time_to_live_specification: Option<TtlProperty>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexProperty>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexProperty {
    index_name: String,
    key_schema: Vec<KeyProperty>,
    projection: ProjectionProperty,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionProperty {
    projection_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeProperty {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyProperty {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamProperty {
    stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlProperty {
    attribute_name: String,
    enabled: bool,
}

/// The key schema, billing, stream and TTL settings of `template.yaml`'s one table.
#[derive(Debug)]
pub struct TableSpec(TableProperties);

impl TableSpec {
    pub fn from_template(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let template: Template = serde_yaml_ng::from_str(&text)?;
        let mut tables = template
            .resources
            .into_values()
            .filter(|r| r.kind == "AWS::DynamoDB::Table");
        let table = tables
            .next()
            .ok_or("template.yaml defines no AWS::DynamoDB::Table")?;
        if tables.next().is_some() {
            return Err("template.yaml defines more than one table".into());
        }
        Ok(Self(serde_yaml_ng::from_value(table.properties)?))
    }

    /// The workspace's own `template.yaml`, read once per process: tests make many tables.
    pub fn of_workspace() -> Result<&'static Self, Error> {
        static SPEC: OnceLock<Result<TableSpec, String>> = OnceLock::new();
        SPEC.get_or_init(|| {
            Self::from_template(&workspace_root().join("template.yaml")).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| e.clone().into())
    }

    pub fn ttl_attribute(&self) -> Option<&str> {
        self.0
            .time_to_live_specification
            .as_ref()
            .filter(|t| t.enabled)
            .map(|t| t.attribute_name.as_str())
    }

    /// Creates the table under `name` and waits until it is active.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), Error> {
        let p = &self.0;
        let attributes = p.attribute_definitions.iter().map(|a| {
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
        });
        let key_schema = |schema: &[KeyProperty]| {
            schema
                .iter()
                .map(|k| {
                    KeySchemaElement::builder()
                        .attribute_name(&k.attribute_name)
                        .key_type(KeyType::from(k.key_type.as_str()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let mut indexes = Vec::new();
        for index in &p.global_secondary_indexes {
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.index_name)
                    .set_key_schema(Some(key_schema(&index.key_schema)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(
                                index.projection.projection_type.as_str(),
                            ))
                            .build(),
                    )
                    .build()?,
            );
        }
        let mut request = client
            .create_table()
            .table_name(name)
            .set_attribute_definitions(Some(attributes.collect::<Result<_, _>>()?))
            .set_key_schema(Some(key_schema(&p.key_schema)?))
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes));
        if let Some(mode) = &p.billing_mode {
            request = request.billing_mode(BillingMode::from(mode.as_str()));
        }
        if let Some(stream) = &p.stream_specification {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                    .build()?,
            );
        }
        request.send().await?;
        if let Some(ttl) = &p.time_to_live_specification {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(&ttl.attribute_name)
                        .enabled(ttl.enabled)
                        .build()?,
                )
                .send()
                .await?;
        }
        Ok(())
    }
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

/// One JSON request to a local endpoint, answered as raw JSON: the records of
/// DynamoDB Streams arrive exactly as Lambda receives them. `target` is the
/// `X-Amz-Target`, such as `DynamoDBStreams_20120810.GetRecords` (sent to [`endpoint`])
/// or `AmazonSSM.PutParameter` (SSM's JSON dialect, sent to [`ssm_endpoint`]). Signed
/// with SigV4 and the test credentials, as the SDK signs.
pub fn raw_json_call(target: &str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
    use std::io::{Read, Write};
    let (url, service, content_type) = if target.starts_with("AmazonSSM.") {
        (ssm_endpoint(), "ssm", "application/x-amz-json-1.1")
    } else {
        (endpoint(), "dynamodb", "application/x-amz-json-1.0")
    };
    let authority = url
        .strip_prefix("http://")
        .ok_or("raw calls need an http:// endpoint")?
        .trim_end_matches('/');
    let payload = body.to_string();
    let headers = [
        ("host", authority),
        ("content-type", content_type),
        ("x-amz-target", target),
    ];
    let signed = sigv4_headers(service, &format!("http://{authority}/"), &headers, &payload)?;
    let mut stream = TcpStream::connect(authority)?;
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in headers
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(
        stream,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{target} failed: {head} {body}").into());
    }
    Ok(serde_json::from_str(body)?)
}

/// The headers SigV4 adds to a request (`Authorization`, `X-Amz-Date`), signed with
/// the test credentials for `service` in us-east-1.
fn sigv4_headers(
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> Result<Vec<(String, String)>, Error> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4::SigningParams;
    let identity = Credentials::new("test", "test", None, None, "testkit").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(payload.as_bytes()),
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect())
}

/// Every record on the table's stream so far, in the shape of a Lambda DynamoDB event.
pub async fn stream_event(client: &Client, table: &str) -> Result<serde_json::Value, Error> {
    use serde_json::json;
    let arn = client
        .describe_table()
        .table_name(table)
        .send()
        .await?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("the table has no stream")?;
    let stream = raw_json_call(
        "DynamoDBStreams_20120810.DescribeStream",
        &json!({"StreamArn": arn}),
    )?;
    let mut records = Vec::new();
    for shard in stream["StreamDescription"]["Shards"]
        .as_array()
        .ok_or("no shards")?
    {
        let iterator = raw_json_call(
            "DynamoDBStreams_20120810.GetShardIterator",
            &json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )?;
        let mut next = iterator["ShardIterator"].clone();
        while next.is_string() {
            let page = raw_json_call(
                "DynamoDBStreams_20120810.GetRecords",
                &json!({"ShardIterator": next}),
            )?;
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for mut record in batch {
                record["eventSourceARN"] = json!(arn);
                records.push(record);
            }
            next = page["NextShardIterator"].clone();
        }
    }
    Ok(json!({ "Records": records }))
}

/// A client for a loopback port where nothing listens: every request is refused, as
/// when DynamoDB cannot be reached.
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
