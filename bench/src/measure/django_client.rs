//! A Django request's session cost through the service's own Django client
//! (`clients/django`, over HTTP to the API), beside the Django backend on the same
//! emulator, in the same run: SessionMiddleware's load and save of one session.

use std::process::Stdio;

use serde_json::{Value, json};
use testkit::runtime_api::RuntimeApi;

use super::django::command_with;
use super::rotated;
use crate::figures::{Error, Stats};
use crate::fixture::{API, Bench, Fixture, Link};
use crate::http_front::HttpFront;
use crate::process::kill_and_reap;

/// Django requests per run; each is one load and one save.
pub const CYCLES: usize = 200;

#[derive(Default)]
struct Engine {
    wall_ms: Vec<f64>,
    cpu_us: Vec<f64>,
    requests: Vec<f64>,
}

impl Engine {
    fn add(&mut self, run: &Value) -> Result<(), Error> {
        let walls = run["wall_ms"].as_array().ok_or("no wall times")?;
        self.wall_ms.extend(walls.iter().filter_map(Value::as_f64));
        let n = walls.len() as f64;
        self.cpu_us
            .push(run["cpu_s"].as_f64().ok_or("no CPU time")? * 1e6 / n);
        self.requests
            .push(run["requests"].as_f64().ok_or("no request count")? / n);
        Ok(())
    }

    fn json(self) -> Value {
        let wall = Stats::of(self.wall_ms);
        json!({
            "wall_ms_p50": wall.median,
            "wall_ms_p99": super::memory::percentile(&wall.runs, 0.99),
            "django_cpu_us_per_request": Stats::of(self.cpu_us).json(),
            "requests_per_django_request": Stats::of(self.requests).median,
        })
    }
}

/// `b.runs` runs of each engine in alternation, the API binary (release) behind an HTTP
/// front as a function URL serves it, the emulator shared by both.
pub async fn requests(b: &Bench, f: &Fixture) -> Result<Value, Error> {
    let api = RuntimeApi::start().await?;
    let mut child = b.spawn_function(f, &api, API, Link::Plain, Stdio::null())?;
    let front = HttpFront::start(api, f.api_template.clone()).await?;
    let measured = alternate(b, f, &front.url).await;
    tokio::task::spawn_blocking(move || kill_and_reap(&mut child)).await?;
    let [client, backend] = measured?;
    Ok(json!({
        "workload": format!("{CYCLES} Django requests per run, each a load and a save of one session"),
        "client": client.json(),
        "backend": backend.json(),
    }))
}

async fn alternate(b: &Bench, f: &Fixture, url: &str) -> Result<[Engine; 2], Error> {
    let mut engines = [Engine::default(), Engine::default()];
    let input = json!({ "cycles": CYCLES });
    for run in 0..b.runs {
        for j in rotated(run, 2) {
            let service = (j == 0).then_some(url);
            let v = command_with(b, f, "requests", &input, service).await?;
            engines[j].add(&v)?;
        }
    }
    Ok(engines)
}
