//! The rows of the README's table: each figure, its target, and whether it is met. Both
//! `results.json`'s summary and `results.md`'s table are made of them.

use serde_json::Value;

/// One row: a figure, its target, and whether it is met.
pub struct Row {
    pub figure: String,
    pub ours: String,
    pub django: String,
    pub target: String,
    pub met: Option<bool>,
}

/// A figure as its cells show it: median (min–max).
pub fn stat(v: &Value, digits: usize) -> String {
    let f = |x: &Value| match x.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".into(),
    };
    format!("{} ({}–{})", f(&v["median"]), f(&v["min"]), f(&v["max"]))
}

fn median(v: &Value) -> f64 {
    v["median"].as_f64().unwrap_or(f64::NAN)
}

pub fn rows(r: &Value) -> Vec<Row> {
    let mut rows = start_rows(&r["cold_start"], &r["warm"]);
    rows.extend(floor_rows(&r["cold_start"], &r["warm"]));
    rows.extend(size_rows(&r["binary_sizes"]));
    rows.extend(throughput_rows(
        &r["cleanup"],
        &r["auditor"]["records_per_second"],
    ));
    rows
}

/// A row of the table; `met` is `None` for a figure without a target.
fn row(
    figure: impl Into<String>,
    ours: String,
    django: String,
    target: &str,
    met: Option<bool>,
) -> Row {
    Row {
        figure: figure.into(),
        ours,
        django,
        target: target.into(),
        met,
    }
}

/// Cold start, memory and CPU per request.
fn start_rows(cold: &Value, warm: &Value) -> Vec<Row> {
    let both = |v: &Value, key: &str, digits| {
        (
            stat(&v[format!("ours_{key}")], digits),
            stat(&v[format!("django_{key}")], digits),
        )
    };
    let (ours_ms, django_ms) = both(cold, "ms", 1);
    let (ours_less, django_less) = both(cold, "ms_without_emulator", 1);
    let (ours_rss, django_rss) = both(cold, "peak_rss_mib", 1);
    let (ours_cpu, django_cpu) = both(warm, "cpu_us_per_request", 1);
    let (ours_wall, django_wall) = both(warm, "wall_us_per_request", 0);
    let split = format!(
        "{:.0} / {:.0}",
        median(&warm["ours_user_cpu_us_per_request"]),
        median(&warm["ours_system_cpu_us_per_request"])
    );
    let cpu = format!(
        "CPU per request (user + sys), µs, {} requests per run{}",
        warm["requests_per_run"],
        match warm["django_requests_per_run"].as_f64() {
            Some(n) => format!(" (the Django backend's {n})"),
            None => String::new(),
        }
    );
    vec![
        row(
            "cold start to first answered request, ms",
            ours_ms,
            django_ms,
            "< 15",
            Some(median(&cold["ours_ms"]) < 15.0),
        ),
        row(
            "the same, less the time the emulator took to answer, ms",
            ours_less,
            django_less,
            "",
            None,
        ),
        row(
            "the same, the API built without aws-config's provider chains (bench only), ms",
            stat(
                &cold["configurations"]["ours_static_env"]["ms_without_emulator"],
                1,
            ),
            String::new(),
            "",
            None,
        ),
        row(
            "what aws-config adds to the cold start (difference of the medians), ms",
            format!("{:.1}", cold["aws_config_ms"].as_f64().unwrap_or(f64::NAN)),
            String::new(),
            "< 2",
            Some(cold["aws_config_ms"].as_f64().unwrap_or(f64::NAN) < 2.0),
        ),
        row(
            "peak RSS of that process, MiB",
            ours_rss,
            django_rss,
            "< 16",
            Some(median(&cold["ours_peak_rss_mib"]) < 16.0),
        ),
        // Its targets are ratios (section 9 of the design): ≤ 1.15 × the workload floor
        // and ≥ 10 × below the Django backend, in the rows of `floor_rows`.
        row(cpu, ours_cpu, django_cpu, "ratios below", None),
        row(
            "of which user / system CPU, µs",
            split,
            String::new(),
            "",
            None,
        ),
        row(
            "wall time per request against the emulator, µs",
            ours_wall,
            django_wall,
            "",
            None,
        ),
    ]
}

