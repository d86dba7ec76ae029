//! The Django backend, `django-dynamodb-sessions` 0.7, through Django itself: its driver
//! (`tools/django_backend.py`) runs one command per process against the same emulator.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::cgroup::CpuQuota;
use crate::figures::{Error, Stats};
use crate::fixture::{Bench, Fixture};
use crate::process::reap;

/// The driver running `command`, under `quota` when one is given; with the service's
/// own Django client as the engine, talking to the API at `service`, when given,
/// instead of the Django backend.
pub fn spawn(
    b: &Bench,
    f: &Fixture,
    command: &str,
    input: &Value,
    quota: Option<&CpuQuota>,
    service: Option<&str>,
) -> Result<Child, Error> {
    let mut program = match quota {
        Some(q) => q.command(&b.python()),
        None => Command::new(b.python()),
    };
    program.env_clear();
    if let Some(url) = service {
        program.env("SESSION_SERVICE_URL", url);
    }
    let mut child = program
        .arg(b.root.join("tools/django_backend.py"))
        .arg(command)
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

/// Runs one command of the Django backend to its end and returns the JSON it printed.
pub async fn command(b: &Bench, f: &Fixture, command: &str, input: &Value) -> Result<Value, Error> {
    command_with(b, f, command, input, None).await
}

/// [`command`] with the engine [`spawn`] takes from `service`.
pub async fn command_with(
    b: &Bench,
    f: &Fixture,
    command: &str,
    input: &Value,
    service: Option<&str>,
) -> Result<Value, Error> {
    let mut child = spawn(b, f, command, input, None, service)?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let pid = child.id() as libc::pid_t;
    tokio::task::spawn_blocking(move || reap(pid)).await?;
    serde_json::from_str(&line)
        .map_err(|_| format!("the Django backend's {command} run printed {line:?}").into())
}

/// Cold starts: a fresh Python process creating one session, to its answer.
pub struct Cold {
    pub ms: Stats,
    pub own: Stats,
    pub rss: Stats,
}

pub async fn cold(b: &Bench, f: &Fixture) -> Result<Cold, Error> {
    cold_in(b, f, b.runs, None).await
}

/// `runs` cold starts, under `quota` when given.
pub async fn cold_in(
    b: &Bench,
    f: &Fixture,
    runs: usize,
    quota: Option<&CpuQuota>,
) -> Result<Cold, Error> {
    let (mut ms_runs, mut rss, mut own) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let waited = f.proxy.upstream_ns();
        let started = Instant::now();
        let mut child = spawn(b, f, "cold", &json!({}), quota, None)?;
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
            .map_err(|_| format!("the Django backend's cold run printed {line:?}"))?;
        if !parsed["key"].is_string() {
            return Err(format!("the Django backend's cold run printed {line}").into());
        }
        let ms = done.duration_since(started).as_secs_f64() * 1e3;
        ms_runs.push(ms);
        own.push(ms - (f.proxy.upstream_ns() - waited) as f64 / 1e6);
        rss.push(exit.max_rss_kib as f64 / 1024.0);
    }
    Ok(Cold {
        ms: Stats::of(ms_runs),
        own: Stats::of(own),
        rss: Stats::of(rss),
    })
}

/// Warm runs of the same workload as ours, per request: CPU and wall time, in µs.
pub struct Warm {
    pub cpu: Stats,
    pub wall: Stats,
    /// Requests in each run, as the driver counted them.
    pub requests_per_run: f64,
}

/// The Django backend's warm cycles: a quarter of ours. Its CPU per request is over ten
/// times ours, so a quarter of the requests measures it as finely, in a quarter of the
/// time.
pub fn warm_cycles(b: &Bench) -> usize {
    b.cycles.div_ceil(4)
}

pub async fn warm(b: &Bench, f: &Fixture) -> Result<Warm, Error> {
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    let mut requests_per_run = 0.0;
    for _ in 0..b.runs {
        let v = command(b, f, "warm", &json!({ "cycles": warm_cycles(b) })).await?;
        let requests = v["requests"].as_f64().ok_or("no request count")?;
        requests_per_run = requests;
        cpu.push(v["cpu_s"].as_f64().ok_or("no cpu_s")? * 1e6 / requests);
        wall.push(v["wall_s"].as_f64().ok_or("no wall_s")? * 1e6 / requests);
    }
    Ok(Warm {
        cpu: Stats::of(cpu),
        wall: Stats::of(wall),
        requests_per_run,
    })
}
