//! `make bench`: every figure of DESIGN.md's performance targets, measured on this
//! machine in one run, ours side by side with the Django backend (`django-dynamodb-sessions`), written to
//! `bench/results.json` and `bench/results.md`. Medians of several runs, with min and max.

mod cgroup;
mod compare;
mod cost;
mod event;
mod figures;
mod fixture;
mod http_front;
mod measure;
mod memory_report;
mod process;
mod report;
mod runner;
mod targets;
mod tls;
mod upkeep_cost;

use std::path::PathBuf;

use fixture::Bench;

fn usage() -> ! {
    eprintln!(
        "usage: session-bench [--runs N] [--cycles N] [--cleanup-items N] [--load-clients N] [--load-seconds N] [--ends-by EPOCH_SECONDS] [--out DIR]\n\
         \x20      session-bench [--runs N] [--cycles N] --compare BEFORE AFTER   (two API binaries in target/release, one change apart)\n\
         \x20      session-bench --report-from RESULTS.json [--out DIR]   (results.md again from a run's results, the cost table recomputed)\n\
         \x20      session-bench --only revocation|memory|django-request|cleanup [--runs N] [--out DIR]   (that measurement alone, merged into DIR/results.json and marked so)\n\
         needs the release binaries (cargo build --release) and .venv (make venv)"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut bench = Bench {
        runs: 5,
        cycles: 250,
        cleanup_items: 500,
        load_clients: 16,
        load_duration: std::time::Duration::from_secs(30),
        root: testkit::workspace_root(),
        ends_by: None,
    };
    let mut out = PathBuf::from("bench");
    let mut compare = None;
    let mut report_from = None;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--runs" => bench.runs = value.parse().unwrap_or_else(|_| usage()),
            "--cycles" => bench.cycles = value.parse().unwrap_or_else(|_| usage()),
            "--cleanup-items" => bench.cleanup_items = value.parse().unwrap_or_else(|_| usage()),
            "--load-clients" => bench.load_clients = value.parse().unwrap_or_else(|_| usage()),
            "--load-seconds" => {
                bench.load_duration =
                    std::time::Duration::from_secs(value.parse().unwrap_or_else(|_| usage()))
            }
            "--out" => out = PathBuf::from(value),
            "--ends-by" => {
                let epoch: u64 = value.parse().unwrap_or_else(|_| usage());
                bench.ends_by = Some(fixture::instant_at_epoch(epoch));
            }
            "--report-from" => report_from = Some(PathBuf::from(value)),
            "--only"
                if ["revocation", "memory", "django-request", "cleanup"]
                    .contains(&value.as_str()) =>
            {
                only = Some(value)
            }
            "--compare" => compare = Some((value, args.next().unwrap_or_else(|| usage()))),
            _ => usage(),
        }
    }
    if bench.runs == 0 || bench.cycles == 0 || bench.cleanup_items == 0 || bench.load_clients == 0 {
        usage();
    }
    let mut alone = None;
    if let Some(what) = only.as_deref() {
        report_from = Some(out.join("results.json"));
        eprintln!("bench: {what} alone");
        alone = Some((what.to_owned(), measure_alone(&bench, what, &out).await));
    }
    if let Some(json) = report_from {
        let written = std::fs::read_to_string(&json)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
            })
            .and_then(|mut results| {
                if let Some((what, measured)) = alone {
                    let mut measured = measured?;
                    measured["measured"] = serde_json::json!(format!(
                        "alone (session-bench --only {what}), after the run of the other \
                         figures, against {}",
                        runner::DYNAMODB
                    ));
                    let key = match what.as_str() {
                        "memory" => "memory_curve",
                        "django-request" => "django_request",
                        "cleanup" => "cleanup",
                        _ => "revocation",
                    };
                    results[key] = measured;
                }
                // Prices, assumptions and settings live in cost.rs; the measurements stay.
                results["cost_per_million"] =
                    cost::table(&bench.root, &results).map_err(|e| e.to_string())?;
                results["upkeep_per_month"] =
                    upkeep_cost::table(&results).map_err(|e| e.to_string())?;
                report::write(&out, &results).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!(
                "bench: cannot rewrite the report from {}: {e}",
                json.display()
            );
            std::process::exit(1);
        }
        return;
    }
    if let Some((before, after)) = compare {
        match compare::run(&bench, &before, &after).await {
            Ok(figures) => println!(
                "{}",
                serde_json::to_string_pretty(&figures).unwrap_or_default()
            ),
            Err(e) => {
                eprintln!("bench: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    match runner::run_all(&bench).await {
        Ok(results) => {
            if let Err(e) = report::write(&out, &results) {
                eprintln!("bench: cannot write the report to {}: {e}", out.display());
                std::process::exit(1);
            }
            println!(
                "bench: wrote {0}/results.json and {0}/results.md",
                out.display()
            );
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

/// One measurement alone, for `--only`: the memory curve takes the DynamoDB calls per
/// operation from the last full run in `out`.
async fn measure_alone(
    bench: &Bench,
    what: &str,
    out: &std::path::Path,
) -> Result<serde_json::Value, String> {
    if what == "revocation" {
        return measure::revocation::revoke_all(bench)
            .await
            .map_err(|e| e.to_string());
    }
    if what == "cleanup" {
        return measure::cleanup::deletes(bench)
            .await
            .map_err(|e| e.to_string());
    }
    if what == "django-request" {
        let f = bench.fixture().await.map_err(|e| e.to_string())?;
        return measure::django_client::requests(bench, &f)
            .await
            .map_err(|e| e.to_string());
    }
    let last: serde_json::Value = std::fs::read_to_string(out.join("results.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))?;
    measure::memory::curve(bench, &last["requests_per_operation"], bench.ends_by)
        .await
        .map_err(|e| e.to_string())
}
