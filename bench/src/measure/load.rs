//! The load test: many concurrent clients against the API in process (the handler and
//! store of `session-api`, the functions' own client settings, Dynoxide behind the
//! keep-alive front) for a bounded time, with a mixed workload. Some clients increment
//! shared counters by read, then `PUT` with `If-Match`, retrying on 412; at the end each
//! counter must equal the increments that were acknowledged, or an update was lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_api::App;
use session_store::{AwsEnv, DynamoStore, StoreConfig};
use tokio::sync::Mutex;

use crate::figures::Error;

/// Shared sessions that every client increments.
const COUNTERS: usize = 4;

#[derive(Default)]
struct Tally {
    /// Milliseconds per request, by operation.
    latency_ms: BTreeMap<&'static str, Vec<f64>>,
    statuses: BTreeMap<u16, u64>,
    /// Answers outside what the operation may answer.
    unexpected: Vec<String>,
    conflicts: u64,
    acknowledged: [u64; COUNTERS],
}

struct Client {
    app: Arc<App>,
    template: Value,
    tally: Arc<Mutex<Tally>>,
}

impl Client {
    /// One request; its status must be one of `expected`.
    async fn call(
        &self,
        op: &'static str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        expected: &[u16],
    ) -> Result<(u16, Value), Error> {
        let event = crate::event::api_event(&self.template, method, path, body, headers);
        let request = lambda_http::request::from_str(std::str::from_utf8(&event)?)?;
        let started = Instant::now();
        let response = session_api::handle(&self.app, request).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let status = response.status().as_u16();
        let body = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let mut t = self.tally.lock().await;
        t.latency_ms.entry(op).or_default().push(ms);
        *t.statuses.entry(status).or_default() += 1;
        if !expected.contains(&status) {
            t.unexpected.push(format!("{op}: {status} {body}"));
        }
        Ok((status, body))
    }

    /// Reads a counter and writes it back plus one, guarded by its version.
    async fn increment(&self, index: usize, key: &str) -> Result<(), Error> {
        let path = format!("/sessions/{key}");
        let (status, body) = self.call("get", "GET", &path, None, &[], &[200]).await?;
        if status != 200 {
            return Ok(());
        }
        let n = body["data"]["n"].as_u64().ok_or("a counter without n")?;
        let tag = format!("\"{}\"", body["version"]);
        let next = json!({ "data": { "n": n + 1 } });
        let headers = [("content-type", "application/json"), ("if-match", &tag)];
        let (status, _) = self
            .call("replace", "PUT", &path, Some(&next), &headers, &[200, 412])
            .await?;
        let mut t = self.tally.lock().await;
        match status {
            200 => t.acknowledged[index] += 1,
            412 => t.conflicts += 1,
            _ => {}
        }
        Ok(())
    }

    /// A session's life: create, read, merge-patch, delete, then read the 404.
    async fn lifecycle(&self, round: u64) -> Result<(), Error> {
        let json_type = [("content-type", "application/json")];
        let data = json!({ "data": { "cart": ["book"], "round": round } });
        let (status, body) = self
            .call(
                "create",
                "POST",
                "/sessions",
                Some(&data),
                &json_type,
                &[201],
            )
            .await?;
        if status != 201 {
            return Ok(());
        }
        let key = body["session_key"].as_str().ok_or("no key")?.to_owned();
        let path = format!("/sessions/{key}");
        self.call("get", "GET", &path, None, &[], &[200]).await?;
        let merge = [("content-type", "application/merge-patch+json")];
        let patch = json!({ "theme": "dark" });
        self.call("patch", "PATCH", &path, Some(&patch), &merge, &[200])
            .await?;
        self.call("delete", "DELETE", &path, None, &[], &[204])
            .await?;
        self.call("get", "GET", &path, None, &[], &[404]).await?;
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(
    proxy_url: &str,
    table: &str,
    template: &Value,
    clients: usize,
    duration: Duration,
) -> Result<Value, Error> {
    let aws = AwsEnv::from_lookup(testkit::lambda_env(proxy_url))?;
    let store = DynamoStore::new(
        aws.dynamodb(),
        StoreConfig {
            table_name: table.to_owned(),
            ..StoreConfig::default()
        },
    )?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let client = Arc::new(Client {
        app: Arc::new(App::new(store)),
        template: template.clone(),
        tally: tally.clone(),
    });
    let counters = Arc::new(client.create_counters().await?);
    let started = Instant::now();
    let stop = started + duration;
    let mut tasks = Vec::new();
    for id in 0..clients {
        let (client, counters) = (client.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while Instant::now() < stop {
                // Two of every three rounds increment a counter: contention is the point.
                if round % 3 == 2 {
                    client.lifecycle(round).await?;
                } else {
                    let index = (id + round as usize) % COUNTERS;
                    client.increment(index, &counters[index]).await?;
                }
                round += 1;
            }
            Ok::<(), Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (final_values, lost) = client.check_counters(&counters).await?;
    let t = tally.lock().await;
    let requests: u64 = t.statuses.values().sum();
    Ok(json!({
        "clients": clients,
        "seconds": elapsed,
        "requests": requests,
        "requests_per_second": requests as f64 / elapsed,
        "statuses": t.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "unexpected": t.unexpected.len(),
        "unexpected_examples": t.unexpected.iter().take(5).collect::<Vec<_>>(),
        "version_conflicts_412": t.conflicts,
        "counters": final_values,
        "lost_updates": lost,
        "latency_ms": latency_table(&t),
    }))
}

/// Percentiles of each operation's latency.
fn latency_table(t: &Tally) -> serde_json::Map<String, Value> {
    t.latency_ms
        .iter()
        .map(|(op, ms)| {
            let mut sorted = ms.clone();
            sorted.sort_by(f64::total_cmp);
            let row = json!({
                "count": sorted.len(),
                "p50": percentile(&sorted, 50.0),
                "p90": percentile(&sorted, 90.0),
                "p99": percentile(&sorted, 99.0),
                "max": sorted.last().copied().unwrap_or(0.0),
            });
            ((*op).to_owned(), row)
        })
        .collect()
}

impl Client {
    /// The shared counter sessions, each starting at 0.
    async fn create_counters(&self) -> Result<Vec<String>, Error> {
        let json_type = [("content-type", "application/json")];
        let zero = json!({ "data": { "n": 0 } });
        let mut counters = Vec::new();
        for _ in 0..COUNTERS {
            let (_, body) = self
                .call(
                    "create",
                    "POST",
                    "/sessions",
                    Some(&zero),
                    &json_type,
                    &[201],
                )
                .await?;
            counters.push(body["session_key"].as_str().ok_or("no key")?.to_owned());
        }
        Ok(counters)
    }

    /// Each counter's final value beside its acknowledged increments, and the counters
    /// that fell short. Fewer than acknowledged is a lost update; more can only come
    /// from a write that was applied but answered 503 (its answer lost), which the
    /// statuses would show.
    async fn check_counters(&self, counters: &[String]) -> Result<(Vec<Value>, usize), Error> {
        let mut lost = 0;
        let mut final_values = Vec::new();
        for (index, key) in counters.iter().enumerate() {
            let (_, body) = self
                .call("get", "GET", &format!("/sessions/{key}"), None, &[], &[200])
                .await?;
            let n = body["data"]["n"].as_u64().unwrap_or(u64::MAX);
            let acknowledged = self.tally.lock().await.acknowledged[index];
            final_values.push(json!({ "value": n, "acknowledged": acknowledged }));
            if n < acknowledged {
                lost += 1;
            }
        }
        Ok((final_values, lost))
    }
}
