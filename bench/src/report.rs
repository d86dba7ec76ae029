//! `results.json` (everything measured) and `results.md` (the table the README shows,
//! each figure against its target).

use std::path::Path;

use serde_json::{Value, json};

use crate::targets::{rows, stat};

pub fn markdown(r: &Value) -> String {
    let mut md = String::from(
        "| figure | ours: median (min–max) | django-dynamodb-sessions 0.7 | target | met |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for row in rows(r) {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {met} |\n",
            row.figure, row.ours, row.django, row.target
        ));
    }
    md.push_str(&format!(
        "\nCold start: the Django backend takes {:.1}× as long. CPU per request: the Django backend uses {:.1}× as much.\n",
        r["cold_start"]["django_over_ours"].as_f64().unwrap_or(f64::NAN),
        r["warm"]["django_over_ours"].as_f64().unwrap_or(f64::NAN),
    ));
    md.push_str(&floor_section(&r["cold_start"], &r["warm"]));
    md.push_str("\nDynamoDB requests per operation, counted:\n\n| operation | ours | django-dynamodb-sessions 0.7 |\n| --- | --- | --- |\n");
    if let Some(ops) = r["requests_per_operation"].as_object() {
        for (op, v) in ops {
            let django = match &v["django"] {
                Value::Null => "(no such operation)".to_owned(),
                other => other.to_string(),
            };
            md.push_str(&format!("| {op} | {} | {django} |\n", v["ours"]));
        }
    }
    md.push_str(&revocation_section(&r["revocation"]));
    md.push_str(&django_request_section(&r["django_request"]));
    md.push_str(&load_section(&r["load"]));
    md.push_str(&crate::memory_report::markdown(
        &r["memory_curve"],
        &r["cost_per_million"]["api_memory_mb"],
    ));
    md.push_str(&cost_section(&r["cost_per_million"]));
    md.push_str(&crate::upkeep_cost::markdown(&r["upkeep_per_month"]));
    md.push_str(&format!(
        "\nMachine: {} CPUs, {} {}; DynamoDB: {}.\n",
        r["machine"]["cpus"],
        r["machine"]["os"].as_str().unwrap_or(""),
        r["machine"]["arch"].as_str().unwrap_or(""),
        r["machine"]["dynamodb"].as_str().unwrap_or("")
    ));
    md
}

