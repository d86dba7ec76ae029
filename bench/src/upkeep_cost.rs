//! Upkeep per month at 1, 10 and 100 million sessions: the hourly Scan the cleanup ran
//! before, beside the stream upkeep that stamps only what the Django backend writes, and
//! each as a share of the serving cost. Prices are cost.rs's; the figures come from the
//! run's results (the API's billed duration stands for the upkeep's one UpdateItem).

use serde_json::{Value, json};
use session_cleanup::{UpkeepCounts, upkeep_line};

use crate::cost::{
    DYNAMODB_PER_READ_UNIT, DYNAMODB_PER_WRITE_UNIT, EVENT_OVERHEAD, LAMBDA_ARM_PER_GB_SECOND,
    LAMBDA_PER_REQUEST, LOGS_STANDARD_PER_GB, MEMORY_GB, WRITES,
};
use crate::figures::Error;

/// The traffic the model assumes: a million requests a day in the headline mix, a
/// tenth of the writes made by the Django backend, items of 1 KB.
const REQUESTS_PER_DAY: f64 = 1e6;
const DAYS_PER_MONTH: f64 = 30.4;
const HOURS_PER_MONTH: f64 = 730.0;
const BACKEND_SHARE_OF_WRITES: f64 = 0.10;
const ITEM_KB: f64 = 1.0;
const SESSIONS: [f64; 3] = [1e6, 1e7, 1e8];
/// The goal at 100 million sessions: upkeep at most this share of the serving cost.
const GOAL_SHARE: f64 = 0.05;

/// One full Scan: every item read, eventually consistent (half a read unit per 4 KB),
/// whatever the projection and filter.
fn scan(sessions: f64) -> f64 {
    sessions * ITEM_KB / 4.0 * 0.5 * DYNAMODB_PER_READ_UNIT
}

pub fn table(results: &Value) -> Result<Value, Error> {
    let cost = &results["cost_per_million"];
    let billed_ms = cost["billed_ms_per_request"]
        .as_f64()
        .ok_or("no billed duration in the cost table")?;
    let platform = cost["platform_bytes_per_invocation"]
        .as_f64()
        .ok_or("no platform line size in the cost table")?;
    let serving = |door: &str| -> Result<f64, Error> {
        cost["rows"]
            .as_array()
            .and_then(|rows| {
                rows.iter().find(|r| {
                    r["front_door"] == door
                        && r["logging"]
                            .as_str()
                            .is_some_and(|l| l.starts_with("defaults"))
                })
            })
            .and_then(|r| r["total"].as_f64())
            .map(|per_million| per_million * REQUESTS_PER_DAY * DAYS_PER_MONTH / 1e6)
            .ok_or_else(|| format!("no default row for the {door} in the cost table").into())
    };
    let (url, http_api) = (serving("function URL")?, serving("HTTP API")?);
    // At a tenth of the writes, about a backend write every 4 s: a batch holds one.
    let records = REQUESTS_PER_DAY * DAYS_PER_MONTH * WRITES * BACKEND_SHARE_OF_WRITES;
    let one = UpkeepCounts {
        stamped: 1,
        batch_size: 1,
        ..UpkeepCounts::default()
    };
    let line = upkeep_line(&one, 1_796_000_000_000).len() as f64 + 1.0;
    let invocations =
        records * (LAMBDA_PER_REQUEST + billed_ms / 1e3 * MEMORY_GB * LAMBDA_ARM_PER_GB_SECOND);
    let stamps = records * ITEM_KB.ceil() * DYNAMODB_PER_WRITE_UNIT;
    let logs = records * (line + EVENT_OVERHEAD + platform) / 1e9 * LOGS_STANDARD_PER_GB;
    let stream = invocations + stamps + logs;
    let rows: Vec<Value> = SESSIONS
        .iter()
        .map(|&sessions| {
            let hourly = scan(sessions) * HOURS_PER_MONTH + stamps;
            let with_monthly_scan = stream + scan(sessions);
            json!({
                "sessions": sessions,
                "one_scan": scan(sessions),
                "hourly_scan": hourly,
                "stream_upkeep": stream,
                "stream_upkeep_and_a_monthly_scan": with_monthly_scan,
                "serving_function_url": url,
                "serving_http_api": http_api,
                "stream_share_of_function_url": stream / url,
                "hourly_share_of_function_url": hourly / url,
            })
        })
        .collect();
    let at_100m = stream / url;
    Ok(json!({
        "assumptions": {
            "requests_per_day": REQUESTS_PER_DAY,
            "backend_share_of_writes": BACKEND_SHARE_OF_WRITES,
            "item_kb": ITEM_KB,
            "records_per_upkeep_invocation": 1,
            "upkeep_line_bytes": line,
        },
        "backend_writes_per_month": records,
        "stream_upkeep_parts": { "invocations": invocations, "stamps": stamps, "logs": logs },
        "rows": rows,
        "goal_share_at_100m": GOAL_SHARE,
        "met_at_100m": at_100m <= GOAL_SHARE,
    }))
}

/// The table in results.md, and the README's.
pub fn markdown(upkeep: &Value) -> String {
    if upkeep.is_null() {
        return String::new();
    }
    let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let a = &upkeep["assumptions"];
    let mut md = format!(
        "\nUpkeep per month, USD (1 KB sessions; {:.0} requests a day in the headline mix; \
         {:.0}% of the writes by the Django backend, {:.0} a month, one per invocation of \
         the upkeep; the serving cost at the default logging). The hourly Scan reads every \
         item each hour (its Lambda time not counted) and stamps the backend's writes; the \
         stream upkeep stamps those writes and nothing else, whatever the table holds. Goal \
         at 100 million sessions: upkeep at most {:.0}% of serving.\n\n\
         | sessions | one Scan | hourly Scan | stream upkeep | with a monthly Scan | serving, function URL | serving, HTTP API | stream upkeep ÷ serving (function URL) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        n(&a["requests_per_day"]),
        n(&a["backend_share_of_writes"]) * 100.0,
        n(&upkeep["backend_writes_per_month"]),
        n(&upkeep["goal_share_at_100m"]) * 100.0,
    );
    for row in upkeep["rows"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {:.0} million | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1}% |\n",
            n(&row["sessions"]) / 1e6,
            n(&row["one_scan"]),
            n(&row["hourly_scan"]),
            n(&row["stream_upkeep"]),
            n(&row["stream_upkeep_and_a_monthly_scan"]),
            n(&row["serving_function_url"]),
            n(&row["serving_http_api"]),
            n(&row["stream_share_of_function_url"]) * 100.0,
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_scan_of_100_million_1_kb_sessions_costs_12_5_million_read_units() {
        assert!((scan(1e8) / DYNAMODB_PER_READ_UNIT - 12.5e6).abs() < 1.0);
        // About $1,140 a month on the hourly schedule.
        assert!((scan(1e8) * HOURS_PER_MONTH - 1_140.6).abs() < 1.0);
    }
}
