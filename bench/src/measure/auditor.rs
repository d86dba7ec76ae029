//! The auditor's records per second: one batch of 10,000 stream records audited and
//! rendered in process.

use std::time::Instant;

use serde_json::{Value, json};
use session_store::StoreConfig;

use crate::figures::{Error, Stats};
use crate::fixture::Bench;

pub fn records(b: &Bench) -> Result<Value, Error> {
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(
        b.root.join("events/stream-modify.json"),
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
    for _ in 0..b.runs {
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