/// Ours beside the two floors and the Django backend, cold and warm.
fn floor_section(cold: &Value, warm: &Value) -> String {
    let c = &cold["configurations"];
    let cell = |v: &Value, digits: usize| {
        if v.is_null() {
            String::new()
        } else {
            stat(v, digits)
        }
    };
    let mut md = format!(
        "\nAgainst the floors. The runtime floor is `lambda_http` answering the same events \
         with nothing else; the workload floor adds exactly the workload's DynamoDB calls \
         (PutItem; GetItem; GetItem and UpdateItem; DeleteItem) with the client built as \
         the functions build it, and no session logic (`bench/floors`, same crate versions \
         and release profile). Cold starts less the emulator's share, over plain HTTP and \
         over TLS ({} roots in `SSL_CERT_FILE`: this machine's bundle and the bench's CA); \
         CPU per request of the warm workload.\n\n\
         | binary | cold start, ms | cold start over TLS, ms | peak RSS, MiB | CPU per request, µs |\n\
         | --- | --- | --- | --- | --- |\n",
        cold["tls_roots"]
    );
    let floors = &warm["floors"];
    let lines = [
        (
            "ours (session-api)",
            &c["ours"],
            &c["ours_tls"],
            &warm["ours_cpu_us_per_request"],
        ),
        (
            "workload floor",
            &c["workload_floor"],
            &c["workload_floor_tls"],
            &floors["workload_floor"]["cpu_us_per_request"],
        ),
        (
            "runtime floor",
            &c["runtime_floor"],
            &Value::Null,
            &floors["runtime_floor"]["cpu_us_per_request"],
        ),
    ];
    for (name, plain, tls, cpu) in lines {
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            cell(&plain["ms_without_emulator"], 1),
            cell(&tls["ms_without_emulator"], 1),
            cell(&plain["peak_rss_mib"], 1),
            cell(cpu, 0),
        ));
    }
    md.push_str(&format!(
        "| django-dynamodb-sessions 0.7 | {} |  | {} | {} |\n",
        cell(&cold["django_ms_without_emulator"], 1),
        cell(&cold["django_peak_rss_mib"], 1),
        cell(&warm["django_cpu_us_per_request"], 0),
    ));
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    md.push_str(&format!(
        "\nThe TLS handshake adds {:.1} ms to our cold start (over TLS against plain HTTP; \
         the SDK reads the roots with its first connection of either scheme, so both read \
         them). Reading the {} roots costs {:.1} ms (over TLS with the bench's CA alone: \
         {}). Ours ÷ workload floor: {:.2} cold over plain HTTP, {:.2} over TLS, {:.2} in \
         CPU per request.\n",
        number(&cold["tls_adds_ms"]),
        cold["tls_roots"],
        number(&cold["roots_ms"]),
        cell(&c["ours_tls_one_root"]["ms_without_emulator"], 1),
        number(&cold["ours_over_workload_floor"]),
        number(&cold["ours_tls_over_workload_floor_tls"]),
        number(&warm["ours_over_workload_floor"]),
    ));
    md
}
/// Revoking every session of one principal: time, requests and units.
fn revocation_section(rev: &Value) -> String {
    if rev.is_null() {
        return String::new();
    }
    let requests = rev["requests"]
        .as_object()
        .map(|ops| {
            ops.iter()
                .map(|(op, n)| format!("{n} {op}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let per_million = |units: &Value, price: f64| units.as_f64().unwrap_or(f64::NAN) * price;
    format!(
        "\nRevoking all {} sessions of one principal (`DELETE /principals/{{p}}/sessions`, \
         codec json, through the store against the emulator): {} s (median, min to max), \
         {} requests ({requests}); {} read units and {} write units by DynamoDB's rules \
         (items of {} B, index entries of {} B): ${:.5} on demand.{}\n",
        rev["sessions"],
        stat(&rev["seconds"], 2),
        rev["total_requests"],
        rev["read_units"],
        rev["write_units"],
        rev["item_bytes"],
        rev["index_entry_bytes"],
        per_million(&rev["read_units"], crate::cost::DYNAMODB_PER_READ_UNIT)
            + per_million(&rev["write_units"], crate::cost::DYNAMODB_PER_WRITE_UNIT),
        rev["measured"]
            .as_str()
            .map(|m| format!(" Measured {m}."))
            .unwrap_or_default(),
    ) + &many_section(&rev["through_202s"])
}

/// A Django request's session through the service's Django client, beside the backend.
fn django_request_section(d: &Value) -> String {
    if d.is_null() {
        return String::new();
    }
    let row = |name: &str, e: &Value| {
        format!(
            "| {name} | {:.2} | {:.2} | {} | {:.1} |\n",
            e["wall_ms_p50"].as_f64().unwrap_or(f64::NAN),
            e["wall_ms_p99"].as_f64().unwrap_or(f64::NAN),
            stat(&e["django_cpu_us_per_request"], 0),
            e["requests_per_django_request"]
                .as_f64()
                .unwrap_or(f64::NAN),
        )
    };
    format!(
        "\nA Django request's session, on the Django process's side ({}; the same emulator, \
         runs alternating; the client signs with SigV4 as with `AWS_IAM`, the API runs the \
         json codec at full CPU, and no network or front door lies between them):\n\n| engine | wall p50, ms | wall p99, ms | CPU of the Django process per \
         request, µs | requests per Django request |\n| --- | --- | --- | --- | --- |\n{}{}",
        d["workload"].as_str().unwrap_or(""),
        row(
            "`session_service.session`, over HTTP to the API (release build, one instance)",
            &d["client"]
        ),
        row("django-dynamodb-sessions 0.7, to DynamoDB", &d["backend"]),
    )
}

/// The revocation that runs to completion through 202s.
fn many_section(many: &Value) -> String {
    if many.is_null() {
        return String::new();
    }
    let calls = match many["calls"].as_u64() {
        Some(1) => "1 call, within the deadline: no 202 on this machine".to_owned(),
        Some(n) => format!("{n} calls"),
        None => "no calls recorded".to_owned(),
    };
    format!(
        "\nRevoking all {} sessions of one principal through 202s (each call stops at the \
         API's deadline, 9.5 s, and the client calls again): {calls}, removing {} \
         sessions; {} requests ({}); {:.1} s from the first call to the last answer.\n",
        many["sessions"],
        many["revoked_per_call"]
            .as_array()
            .map(|c| c
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        many["total_requests"],
        many["requests"]
            .as_object()
            .map(|ops| ops
                .iter()
                .map(|(op, n)| format!("{n} {op}"))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        many["seconds"].as_f64().unwrap_or(f64::NAN),
    )
}

/// Cost per million requests for both front doors and both logging settings, with the
/// measured inputs and the assumptions beside it.
fn cost_section(cost: &Value) -> String {
    if cost.is_null() {
        return String::new();
    }
    let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut md = format!(
        "\nCost per million requests, USD, all in ({}; us-east-1 list prices; arm64; the API \
         at {} MB, the auditor at 128 MB). Billed duration {:.2} ms per request, {} (on a \
         full core: {:.2} ms, plus {:.0} ms per DynamoDB call). Log bytes \
         measured: the function's access line {:.0} B ({:.0} B behind the function URL, whose request ids are UUIDs), API Gateway's access line {:.0} B, \
         the audit line {:.0} B and the auditor's metrics line {:.0} B per invocation; Lambda's two platform lines (in the documented shape) \
         {:.0} B per invocation with CloudWatch's 26 bytes per event, as every event is \
         counted; storage on \
         gzip's ratio of the access lines ({:.2}). The auditor: {:.0} records per \
         invocation (assumed).\n\n\
         | front door | logging | API memory, MB | API Gateway | Lambda | DynamoDB | auditor | logs ingestion | logs storage | total | goal | met |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        cost["mix"].as_str().unwrap_or(""),
        cost["api_memory_mb"],
        n(&cost["billed_ms_per_request"]),
        cost["billed_from"].as_str().unwrap_or(""),
        n(&cost["measured_ms_per_request"]),
        n(&cost["assumed_dynamodb_ms_per_call"]),
        n(&cost["access_line_bytes"]),
        n(&cost["function_url_access_line_bytes"]),
        n(&cost["gateway_line_bytes"]),
        n(&cost["audit_line_bytes"]),
        n(&cost["audit_metrics_line_bytes"]),
        n(&cost["platform_bytes_per_invocation"]),
        n(&cost["gzip_ratio"]),
        n(&cost["assumed_records_per_audit_invocation"]),
    );
    for row in cost["rows"].as_array().into_iter().flatten() {
        let (goal, met) = match row["goal"].as_f64() {
            Some(g) if n(&row["total"]) < g => (format!("< {g:.2}"), "yes"),
            Some(g) => (format!("< {g:.2}"), "**no**"),
            None => (String::new(), ""),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | **{:.3}** | {goal} | {met} |\n",
            row["front_door"].as_str().unwrap_or(""),
            row["logging"].as_str().unwrap_or(""),
            row["api_memory_mb"],
            n(&row["api_gateway"]),
            n(&row["lambda_api"]),
            n(&row["dynamodb"]),
            n(&row["auditor"]),
            n(&row["logs_ingestion"]),
            n(&row["logs_storage"]),
            n(&row["total"]),
        ));
    }
    let index = &cost["principal_index"];
    if !index.is_null() {
        md.push_str(
            "\nSessions with a principal. Index write units a table write adds (the index is keys only; a unit costs the table's write price):\n\n| write | index write units |\n| --- | --- |\n",
        );
        for w in index["index_write_units_per_table_write"]
            .as_array()
            .into_iter()
            .flatten()
        {
            md.push_str(&format!(
                "| {} | {} |\n",
                w["write"].as_str().unwrap_or(""),
                w["index_write_units"]
            ));
        }
        let extra = &index["headline_mix_extra_per_million"];
        md.push_str(&format!(
            "\nThe headline mix with every session a principal's adds ${:.3} per million requests: \
             {:.0} watermark read units (${:.3}) and one more call's assumed time in Lambda (${:.4}); \
             its PUTs keep the principal and write no index entry.\n",
            n(&extra["total"]),
            n(&extra["watermark_read_units"]),
            n(&extra["dynamodb"]),
            n(&extra["lambda"]),
        ));
    }
    md
}

/// The load test: its counts, the invariant, and latency percentiles per operation.
fn load_section(load: &Value) -> String {
    if load.is_null() {
        return String::new();
    }
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let statuses = load["statuses"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut md = format!(
        "\nLoad: {} concurrent clients for {:.0} s against the API in process, {} requests \
         ({:.0} per second). Statuses: {statuses}. Unexpected answers: {}. Version conflicts \
         (412, retried by the client): {}. Counters whose value fell short of the \
         acknowledged increments (lost updates): {} of {}.\n\n\
         | operation | requests | p50 ms | p90 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- |\n",
        load["clients"],
        number(&load["seconds"]),
        load["requests"],
        number(&load["requests_per_second"]),
        load["unexpected"],
        load["version_conflicts_412"],
        load["lost_updates"],
        load["counters"].as_array().map_or(0, Vec::len),
    );
    if let Some(ops) = load["latency_ms"].as_object() {
        for (op, v) in ops {
            md.push_str(&format!(
                "| {op} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                v["count"],
                number(&v["p50"]),
                number(&v["p90"]),
                number(&v["p99"]),
                number(&v["max"])
            ));
        }
    }
    md
}

pub fn write(dir: &Path, results: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut with_targets = results.clone();
    with_targets["summary"] = json!(rows(results)
        .into_iter()
        .map(|r| json!({ "figure": r.figure, "ours": r.ours, "django": r.django, "target": r.target, "met": r.met }))
        .collect::<Vec<_>>());
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&with_targets).unwrap_or_default() + "\n",
    )?;
    std::fs::write(dir.join("results.md"), markdown(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(m: f64) -> Value {
        json!({ "median": m, "min": m, "max": m })
    }

    #[test]
    fn every_target_is_marked_met_or_not() {
        let results = json!({
            "cold_start": { "ours_ms": s(12.0), "django_ms": s(900.0), "ours_ms_without_emulator": s(5.0),
                            "django_ms_without_emulator": s(850.0), "ours_peak_rss_mib": s(20.0),
                            "django_peak_rss_mib": s(70.0), "django_over_ours": 75.0,
                            "aws_config_ms": 1.0, "tls_roots": 145, "tls_adds_ms": 3.0, "roots_ms": 1.0,
                            "ours_over_workload_floor": 1.1, "ours_tls_over_workload_floor_tls": 1.3,
                            "configurations": {
                                "ours_static_env": { "ms_without_emulator": s(4.0) },
                                "ours_tls": { "ms_without_emulator": s(8.0) },
                                "workload_floor_tls": { "ms_without_emulator": s(6.2) },
                            } },
            "warm": { "requests_per_run": 1000, "django_requests_per_run": 252, "ours_cpu_us_per_request": s(40.0), "django_cpu_us_per_request": s(7000.0),
                      "ours_over_workload_floor": 1.1, "floors": { "workload_floor": { "cpu_us_per_request": s(36.0) } },
                      "ours_user_cpu_us_per_request": s(30.0), "ours_system_cpu_us_per_request": s(10.0),
                      "ours_wall_us_per_request": s(900.0), "django_wall_us_per_request": s(9000.0), "django_over_ours": 175.0 },
            "binary_sizes": { "native": { "arch": "x86_64", "bytes": { "session-api": 9_000_000 } }, "arm64_from_make_build": null },
            "cleanup": { "items_per_run": 10, "concurrency": 8, "ours_deletes_per_second": s(90.0),
                         "emulator_ceiling_deletes_per_second": s(100.0), "ours_over_ceiling": 0.9,
                         "writes_per_second_limit": 50, "at_default_limit_deletes_per_second": s(60.0) },
            "auditor": { "records_per_second": s(50_000.0) },
            "requests_per_operation": { "create": { "ours": 1, "django": 2 } },
            "machine": { "cpus": 2, "os": "linux", "arch": "x86_64", "dynamodb": "Dynoxide" },
        });
        let met: Vec<(String, Option<bool>)> = rows(&results)
            .into_iter()
            .map(|r| (r.figure, r.met))
            .collect();
        let verdict = |prefix: &str| {
            met.iter()
                .find(|(f, _)| f.starts_with(prefix))
                .map(|(_, m)| *m)
        };
        assert_eq!(verdict("cold start"), Some(Some(true)));
        assert_eq!(verdict("peak RSS"), Some(Some(false)));
        assert_eq!(verdict("what aws-config adds"), Some(Some(true)));
        assert_eq!(verdict("CPU per request"), Some(None));
        assert_eq!(verdict("session-api binary"), Some(Some(false)));
        assert_eq!(verdict("cleanup deletes per second, its"), Some(Some(true)));
        assert_eq!(verdict("cleanup deletes per second at"), Some(Some(false)));
        assert_eq!(verdict("auditor"), Some(Some(false)));
        assert_eq!(verdict("cold start over TLS"), Some(Some(true)));
        assert_eq!(verdict("ours ÷ workload floor, cold"), Some(Some(false)));
        assert_eq!(verdict("ours ÷ workload floor, CPU"), Some(Some(true)));
        assert_eq!(verdict("Django backend ÷ ours"), Some(Some(true)));
        let md = markdown(&results);
        assert!(md.contains("| create | 1 | 2 |"), "{md}");
        assert!(
            md.contains("| workload floor |  | 6.2 (6.2–6.2) |  | 36 (36–36) |"),
            "{md}"
        );
        assert_eq!(md.matches("**no**").count(), 5, "{md}");
        assert!(!md.contains("A Django request's session"), "{md}");
    }

    #[test]
    fn the_django_request_rows_show_both_engines() {
        let engine = |p50: f64, requests: f64| {
            json!({ "wall_ms_p50": p50, "wall_ms_p99": p50 * 2.0,
                    "django_cpu_us_per_request": s(900.0), "requests_per_django_request": requests })
        };
        let md = django_request_section(&json!({
            "workload": "200 Django requests per run",
            "client": engine(1.5, 2.0),
            "backend": engine(3.25, 2.0),
        }));
        assert!(md.contains("over HTTP to the API (release build, one instance) | 1.50 | 3.00 | 900 (900–900) | 2.0 |"), "{md}");
        assert!(
            md.contains(
                "django-dynamodb-sessions 0.7, to DynamoDB | 3.25 | 6.50 | 900 (900–900) | 2.0 |"
            ),
            "{md}"
        );
    }
}
