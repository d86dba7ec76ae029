//! template.yaml and the workspace agree: each function names a binary that exists, and
//! sets exactly the environment variables that binary reads.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;
use session_store::{CleanupConfig, StoreConfig, telemetry};

/// What each function's `main` reads: the logging set-up, the store's settings, and the
/// cleanup's for the cleanup; less the variables that hold secrets, which the template
/// must never set.
fn variables_read(binary: &str) -> BTreeSet<String> {
    let mut lists = vec![telemetry::VARIABLES, StoreConfig::VARIABLES];
    if binary == "session-cleanup" {
        lists.push(CleanupConfig::VARIABLES);
    }
    lists
        .concat()
        .into_iter()
        .filter(|v| !StoreConfig::LOCAL_ONLY.contains(v))
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
        let mut set = global.clone();
        set.extend(variables_in(&resource["Properties"]));
        assert_eq!(set, variables_read(binary), "{name}: variables set vs read");
        binaries.insert(binary.to_owned(), name.to_owned());
    }
    let expected: Vec<&str> = vec!["session-api", "session-auditor", "session-cleanup"];
    assert_eq!(
        binaries.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
}
