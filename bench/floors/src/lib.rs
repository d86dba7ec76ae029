//! The floors `make bench` sets ours against. Each answers the bench's workload (create,
//! get, merge-update, delete) with the statuses the API gives, so one harness drives
//! all three; neither has any of the API's session logic (keys, expiry, versions, codec,
//! access log). They are built in the same workspace, so on the same crate versions and
//! the API's release profile: the difference to ours is the service's own cost.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Response};

/// The status the API answers a method with in the bench's workload.
pub fn status_for(method: &Method) -> StatusCode {
    match *method {
        Method::POST => StatusCode::CREATED,
        Method::DELETE => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    }
}

/// A new key, made as the API makes it, which the harness puts in the next requests'
/// paths.
pub fn new_key() -> Result<String, Error> {
    let key = session_store::SessionKey::generate().map_err(|e| format!("no key: {e}"))?;
    Ok(key.as_str().to_owned())
}

/// The answer: a create's key in a JSON body, the others' bodies as given.
pub fn answer(status: StatusCode, body: String) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body))?)
}

/// The session key in the request's path, `/sessions/{key}`.
pub fn key_in(path: &str) -> Result<&str, Error> {
    path.strip_prefix("/sessions/")
        .filter(|k| !k.is_empty() && !k.contains('/'))
        .ok_or_else(|| format!("no session key in {path}").into())
}

pub fn created(key: &str) -> String {
    serde_json::json!({ "session_key": key }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floors_answer_the_workload_as_the_api_does() {
        assert_eq!(status_for(&Method::POST), StatusCode::CREATED);
        assert_eq!(status_for(&Method::GET), StatusCode::OK);
        assert_eq!(status_for(&Method::PATCH), StatusCode::OK);
        assert_eq!(status_for(&Method::DELETE), StatusCode::NO_CONTENT);
        let key = new_key().unwrap();
        assert!(session_store::SessionKey::parse(&key).is_ok(), "{key}");
        assert_eq!(key_in(&format!("/sessions/{key}")).unwrap(), key);
        assert!(key_in("/sessions/").is_err());
        assert!(key_in("/sessions/a/touch").is_err());
    }
}
