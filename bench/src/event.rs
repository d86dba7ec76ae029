//! API Gateway events from the committed samples, and the responses the functions post.

use serde_json::{Value, json};

use crate::figures::Error;

/// An API Gateway HTTP API event, from the committed sample with another method, path and body.
pub fn api_event(
    template: &Value,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let text = body.map(Value::to_string);
    api_event_text(template, method, path, text.as_deref(), headers)
}

/// [`api_event`] with the body as the caller sent it, byte for byte.
pub fn api_event_text(
    template: &Value,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut e = template.clone();
    e["routeKey"] = json!("$default");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["routeKey"] = json!("$default");
    if let Some(map) = e["headers"].as_object_mut() {
        map.remove("content-length");
        for (k, v) in headers {
            map.insert((*k).into(), json!(v));
        }
    }
    match body {
        Some(b) => e["body"] = json!(b),
        None => {
            if let Some(o) = e.as_object_mut() {
                o.remove("body");
            }
        }
    }
    e.to_string().into_bytes()
}

/// The request a cold start answers first: a create.
pub fn cold_create(template: &Value) -> Vec<u8> {
    api_event(
        template,
        "POST",
        "/sessions",
        Some(&json!({ "data": { "cart": ["book"], "theme": "dark" } })),
        &[("content-type", "application/json")],
    )
}

/// The status and JSON body of a posted API Gateway response.
pub fn reply(posted: &[u8]) -> Result<(u16, Value), Error> {
    let v: Value = serde_json::from_slice(posted)?;
    let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = v["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_sample_and_change_method_path_and_body() {
        let template = json!({"headers": {"content-length": "9"}, "requestContext": {"http": {}}, "body": "x"});
        let e: Value = serde_json::from_slice(&api_event(
            &template,
            "PATCH",
            "/sessions/k",
            Some(&json!({"a": 1})),
            &[("if-match", "\"1\"")],
        ))
        .unwrap();
        assert_eq!(e["requestContext"]["http"]["method"], "PATCH");
        assert_eq!(e["rawPath"], "/sessions/k");
        assert_eq!(e["body"], "{\"a\":1}");
        assert_eq!(e["headers"], json!({"if-match": "\"1\""}));
        let no_body: Value =
            serde_json::from_slice(&api_event(&template, "GET", "/", None, &[])).unwrap();
        assert!(no_body.get("body").is_none());
    }
}