/// Ours against the floors and the Django backend: the targets of "performance against the floor".
fn floor_rows(cold: &Value, warm: &Value) -> Vec<Row> {
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let tls = &cold["configurations"]["ours_tls"]["ms_without_emulator"];
    let cold_ratio = number(&cold["ours_tls_over_workload_floor_tls"]);
    let warm_ratio = number(&warm["ours_over_workload_floor"]);
    let django_ratio = number(&warm["django_over_ours"]);
    vec![
        row(
            "cold start over TLS (roots and handshake), less the emulator, ms",
            stat(tls, 1),
            String::new(),
            "< 15",
            Some(median(tls) < 15.0),
        ),
        row(
            "ours ÷ workload floor, cold start over TLS",
            format!("{cold_ratio:.2}"),
            String::new(),
            "≤ 1.2",
            Some(cold_ratio <= 1.2),
        ),
        row(
            "ours ÷ workload floor, CPU per request",
            format!("{warm_ratio:.2}"),
            String::new(),
            "≤ 1.15",
            Some(warm_ratio <= 1.15),
        ),
        row(
            "Django backend ÷ ours, CPU per request",
            format!("{django_ratio:.1}"),
            String::new(),
            "≥ 10",
            Some(django_ratio >= 10.0),
        ),
    ]
}

/// One row per binary: arm64 from `make build` when present, else this machine's build.
fn size_rows(sizes: &Value) -> Vec<Row> {
    const MIB: f64 = 1024.0 * 1024.0;
    let (label, bytes) = match sizes["arm64_from_make_build"].as_object() {
        Some(arm) => ("stripped arm64 (make build)".to_owned(), arm.clone()),
        None => (
            format!(
                "stripped {} release",
                sizes["native"]["arch"].as_str().unwrap_or("native")
            ),
            sizes["native"]["bytes"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    };
    bytes
        .iter()
        .map(|(name, size)| {
            let mib = size.as_f64().unwrap_or(f64::NAN) / MIB;
            row(
                format!("{name} binary, {label}, MiB"),
                format!("{mib:.2}"),
                String::new(),
                "< 8",
                Some(mib < 8.0),
            )
        })
        .collect()
}

fn throughput_rows(cleanup: &Value, auditor: &Value) -> Vec<Row> {
    let ratio = cleanup["ours_over_ceiling"].as_f64().unwrap_or(f64::NAN);
    let figure = format!(
        "cleanup deletes per second, its rate limit lifted as the ceiling's is ({} expired \
         items, concurrency {})",
        cleanup["items_per_run"], cleanup["concurrency"]
    );
    let target = format!(
        "≥ 80% of the emulator's {} → {:.0}%",
        stat(&cleanup["emulator_ceiling_deletes_per_second"], 0),
        ratio * 100.0
    );
    // At the default limit the cleanup must hold it and come near it, or near the
    // ceiling where the emulator is the slower of the two.
    let limit = cleanup["writes_per_second_limit"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let limited = &cleanup["at_default_limit_deletes_per_second"];
    let floor = 0.9 * limit.min(median(&cleanup["emulator_ceiling_deletes_per_second"]));
    let held = (!median(limited).is_nan()).then(|| (floor..=limit).contains(&median(limited)));
    vec![
        row(
            figure,
            stat(&cleanup["ours_deletes_per_second"], 0),
            "(no cleanup)".into(),
            &target,
            Some(ratio >= 0.8),
        ),
        row(
            "cleanup deletes per second at its default rate limit",
            stat(limited, 0),
            "(no cleanup)".into(),
            &format!("{floor:.0} to {limit:.0} (90% of the lower of the limit and the ceiling)"),
            held,
        ),
        row(
            "auditor records per second, 10,000-record batches",
            stat(auditor, 0),
            "(no auditor)".into(),
            "> 100,000",
            Some(median(auditor) > 100_000.0),
        ),
    ]
}
