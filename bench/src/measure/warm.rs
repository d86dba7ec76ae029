//! Warm CPU per request: one function process answers `cycles` cycles of (create, get,
//! patch, delete), its CPU clock read before and after; ours, the floors and the Django
//! backend on the same workload.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::runtime_api::RuntimeApi;

use super::rotated;
use crate::event::{api_event, reply};
use crate::figures::{Error, Stats};
use crate::fixture::{API, Bench, Fixture, Link, RUNTIME_FLOOR, WORKLOAD_FLOOR};
use crate::process::{cpu_ns, kill_and_reap, user_and_system};

/// The warm runs measured, in alternation.
const WARM: [(&str, &str); 3] = [
    ("ours", API),
    ("workload_floor", WORKLOAD_FLOOR),
    ("runtime_floor", RUNTIME_FLOOR),
];

/// Warm runs of one binary, per request: CPU, its user and system parts, wall time and
/// wall time less the emulator's share, in µs.
#[derive(Default)]
pub struct Warm {
    pub cpu: Vec<f64>,
    pub user: Vec<f64>,
    pub sys: Vec<f64>,
    pub wall: Vec<f64>,
    pub own: Vec<f64>,
}

/// Every binary of `WARM`, and the Django backend, on the same workload.
pub async fn runs(b: &Bench, f: &Fixture) -> Result<Value, Error> {
    // The first run's log lines of ours, to weigh what each request writes.
    let log_path = b.root.join("target/bench-api-lines.log");
    let mut runs: Vec<Warm> = WARM.iter().map(|_| Warm::default()).collect();
    for run in 0..b.runs {
        for j in rotated(run, WARM.len()) {
            let (name, binary) = WARM[j];
            let log = (run == 0 && name == "ours").then_some(log_path.as_path());
            one(b, f, binary, log, &mut runs[j]).await?;
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
    let django = super::django::warm(b, f).await?;
    Ok(json!({
        "requests_per_run": 4 * b.cycles,
        "django_requests_per_run": django.requests_per_run,
        "workload": "create, get, patch (merge), delete, repeated",
        "ours_cpu_us_per_request": ours["cpu_us_per_request"],
        "django_cpu_us_per_request": django.cpu.json(),
        "django_over_ours": django.cpu.median / at("ours"),
        "ours_over_workload_floor": at("ours") / at("workload_floor"),
        "ours_user_cpu_us_per_request": ours["user_cpu_us_per_request"],
        "ours_system_cpu_us_per_request": ours["system_cpu_us_per_request"],
        "ours_wall_us_per_request": ours["wall_us_per_request"],
        "ours_wall_less_emulator_us_per_request": ours["wall_less_emulator_us_per_request"],
        "floors": floors,
        "access_lines": access_lines(&std::fs::read_to_string(&log_path)?)?,
        "django_wall_us_per_request": django.wall.json(),
    }))
}

/// One warm run of a binary: a cycle to warm up, then `cycles` measured ones.
pub async fn one(
    b: &Bench,
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
    let mut child = b.spawn_function(f, &api, binary, Link::Plain, stdout)?;
    let pid = child.id();
    api_cycle(f, &mut api, None).await?;
    let cpu_before = cpu_ns(pid)?;
    let split_before = user_and_system(pid)?;
    let waited = f.proxy.upstream_ns();
    let started = Instant::now();
    for _ in 0..b.cycles {
        api_cycle(f, &mut api, None).await?;
    }
    let wall = started.elapsed();
    let emulator = Duration::from_nanos(f.proxy.upstream_ns() - waited);
    let cpu = cpu_ns(pid)? - cpu_before;
    let split = user_and_system(pid)?;
    tokio::task::spawn_blocking(move || kill_and_reap(&mut child)).await?;
    let requests = (4 * b.cycles) as f64;
    into.cpu.push(cpu as f64 / 1e3 / requests);
    into.user.push((split.0 - split_before.0) * 1e6 / requests);
    into.sys.push((split.1 - split_before.1) * 1e6 / requests);
    into.wall.push(wall.as_secs_f64() * 1e6 / requests);
    into.own
        .push(wall.saturating_sub(emulator).as_secs_f64() * 1e6 / requests);
    Ok(())
}

/// One invocation's wall time and the emulator's share of it, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall_ms: f64,
    pub emulator_ms: f64,
}

/// Each operation's samples, by the name `requests_per_operation` gives it.
pub type OpTimes = BTreeMap<&'static str, Vec<Sample>>;

/// The cycle's operations, in order.
pub const OPS: [&str; 4] = ["create", "get", "merge-update", "delete"];

/// One invocation, timed into `times` under `op` when given. A timed invocation follows
/// a pause of 0 to 2 ms that varies from one to the next, so that under a CPU quota the
/// periods do not line up with the cycle and throttle the same operation every time.
async fn timed(
    f: &Fixture,
    api: &mut RuntimeApi,
    event: Vec<u8>,
    op: &'static str,
    times: &mut Option<&mut OpTimes>,
) -> Result<testkit::runtime_api::Posted, Error> {
    if let Some(times) = times.as_deref() {
        let n: usize = times.values().map(Vec::len).sum();
        let pause_us = (n * 7919 % 11) as u64 * 200;
        tokio::time::sleep(Duration::from_micros(pause_us)).await;
    }
    let waited = f.proxy.upstream_ns();
    let started = Instant::now();
    let posted = api.invoke(event).await.ok_or("the Runtime API stopped")?;
    if let Some(times) = times.as_deref_mut() {
        times.entry(op).or_default().push(Sample {
            wall_ms: started.elapsed().as_secs_f64() * 1e3,
            emulator_ms: (f.proxy.upstream_ns() - waited) as f64 / 1e6,
        });
    }
    Ok(posted)
}

/// create, get, patch, delete of one session through the function, each invocation
/// timed into `times` when given.
pub async fn api_cycle(
    f: &Fixture,
    api: &mut RuntimeApi,
    mut times: Option<&mut OpTimes>,
) -> Result<(), Error> {
    let t = &f.api_template;
    let json_type = [("content-type", "application/json")];
    let create = api_event(
        t,
        "POST",
        "/sessions",
        Some(&json!({ "data": { "cart": ["book"], "theme": "dark" } })),
        &json_type,
    );
    let created = timed(f, api, create, OPS[0], &mut times).await?;
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
    for ((step, want), op) in steps.into_iter().zip([200, 200, 204]).zip(&OPS[1..]) {
        let posted = timed(f, api, step, op, &mut times).await?;
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
