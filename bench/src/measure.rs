//! The measurements. Each runs `runs` times; processes are timed from just before
//! spawn, and their peak RSS and CPU come from the kernel (`wait4`, the process CPU clock).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::StreamExt;
use serde_json::{Value, json};
use session_cleanup::{Cleanup, Overrides};
use session_store::item::Layout;
use session_store::{
    CleanupConfig, Clock, DynamoStore, Expiry, SessionKey, SessionMeta, StoreConfig, SystemClock,
    Timestamp, Version,
};
use testkit::RequestCounter;

use testkit::proxy::Proxy;
use testkit::runtime_api::RuntimeApi;

use crate::tls::TlsFront;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Bench {
    pub runs: usize,
    /// Cycles of (create, get, patch, delete) per warm run.
    pub cycles: usize,
    pub cleanup_items: usize,
    /// Concurrent clients of the load test, and how long it runs.
    pub load_clients: usize,
    pub load_duration: std::time::Duration,
    pub root: PathBuf,
}

/// Median, min and max of a figure's runs.
#[derive(Debug, Clone)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: Vec<f64>,
}

impl Stats {
    pub fn of(mut runs: Vec<f64>) -> Self {
        runs.sort_by(f64::total_cmp);
        let n = runs.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => runs[n / 2],
            _ => (runs[n / 2 - 1] + runs[n / 2]) / 2.0,
        };
        Self {
            median,
            min: runs.first().copied().unwrap_or(f64::NAN),
            max: runs.last().copied().unwrap_or(f64::NAN),
            runs,
        }
    }

    pub fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max, "runs": self.runs })
    }
}

/// How a process ended: its peak RSS and its CPU time, from `wait4`.
struct Exit {
    max_rss_kib: i64,
}

fn kill_and_reap(child: &mut Child) -> Exit {
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain syscalls on a child this process spawned and has not reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    reap(pid)
}

fn reap(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers live for the call.
    unsafe {
        libc::wait4(pid, &mut status, 0, &mut usage);
    }
    Exit {
        max_rss_kib: usage.ru_maxrss,
    }
}

/// CPU time (user + system) of another process so far, in nanoseconds.
fn cpu_ns(pid: u32) -> Result<u128, Error> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: out-pointers to locals.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if rc != 0 {
        return Err(format!("clock_getcpuclockid: {rc}").into());
    }
    // SAFETY: as above.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err("clock_gettime of the function's CPU clock failed".into());
    }
    Ok(ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128)
}

/// User and system CPU seconds of another process so far, from `/proc` (clock ticks of
/// 10 ms: coarse, but enough over thousands of requests).
fn user_and_system(pid: u32) -> Result<(f64, f64), Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let field = |i: usize| -> Result<f64, Error> {
        Ok(fields.get(i).ok_or("short /proc stat")?.parse::<f64>()? / ticks)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Ok((field(11)?, field(12)?))
}

/// An API Gateway HTTP API event, from the committed sample with another method, path and body.
pub(crate) fn api_event(
    template: &Value,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut e = template.clone();
    e["routeKey"] = json!("$default");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["routeKey"] = json!("$default");
    if let Some(map) = e["headers"].as_object_mut() {
        map.remove("content-length");
        for (k, v) in headers {
            map.insert((*k).into(), json!(v));
        }
    }
    match body {
        Some(b) => e["body"] = json!(b.to_string()),
        None => {
            if let Some(o) = e.as_object_mut() {
                o.remove("body");
            }
        }
    }
    e.to_string().into_bytes()
}

