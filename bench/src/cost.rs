//! Cost per million API requests, all in, for both front doors and both logging settings:
//! the prices and assumptions are written here, the durations and log sizes come from the
//! run's own measurements.

use std::path::Path;

use serde_json::{Value, json};

use crate::figures::Error;

/// us-east-1 list prices, USD.
const HTTP_API_PER_REQUEST: f64 = 1.00 / 1e6;
pub(crate) const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
pub(crate) const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub(crate) const DYNAMODB_PER_READ_UNIT: f64 = 0.125 / 1e6;
pub(crate) const DYNAMODB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
pub(crate) const LOGS_STANDARD_PER_GB: f64 = 0.50;
const LOGS_INFREQUENT_PER_GB: f64 = 0.25;
const LOGS_STORAGE_PER_GB_MONTH: f64 = 0.03;
const GB: f64 = 1e9;

/// The cleanup's and the auditor's memory (`FunctionMemorySize`'s default); the API has a
/// size of its own (`ApiMemorySize`), read from the template.
pub(crate) const MEMORY_GB: f64 = 128.0 / 1024.0;
/// The headline mix: 80% GET (one strongly consistent read of an item up to 4 KB: one
/// read unit, or half of one when eventually consistent), 20% PUT (one write of an item
/// up to 1 KB: one write unit), each one DynamoDB call.
const READS: f64 = 0.8;
pub(crate) const WRITES: f64 = 0.2;
/// Assumed, not measured: DynamoDB's published single-digit-millisecond latency, taken
/// as 5 ms per call inside the billed duration.
pub(crate) const DYNAMODB_MS_PER_CALL: f64 = 5.0;
/// Assumed: stream records per auditor invocation. Batches fill to 100 within the 1 s
/// window from about 100 writes per second; 10 stands for light traffic.
const RECORDS_PER_AUDIT: f64 = 10.0;
/// CloudWatch Logs counts 26 bytes of metadata with every event.
pub(crate) const EVENT_OVERHEAD: f64 = 26.0;
/// Months each byte is kept: the API's and the gateway's logs 30 days
/// (`LogRetentionDays`), the audit trail 365 (`AuditLogRetentionDays`).
const API_LOG_MONTHS: f64 = 1.0;
const AUDIT_LOG_MONTHS: f64 = 12.0;

/// Index write units one table write adds for a session with a principal. The index
/// `by-principal` is keys only, so a table write costs an index write only when it adds,
/// changes or removes the index's keys (DynamoDB Developer Guide, "Provisioned
/// throughput considerations for global secondary indexes", writes): an entry is far
/// under 1 KB, one unit per put or delete of it.
const INDEX_WRITES: [(&str, f64); 6] = [
    ("create with a principal", 1.0),
    ("replace, merge-update or touch keeping the principal", 0.0),
    ("a principal given to an anonymous session (login)", 1.0),
    ("a principal changed, or a cycle (the entry moves)", 2.0),
    (
        "delete, revoke (the entry goes; a tombstone drops the principal too)",
        1.0,
    ),
    ("anonymous session, any write", 0.0),
];

/// What sessions with a principal add to the headline mix, per million requests: each
/// GET and each PUT also reads the principal's watermark (one strongly consistent read
/// unit and one more call's assumed time), and the mix's PUTs keep the principal, so they
/// write no index entry.
pub fn principal_index(api_memory_gb: f64) -> Value {
    let reads_per_request = READS + WRITES;
    let dynamodb = 1e6 * reads_per_request * DYNAMODB_PER_READ_UNIT;
    let lambda = 1e6 * reads_per_request * DYNAMODB_MS_PER_CALL / 1e3
        * api_memory_gb
        * LAMBDA_ARM_PER_GB_SECOND;
    json!({
        "index_write_units_per_table_write": INDEX_WRITES
            .iter()
            .map(|(op, units)| json!({ "write": op, "index_write_units": units }))
            .collect::<Vec<_>>(),
        "index_write_price": DYNAMODB_PER_WRITE_UNIT,
        "headline_mix_extra_per_million": {
            "watermark_read_units": 1e6 * reads_per_request,
            "dynamodb": dynamodb,
            "lambda": lambda,
            "total": dynamodb + lambda,
        },
    })
}

