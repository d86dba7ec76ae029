//! Successful answers; failures are `ApiError::into_response`.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use session_store::{Session, SessionData, Timestamp};

use crate::JSON;

/// A session as the API shows it, times in RFC 3339 UTC.
#[derive(Serialize)]
struct SessionDocument<'a> {
    session_key: &'a str,
    data: &'a SessionData,
    created_at: Option<String>,
    expires_at: Option<String>,
    version: u64,
}

pub(crate) fn session_response(status: StatusCode, session: &Session) -> Response<Body> {
    let time = |t: Option<Timestamp>| t.and_then(Timestamp::to_rfc3339);
    let document = SessionDocument {
        session_key: session.key.as_str(),
        data: &session.data,
        created_at: time(session.meta.created),
        expires_at: time(session.meta.expires_at),
        version: session.meta.version.0,
    };
    // A document of strings, numbers and JSON values always serialises.
    let body = serde_json::to_string(&document).unwrap_or_default();
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", session.meta.tag())) {
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
