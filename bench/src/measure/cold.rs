//! Cold starts: a new function process with a create waiting, timed to its answer, for
//! ours, the floors and the Django backend.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::runtime_api::RuntimeApi;

use super::rotated;
use crate::cgroup::CpuQuota;
use crate::event::{cold_create, reply};
use crate::figures::{Error, Stats};
use crate::fixture::{API, API_STATIC_ENV, Bench, Fixture, Link, RUNTIME_FLOOR, WORKLOAD_FLOOR};
use crate::process::kill_and_reap;

/// The cold starts measured, in alternation: (name in results.json, binary, link).
pub const STARTS: [(&str, &str, Link); 7] = [
    ("ours", API, Link::Plain),
    ("ours_static_env", API_STATIC_ENV, Link::Plain),
    ("workload_floor", WORKLOAD_FLOOR, Link::Plain),
    ("runtime_floor", RUNTIME_FLOOR, Link::Plain),
    ("ours_tls", API, Link::Tls),
    ("workload_floor_tls", WORKLOAD_FLOOR, Link::Tls),
    ("ours_tls_one_root", API, Link::TlsCaOnly),
];

/// Cold starts of one binary: total, less the emulator's share, and peak RSS.
#[derive(Default)]
pub struct Cold {
    pub ms: Vec<f64>,
    pub own: Vec<f64>,
    pub rss: Vec<f64>,
}

/// Every configuration of `STARTS`, and the Django backend's.
pub async fn starts(b: &Bench, f: &Fixture) -> Result<Value, Error> {
    let create = cold_create(&f.api_template);
    // Every configuration in turn, the order rotating from run to run, so that drift
    // hits all alike. A cold start takes milliseconds, so each gets four times the
    // runs: the differences are of the order of this machine's run-to-run noise.
    let mut cold: Vec<Cold> = STARTS.iter().map(|_| Cold::default()).collect();
    for run in 0..b.runs * 4 {
        for j in rotated(run, STARTS.len()) {
            let (_, binary, link) = STARTS[j];
            one(b, f, binary, link, &create, &mut cold[j]).await?;
        }
    }
    let django = super::django::cold(b, f).await?;
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
    Ok(json!({
        "ours_ms": ours["ms"],
        "ours_peak_rss_mib": ours["peak_rss_mib"],
        "ours_ms_without_emulator": ours["ms_without_emulator"],
        "django_ms": django.ms.json(),
        "django_peak_rss_mib": django.rss.json(),
        "django_ms_without_emulator": django.own.json(),
        "django_over_ours": django.ms.median / ours["ms"]["median"].as_f64().unwrap_or(f64::NAN),
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
pub async fn one(
    b: &Bench,
    f: &Fixture,
    binary: &str,
    link: Link,
    create: &[u8],
    into: &mut Cold,
) -> Result<(), Error> {
    one_in(b, f, (binary, link), create, into, None).await
}

/// [`one`] under a CPU quota, when given, with its memory size as Lambda's.
pub async fn one_in(
    b: &Bench,
    f: &Fixture,
    (binary, link): (&str, Link),
    create: &[u8],
    into: &mut Cold,
    quota: Option<&CpuQuota>,
) -> Result<(), Error> {
    let mut api = RuntimeApi::start().await?;
    api.send(create.to_vec()).await;
    let waited = f.proxy.upstream_ns();
    let started = Instant::now();
    let mut child = b.spawn_function_in(f, &api, binary, link, Stdio::null(), quota)?;
    let posted = tokio::time::timeout(Duration::from_secs(30), api.posted()).await;
    // Ended whatever the answer, so that no process outlives its measurement.
    let exit = tokio::task::spawn_blocking(move || kill_and_reap(&mut child)).await?;
    let posted = posted
        .map_err(|_| format!("{binary} posted no response within 30 s"))?
        .ok_or("the Runtime API stopped")?;
    let elapsed = posted.at.duration_since(started);
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
