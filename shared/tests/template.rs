//! template.yaml and the workspace agree: each function names a binary that exists, and
//! sets exactly the environment variables that binary reads.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;
use session_store::expiry::MAX_IDLE_TIMEOUT;
use session_store::{AccessLogConfig, CleanupConfig, PrincipalRoutes, StoreConfig, telemetry};

/// What each function's `main` reads from the template: the store's settings, the
/// cleanup's for the cleanup and the access log's for the API; less the variables that hold secrets, which the template
/// must never set, and, for the functions that never sign nor verify data, less every
/// variable about the Django key. The log set-up's variables come from Lambda's logging
/// controls (and `RUST_LOG` from a local shell), so the template sets none of them.
fn variables_read(binary: &str) -> BTreeSet<String> {
    let mut lists = vec![StoreConfig::VARIABLES];
    if binary == "session-cleanup" {
        lists.push(CleanupConfig::VARIABLES);
    }
    if binary == "session-api" {
        lists.push(AccessLogConfig::VARIABLES);
        lists.push(PrincipalRoutes::VARIABLES);
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
        let role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            .as_str()
            .map(str::to_owned)
            .or_else(|| match intrinsic(&resource["Properties"]["Role"]) {
                Some((f, arg)) if f == "GetAtt" => arg
                    .as_str()
                    .and_then(|a| a.split('.').next())
                    .map(str::to_owned),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: a role of its own"));
        let policies = serde_yaml_ng::to_string(&template["Resources"][role.as_str()]).unwrap();
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
fn reads_are_strongly_consistent_unless_the_deployer_chooses_otherwise() {
    let template = template();
    let param = &template["Parameters"]["SessionConsistentRead"];
    let allowed: Vec<&str> = param["AllowedValues"]
        .as_sequence()
        .expect("allowed values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["true", "false"]);
    for value in &allowed {
        let config = StoreConfig::from_lookup(|n| {
            (n == "SESSION_CONSISTENT_READ").then(|| (*value).to_owned())
        })
        .expect("start-up accepts every allowed value");
        assert_eq!(config.consistent_read, *value == "true", "{value}");
    }
    assert_eq!(param["Default"].as_str(), Some("true"));
    assert!(StoreConfig::default().consistent_read);
    let variable =
        &template["Globals"]["Function"]["Environment"]["Variables"]["SESSION_CONSISTENT_READ"];
    let (function, name) = intrinsic(variable).expect("a reference to the parameter");
    assert_eq!(
        (function.as_str(), name.as_str()),
        ("Ref", Some("SessionConsistentRead"))
    );
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
    for door in ["HttpApi", "FunctionUrl"] {
        let deployed = Deployed::new(&template, &[("FrontDoor", door)]);
        let body = &deployed.resources()["SessionDashboard"]["Properties"]["DashboardBody"];
        let text = deployed.sub(body);
        let dashboard: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{door}: {e}: {text}"));
        assert_eq!(dashboard["widgets"].as_array().map(Vec::len), Some(4));
        let wanted = if door == "HttpApi" {
            "AWS/ApiGateway"
        } else {
            "UrlRequestCount"
        };
        assert!(text.contains(wanted), "{door}: {text}");
    }
}

#[test]
fn each_front_door_deploys_its_own_resources_and_nothing_refers_to_the_other() {
    let template = template();
    let types = |deployed: &Deployed| -> Vec<String> {
        deployed
            .resources()
            .values()
            .filter_map(|r| r["Type"].as_str().map(String::from))
            .collect()
    };
    let public = |deployed: &Deployed| -> usize {
        deployed
            .resources()
            .values()
            .filter(|r| r["Properties"]["Principal"].as_str() == Some("*"))
            .count()
    };
    for (door, auth) in [
        ("HttpApi", "AWS_IAM"),
        ("HttpApi", "NONE"),
        ("FunctionUrl", "AWS_IAM"),
        ("FunctionUrl", "NONE"),
    ] {
        let deployed = Deployed::new(
            &template,
            &[("FrontDoor", door), ("ApiAuthorization", auth)],
        );
        let at = format!("{door}, {auth}");
        deployed.check_references(&at);
        let types = types(&deployed);
        let gateway = types
            .iter()
            .filter(|t| t.starts_with("AWS::ApiGatewayV2::"))
            .count();
        let urls: Vec<Value> = deployed
            .resources()
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::Url"))
            .cloned()
            .collect();
        assert!(!deployed.outputs()["SessionApiUrl"].is_null(), "{at}");
        let alarms = ["SessionApi5xxAlarm", "SessionApiUrl5xxAlarm"];
        let present = alarms
            .iter()
            .filter(|a| deployed.resources().contains_key(**a))
            .count();
        assert_eq!(present, 1, "{at}: one 5xx alarm");
        if door == "HttpApi" {
            assert_eq!(gateway, 4, "{at}: {types:?}");
            assert!(urls.is_empty(), "{at}");
            assert_eq!(public(&deployed), 0, "{at}");
        } else {
            assert_eq!(gateway, 0, "{at}: {types:?}");
            assert_eq!(urls.len(), 1, "{at}");
            assert_eq!(
                urls[0]["Properties"]["AuthType"].as_str(),
                Some(auth),
                "{at}"
            );
            // Only a URL open to anyone needs the function's policy to let everyone in.
            assert_eq!(
                public(&deployed),
                if auth == "NONE" { 2 } else { 0 },
                "{at}"
            );
        }
    }
}

/// The template as CloudFormation deploys it for some parameter values: conditions
/// evaluated, `!If` resolved, resources without a true condition left out.
struct Deployed<'a> {
    template: &'a Value,
    params: BTreeMap<String, String>,
}

/// What each function's role may do: the AWS calls its code makes (the API: GetItem,
/// PutItem, UpdateItem, DeleteItem, and TransactWriteItems for a cycle, which IAM checks
/// as the PutItem and DeleteItem inside it, and SSM's GetParameter for the Django key;
/// the cleanup: Scan, DeleteItem and UpdateItem, and GetItem, PutItem and DeleteItem for
/// its checkpoint and lease), what its event source mappings do with the role (the
/// auditor's and the upkeep's stream reads, and SendMessage to each one's on-failure
/// queue), and writing to its own log group. The one list the template's roles are held to.
const ROLES: &[(&str, &str, &[&str])] = &[
    (
        "SessionApiFunction",
        "SessionApiLogs",
        &[
            "dynamodb:BatchGetItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "ssm:GetParameter",
        ],
    ),
    (
        "SessionCleanupFunction",
        "SessionCleanupLogs",
        &[
            "dynamodb:BatchGetItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeStream",
            "dynamodb:GetItem",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "sqs:SendMessage",
        ],
    ),
    (
        "SessionAuditorFunction",
        "SessionAuditorLogs",
        &[
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "sqs:SendMessage",
        ],
    ),
];

/// A list or a single string, as IAM takes `Action` and `Resource`.
fn one_or_many(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}

#[test]
fn each_role_writes_only_its_own_log_group_and_calls_only_what_its_function_does() {
    let template = template();
    let django = Deployed::new(
        &template,
        &[
            ("SessionCodec", "django"),
            ("DjangoSecretKeyParameterName", "/sessions/django-secret"),
        ],
    );
    let json = Deployed::new(&template, &[]);
    let log_groups: Vec<&str> = ROLES.iter().map(|(_, logs, _)| *logs).collect();
    for (deployed, codec) in [(&django, "django"), (&json, "json")] {
        let resources = deployed.resources();
        for (function, own_logs, wanted) in ROLES {
            let f = &resources[*function]["Properties"];
            assert!(
                f["Policies"].is_null(),
                "{function}: SAM would add a role's policies"
            );
            let (getatt, target) = intrinsic(&f["Role"]).expect("a Role");
            assert_eq!(getatt, "GetAtt");
            let role_name = target.as_str().unwrap().trim_end_matches(".Arn").to_owned();
            let role = &resources[&role_name];
            assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{function}");
            assert!(
                role["Properties"]["ManagedPolicyArns"].is_null(),
                "{function}"
            );
            let trust = serde_yaml_ng::to_string(&role["Properties"]["AssumeRolePolicyDocument"]);
            assert!(trust.unwrap().contains("lambda.amazonaws.com"));
            let mut actions = BTreeSet::new();
            for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
                for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                    let these: Vec<String> = one_or_many(&statement["Action"])
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect();
                    let resource = one_or_many(&statement["Resource"]);
                    if these.iter().any(|a| a.starts_with("logs:")) {
                        let named: Vec<String> = resource
                            .iter()
                            .map(|r| serde_yaml_ng::to_string(r).unwrap())
                            .collect();
                        assert_eq!(named.len(), 1, "{function}: one log group");
                        assert!(
                            named[0].contains(&format!("{own_logs}.Arn")),
                            "{function} writes to {named:?}, not {own_logs}"
                        );
                    }
                    for other in log_groups.iter().filter(|g| *g != own_logs) {
                        assert!(
                            !serde_yaml_ng::to_string(statement).unwrap().contains(other),
                            "{function} may touch {other}"
                        );
                    }
                    actions.extend(these);
                }
            }
            let mut wanted: BTreeSet<String> = wanted.iter().map(|a| a.to_string()).collect();
            if codec == "json" {
                wanted.remove("ssm:GetParameter");
            }
            assert_eq!(actions, wanted, "{function} with the {codec} codec");
        }
    }
    for group in ["SessionAuditorLogs", "SessionApiAccessLogs"] {
        let resource = &template["Resources"][group];
        assert_eq!(
            resource["DeletionPolicy"].as_str(),
            Some("Retain"),
            "{group}"
        );
        assert_eq!(
            resource["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{group}"
        );
    }
}

#[test]
fn a_stuck_auditor_raises_an_alarm_and_the_failure_queue_says_what_to_do_within_a_day() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let watched: BTreeSet<String> = resources
        .values()
        .filter(|r| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && r["Properties"]["MetricName"].as_str() == Some("IteratorAge")
        })
        .map(|age| {
            let dimension = &age["Properties"]["Dimensions"][0];
            assert_eq!(dimension["Name"].as_str(), Some("FunctionName"));
            let (f, target) = intrinsic(&dimension["Value"]).unwrap();
            assert_eq!(f, "Ref");
            target.as_str().unwrap().to_owned()
        })
        .collect();
    // Every function a stream mapping feeds: the auditor and the upkeep.
    let fed: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::EventSourceMapping"))
        .map(|m| {
            let (_, name) = intrinsic(&m["Properties"]["FunctionName"]).unwrap();
            name.as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(watched, fed);
    assert!(fed.contains("SessionAuditorFunction") && fed.contains("SessionCleanupFunction"));
    let mapping = &template["Resources"]["SessionAuditorStream"]["Properties"];
    assert_eq!(mapping["MaximumRecordAgeInSeconds"].as_u64(), Some(86_400));
    let queue_alarm = template["Resources"]["AuditFailureAlarm"]["Properties"]["AlarmDescription"]
        .as_str()
        .unwrap();
    assert!(queue_alarm.contains("24 hours") && queue_alarm.contains("GetRecords"));
}

#[test]
fn the_upkeep_is_fed_only_backend_writes_writes_onto_tombstones_and_revocations_watermarks() {
    let template = template();
    let mapping = &template["Resources"]["SessionUpkeepStream"]["Properties"];
    let (f, function) = intrinsic(&mapping["FunctionName"]).unwrap();
    assert_eq!(
        (f.as_str(), function.as_str()),
        ("Ref", Some("SessionCleanupFunction"))
    );
    let filters = mapping["FilterCriteria"]["Filters"].as_sequence().unwrap();
    assert_eq!(filters.len(), 4);
    let pattern = |i: usize| -> serde_json::Value {
        serde_json::from_str(filters[i]["Pattern"].as_str().unwrap()).expect("a JSON pattern")
    };
    // A write onto a tombstone: the marker in both images (the API's own removal has it
    // only in the new one, TTL's removal of a tombstone only in the old one).
    let marked = serde_json::json!({"N": [{"exists": true}]});
    let onto_tombstone = pattern(1);
    for side in ["OldImage", "NewImage"] {
        let image = &onto_tombstone["dynamodb"][side];
        assert_eq!(image[session_store::item::REMOVED_AT], marked, "{side}");
    }
    // A later write to an item stamped as the backend's, unless it leaves a tombstone.
    let later = pattern(2);
    for side in ["OldImage", "NewImage"] {
        let image = &later["dynamodb"][side];
        assert_eq!(image[session_store::item::STAMPED_AT], marked, "{side}");
    }
    assert_eq!(
        later["dynamodb"]["NewImage"][session_store::item::REMOVED_AT],
        serde_json::json!({"N": [{"exists": false}]})
    );
    let first = pattern(0);
    let image = &first["dynamodb"]["NewImage"];
    assert_eq!(
        image["expires_at"]["N"],
        serde_json::json!([{"exists": false}])
    );
    // The key must be in NewImage (a REMOVE has none), and be no internal item.
    assert_eq!(
        image["session_key"]["S"],
        serde_json::json!([{"anything-but": {"prefix": "#"}}])
    );
    // A watermark written or moved: its key, never its removal.
    let watermark = pattern(3);
    assert_eq!(
        watermark["dynamodb"]["Keys"]["session_key"]["S"],
        serde_json::json!([{"prefix": session_store::item::WATERMARK_PREFIX}])
    );
    assert_eq!(
        watermark["eventName"],
        serde_json::json!(["INSERT", "MODIFY"])
    );
    assert!(session_store::item::CHECKPOINT_KEY.starts_with('#'));
    assert!(session_store::item::LEASE_KEY.starts_with('#'));
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(!mapping["DestinationConfig"]["OnFailure"]["Destination"].is_null());
    // No reserved concurrency: the stream never waits behind a Scan (the lease orders those).
    let cleanup = &template["Resources"]["SessionCleanupFunction"]["Properties"];
    assert!(cleanup["ReservedConcurrentExecutions"].is_null());
}

#[test]
fn the_scan_runs_on_no_schedule_unless_the_deployer_sets_one() {
    let template = template();
    let schedule = |params: &[(&str, &str)]| {
        let deployed = Deployed::new(&template, params);
        let p = deployed.resources()["SessionCleanupFunction"]["Properties"]["Events"]["Schedule"]
            ["Properties"]
            .clone();
        (
            deployed.text(&p["State"]),
            deployed.text(&p["ScheduleExpression"]),
        )
    };
    assert_eq!(schedule(&[]).0, "DISABLED");
    assert_eq!(
        schedule(&[("CleanupSchedule", "rate(30 days)")]),
        ("ENABLED".to_owned(), "rate(30 days)".to_owned())
    );
}

impl Deployed<'_> {
    /// The `AssertDescription` of every assertion of the template's `Rules` that these
    /// parameters break: CloudFormation refuses the stack with them. (cfn-lint checks the
    /// Rules' syntax but does not evaluate them.)
    fn refusals(&self) -> Vec<String> {
        let mut refused = Vec::new();
        for (name, rule) in self.template["Rules"].as_mapping().expect("Rules") {
            let applies = match rule.get("RuleCondition") {
                Some(c) => self.truth(c),
                None => true,
            };
            if !applies {
                continue;
            }
            for assertion in rule["Assertions"].as_sequence().expect("Assertions") {
                if !self.truth(&assertion["Assert"]) {
                    let why = assertion["AssertDescription"].as_str().unwrap_or("");
                    refused.push(format!("{}: {why}", name.as_str().unwrap_or("?")));
                }
            }
        }
        refused
    }
}

#[test]
fn the_template_refuses_a_public_django_api_public_principal_routes_and_a_public_function_url_without_a_brake()
 {
    let template = template();
    let refused = |params: &[(&str, &str)]| Deployed::new(&template, params).refusals();
    let django = [
        ("SessionCodec", "django"),
        ("DjangoSecretKeyParameterName", "/sessions/django-secret"),
    ];
    let closed = ("PrincipalRoutes", "disabled");
    // Allowed: the defaults, each front door with AWS_IAM, the json codec with NONE on the
    // HTTP API without the principal routes, django with AWS_IAM, and a public function
    // URL with a brake and without the principal routes.
    for params in [
        vec![],
        vec![("FrontDoor", "HttpApi"), ("ApiAuthorization", "AWS_IAM")],
        vec![
            ("FrontDoor", "FunctionUrl"),
            ("ApiAuthorization", "AWS_IAM"),
        ],
        vec![("ApiAuthorization", "NONE"), closed],
        vec![closed],
        [&django[..], &[("FrontDoor", "FunctionUrl")]].concat(),
        django.to_vec(),
        vec![
            ("FrontDoor", "FunctionUrl"),
            ("ApiAuthorization", "NONE"),
            ("ApiReservedConcurrency", "10"),
            closed,
        ],
    ] {
        assert_eq!(refused(&params), Vec::<String>::new(), "{params:?}");
    }
    // Refused, each with the reason that names it.
    for (params, rule) in [
        (
            [&django[..], &[("ApiAuthorization", "NONE"), closed]].concat(),
            "NoPublicApiWithTheDjangoCodec",
        ),
        (
            vec![("ApiAuthorization", "NONE")],
            "NoPublicPrincipalRoutes",
        ),
        (
            vec![("ApiAuthorization", "NONE"), ("PrincipalRoutes", "enabled")],
            "NoPublicPrincipalRoutes",
        ),
        (
            [
                &django[..],
                &[
                    ("ApiAuthorization", "NONE"),
                    ("FrontDoor", "FunctionUrl"),
                    ("ApiReservedConcurrency", "10"),
                    closed,
                ],
            ]
            .concat(),
            "NoPublicApiWithTheDjangoCodec",
        ),
        (
            vec![
                ("FrontDoor", "FunctionUrl"),
                ("ApiAuthorization", "NONE"),
                closed,
            ],
            "NoPublicFunctionUrlWithoutABrake",
        ),
        (
            vec![("SessionCodec", "django")],
            "DjangoCodecNeedsItsSecret",
        ),
    ] {
        let why = refused(&params);
        assert_eq!(why.len(), 1, "{params:?}: {why:?}");
        assert!(why[0].starts_with(rule), "{params:?}: {why:?}");
    }
}

/// An intrinsic function in short (`!Ref x`) or long (`Ref: x`, `Fn::If: ...`) form.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::"))
                .then(|| (k.trim_start_matches("Fn::").to_owned(), v))
        }
        _ => None,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'a> Deployed<'a> {
    fn new(template: &'a Value, overrides: &[(&str, &str)]) -> Self {
        let mut params = BTreeMap::new();
        for (name, p) in template["Parameters"].as_mapping().unwrap() {
            let default = scalar_text(&p["Default"]).unwrap_or_default();
            params.insert(name.as_str().unwrap().to_owned(), default);
        }
        for (name, value) in overrides {
            assert!(params.contains_key(*name), "no parameter {name}");
            params.insert((*name).to_owned(), (*value).to_owned());
        }
        Self { template, params }
    }

    fn condition(&self, name: &str) -> bool {
        let node = &self.template["Conditions"][name];
        assert!(!node.is_null(), "no condition {name}");
        self.truth(node)
    }

    fn truth(&self, v: &Value) -> bool {
        let (f, args) = intrinsic(v).unwrap_or_else(|| panic!("not a condition: {v:?}"));
        let list = || args.as_sequence().unwrap().iter();
        match f.as_str() {
            "Equals" => {
                let side: Vec<String> = list().map(|a| self.text(a)).collect();
                side[0] == side[1]
            }
            "Not" => !self.truth(&args[0]),
            "And" => list().all(|a| self.truth(a)),
            "Or" => list().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().unwrap()),
            other => panic!("condition function {other}"),
        }
    }

    /// A value used as text: a literal, or a parameter's value.
    fn text(&self, v: &Value) -> String {
        match intrinsic(v) {
            Some((f, name)) if f == "Ref" => {
                let name = name.as_str().unwrap();
                self.params
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_owned())
            }
            _ => scalar_text(v).unwrap_or_else(|| panic!("not text: {v:?}")),
        }
    }

    /// `v` with every `!If` replaced by its chosen branch (`AWS::NoValue` drops the key).
    fn resolve(&self, v: &Value) -> Value {
        if let Some((f, args)) = intrinsic(v)
            && f == "If"
        {
            let args = args.as_sequence().unwrap();
            let pick = if self.condition(args[0].as_str().unwrap()) {
                &args[1]
            } else {
                &args[2]
            };
            return self.resolve(pick);
        }
        match v {
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|i| self.resolve(i))
                    .filter(|i| !is_no_value(i))
                    .collect(),
            ),
            Value::Mapping(m) => Value::Mapping(
                m.iter()
                    .map(|(k, v)| (k.clone(), self.resolve(v)))
                    .filter(|(_, v)| !is_no_value(v))
                    .collect(),
            ),
            Value::Tagged(t) => {
                let mut t = t.clone();
                t.value = self.resolve(&t.value);
                Value::Tagged(t)
            }
            other => other.clone(),
        }
    }

    fn present(&self, section: &str) -> BTreeMap<String, Value> {
        self.template[section]
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Condition"].as_str().is_none_or(|c| self.condition(c)))
            .map(|(k, r)| (k.as_str().unwrap().to_owned(), self.resolve(r)))
            .collect()
    }

    fn resources(&self) -> BTreeMap<String, Value> {
        self.present("Resources")
    }

    fn outputs(&self) -> BTreeMap<String, Value> {
        self.present("Outputs")
    }

    /// A resolved `!Sub`'s text, with `us-east-1` for the region and logical names for
    /// resources.
    fn sub(&self, v: &Value) -> String {
        let (f, args) = intrinsic(v).expect("a !Sub");
        assert_eq!(f, "Sub");
        let (text, vars) = match args {
            Value::Sequence(pair) => (pair[0].as_str().unwrap(), pair[1].as_mapping().cloned()),
            other => (other.as_str().unwrap(), None),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('}').unwrap() + at;
            let name = &rest[at + 2..end];
            let var = vars.as_ref().and_then(|m| m.get(name));
            out.push_str(&match var {
                Some(v) if intrinsic(v).is_some_and(|(f, _)| f == "Sub") => self.sub(v),
                Some(v) => self.text(v),
                None if name == "AWS::Region" => "us-east-1".to_owned(),
                None => self
                    .params
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_owned()),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Every resource or parameter a deployed resource or output names exists.
    fn check_references(&self, at: &str) {
        let resources = self.resources();
        let mut named = BTreeSet::new();
        for v in resources.values().chain(self.outputs().values()) {
            collect_names(v, &mut named);
        }
        for name in named {
            assert!(
                name.starts_with("AWS::")
                    || self.params.contains_key(&name)
                    || resources.contains_key(&name),
                "{at}: {name} is named but not deployed"
            );
        }
    }
}

fn is_no_value(v: &Value) -> bool {
    intrinsic(v).is_some_and(|(f, n)| f == "Ref" && n.as_str() == Some("AWS::NoValue"))
}

/// Logical names in `Ref`, `GetAtt` and `Sub` (less a `Sub`'s own variables).
fn collect_names(v: &Value, into: &mut BTreeSet<String>) {
    if let Some((f, args)) = intrinsic(v) {
        match f.as_str() {
            "Ref" => {
                into.insert(args.as_str().unwrap().to_owned());
                return;
            }
            "GetAtt" => {
                let target = match args {
                    Value::Sequence(parts) => parts[0].as_str().unwrap().to_owned(),
                    other => other
                        .as_str()
                        .unwrap()
                        .split('.')
                        .next()
                        .unwrap()
                        .to_owned(),
                };
                into.insert(target);
                return;
            }
            "Sub" => {
                let (text, vars) = match args {
                    Value::Sequence(pair) => (pair[0].as_str().unwrap(), pair[1].as_mapping()),
                    other => (other.as_str().unwrap(), None),
                };
                for piece in text.split("${").skip(1) {
                    let name = piece.split('}').next().unwrap().split('.').next().unwrap();
                    if !name.starts_with('!') && !vars.is_some_and(|m| m.contains_key(name)) {
                        into.insert(name.to_owned());
                    }
                }
                if let Some(vars) = vars {
                    vars.values().for_each(|v| collect_names(v, into));
                }
                return;
            }
            _ => {}
        }
    }
    match v {
        Value::Sequence(items) => items.iter().for_each(|i| collect_names(i, into)),
        Value::Mapping(m) => m.values().for_each(|i| collect_names(i, into)),
        Value::Tagged(t) => collect_names(&t.value, into),
        _ => {}
    }
}

#[test]
fn the_principal_index_is_sparse_keys_only_and_named_as_the_store_queries_it() {
    use session_store::item::{PRINCIPAL, PRINCIPAL_INDEX, PRINCIPAL_POSITION};
    let template = template();
    let table = &template["Resources"]["SessionsTable"]["Properties"];
    let indexes = table["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 1);
    let index = &indexes[0];
    assert_eq!(index["IndexName"].as_str(), Some(PRINCIPAL_INDEX));
    let keys: Vec<(&str, &str)> = index["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(PRINCIPAL, "HASH"), (PRINCIPAL_POSITION, "RANGE")]);
    assert_eq!(
        index["Projection"]["ProjectionType"].as_str(),
        Some("KEYS_ONLY")
    );
    let role = serde_yaml_ng::to_string(&template["Resources"]["SessionApiRole"]).unwrap();
    assert!(
        role.contains(&format!("/index/{PRINCIPAL_INDEX}")),
        "{role}"
    );
}

#[test]
fn the_table_is_a_global_table_with_every_setting_on_every_replica_or_another_stacks_replica() {
    let template = template();
    let single = Deployed::new(&template, &[]);
    let table = single.resources()["SessionsTable"]["Properties"].clone();
    // On a global table each region's functions know their region, a session's home.
    let region = |d: &Deployed| {
        let v = d.resolve(
            &template["Globals"]["Function"]["Environment"]["Variables"]["SESSION_REGION"],
        );
        serde_yaml_ng::to_string(&v).unwrap()
    };
    assert_eq!(region(&single).trim(), "''");
    for (mode, extra) in [
        ("global", vec![("ReplicaRegion", "eu-west-1")]),
        (
            "global",
            vec![
                ("ReplicaRegion", "eu-west-1"),
                ("SecondReplicaRegion", "ap-northeast-1"),
            ],
        ),
        (
            "replica",
            vec![
                ("ExistingTableName", "sessions-global"),
                ("ExistingTableStreamLabel", "2026-12-06T00:00:00.000"),
            ],
        ),
    ] {
        let mut params = vec![("TableMode", mode)];
        params.extend(extra.iter().copied());
        let deployed = Deployed::new(&template, &params);
        let at = format!("{params:?}");
        deployed.check_references(&at);
        assert!(region(&deployed).contains("AWS::Region"), "{at}");
        let resources = deployed.resources();
        assert!(!resources.contains_key("SessionsTable"), "{at}");
        let fed_by = |name: &str| {
            serde_yaml_ng::to_string(&resources[name]["Properties"]["EventSourceArn"]).unwrap()
        };
        if mode == "replica" {
            assert!(
                !resources.contains_key("SessionsGlobalTable"),
                "{at}: no table of its own"
            );
            assert!(
                fed_by("SessionUpkeepStream").contains("ExistingTableStreamLabel"),
                "{at}"
            );
            // Every replica's stream holds every region's writes: one region audits.
            assert!(!resources.contains_key("SessionAuditorStream"), "{at}");
            params.push(("ReplicaAudits", "true"));
            let auditing = Deployed::new(&template, &params);
            auditing.check_references(&at);
            let mapping = &auditing.resources()["SessionAuditorStream"]["Properties"];
            let arn = serde_yaml_ng::to_string(&mapping["EventSourceArn"]).unwrap();
            assert!(arn.contains("ExistingTableStreamLabel"), "{at}");
            continue;
        }
        let global = &resources["SessionsGlobalTable"]["Properties"];
        // The same table: keys, index, TTL, stream, billing, encryption.
        for setting in [
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "TimeToLiveSpecification",
            "StreamSpecification",
            "BillingMode",
        ] {
            assert_eq!(global[setting], table[setting], "{at}: {setting}");
        }
        assert_eq!(
            global["SSESpecification"]["SSEEnabled"].as_bool(),
            Some(true)
        );
        let replicas = global["Replicas"].as_sequence().unwrap();
        assert_eq!(
            replicas.len(),
            params.len(),
            "{at}: this region and each one named"
        );
        for replica in replicas {
            assert_eq!(
                replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
                Some(true),
                "{at}"
            );
            assert!(!replica["DeletionProtectionEnabled"].is_null(), "{at}");
        }
        assert_eq!(
            deployed.resources()["SessionsGlobalTable"]["DeletionPolicy"].as_str(),
            Some("Retain")
        );
        for mapping in ["SessionAuditorStream", "SessionUpkeepStream"] {
            assert!(fed_by(mapping).contains("SessionsGlobalTable"), "{at}");
        }
    }
    // A global table needs a second region, and a replica stack the table it uses.
    let rules = serde_yaml_ng::to_string(&template["Rules"]).unwrap();
    for needed in [
        "ReplicaRegion",
        "ExistingTableName",
        "ExistingTableStreamLabel",
    ] {
        assert!(rules.contains(needed), "{needed}");
    }
}

/// Whether the cleanup role lets `action` reach the item under `key`: some statement
/// names the action and its `dynamodb:LeadingKeys` condition, if any, admits the key.
fn cleanup_may(template: &Value, action: &str, key: &str) -> bool {
    let role = &template["Resources"]["SessionCleanupRole"]["Properties"]["Policies"];
    let like = |pattern: &str| match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    };
    role.as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_sequence().unwrap())
        .filter(|s| {
            one_or_many(&s["Action"])
                .iter()
                .any(|a| a.as_str() == Some(action))
        })
        .any(|s| {
            let condition = &s["Condition"];
            if condition.is_null() {
                return true;
            }
            let operators = condition.as_mapping().unwrap();
            operators.iter().all(|(operator, keys)| {
                let patterns = one_or_many(&keys["dynamodb:LeadingKeys"]);
                let patterns: Vec<&str> = patterns.iter().map(|p| p.as_str().unwrap()).collect();
                match operator.as_str().unwrap() {
                    "ForAllValues:StringNotLike" => !patterns.iter().any(|p| like(p)),
                    "ForAllValues:StringEquals" => patterns.contains(&key),
                    other => panic!("an operator this check does not know: {other}"),
                }
            })
        })
}

#[test]
fn the_cleanup_role_writes_sessions_and_its_own_items_never_a_watermark_or_a_registry() {
    use session_store::item::{CHECKPOINT_KEY, LEASE_KEY, REGISTRY_PREFIX, WATERMARK_PREFIX};
    let template = template();
    let session = "0123456789abcdefghijklmnopqrstuv";
    let principals = [
        format!("{WATERMARK_PREFIX}alice"),
        format!("{REGISTRY_PREFIX}alice"),
    ];
    for action in ["dynamodb:UpdateItem", "dynamodb:DeleteItem"] {
        assert!(
            cleanup_may(&template, action, session),
            "{action} on a session"
        );
        for own in [CHECKPOINT_KEY, LEASE_KEY] {
            assert!(cleanup_may(&template, action, own), "{action} on {own}");
        }
        for key in &principals {
            assert!(!cleanup_may(&template, action, key), "{action} on {key}");
        }
    }
    for own in [CHECKPOINT_KEY, LEASE_KEY] {
        assert!(
            cleanup_may(&template, "dynamodb:PutItem", own),
            "PutItem on {own}"
        );
    }
    for key in principals.iter().map(String::as_str).chain([session]) {
        assert!(
            !cleanup_may(&template, "dynamodb:PutItem", key),
            "PutItem on {key}"
        );
    }
    // The Scan has no key to scope it by: a statement of its own, with no write in it.
    let statements =
        serde_yaml_ng::to_string(&template["Resources"]["SessionCleanupRole"]).unwrap();
    let scan: Vec<&Value> = template["Resources"]["SessionCleanupRole"]["Properties"]["Policies"]
        [0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| {
            one_or_many(&s["Action"])
                .iter()
                .any(|a| a.as_str() == Some("dynamodb:Scan"))
        })
        .collect();
    assert_eq!(scan.len(), 1, "{statements}");
    for action in one_or_many(&scan[0]["Action"]) {
        let action = action.as_str().unwrap();
        assert!(
            ["dynamodb:Scan", "dynamodb:GetItem"].contains(&action),
            "{action} beside Scan"
        );
    }
}
