//! The full run: a fixture, every measurement, and the cost per million requests computed
//! from their figures. Data flows one way: measurements produce figures, `cost` and
//! `report` only read them.

use serde_json::{Value, json};

use crate::figures::Error;
use crate::fixture::Bench;
use crate::measure;
use crate::{cost, upkeep_cost};

/// What serves DynamoDB to every measurement.
pub const DYNAMODB: &str = "Dynoxide 3.2, in the harness's process, on 127.0.0.1";

/// Every measurement in turn, then the cost that their figures imply.
pub async fn run_all(b: &Bench) -> Result<Value, Error> {
    let f = b.fixture().await?;
    let mut results = serde_json::Map::new();
    eprintln!(
        "bench: cold start ({} runs of each of {} configurations, {} of the Django backend)",
        b.runs * 4,
        measure::cold::STARTS.len(),
        b.runs
    );
    results.insert("cold_start".into(), measure::cold::starts(b, &f).await?);
    eprintln!(
        "bench: warm CPU per request ({} runs of {} requests each, ours and the floors, {} the Django backend)",
        b.runs,
        4 * b.cycles,
        4 * measure::django::warm_cycles(b)
    );
    results.insert("warm".into(), measure::warm::runs(b, &f).await?);
    eprintln!("bench: DynamoDB requests per operation");
    results.insert(
        "requests_per_operation".into(),
        measure::requests::per_operation(b, &f).await?,
    );
    eprintln!(
        "bench: a Django request's session through the service's Django client and through the Django backend ({} runs of {} each)",
        b.runs,
        measure::django_client::CYCLES
    );
    results.insert(
        "django_request".into(),
        measure::django_client::requests(b, &f).await?,
    );
    eprintln!(
        "bench: revoking all {} sessions of one principal ({} runs)",
        measure::revocation::SESSIONS,
        b.runs
    );
    results.insert(
        "revocation".into(),
        measure::revocation::revoke_all(b).await?,
    );
    results.insert("binary_sizes".into(), measure::sizes::binaries(b)?);
    eprintln!(
        "bench: cleanup ({} runs of {} expired items)",
        b.runs, b.cleanup_items
    );
    results.insert("cleanup".into(), measure::cleanup::deletes(b).await?);
    eprintln!("bench: auditor ({} runs of 10,000 records)", b.runs);
    results.insert("auditor".into(), measure::auditor::records(b)?);
    eprintln!(
        "bench: load ({} clients for {} s)",
        b.load_clients,
        b.load_duration.as_secs()
    );
    results.insert(
        "load".into(),
        measure::load::run(
            &f.proxy.url,
            &f.table,
            &f.api_template,
            b.load_clients,
            b.load_duration,
        )
        .await?,
    );
    eprintln!(
        "bench: Lambda's CPU share by memory size ({} sizes, {} periods; ours, the workload floor, then the Django backend)",
        measure::memory::SIZES_MB.len(),
        measure::memory::PERIODS_US.len()
    );
    results.insert(
        "memory_curve".into(),
        // A failure here keeps the rest of the run: the report says what failed.
        measure::memory::curve(b, &results["requests_per_operation"], b.ends_by)
            .await
            .unwrap_or_else(|e| json!({ "unavailable": format!("the curve failed: {e}") })),
    );
    let cost = cost::table(&b.root, &Value::Object(results.clone()))?;
    results.insert("cost_per_million".into(), cost);
    let upkeep = upkeep_cost::table(&Value::Object(results.clone()))?;
    results.insert("upkeep_per_month".into(), upkeep);
    results.insert(
        "machine".into(),
        json!({
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "dynamodb": DYNAMODB,
        }),
    );
    Ok(Value::Object(results))
}
