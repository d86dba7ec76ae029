//! The memory curve's section of `results.md`: per target, memory size and quota period,
//! cold start, p50 and p99 wall time per operation, the billed duration and Lambda's
//! cost; then the API's default size and why.

use serde_json::Value;

use crate::measure::warm::OPS;

/// A figure with `digits` decimals, or a dash when it is missing.
fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "–".to_owned(), |x| format!("{x:.digits$}"))
}

/// The section; `deployed_mb` is the template's `ApiMemorySize` default.
pub fn markdown(curve: &Value, deployed_mb: &Value) -> String {
    if curve.is_null() {
        return String::new();
    }
    if let Some(why) = curve["unavailable"].as_str() {
        return format!(
            "\nLambda's CPU share by memory size: not measured on this machine ({why}); \
             every other figure is on a full core.\n"
        );
    }
    let mut md = format!(
        "\nLambda's CPU share by memory size ({}; memory ÷ {} MB of one core, enforced \
         over a period of {} ms; each process alone under its quota, the emulator and the \
         harness outside it). Wall time per operation in one busy process (100 of each for \
         ours and the floor, as the harness sees it, each invocation about 0 to 2 ms after \
         the last; 25 for the Django backend, as its driver times them, so its p99 is its \
         slowest); the billed duration replaces the emulator's \
         answers with {} ms per DynamoDB call and rounds each invocation up to the \
         millisecond; billed ms per request is the mix {}; Lambda's cost is per million \
         requests at arm64 list prices. This machine is {} and the functions run on \
         arm64: an estimate of the curve, not Lambda's figures.{}\n\n\
         | target | MB | period ms | cold start ms | create p50 / p99 ms | get p50 / p99 ms \
         | merge-update p50 / p99 ms | delete p50 / p99 ms | get billed p99 ms \
         | billed ms per request | Lambda $ per million |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        curve["controller"].as_str().unwrap_or(""),
        curve["full_core_mb"],
        periods(curve),
        curve["dynamodb_ms_per_call"],
        mix(curve),
        curve["arch"].as_str().unwrap_or(std::env::consts::ARCH),
        curve["measured"]
            .as_str()
            .map(|m| format!(" Measured {m}."))
            .unwrap_or_default(),
    );
    for row in curve["rows"].as_array().into_iter().flatten() {
        md.push_str(&row_line(row));
    }
    let deployed = match (deployed_mb.as_u64(), curve["chosen"]["memory_mb"].as_u64()) {
        (Some(d), Some(c)) if d == c => {
            format!(" The template deploys it: `ApiMemorySize` defaults to {d} MB.")
        }
        (Some(d), _) => format!(
            " **The template deploys {d} MB** (`ApiMemorySize`'s default), not this run's recommendation."
        ),
        (None, _) => String::new(),
    };
    md.push_str(&match curve["chosen"]["memory_mb"].as_u64() {
        Some(mb) => format!(
            "\nRecommended memory for the API: {mb} MB, {} ({} ms; its GET p99 billed \
             duration {} ms, {} ms billed per request, ${} per million for Lambda).{deployed}\n",
            curve["chosen"]["reason"].as_str().unwrap_or(""),
            num(&curve["get_p99_budget_ms"], 0),
            num(&curve["chosen"]["get_billed_p99_ms"], 0),
            num(&curve["chosen"]["billed_ms_per_request"], 2),
            num(&curve["chosen"]["lambda_per_million"], 3),
        ),
        None => {
            "\nNo default chosen: no size of ours was measured under both periods.\n".to_owned()
        }
    });
    md
}

fn periods(curve: &Value) -> String {
    curve["periods_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| num(p, 0))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn mix(curve: &Value) -> String {
    curve["mix"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{:.0}% {}",
                m["share"].as_f64().unwrap_or(0.0) * 100.0,
                m["operation"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_line(row: &Value) -> String {
    let head = format!(
        "| {} | {} | {} ",
        row["target"].as_str().unwrap_or(""),
        row["memory_mb"],
        num(&row["period_ms"], 0)
    );
    if let Some(why) = row["skipped"].as_str() {
        return format!("{head}| not measured: {why} | | | | | | | |\n");
    }
    let ops: Vec<String> = OPS
        .iter()
        .map(|op| {
            let o = &row["ops"][op];
            format!("{} / {}", num(&o["p50_ms"], 1), num(&o["p99_ms"], 1))
        })
        .collect();
    format!(
        "{head}| {} | {} | {} | {} | {} |\n",
        num(&row["cold_ms"]["median"], 0),
        ops.join(" | "),
        num(&row["ops"]["get"]["billed_p99_ms"], 0),
        num(&row["billed_ms_per_request"], 2),
        num(&row["lambda_per_million"], 3),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn curve() -> Value {
        let op = json!({ "p50_ms": 1.25, "p99_ms": 9.0, "billed_p99_ms": 12.0 });
        json!({
            "controller": "cgroup v1",
            "full_core_mb": 1769,
            "periods_ms": [20.0, 100.0],
            "dynamodb_ms_per_call": 5.0,
            "get_p99_budget_ms": 25.0,
            "mix": [{ "operation": "get", "share": 0.8 }, { "operation": "merge-update", "share": 0.2 }],
            "rows": [
                { "target": "ours", "memory_mb": 128, "period_ms": 20.0, "quota_us": 1447,
                  "cold_ms": { "median": 41.0 },
                  "ops": { "create": op, "get": op, "merge-update": op, "delete": op },
                  "billed_ms_per_request": 7.2, "lambda_per_million": 0.212 },
                { "target": "django", "memory_mb": 128, "period_ms": 100.0,
                  "skipped": "the run's time budget was spent" },
            ],
            "chosen": { "memory_mb": 128, "reason": "the cheapest", "get_billed_p99_ms": 12.0,
                        "billed_ms_per_request": 7.2, "lambda_per_million": 0.212 },
        })
    }

    #[test]
    fn each_measured_configuration_is_a_row_and_a_skipped_one_says_why() {
        let md = markdown(&curve(), &json!(128));
        assert!(md.contains(
            "| ours | 128 | 20 | 41 | 1.2 / 9.0 | 1.2 / 9.0 | 1.2 / 9.0 | 1.2 / 9.0 | 12 | 7.20 | 0.212 |"
        ), "{md}");
        assert!(
            md.contains("| django | 128 | 100 | not measured: the run's time budget was spent |")
        );
        assert!(
            md.contains("Recommended memory for the API: 128 MB, the cheapest (25 ms;"),
            "{md}"
        );
        assert!(md.contains("The template deploys it: `ApiMemorySize` defaults to 128 MB."));
        let other = markdown(&curve(), &json!(256));
        assert!(other.contains("**The template deploys 256 MB**"), "{other}");
        assert!(md.contains("80% get, 20% merge-update"));
        assert!(md.contains("20 or 100 ms"));
    }

    #[test]
    fn without_a_writable_cgroup_the_report_says_so() {
        let md = markdown(
            &json!({ "unavailable": "no cgroup CPU controller" }),
            &json!(256),
        );
        assert!(md.contains("not measured on this machine (no cgroup CPU controller)"));
        assert!(markdown(&Value::Null, &Value::Null).is_empty());
    }
}
