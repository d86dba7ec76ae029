//! `make bench`: every figure of DESIGN.md's performance targets, measured on this
//! machine in one run, ours side by side with the Django backend (`django-dynamodb-sessions`), written to
//! `bench/results.json` and `bench/results.md`. Medians of several runs, with min and max.

mod compare;
mod cost;
mod event;
mod figures;
mod fixture;
mod measure;
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
        "usage: session-bench [--runs N] [--cycles N] [--cleanup-items N] [--load-clients N] [--load-seconds N] [--out DIR]\n\
         \x20      session-bench [--runs N] [--cycles N] --compare BEFORE AFTER   (two API binaries in target/release, one change apart)\n\
         \x20      session-bench --report-from RESULTS.json [--out DIR]   (results.md again from a run's results, the cost table recomputed)\n\
         \x20      session-bench --only revocation [--runs N] [--out DIR]   (that measurement alone, merged into DIR/results.json and marked so)\n\
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
            "--report-from" => report_from = Some(PathBuf::from(value)),
            "--only" if value == "revocation" => only = Some(value),
            "--compare" => compare = Some((value, args.next().unwrap_or_else(|| usage()))),
            _ => usage(),
        }
    }
    if bench.runs == 0 || bench.cycles == 0 || bench.cleanup_items == 0 || bench.load_clients == 0 {
        usage();
    }
    let mut alone = None;
    if only.is_some() {
        report_from = Some(out.join("results.json"));
        eprintln!("bench: revoking all sessions of one principal, alone");
        alone = Some(
            measure::revocation::revoke_all(&bench)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    if let Some(json) = report_from {
        let written = std::fs::read_to_string(&json)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
            })
            .and_then(|mut results| {
                if let Some(measured) = alone {
                    let mut measured = measured?;
                    measured["measured"] = serde_json::json!(format!(
                        "alone (session-bench --only revocation), after the run of the other \
                         figures, against {}",
                        runner::DYNAMODB
                    ));
                    results["revocation"] = measured;
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