/// Lambda's two platform lines per invocation at `SystemLogLevel: INFO` with the JSON
/// format, in the shape Lambda's documentation gives them (the request id is a UUID).
const PLATFORM_START: &str = r#"{"time":"2026-11-29T10:00:00.000Z","type":"platform.start","record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","version":"$LATEST"}}"#;
const PLATFORM_REPORT: &str = r#"{"time":"2026-11-29T10:00:00.007Z","type":"platform.report","record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","metrics":{"durationMs":6.52,"billedDurationMs":7,"memorySizeMB":128,"maxMemoryUsedMB":9},"status":"success"}}"#;

/// The line API Gateway writes per request: the stage's access log format from
/// template.yaml, filled with the values of `events/api-get.json` (the integration error
/// is `-` on success).
pub fn gateway_line(root: &Path) -> Result<String, Error> {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("template.yaml"))?)?;
    let format =
        template["Resources"]["SessionApiStage"]["Properties"]["AccessLogSettings"]["Format"]
            .as_str()
            .ok_or("template.yaml: no access log format on SessionApiStage")?;
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("events/api-get.json"))?)?;
    let ctx = &event["requestContext"];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let values = [
        ("$context.requestId", text(&ctx["requestId"])),
        ("$context.identity.sourceIp", text(&ctx["http"]["sourceIp"])),
        (
            "$context.identity.caller",
            text(&ctx["authorizer"]["iam"]["callerId"]),
        ),
        ("$context.httpMethod", text(&ctx["http"]["method"])),
        ("$context.routeKey", "$default".to_owned()),
        ("$context.status", "200".to_owned()),
        ("$context.responseLatency", "12".to_owned()),
        ("$context.integrationErrorMessage", "-".to_owned()),
    ];
    let mut line = format.to_owned();
    for (name, value) in values {
        line = line.replace(name, &value);
    }
    if line.contains("$context") {
        return Err(format!("unfilled variable in the access log format: {line}").into());
    }
    Ok(line)
}

/// How much longer the function's access line is behind a function URL than behind the
/// HTTP API, whose events the warm run sends: the request id of `events/url-get.json` (a
/// UUID) against that of `events/api-get.json`, and the `front_door` value.
pub fn function_url_line_extra(root: &Path) -> Result<f64, Error> {
    let request_id = |name: &str| -> Result<usize, Error> {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("events").join(name))?)?;
        event["requestContext"]["requestId"]
            .as_str()
            .map(str::len)
            .ok_or_else(|| format!("events/{name}: no requestContext.requestId").into())
    };
    let ids = request_id("url-get.json")? as f64 - request_id("api-get.json")? as f64;
    Ok(ids + "function_url".len() as f64 - "http_api".len() as f64)
}

/// The cost table of a run's results, with the template's access log format and the
/// sample events of this checkout.
pub fn table(root: &Path, results: &Value) -> Result<Value, Error> {
    let gateway_line = gateway_line(root)?;
    per_million(
        results,
        gateway_line.len() as f64 + 1.0,
        function_url_line_extra(root)?,
        api_memory_mb(root)?,
    )
}

/// The API's memory size as the template deploys it by default (`ApiMemorySize`).
pub fn api_memory_mb(root: &Path) -> Result<u32, Error> {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("template.yaml"))?)?;
    let default = &template["Parameters"]["ApiMemorySize"]["Default"];
    default
        .as_u64()
        .or_else(|| default.as_str().and_then(|s| s.parse().ok()))
        .and_then(|mb| u32::try_from(mb).ok())
        .ok_or_else(|| "template.yaml: no default for ApiMemorySize".into())
}

/// The billed duration per request of the headline mix at `memory_mb`, from the memory
/// curve (the worse of its periods), with where it comes from; or, when the curve has no
/// row of ours at that size, the full core's measured time plus the stated latency.
fn billed_at(r: &Value, memory_mb: u32, own_ms: f64) -> (f64, String) {
    let measured = r["memory_curve"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["target"] == "ours" && row["memory_mb"] == memory_mb)
        .filter_map(|row| row["billed_ms_per_request"].as_f64())
        .fold(None, |worst: Option<f64>, ms| {
            Some(worst.map_or(ms, |w| w.max(ms)))
        });
    match measured {
        Some(ms) => (
            ms,
            format!(
                "measured under Lambda's CPU share at {memory_mb} MB (the worse of the \
                 curve's periods), the emulator's answers replaced by {DYNAMODB_MS_PER_CALL} ms per call"
            ),
        ),
        None => (
            (own_ms + DYNAMODB_MS_PER_CALL).ceil(),
            format!(
                "measured on a full core (no CPU share measured at {memory_mb} MB), plus \
                 {DYNAMODB_MS_PER_CALL} ms per call"
            ),
        ),
    }
}

