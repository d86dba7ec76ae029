//! `--compare BEFORE AFTER`: one change tried at a time, two API builds measured in
//! alternation with the same measurements as the full run.

use serde_json::{Value, json};

use crate::event::cold_create;
use crate::figures::{Error, Stats};
use crate::fixture::{Bench, Link};
use crate::measure::{cold, rotated, warm};

/// Two builds of the API side by side, to try one change (`--compare BEFORE AFTER`,
/// binaries in target/release): cold starts over plain HTTP and over TLS, peak RSS
/// and warm CPU per request, in alternation, with AFTER ÷ BEFORE of each median.
pub async fn run(b: &Bench, before: &str, after: &str) -> Result<Value, Error> {
    let f = b.fixture().await?;
    let create = cold_create(&f.api_template);
    let names = [before, after];
    let links = [Link::Plain, Link::Tls];
    let mut cold: Vec<Vec<cold::Cold>> = (0..2)
        .map(|_| links.iter().map(|_| cold::Cold::default()).collect())
        .collect();
    let mut warm = [warm::Warm::default(), warm::Warm::default()];
    eprintln!("bench: cold starts of {before} and {after}");
    for run in 0..b.runs * 4 {
        for j in rotated(run, 2) {
            for (k, link) in links.iter().enumerate() {
                cold::one(b, &f, names[j], *link, &create, &mut cold[j][k]).await?;
            }
        }
    }
    eprintln!("bench: warm runs of {before} and {after}");
    for run in 0..b.runs {
        for j in rotated(run, 2) {
            warm::one(b, &f, names[j], None, &mut warm[j]).await?;
        }
    }
    let mut out = serde_json::Map::new();
    let mut medians = Vec::new();
    for ((name, cold), warm) in names.iter().zip(cold).zip(warm) {
        let [plain, tls] = <[cold::Cold; 2]>::try_from(cold).map_err(|_| "two links")?;
        let figures = [
            ("cold_ms_without_emulator", Stats::of(plain.own)),
            ("cold_tls_ms_without_emulator", Stats::of(tls.own)),
            ("peak_rss_mib", Stats::of(plain.rss)),
            ("cpu_us_per_request", Stats::of(warm.cpu)),
            ("wall_less_emulator_us_per_request", Stats::of(warm.own)),
        ];
        medians.push(
            figures
                .iter()
                .map(|(k, s)| (*k, s.median))
                .collect::<Vec<_>>(),
        );
        let figures: serde_json::Map<String, Value> = figures
            .into_iter()
            .map(|(k, s)| (k.into(), s.json()))
            .collect();
        out.insert((*name).into(), Value::Object(figures));
    }
    let ratios: serde_json::Map<String, Value> = medians[0]
        .iter()
        .zip(&medians[1])
        .map(|((k, b), (_, a))| ((*k).into(), json!(a / b)))
        .collect();
    out.insert("after_over_before".into(), Value::Object(ratios));
    Ok(Value::Object(out))
}