/// The status and JSON body of a posted API Gateway response.
/// The DynamoDB requests each of our operations makes, counted through the API's handler.
async fn count_ours(f: &Fixture) -> Result<BTreeMap<&'static str, u64>, Error> {
    let store = DynamoStore::new(
        testkit::client(&f.counter),
        StoreConfig {
            table_name: f.table.clone(),
            ..StoreConfig::default()
        },
    )?;
    let app = session_api::App::new(store);
    let t = &f.api_template;
    let call = async |event: Vec<u8>| -> Result<(u64, Value), Error> {
        f.counter.reset();
        let request = lambda_http::request::from_str(&String::from_utf8(event)?)?;
        let response = session_api::handle(&app, request).await;
        let body = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok((f.counter.total(), body))
    };
    let json_type = [("content-type", "application/json")];
    let merge_type = [("content-type", "application/merge-patch+json")];
    let data = json!({ "data": { "cart": ["book"] } });
    let mut ours = BTreeMap::new();
    let (n, body) = call(api_event(t, "POST", "/sessions", Some(&data), &json_type)).await?;
    ours.insert("create", n);
    let key = body["session_key"].as_str().ok_or("no key")?.to_owned();
    let path = format!("/sessions/{key}");
    let mut touch_query: Value = serde_json::from_slice(&api_event(t, "GET", &path, None, &[]))?;
    touch_query["rawQueryString"] = json!("touch=true");
    touch_query["queryStringParameters"] = json!({ "touch": "true" });
    let theme = json!({ "theme": "light" });
    let steps = [
        ("get", api_event(t, "GET", &path, None, &[])),
        (
            "get of an unknown key",
            api_event(
                t,
                "GET",
                &format!("/sessions/{}", "0".repeat(32)),
                None,
                &[],
            ),
        ),
        ("exists", api_event(t, "HEAD", &path, None, &[])),
        (
            "replace",
            api_event(t, "PUT", &path, Some(&data), &json_type),
        ),
        (
            "touch",
            api_event(t, "POST", &format!("{path}/touch"), None, &[]),
        ),
        (
            "get with touch, refresh not due",
            touch_query.to_string().into_bytes(),
        ),
        (
            "merge-update",
            api_event(t, "PATCH", &path, Some(&theme), &merge_type),
        ),
    ];
    for (op, event) in steps {
        ours.insert(op, call(event).await?.0);
    }
    let (n, body) = call(api_event(t, "POST", &format!("{path}/cycle"), None, &[])).await?;
    ours.insert("cycle key", n);
    let cycled = body["session_key"].as_str().ok_or("no cycled key")?;
    let delete = api_event(t, "DELETE", &format!("/sessions/{cycled}"), None, &[]);
    ours.insert("delete", call(delete).await?.0);
    Ok(ours)
}

/// The indices 0..len starting from `run`'s turn: alternating runs start from a
/// different configuration each time, so that drift hits all alike.
fn rotated(run: usize, len: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |i| (i + run) % len)
}

/// The request a cold start answers first: a create.
fn cold_create(f: &Fixture) -> Vec<u8> {
    api_event(
        &f.api_template,
        "POST",
        "/sessions",
        Some(&json!({ "data": { "cart": ["book"], "theme": "dark" } })),
        &[("content-type", "application/json")],
    )
}