/// One front door with one logging setting.
#[derive(Clone, Copy)]
struct Setting {
    door: &'static str,
    logging: &'static str,
    /// Share of successful requests with an access line (the error share is taken as 0).
    sample_rate: f64,
    log_price_per_gb: f64,
    platform_lines: bool,
    /// `SessionConsistentRead`: a strongly consistent read costs twice an eventual one.
    consistent_read: bool,
    goal: Option<f64>,
}

const SETTINGS: [Setting; 4] = [
    Setting {
        door: "function URL",
        logging: "defaults: every access line, Standard class, platform lines",
        sample_rate: 1.0,
        log_price_per_gb: LOGS_STANDARD_PER_GB,
        platform_lines: true,
        consistent_read: true,
        goal: Some(0.50),
    },
    Setting {
        door: "function URL",
        logging: "cheapest: errors and slow requests only, Infrequent Access, no platform lines",
        sample_rate: 0.0,
        log_price_per_gb: LOGS_INFREQUENT_PER_GB,
        platform_lines: false,
        consistent_read: true,
        goal: Some(0.45),
    },
    Setting {
        door: "HTTP API",
        logging: "defaults: every access line, Standard class, platform lines",
        sample_rate: 1.0,
        log_price_per_gb: LOGS_STANDARD_PER_GB,
        platform_lines: true,
        consistent_read: true,
        goal: Some(1.50),
    },
    Setting {
        door: "HTTP API",
        logging: "cheapest: errors and slow requests only, Infrequent Access, no platform lines",
        sample_rate: 0.0,
        log_price_per_gb: LOGS_INFREQUENT_PER_GB,
        platform_lines: false,
        consistent_read: true,
        goal: None,
    },
];

/// The four settings, then each cheapest one (no platform lines) again with eventually
/// consistent reads.
fn settings() -> impl Iterator<Item = Setting> {
    let eventual = SETTINGS
        .iter()
        .filter(|s| !s.platform_lines)
        .map(|s| Setting {
            logging: "cheapest, and eventually consistent reads (`SessionConsistentRead=false`)",
            consistent_read: false,
            goal: None,
            ..*s
        });
    SETTINGS.into_iter().chain(eventual)
}

