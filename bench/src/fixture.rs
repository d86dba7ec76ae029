//! What every measurement starts from: the run's settings, the binaries it measures, a
//! fresh table behind the emulator's keep-alive proxy and TLS front, and a function
//! process under the harness's Runtime API with Lambda's environment.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use testkit::RequestCounter;
use testkit::proxy::Proxy;
use testkit::runtime_api::RuntimeApi;

use crate::cgroup::CpuQuota;
use crate::figures::Error;
use crate::tls::TlsFront;

pub struct Bench {
    pub runs: usize,
    /// Cycles of (create, get, patch, delete) per warm run.
    pub cycles: usize,
    pub cleanup_items: usize,
    /// Concurrent clients of the load test, and how long it runs.
    pub load_clients: usize,
    pub load_duration: std::time::Duration,
    pub root: PathBuf,
    /// When the run must end (`--ends-by`): the measurements left out past it say so.
    pub ends_by: Option<std::time::Instant>,
}

/// The instant at `epoch` seconds of the wall clock (now, if that has passed).
pub fn instant_at_epoch(epoch: u64) -> std::time::Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = std::time::Duration::from_secs(epoch).saturating_sub(now);
    std::time::Instant::now() + left
}

/// The API binary as deployed, and the bench-only build without aws-config's chains.
pub const API: &str = "session-api";
pub const API_STATIC_ENV: &str = "session-api-static-env";
/// The floors (`bench/floors`): lambda_http alone, and with the workload's DynamoDB calls.
pub const RUNTIME_FLOOR: &str = "floor-runtime";
pub const WORKLOAD_FLOOR: &str = "floor-workload";

/// How a function reaches DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Plain HTTP to the keep-alive proxy (the roots are read all the same).
    Plain,
    /// HTTPS through the TLS front, with this machine's roots and the bench's CA.
    Tls,
    /// The same, with the bench's CA as the only root.
    TlsCaOnly,
}

pub struct Fixture {
    pub table: String,
    /// The emulator behind a keep-alive front, as the measured processes see it.
    pub proxy: Proxy,
    /// The same behind TLS.
    pub tls: TlsFront,
    pub counter: RequestCounter,
    pub api_template: Value,
}

impl Bench {
    /// A fresh table, the emulator behind the keep-alive proxy and the TLS front.
    pub async fn fixture(&self) -> Result<Fixture, Error> {
        self.fixture_on(testkit::endpoint()).await
    }

    /// [`Bench::fixture`] on the emulator at `endpoint`.
    pub async fn fixture_on(&self, endpoint: &str) -> Result<Fixture, Error> {
        let counter = RequestCounter::default();
        let (_, table) = new_table(endpoint, "bench", &counter).await?;
        let api_template: Value = serde_json::from_str(&std::fs::read_to_string(
            self.root.join("events/api-create.json"),
        )?)?;
        let proxy = Proxy::start(endpoint).await?;
        let tls = TlsFront::start(&proxy.url, &self.root.join("target/bench-tls")).await?;
        Ok(Fixture {
            table,
            proxy,
            tls,
            counter,
            api_template,
        })
    }

    /// A fresh table alone on a new in-memory emulator, for the measurements that write
    /// thousands of items: by then the shared emulator holds the run's earlier items and
    /// stream records, and writes slower by an order of magnitude (500 cleanup deletes
    /// took 7 to 8 s on it), which made those measurements most of the run's time. The
    /// emulator serves from a thread of its own until the harness ends (one per call,
    /// each a small in-memory database).
    pub async fn table_alone(
        prefix: &str,
        counter: &RequestCounter,
    ) -> Result<(aws_sdk_dynamodb::Client, String), Error> {
        let emulator = testkit::emulator::serve_memory()?;
        new_table(&emulator.url, prefix, counter).await
    }

    /// A release binary of the workspace.
    pub fn binary(&self, name: &str) -> PathBuf {
        self.root.join("target/release").join(name)
    }

    /// The dev venv's Python, which has Django and the Django backend.
    pub fn python(&self) -> PathBuf {
        self.root.join(".venv/bin/python")
    }

    /// The function binary under the harness's Runtime API, with Lambda's environment,
    /// its log lines (stdout) going to `stdout`.
    pub fn spawn_function(
        &self,
        f: &Fixture,
        api: &RuntimeApi,
        name: &str,
        link: Link,
        stdout: Stdio,
    ) -> Result<Child, Error> {
        self.spawn_function_in(f, api, name, link, stdout, None)
    }

    /// [`Bench::spawn_function`] under a CPU quota when given, its memory size then
    /// Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (else the template's 128 MB).
    pub fn spawn_function_in(
        &self,
        f: &Fixture,
        api: &RuntimeApi,
        name: &str,
        link: Link,
        stdout: Stdio,
        quota: Option<&CpuQuota>,
    ) -> Result<Child, Error> {
        let memory_mb = quota.map_or(128, |q| q.memory_mb);
        let binary = self.binary(name);
        let mut command = match quota {
            Some(q) => q.command(&binary),
            None => Command::new(&binary),
        };
        command.env_clear();
        // The SDK reads the root certificates with its first connection, HTTP or HTTPS.
        // Without `SSL_CERT_FILE` it would read this machine's, which on Debian is a
        // bundle and a directory of the same 144 certificates, twice what Lambda's image
        // holds; every configuration but the one-root one reads the one bundle instead.
        match link {
            Link::Plain => command
                .env("AWS_ENDPOINT_URL_DYNAMODB", &f.proxy.url)
                .env("SSL_CERT_FILE", &f.tls.bundle),
            Link::Tls => command
                .env("AWS_ENDPOINT_URL_DYNAMODB", &f.tls.url)
                .env("SSL_CERT_FILE", &f.tls.bundle),
            Link::TlsCaOnly => command
                .env("AWS_ENDPOINT_URL_DYNAMODB", &f.tls.url)
                .env("SSL_CERT_FILE", &f.tls.ca_only),
        };
        Ok(command
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SESSION_TABLE", &f.table)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: {e} (build it with cargo build --release)",
                    binary.display()
                )
            })?)
    }
}

/// A client of the emulator at `endpoint` counting into `counter`, and a table made there
/// from template.yaml.
async fn new_table(
    endpoint: &str,
    prefix: &str,
    counter: &RequestCounter,
) -> Result<(aws_sdk_dynamodb::Client, String), Error> {
    let client = testkit::client_at(endpoint, counter);
    let table = testkit::unique_table_name(prefix);
    testkit::TableSpec::of_workspace()?
        .create(&client, &table)
        .await?;
    Ok((client, table))
}
