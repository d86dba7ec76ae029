//! DynamoDB requests per operation: ours counted through the API's handler, the Django
//! backend's by its driver.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use session_store::{DynamoStore, StoreConfig};

use crate::event::api_event;
use crate::figures::Error;
use crate::fixture::{Bench, Fixture};

/// The DynamoDB requests each of our operations makes, counted through the API's handler.
async fn count_ours(f: &Fixture) -> Result<BTreeMap<&'static str, u64>, Error> {
    let store = DynamoStore::new(
        testkit::client(&f.counter),
        StoreConfig {
            table_name: f.table.clone(),
            ..StoreConfig::default()
        },
    )?;
    let app = session_api::App::new(store);
    let t = &f.api_template;
    let call = async |event: Vec<u8>| -> Result<(u64, Value), Error> {
        f.counter.reset();
        let request = lambda_http::request::from_str(&String::from_utf8(event)?)?;
        let response = session_api::handle(&app, request).await;
        let body = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok((f.counter.total(), body))
    };
    let json_type = [("content-type", "application/json")];
    let merge_type = [("content-type", "application/merge-patch+json")];
    let data = json!({ "data": { "cart": ["book"] } });
    let mut ours = BTreeMap::new();
    let (n, body) = call(api_event(t, "POST", "/sessions", Some(&data), &json_type)).await?;
    ours.insert("create", n);
    let key = body["session_key"].as_str().ok_or("no key")?.to_owned();
    let path = format!("/sessions/{key}");
    let mut touch_query: Value = serde_json::from_slice(&api_event(t, "GET", &path, None, &[]))?;
    touch_query["rawQueryString"] = json!("touch=true");
    touch_query["queryStringParameters"] = json!({ "touch": "true" });
    let theme = json!({ "theme": "light" });
    let steps = [
        ("get", api_event(t, "GET", &path, None, &[])),
        (
            "get of an unknown key",
            api_event(
                t,
                "GET",
                &format!("/sessions/{}", "0".repeat(32)),
                None,
                &[],
            ),
        ),
        ("exists", api_event(t, "HEAD", &path, None, &[])),
        (
            "replace",
            api_event(t, "PUT", &path, Some(&data), &json_type),
        ),
        (
            "touch",
            api_event(t, "POST", &format!("{path}/touch"), None, &[]),
        ),
        (
            "get with touch, refresh not due",
            touch_query.to_string().into_bytes(),
        ),
        (
            "merge-update",
            api_event(t, "PATCH", &path, Some(&theme), &merge_type),
        ),
    ];
    for (op, event) in steps {
        ours.insert(op, call(event).await?.0);
    }
    let (n, body) = call(api_event(t, "POST", &format!("{path}/cycle"), None, &[])).await?;
    ours.insert("cycle key", n);
    let cycled = body["session_key"].as_str().ok_or("no cycled key")?;
    let delete = api_event(t, "DELETE", &format!("/sessions/{cycled}"), None, &[]);
    ours.insert("delete", call(delete).await?.0);
    Ok(ours)
}

/// Ours and the Django backend's, by operation.
pub async fn per_operation(b: &Bench, f: &Fixture) -> Result<Value, Error> {
    let ours = count_ours(f).await?;
    let django = super::django::command(b, f, "count", &json!({})).await?;
    let mut table = serde_json::Map::new();
    for (op, n) in &ours {
        table.insert(
            (*op).into(),
            json!({ "ours": n, "django": django.get(*op).cloned().unwrap_or(Value::Null) }),
        );
    }
    Ok(Value::Object(table))
}
