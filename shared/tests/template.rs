//! template.yaml and the workspace agree: each function names a binary that exists, and
//! sets exactly the environment variables that binary reads.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;
use session_store::expiry::MAX_IDLE_TIMEOUT;
use session_store::{CleanupConfig, StoreConfig, telemetry};

/// What each function's `main` reads from the template: the store's settings, and the
/// cleanup's for the cleanup; less the variables that hold secrets, which the template
/// must never set, and, for the functions that never sign nor verify data, less every
/// variable about the Django key. The log set-up's variables come from Lambda's logging
/// controls (and `RUST_LOG` from a local shell), so the template sets none of them.
fn variables_read(binary: &str) -> BTreeSet<String> {
    let mut lists = vec![StoreConfig::VARIABLES];
    if binary == "session-cleanup" {
        lists.push(CleanupConfig::VARIABLES);
    }
    let never: &[&str] = if binary == "session-api" {
        StoreConfig::LOCAL_ONLY
    } else {
        StoreConfig::KEY_VARIABLES
    };
    lists
        .concat()
        .into_iter()
        .filter(|v| !never.contains(v))
        .map(String::from)
        .collect()
}

fn variables_in(node: &Value) -> BTreeSet<String> {
    node.get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_function_runs_a_workspace_binary_with_exactly_the_variables_it_reads() {
    let root = testkit::workspace_root();
    let template: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("template.yaml")).unwrap())
            .unwrap();
    let global = variables_in(&template["Globals"]["Function"]);
    let mut binaries = BTreeMap::new();
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap();
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} names no Binary"));
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        assert_eq!(
            resource["Properties"]["CodeUri"].as_str(),
            Some("."),
            "{name}"
        );
        let manifest =
            std::fs::read_to_string(root.join("functions").join(binary).join("Cargo.toml"))
                .unwrap_or_else(|_| panic!("{name}: no crate functions/{binary}"));
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{name}: functions/{binary} builds no binary {binary}"
        );
        let logging = &resource["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{name}");
        assert!(
            !logging["ApplicationLogLevel"].is_null(),
            "{name}: a log level"
        );
        let mut set = global.clone();
        set.extend(variables_in(&resource["Properties"]));
        for variable in telemetry::VARIABLES {
            assert!(!set.contains(*variable), "{name} sets {variable}");
        }
        assert_eq!(set, variables_read(binary), "{name}: variables set vs read");
        let policies = serde_yaml_ng::to_string(&resource["Properties"]["Policies"]).unwrap();
        assert_eq!(
            policies.contains("ssm:GetParameter"),
            binary == "session-api",
            "{name}: only the API may read the Django key"
        );
        binaries.insert(binary.to_owned(), name.to_owned());
    }
    let expected: Vec<&str> = vec!["session-api", "session-auditor", "session-cleanup"];
    assert_eq!(
        binaries.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
}

fn template() -> Value {
    let path = testkit::workspace_root().join("template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether start-up accepts `value` for the variable `name`.
fn start_up_accepts(name: &str, value: &str) -> bool {
    StoreConfig::from_lookup(|n| (n == name).then(|| value.to_owned())).is_ok()
}

#[test]
fn the_template_refuses_the_expiry_settings_that_start_up_would_refuse() {
    let template = template();
    let params = &template["Parameters"];
    let idle = &params["SessionIdleTtlSeconds"];
    let (min, max) = (idle["MinValue"].as_u64(), idle["MaxValue"].as_u64());
    let lifetime = params["SessionMaxLifetimeSeconds"]["AllowedPattern"]
        .as_str()
        .expect("a pattern for the lifetime cap");
    let lifetime = regex_lite::Regex::new(lifetime).unwrap();
    let ten_years = MAX_IDLE_TIMEOUT.as_secs();
    for value in [
        0,
        1,
        59,
        1_209_600,
        99_999_999,
        100_000_000,
        299_999_999,
        ten_years - 1,
        ten_years,
        ten_years + 1,
        315_370_000,
        999_999_999,
        10 * ten_years,
    ] {
        let text = value.to_string();
        let in_bounds = min.is_some_and(|m| value >= m) && max.is_some_and(|m| value <= m);
        assert_eq!(
            in_bounds,
            start_up_accepts("SESSION_IDLE_TTL_SECONDS", &text),
            "SessionIdleTtlSeconds {value}"
        );
        assert_eq!(
            lifetime.is_match(&text),
            start_up_accepts("SESSION_MAX_LIFETIME_SECONDS", &text),
            "SessionMaxLifetimeSeconds {value}"
        );
    }
    assert!(lifetime.is_match(""), "empty means no cap");
    assert!(start_up_accepts("SESSION_MAX_LIFETIME_SECONDS", ""));
}

#[test]
fn the_schedule_sends_the_sample_event_as_its_input() {
    let template = template();
    let schedule =
        &template["Resources"]["SessionCleanupFunction"]["Properties"]["Events"]["Schedule"];
    assert_eq!(schedule["Type"].as_str(), Some("ScheduleV2"));
    let input: serde_json::Value =
        serde_json::from_str(schedule["Properties"]["Input"].as_str().expect("an Input")).unwrap();
    let path = testkit::workspace_root().join("events/schedule-cleanup.json");
    let sample: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(input, sample);
}

#[test]
fn every_alarm_notifies_the_alarm_topic_when_one_is_given() {
    let template = template();
    let mut alarms = 0;
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        alarms += 1;
        for actions in ["AlarmActions", "OKActions"] {
            let condition = &resource["Properties"][actions]["Fn::If"];
            let condition = if condition.is_null() {
                &resource["Properties"][actions]
            } else {
                condition
            };
            assert!(
                format!("{condition:?}").contains("HasAlarmTopic"),
                "{name:?} {actions}: {condition:?}"
            );
        }
    }
    assert!(alarms >= 9, "{alarms} alarms");
}

#[test]
fn the_logs_queries_and_the_dashboard_are_there_and_well_formed() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let queries: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Logs::QueryDefinition"))
        .map(|r| format!("{:?}", r["Properties"]["Name"]))
        .collect();
    for wanted in [
        "errors by route",
        "slowest requests",
        "one session's history by fingerprint",
        "cleanup runs",
    ] {
        assert!(
            queries.iter().any(|q| q.contains(wanted)),
            "no query {wanted:?}: {queries:?}"
        );
    }
    let Value::Tagged(body) =
        &template["Resources"]["SessionDashboard"]["Properties"]["DashboardBody"]
    else {
        panic!("the dashboard body is a !Sub")
    };
    let text = body
        .value
        .as_str()
        .expect("a !Sub of one string")
        .replace("${AWS::Region}", "us-east-1")
        .replace("${SessionHttpApi}", "api");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON after !Sub");
    assert_eq!(dashboard["widgets"].as_array().map(Vec::len), Some(4));
}