/// The cost table, every component per million requests of the headline mix.
pub fn per_million(
    r: &Value,
    gateway_line_bytes: f64,
    url_line_extra: f64,
    api_memory_mb: u32,
) -> Result<Value, Error> {
    let measured = |v: &Value, what: &str| {
        v.as_f64()
            .ok_or_else(|| Error::from(format!("no {what} in the results")))
    };
    let warm = &r["warm"];
    let own_ms = measured(
        &warm["ours_wall_less_emulator_us_per_request"]["median"],
        "wall time less the emulator",
    )? / 1e3;
    let access_bytes = measured(&warm["access_lines"]["mean_bytes"], "access line size")?;
    let gzip_ratio = measured(&warm["access_lines"]["gzip_ratio"], "gzip ratio")?;
    let audit_bytes = measured(&r["auditor"]["audit_line_bytes"], "audit line size")?;
    let metrics_bytes = measured(&r["auditor"]["metrics_line_bytes"], "metrics line size")?;
    let audit_rate = measured(
        &r["auditor"]["records_per_second"]["median"],
        "auditor rate",
    )?;

    let requests = 1e6;
    let (billed_ms, billed_from) = billed_at(r, api_memory_mb, own_ms);
    let api_memory_gb = api_memory_mb as f64 / 1024.0;
    let lambda_api = requests
        * (LAMBDA_PER_REQUEST + billed_ms / 1e3 * api_memory_gb * LAMBDA_ARM_PER_GB_SECOND);
    let audits = requests * WRITES / RECORDS_PER_AUDIT;
    let audit_ms = (RECORDS_PER_AUDIT / audit_rate * 1e3).ceil();
    let auditor =
        audits * (LAMBDA_PER_REQUEST + audit_ms / 1e3 * MEMORY_GB * LAMBDA_ARM_PER_GB_SECOND);
    let event = |bytes: f64| bytes + EVENT_OVERHEAD;
    let platform =
        event(PLATFORM_START.len() as f64 + 1.0) + event(PLATFORM_REPORT.len() as f64 + 1.0);
    // The audit trail is never sampled and keeps the Standard class: one line per write,
    // and per invocation the auditor's metrics line and its platform lines.
    let audit_log_bytes =
        requests * WRITES * event(audit_bytes) + audits * (event(metrics_bytes) + platform);

    let mut rows = Vec::new();
    for s in settings() {
        let read_units = if s.consistent_read { 1.0 } else { 0.5 };
        let dynamodb = requests
            * (READS * read_units * DYNAMODB_PER_READ_UNIT + WRITES * DYNAMODB_PER_WRITE_UNIT);
        let gateway = if s.door == "HTTP API" {
            requests * HTTP_API_PER_REQUEST
        } else {
            0.0
        };
        let line = if s.door == "HTTP API" {
            access_bytes
        } else {
            access_bytes + url_line_extra
        };
        let mut api_log_bytes = requests * s.sample_rate * event(line);
        if s.platform_lines {
            api_log_bytes += requests * platform;
        }
        if s.door == "HTTP API" {
            api_log_bytes += requests * event(gateway_line_bytes);
        }
        let ingestion =
            api_log_bytes / GB * s.log_price_per_gb + audit_log_bytes / GB * LOGS_STANDARD_PER_GB;
        let storage =
            gzip_ratio * (api_log_bytes * API_LOG_MONTHS + audit_log_bytes * AUDIT_LOG_MONTHS) / GB
                * LOGS_STORAGE_PER_GB_MONTH;
        let total = gateway + lambda_api + dynamodb + auditor + ingestion + storage;
        rows.push(json!({
            "front_door": s.door,
            "api_memory_mb": api_memory_mb,
            "logging": s.logging,
            "consistent_read": s.consistent_read,
            "api_gateway": gateway,
            "lambda_api": lambda_api,
            "dynamodb": dynamodb,
            "auditor": auditor,
            "logs_ingestion": ingestion,
            "logs_storage": storage,
            "api_log_bytes_per_request": api_log_bytes / requests,
            "audit_log_bytes_per_request": audit_log_bytes / requests,
            "total": total,
            "goal": s.goal,
        }));
    }
    Ok(json!({
        "mix": "80% GET, 20% PUT; items up to 1 KB",
        "api_memory_mb": api_memory_mb,
        "billed_ms_per_request": billed_ms,
        "billed_from": billed_from,
        "measured_ms_per_request": own_ms,
        "assumed_dynamodb_ms_per_call": DYNAMODB_MS_PER_CALL,
        "assumed_records_per_audit_invocation": RECORDS_PER_AUDIT,
        "access_line_bytes": access_bytes,
        "function_url_access_line_bytes": access_bytes + url_line_extra,
        "gateway_line_bytes": gateway_line_bytes,
        "audit_line_bytes": audit_bytes,
        "audit_metrics_line_bytes": metrics_bytes,
        "platform_bytes_per_invocation": platform,
        "gzip_ratio": gzip_ratio,
        "rows": rows,
        "principal_index": principal_index(api_memory_gb),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_line_is_the_templates_format_filled_in() {
        let root = testkit::workspace_root();
        let line = gateway_line(&root).unwrap();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["method"], json!("GET"));
        assert_eq!(parsed["status"], json!("200"));
    }

    /// A run's measurements, as much of them as the cost table reads.
    fn measured() -> Value {
        let stat = |m: f64| json!({ "median": m });
        json!({
            "warm": {
                "ours_wall_less_emulator_us_per_request": stat(1500.0),
                "access_lines": { "mean_bytes": 300.0, "gzip_ratio": 0.1 },
            },
            "auditor": {
                "audit_line_bytes": 500.0,
                "metrics_line_bytes": 400.0,
                "records_per_second": stat(100_000.0),
            },
        })
    }

    #[test]
    fn the_table_adds_up_and_only_the_http_api_pays_the_gateway() {
        let results = measured();
        let table = per_million(&results, 200.0, 24.0, 128).unwrap();
        assert_eq!(table["billed_ms_per_request"], json!(7.0));
        assert_eq!(table["rows"][0]["api_memory_mb"], json!(128));
        for row in table["rows"].as_array().unwrap() {
            let parts: f64 = [
                "api_gateway",
                "lambda_api",
                "dynamodb",
                "auditor",
                "logs_ingestion",
                "logs_storage",
            ]
            .iter()
            .map(|k| row[*k].as_f64().unwrap())
            .sum();
            assert!((parts - row["total"].as_f64().unwrap()).abs() < 1e-12);
            let gateway = row["api_gateway"].as_f64().unwrap();
            assert_eq!(gateway > 0.0, row["front_door"] == json!("HTTP API"));
        }
        // DynamoDB: 0.8 M reads at $0.125 and 0.2 M writes at $0.625 per million units.
        let dynamodb = |row: usize| table["rows"][row]["dynamodb"].as_f64().unwrap();
        assert!((dynamodb(0) - 0.225).abs() < 1e-9);
        // Eventually consistent, each GET is half a read unit: $0.05 less.
        assert_eq!(table["rows"][4]["consistent_read"], json!(false));
        assert!((dynamodb(4) - 0.175).abs() < 1e-9);
        let cheap = table["rows"][1]["total"].as_f64().unwrap();
        assert!(cheap < table["rows"][0]["total"].as_f64().unwrap());
        // Behind the function URL each access line weighs its 24 bytes more.
        let bytes = |row: usize| {
            table["rows"][row]["api_log_bytes_per_request"]
                .as_f64()
                .unwrap()
        };
        let platform = table["platform_bytes_per_invocation"].as_f64().unwrap();
        assert!((bytes(0) - platform - (300.0 + 24.0 + 26.0)).abs() < 1e-9);
        // The audit trail: a line per write, and per invocation of ten records the
        // metrics line and the platform lines.
        let audit = table["rows"][0]["audit_log_bytes_per_request"]
            .as_f64()
            .unwrap();
        assert!((audit - (0.2 * 526.0 + 0.02 * (426.0 + platform))).abs() < 1e-9);
    }

    #[test]
    fn a_function_url_line_is_longer_by_its_uuid_request_id() {
        let extra = function_url_line_extra(&testkit::workspace_root()).unwrap();
        // A 36-character UUID against API Gateway's 16-character id, and
        // "function_url" against "http_api".
        assert_eq!(extra, 20.0 + 4.0);
    }

    #[test]
    fn the_billed_duration_comes_from_the_curve_at_the_apis_memory_size() {
        let row = |mb: u32, ms: f64| json!({ "target": "ours", "memory_mb": mb, "billed_ms_per_request": ms });
        let mut results = measured();
        results["memory_curve"] =
            json!({ "rows": [row(128, 30.0), row(256, 12.0), row(256, 14.0)] });
        let at_256 = per_million(&results, 200.0, 24.0, 256).unwrap();
        assert_eq!(
            at_256["billed_ms_per_request"],
            json!(14.0),
            "the worse period"
        );
        let lambda = at_256["rows"][0]["lambda_api"].as_f64().unwrap();
        let want = 1e6 * (LAMBDA_PER_REQUEST + 14e-3 * 0.25 * LAMBDA_ARM_PER_GB_SECOND);
        assert!((lambda - want).abs() < 1e-9);
        // No row at 512 MB: the full core's figure, and a row that says so.
        let at_512 = per_million(&results, 200.0, 24.0, 512).unwrap();
        assert_eq!(at_512["billed_ms_per_request"], json!(7.0));
        assert!(
            at_512["billed_from"]
                .as_str()
                .unwrap()
                .contains("full core")
        );
        assert_eq!(at_512["rows"][0]["api_memory_mb"], json!(512));
    }

    #[test]
    fn the_apis_memory_size_is_the_templates_default() {
        let mb = api_memory_mb(&testkit::workspace_root()).unwrap();
        assert!(crate::measure::memory::SIZES_MB.contains(&mb), "{mb}");
    }
}
