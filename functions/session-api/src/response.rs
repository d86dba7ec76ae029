//! Successful answers; failures are `ApiError::into_response`.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;
use session_store::Session;

use crate::JSON;

pub(crate) fn session_response(status: StatusCode, session: &Session) -> Response<Body> {
    let time = |t: Option<session_store::Timestamp>| t.and_then(|t| t.to_rfc3339());
    let body = json!({
        "session_key": session.key.as_str(),
        "data": session.data,
        "created_at": time(session.meta.created),
        "expires_at": time(session.meta.expires_at),
        "version": session.meta.version.0,
    });
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", session.meta.version)) {
        headers.insert(header::ETAG, etag);
    }
    response
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