fn reply(posted: &[u8]) -> Result<(u16, Value), Error> {
    let v: Value = serde_json::from_slice(posted)?;
    let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = v["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// The API binary as deployed, and the bench-only build without aws-config's chains.
const API: &str = "session-api";
const API_STATIC_ENV: &str = "session-api-static-env";
/// The floors (`bench/floors`): lambda_http alone, and with the workload's DynamoDB calls.
const RUNTIME_FLOOR: &str = "floor-runtime";
const WORKLOAD_FLOOR: &str = "floor-workload";

/// How a function reaches DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Plain HTTP to the keep-alive proxy (the roots are read all the same).
    Plain,
    /// HTTPS through the TLS front, with this machine's roots and the bench's CA.
    Tls,
    /// The same, with the bench's CA as the only root.
    TlsCaOnly,
}

/// The cold starts measured, in alternation: (name in results.json, binary, link).
const STARTS: [(&str, &str, Link); 7] = [
    ("ours", API, Link::Plain),
    ("ours_static_env", API_STATIC_ENV, Link::Plain),
    ("workload_floor", WORKLOAD_FLOOR, Link::Plain),
    ("runtime_floor", RUNTIME_FLOOR, Link::Plain),
    ("ours_tls", API, Link::Tls),
    ("workload_floor_tls", WORKLOAD_FLOOR, Link::Tls),
    ("ours_tls_one_root", API, Link::TlsCaOnly),
];

/// The warm runs measured, in alternation.
const WARM: [(&str, &str); 3] = [
    ("ours", API),
    ("workload_floor", WORKLOAD_FLOOR),
    ("runtime_floor", RUNTIME_FLOOR),
];

/// Cold starts of one binary: total, less the emulator's share, and peak RSS.
#[derive(Default)]
struct Cold {
    ms: Vec<f64>,
    own: Vec<f64>,
    rss: Vec<f64>,
}

/// Warm runs of one binary, per request: CPU, its user and system parts, wall time and
/// wall time less the emulator's share, in µs.
#[derive(Default)]
struct Warm {
    cpu: Vec<f64>,
    user: Vec<f64>,
    sys: Vec<f64>,
    wall: Vec<f64>,
    own: Vec<f64>,
}

struct Fixture {
    table: String,
    /// The emulator behind a keep-alive front, as the measured processes see it.
    proxy: Proxy,
    /// The same behind TLS.
    tls: TlsFront,
    counter: RequestCounter,
    api_template: Value,
}

impl Bench {
    /// A fresh table, the emulator behind the keep-alive proxy and the TLS front.
    async fn fixture(&self) -> Result<Fixture, Error> {
        let counter = RequestCounter::default();
        let (_, table) = testkit::fresh_table("bench", &counter).await;
        let api_template: Value = serde_json::from_str(&std::fs::read_to_string(
            self.root.join("events/api-create.json"),
        )?)?;
        let proxy = Proxy::start(testkit::endpoint()).await?;
        let tls = TlsFront::start(&proxy.url, &self.root.join("target/bench-tls")).await?;
        Ok(Fixture {
            table,
            proxy,
            tls,
            counter,
            api_template,
        })
    }

    /// Two builds of the API side by side, to try one change (`--compare BEFORE AFTER`,
    /// binaries in target/release): cold starts over plain HTTP and over TLS, peak RSS
    /// and warm CPU per request, in alternation, with AFTER ÷ BEFORE of each median.
    pub async fn compare(&self, before: &str, after: &str) -> Result<Value, Error> {
        let f = self.fixture().await?;
        let create = cold_create(&f);
        let names = [before, after];
        let links = [Link::Plain, Link::Tls];
        let mut cold: Vec<Vec<Cold>> = (0..2)
            .map(|_| links.iter().map(|_| Cold::default()).collect())
            .collect();
        let mut warm = [Warm::default(), Warm::default()];
        eprintln!("bench: cold starts of {before} and {after}");
        for run in 0..self.runs * 4 {
            for j in rotated(run, 2) {
                for (k, link) in links.iter().enumerate() {
                    self.cold_api(&f, names[j], *link, &create, &mut cold[j][k])
                        .await?;
                }
            }
        }
        eprintln!("bench: warm runs of {before} and {after}");
        for run in 0..self.runs {
            for j in rotated(run, 2) {
                self.warm_run(&f, names[j], None, &mut warm[j]).await?;
            }
        }
        let mut out = serde_json::Map::new();
        let mut medians = Vec::new();
        for ((name, cold), warm) in names.iter().zip(cold).zip(warm) {
            let [plain, tls] = <[Cold; 2]>::try_from(cold).map_err(|_| "two links")?;
            let figures = [
                ("cold_ms_without_emulator", Stats::of(plain.own)),
                ("cold_tls_ms_without_emulator", Stats::of(tls.own)),
                ("peak_rss_mib", Stats::of(plain.rss)),
                ("cpu_us_per_request", Stats::of(warm.cpu)),
                ("wall_less_emulator_us_per_request", Stats::of(warm.own)),
            ];
            medians.push(
                figures
                    .iter()
                    .map(|(k, s)| (*k, s.median))
                    .collect::<Vec<_>>(),
            );
            let figures: serde_json::Map<String, Value> = figures
                .into_iter()
                .map(|(k, s)| (k.into(), s.json()))
                .collect();
            out.insert((*name).into(), Value::Object(figures));
        }
        let ratios: serde_json::Map<String, Value> = medians[0]
            .iter()
            .zip(&medians[1])
            .map(|((k, b), (_, a))| ((*k).into(), json!(a / b)))
            .collect();
        out.insert("after_over_before".into(), Value::Object(ratios));
        Ok(Value::Object(out))
    }

    pub async fn run_all(&self) -> Result<Value, Error> {
        let f = self.fixture().await?;
        let mut results = serde_json::Map::new();
        eprintln!(
            "bench: cold start ({} runs of each of {} configurations, {} of the seed)",
            self.runs * 4,
            STARTS.len(),
            self.runs
        );
        results.insert("cold_start".into(), self.cold_start(&f).await?);
        eprintln!(
            "bench: warm CPU per request ({} runs of {} requests each, ours and the floors)",
            self.runs,
            4 * self.cycles
        );
        results.insert("warm".into(), self.warm(&f).await?);
        eprintln!("bench: DynamoDB requests per operation");
        results.insert(
            "requests_per_operation".into(),
            self.requests_per_operation(&f).await?,
        );
        results.insert("binary_sizes".into(), self.sizes()?);
        eprintln!(
            "bench: cleanup ({} runs of {} expired items)",
            self.runs, self.cleanup_items
        );
        results.insert("cleanup".into(), self.cleanup().await?);
        eprintln!("bench: auditor ({} runs of 10,000 records)", self.runs);
        results.insert("auditor".into(), self.auditor()?);
        eprintln!(
            "bench: load ({} clients for {} s)",
            self.load_clients,
            self.load_duration.as_secs()
        );
        results.insert(
            "load".into(),
            crate::load::run(
                &f.proxy.url,
                &f.table,
                &f.api_template,
                self.load_clients,
                self.load_duration,
            )
            .await?,
        );
        let cost = crate::cost::table(&self.root, &Value::Object(results.clone()))?;
        results.insert("cost_per_million".into(), cost);
        results.insert(
            "machine".into(),
            json!({
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "os": std::env::consts::OS,
                "arch": std::env::consts::ARCH,
                "dynamodb": "moto server (tools/local_dynamodb.py) on 127.0.0.1",
            }),
        );
        Ok(Value::Object(results))
    }

    fn binary(&self, name: &str) -> PathBuf {
        self.root.join("target/release").join(name)
    }

    fn python(&self) -> PathBuf {
        self.root.join(".venv/bin/python")
    }

    /// The function binary under the harness's Runtime API, with Lambda's environment,
    /// its log lines (stdout) going to `stdout`.
    fn spawn_function(
        &self,
        f: &Fixture,
        api: &RuntimeApi,
        name: &str,
        link: Link,
        stdout: Stdio,
    ) -> Result<Child, Error> {
        let binary = self.binary(name);
        let mut command = Command::new(&binary);
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
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
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

    fn spawn_seed(&self, f: &Fixture, command: &str, input: &Value) -> Result<Child, Error> {
        let mut child = Command::new(self.python())
            .arg(self.root.join("tools/django_seed.py"))
            .arg(command)
            .env_clear()
            .env("SESSION_TABLE", &f.table)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &f.proxy.url)
            .env("DJANGO_SECRET_KEY", "bench-secret")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.to_string().as_bytes())?;
        }
        Ok(child)
    }

    /// Runs one command of the seed's driver to its end and returns the JSON it printed.
    async fn seed_command(
        &self,
        f: &Fixture,
        command: &str,
        input: &Value,
    ) -> Result<Value, Error> {
        let mut child = self.spawn_seed(f, command, input)?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        let pid = child.id() as libc::pid_t;
        tokio::task::spawn_blocking(move || reap(pid)).await?;
        serde_json::from_str(&line)
            .map_err(|_| format!("seed {command} run printed {line:?}").into())
    }

    async fn cold_start(&self, f: &Fixture) -> Result<Value, Error> {
        let create = cold_create(f);
        // Every configuration in turn, the order rotating from run to run, so that drift
        // hits all alike. A cold start takes milliseconds, so each gets four times the
        // runs: the differences are of the order of this machine's run-to-run noise.
        let mut cold: Vec<Cold> = STARTS.iter().map(|_| Cold::default()).collect();
        for run in 0..self.runs * 4 {
            for j in rotated(run, STARTS.len()) {
                let (_, binary, link) = STARTS[j];
                self.cold_api(f, binary, link, &create, &mut cold[j])
                    .await?;
            }
        }
        let (mut seed_ms, mut seed_rss, mut seed_own) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let waited = f.proxy.upstream_ns();
            let started = Instant::now();
            let mut child = self.spawn_seed(f, "cold", &json!({}))?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let (line, done) = tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                let read = BufReader::new(stdout).read_line(&mut line);
                (read.map(|_| line), Instant::now())
            })
            .await?;
            let line = line?;
            let pid = child.id() as libc::pid_t;
            let exit = tokio::task::spawn_blocking(move || reap(pid)).await?;
            let parsed: Value = serde_json::from_str(&line)
                .map_err(|_| format!("seed cold run printed {line:?}"))?;
            if !parsed["key"].is_string() {
                return Err(format!("seed cold run printed {line}").into());
            }
            let ms = done.duration_since(started).as_secs_f64() * 1e3;
            seed_ms.push(ms);
            seed_own.push(ms - (f.proxy.upstream_ns() - waited) as f64 / 1e6);
            seed_rss.push(exit.max_rss_kib as f64 / 1024.0);
        }
        let mut configurations = serde_json::Map::new();
        let mut own = BTreeMap::new();
        for ((name, binary, link), c) in STARTS.iter().zip(cold) {
            let mine = Stats::of(c.own);
            own.insert(*name, mine.median);
            configurations.insert(
                (*name).into(),
                json!({
                    "binary": binary,
                    "link": format!("{link:?}"),
                    "ms": Stats::of(c.ms).json(),
                    "ms_without_emulator": mine.json(),
                    "peak_rss_mib": Stats::of(c.rss).json(),
                }),
            );
        }
        let at = |name: &str| own.get(name).copied().unwrap_or(f64::NAN);
        let ours = &configurations["ours"];
        let seed_ms = Stats::of(seed_ms);
        Ok(json!({
            "ours_ms": ours["ms"],
            "ours_peak_rss_mib": ours["peak_rss_mib"],
            "ours_ms_without_emulator": ours["ms_without_emulator"],
            "seed_ms": seed_ms.json(),
            "seed_peak_rss_mib": Stats::of(seed_rss).json(),
            "seed_ms_without_emulator": Stats::of(seed_own).json(),
            "seed_over_ours": seed_ms.median / ours["ms"]["median"].as_f64().unwrap_or(f64::NAN),
            "aws_config_ms": at("ours") - at("ours_static_env"),
            "ours_over_workload_floor": at("ours") / at("workload_floor"),
            "ours_tls_over_workload_floor_tls": at("ours_tls") / at("workload_floor_tls"),
            "tls_adds_ms": at("ours_tls") - at("ours"),
            "roots_ms": at("ours_tls") - at("ours_tls_one_root"),
            "tls_roots": f.tls.roots,
            "configurations": configurations,
        }))
    }

    /// One cold start of an API binary: spawned with a create waiting, until it answers.
    async fn cold_api(
        &self,
        f: &Fixture,
        binary: &str,
        link: Link,
        create: &[u8],
        into: &mut Cold,
    ) -> Result<(), Error> {
        let mut api = RuntimeApi::start().await?;
        api.send(create.to_vec()).await;
        let waited = f.proxy.upstream_ns();
        let started = Instant::now();
        let mut child = self.spawn_function(f, &api, binary, link, Stdio::null())?;
        let posted = tokio::time::timeout(Duration::from_secs(30), api.posted())
            .await
            .map_err(|_| format!("{binary} posted no response within 30 s"))?
            .ok_or("the Runtime API stopped")?;
        let elapsed = posted.at.duration_since(started);
        let exit = tokio::task::spawn_blocking(move || kill_and_reap(&mut child)).await?;
        let (status, _) = reply(&posted.body)?;
        if posted.error || status != 201 {
            return Err(format!(
                "{binary}: cold create answered {status}: {}",
                String::from_utf8_lossy(&posted.body)
            )
            .into());
        }
        let ms = elapsed.as_secs_f64() * 1e3;
        into.ms.push(ms);
        into.own
            .push(ms - (f.proxy.upstream_ns() - waited) as f64 / 1e6);
        into.rss.push(exit.max_rss_kib as f64 / 1024.0);
        Ok(())
    }

    async fn warm(&self, f: &Fixture) -> Result<Value, Error> {
        // The first run's log lines of ours, to weigh what each request writes.
        let log_path = self.root.join("target/bench-api-lines.log");
        let mut runs: Vec<Warm> = WARM.iter().map(|_| Warm::default()).collect();
        for run in 0..self.runs {
            for j in rotated(run, WARM.len()) {
                let (name, binary) = WARM[j];
                let log = (run == 0 && name == "ours").then_some(log_path.as_path());
                self.warm_run(f, binary, log, &mut runs[j]).await?;
            }
        }
        let mut floors = serde_json::Map::new();
        let mut cpu = BTreeMap::new();
        for ((name, _), w) in WARM.iter().zip(runs) {
            let stats = Stats::of(w.cpu);
            cpu.insert(*name, stats.median);
            floors.insert(
                (*name).into(),
                json!({
                    "cpu_us_per_request": stats.json(),
                    "user_cpu_us_per_request": Stats::of(w.user).json(),
                    "system_cpu_us_per_request": Stats::of(w.sys).json(),
                    "wall_us_per_request": Stats::of(w.wall).json(),
                    "wall_less_emulator_us_per_request": Stats::of(w.own).json(),
                }),
            );
        }
        let ours = floors.remove("ours").unwrap_or_default();
        let at = |name: &str| cpu.get(name).copied().unwrap_or(f64::NAN);
        let mut seed = Vec::new();
        let mut seed_latency_us = Vec::new();
        for _ in 0..self.runs {
            let v = self
                .seed_command(f, "warm", &json!({ "cycles": self.cycles }))
                .await?;
            let requests = v["requests"].as_f64().ok_or("no request count")?;
            seed.push(v["cpu_s"].as_f64().ok_or("no cpu_s")? * 1e6 / requests);
            seed_latency_us.push(v["wall_s"].as_f64().ok_or("no wall_s")? * 1e6 / requests);
        }
        let seed = Stats::of(seed);
        Ok(json!({
            "requests_per_run": 4 * self.cycles,
            "workload": "create, get, patch (merge), delete, repeated",
            "ours_cpu_us_per_request": ours["cpu_us_per_request"],
            "seed_cpu_us_per_request": seed.json(),
            "seed_over_ours": seed.median / at("ours"),
            "ours_over_workload_floor": at("ours") / at("workload_floor"),
            "ours_user_cpu_us_per_request": ours["user_cpu_us_per_request"],
            "ours_system_cpu_us_per_request": ours["system_cpu_us_per_request"],
            "ours_wall_us_per_request": ours["wall_us_per_request"],
            "ours_wall_less_emulator_us_per_request": ours["wall_less_emulator_us_per_request"],
            "floors": floors,
            "access_lines": access_lines(&std::fs::read_to_string(&log_path)?)?,
            "seed_wall_us_per_request": Stats::of(seed_latency_us).json(),
        }))
    }

    /// One warm run of a binary: a cycle to warm up, then `cycles` measured ones.
    async fn warm_run(
        &self,
        f: &Fixture,
        binary: &str,
        log: Option<&std::path::Path>,
        into: &mut Warm,
    ) -> Result<(), Error> {
        let mut api = RuntimeApi::start().await?;
        let stdout = match log {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        };
        let mut child = self.spawn_function(f, &api, binary, Link::Plain, stdout)?;
        let pid = child.id();
        self.api_cycle(f, &mut api).await?;
        let cpu_before = cpu_ns(pid)?;
        let split_before = user_and_system(pid)?;
        let waited = f.proxy.upstream_ns();
        let started = Instant::now();
        for _ in 0..self.cycles {
            self.api_cycle(f, &mut api).await?;
        }
        let wall = started.elapsed();
        let emulator = Duration::from_nanos(f.proxy.upstream_ns() - waited);
        let cpu = cpu_ns(pid)? - cpu_before;
        let split = user_and_system(pid)?;
        tokio::task::spawn_blocking(move || kill_and_reap(&mut child)).await?;
        let requests = (4 * self.cycles) as f64;
        into.cpu.push(cpu as f64 / 1e3 / requests);
        into.user.push((split.0 - split_before.0) * 1e6 / requests);
        into.sys.push((split.1 - split_before.1) * 1e6 / requests);
        into.wall.push(wall.as_secs_f64() * 1e6 / requests);
        into.own
            .push(wall.saturating_sub(emulator).as_secs_f64() * 1e6 / requests);
        Ok(())
    }

    /// create, get, patch, delete of one session through the function.
    async fn api_cycle(&self, f: &Fixture, api: &mut RuntimeApi) -> Result<(), Error> {
        let t = &f.api_template;
        let json_type = [("content-type", "application/json")];
        let created = api
            .invoke(api_event(
                t,
                "POST",
                "/sessions",
                Some(&json!({ "data": { "cart": ["book"], "theme": "dark" } })),
                &json_type,
            ))
            .await
            .ok_or("the Runtime API stopped")?;
        let (status, body) = reply(&created.body)?;
        let key = body["session_key"]
            .as_str()
            .ok_or("no key in the create response")?
            .to_owned();
        if status != 201 {
            return Err(format!("create answered {status}").into());
        }
        let path = format!("/sessions/{key}");
        let steps = [
            api_event(t, "GET", &path, None, &[]),
            api_event(
                t,
                "PATCH",
                &path,
                Some(&json!({ "theme": "light" })),
                &[("content-type", "application/merge-patch+json")],
            ),
            api_event(t, "DELETE", &path, None, &[]),
        ];
        for (step, want) in steps.into_iter().zip([200, 200, 204]) {
            let posted = api.invoke(step).await.ok_or("the Runtime API stopped")?;
            let (status, _) = reply(&posted.body)?;
            if status != want {
                return Err(format!(
                    "expected {want}, got {status}: {}",
                    String::from_utf8_lossy(&posted.body)
                )
                .into());
            }
        }
        Ok(())
    }

    async fn requests_per_operation(&self, f: &Fixture) -> Result<Value, Error> {
        let ours = count_ours(f).await?;
        let seed = self.seed_command(f, "count", &json!({})).await?;
        let mut table = serde_json::Map::new();
        for (op, n) in &ours {
            table.insert(
                (*op).into(),
                json!({ "ours": n, "seed": seed.get(*op).cloned().unwrap_or(Value::Null) }),
            );
        }
        Ok(Value::Object(table))
    }

    fn sizes(&self) -> Result<Value, Error> {
        let mut native = serde_json::Map::new();
        let mut arm64 = serde_json::Map::new();
        for (name, sam) in [
            ("session-api", "SessionApiFunction"),
            ("session-cleanup", "SessionCleanupFunction"),
            ("session-auditor", "SessionAuditorFunction"),
        ] {
            native.insert(
                name.into(),
                json!(std::fs::metadata(self.binary(name))?.len()),
            );
            let built = self.root.join(".aws-sam/build").join(sam).join("bootstrap");
            if let Ok(m) = std::fs::metadata(built) {
                arm64.insert(name.into(), json!(m.len()));
            }
        }
        Ok(json!({
            "native": { "arch": std::env::consts::ARCH, "bytes": native },
            "arm64_from_make_build": if arm64.is_empty() { Value::Null } else { Value::Object(arm64) },
        }))
    }

    async fn cleanup(&self) -> Result<Value, Error> {
        let counter = RequestCounter::default();
        let concurrency = CleanupConfig::default().concurrency;
        let mut ceiling = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..self.runs {
            // The emulator's ceiling: conditional DeleteItem of known expired keys at the
            // same concurrency, with no scan and no rate limit.
            let (client, table) = testkit::fresh_table("ceiling", &counter).await;
            let keys = expired_items(&client, &table, self.cleanup_items).await?;
            let started = Instant::now();
            let now = SystemClock.now();
            futures::stream::iter(keys)
                .for_each_concurrent(concurrency, |key| {
                    let (client, table) = (client.clone(), table.clone());
                    async move {
                        let layout = Layout::new("session_key");
                        let (name, value) = layout.key(&key);
                        let guard = layout.still_expired(now).parts();
                        let _ = client
                            .delete_item()
                            .table_name(table)
                            .key(name, value)
                            .set_condition_expression(guard.condition)
                            .set_expression_attribute_names(guard.names)
                            .set_expression_attribute_values(guard.values)
                            .send()
                            .await;
                    }
                })
                .await;
            ceiling.push(self.cleanup_items as f64 / started.elapsed().as_secs_f64());
            if testkit::item_count(&client, &table).await? != 0 {
                return Err("the ceiling run left items behind".into());
            }

            let (client, table) = testkit::fresh_table("cleanup", &counter).await;
            expired_items(&client, &table, self.cleanup_items).await?;
            let cleanup = Cleanup::new(
                client.clone(),
                StoreConfig {
                    table_name: table.clone(),
                    ..StoreConfig::default()
                },
                CleanupConfig::default(),
            )?;
            let started = Instant::now();
            let summary = cleanup
                .run(
                    Overrides::default(),
                    Instant::now() + Duration::from_secs(600),
                )
                .await?;
            let seconds = started.elapsed().as_secs_f64();
            if summary.deleted != self.cleanup_items as u64 {
                return Err(format!(
                    "cleanup deleted {} of {}",
                    summary.deleted, self.cleanup_items
                )
                .into());
            }
            ours.push(summary.deleted as f64 / seconds);
        }
        let (ceiling, ours) = (Stats::of(ceiling), Stats::of(ours));
        let defaults = CleanupConfig::default();
        Ok(json!({
            "items_per_run": self.cleanup_items,
            "concurrency": concurrency,
            "writes_per_second_limit": defaults.writes_per_second,
            "segments": defaults.segments,
            "ours_deletes_per_second": ours.json(),
            "emulator_ceiling_deletes_per_second": ceiling.json(),
            "ours_over_ceiling": ours.median / ceiling.median,
        }))
    }

    fn auditor(&self) -> Result<Value, Error> {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(
            self.root.join("events/stream-modify.json"),
        )?)?;
        let template = sample["Records"][0].clone();
        let records: Vec<Value> = (0..10_000)
            .map(|i| {
                let mut r = template.clone();
                r["dynamodb"]["SequenceNumber"] = json!(format!("{i:024}"));
                r
            })
            .collect();
        let batch = json!({ "Records": records });
        let auditor = session_auditor::Auditor::new(&StoreConfig::default())?;
        let mut rates = Vec::new();
        let mut line_bytes = 0.0;
        let mut metrics_bytes = 0;
        for _ in 0..self.runs {
            let started = Instant::now();
            let report = auditor.audit_batch(&batch)?;
            let printed = session_auditor::render(&report);
            let seconds = started.elapsed().as_secs_f64();
            if report.counts.updated != 10_000 || printed.is_empty() {
                return Err("the auditor did not audit every record".into());
            }
            rates.push(10_000.0 / seconds);
            let bytes: usize = report.lines.iter().map(|l| l.len() + 1).sum();
            line_bytes = bytes as f64 / report.lines.len() as f64;
            // What is printed after the audit lines: the batch's EMF line and its newline.
            metrics_bytes = printed.len() - bytes + 1;
        }
        Ok(json!({
            "records_per_batch": 10_000,
            "audit_line_bytes": line_bytes,
            "metrics_line_bytes": metrics_bytes,
            "what": "audit_batch + render of one batch, in process, release build",
            "records_per_second": Stats::of(rates).json(),
        }))
    }
}

/// What the API's access lines weigh: their mean size in bytes (with the newline), and
/// how far gzip shrinks them, as an estimate of CloudWatch's compressed storage.
fn access_lines(log: &str) -> Result<Value, Error> {
    use std::io::Write as _;
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""message":"request""#))
        .collect();
    if lines.is_empty() {
        return Err("the API wrote no access line".into());
    }
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in &lines {
        gz.write_all(line.as_bytes())?;
        gz.write_all(b"\n")?;
    }
    let compressed = gz.finish()?.len();
    Ok(json!({
        "lines": lines.len(),
        "mean_bytes": bytes as f64 / lines.len() as f64,
        "gzip_ratio": compressed as f64 / bytes as f64,
        "example": lines[1.min(lines.len() - 1)],
    }))
}

/// `count` sessions that expired a day ago, written in batches; returns their keys.
async fn expired_items(client: &Client, table: &str, count: usize) -> Result<Vec<String>, Error> {
    let now = SystemClock.now().epoch_seconds();
    let ago = |secs: i64| Some(Timestamp::from_epoch_seconds(now - secs));
    let meta = SessionMeta {
        created: ago(90_000),
        expires_at: ago(86_400),
        expiry: Expiry::Default,
        deadline: None,
        touched_at: ago(90_000),
        version: Version(1),
    };
    let layout = Layout::new("session_key");
    let mut keys = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let key = SessionKey::generate()
            .map_err(|e| format!("no randomness: {e}"))?
            .as_str()
            .to_owned();
        batch.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(layout.new_item(&key, "{}", &meta)))
                        .build()?,
                )
                .build(),
        );
        keys.push(key);
        if batch.len() == 25 || i + 1 == count {
            let mut pending = std::mem::take(&mut batch);
            while !pending.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_give_the_median_and_the_range() {
        let odd = Stats::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Stats::of(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!(even.median, 2.5);
        assert!(Stats::of(vec![]).median.is_nan());
    }

    #[test]
    fn events_keep_the_sample_and_change_method_path_and_body() {
        let template = json!({"headers": {"content-length": "9"}, "requestContext": {"http": {}}, "body": "x"});
        let e: Value = serde_json::from_slice(&api_event(
            &template,
            "PATCH",
            "/sessions/k",
            Some(&json!({"a": 1})),
            &[("if-match", "\"1\"")],
        ))
        .unwrap();
        assert_eq!(e["requestContext"]["http"]["method"], "PATCH");
        assert_eq!(e["rawPath"], "/sessions/k");
        assert_eq!(e["body"], "{\"a\":1}");
        assert_eq!(e["headers"], json!({"if-match": "\"1\""}));
        let no_body: Value =
            serde_json::from_slice(&api_event(&template, "GET", "/", None, &[])).unwrap();
        assert!(no_body.get("body").is_none());
    }
}
