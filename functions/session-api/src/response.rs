//! Successful answers; failures are `ApiError::into_response`.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use session_store::{Principal, PrincipalPage, Revocation, Session, SessionData, Timestamp};

use crate::body::JSON;

/// A session as the API shows it, times in RFC 3339 UTC.
#[derive(Serialize)]
struct SessionDocument<'a> {
    session_key: &'a str,
    data: &'a SessionData,
    created_at: Option<String>,
    expires_at: Option<String>,
    version: u64,
    principal: Option<&'a str>,
}

/// A page of a principal's sessions as the API shows it.
#[derive(Serialize)]
struct ListingDocument<'a> {
    principal: &'a str,
    sessions: Vec<ListedDocument<'a>>,
    next: Option<&'a str>,
}

#[derive(Serialize)]
struct ListedDocument<'a> {
    id: &'a str,
    created_at: Option<String>,
    expires_at: Option<String>,
}

pub(crate) fn listing_response(principal: &Principal, page: &PrincipalPage) -> Response<Body> {
    let document = ListingDocument {
        principal: principal.as_str(),
        sessions: page
            .sessions
            .iter()
            .map(|l| ListedDocument {
                id: l.id.as_str(),
                created_at: time(l.created),
                expires_at: time(l.expires_at),
            })
            .collect(),
        next: page.next.as_deref(),
    };
    json_response(
        StatusCode::OK,
        serde_json::to_string(&document).unwrap_or_default(),
    )
}

/// 200 when every session is settled, 202 when the deadline came first.
pub(crate) fn revocation_response(done: &Revocation) -> Response<Body> {
    let status = if done.complete {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = serde_json::json!({"revoked": done.revoked, "complete": done.complete});
    json_response(status, body.to_string())
}

fn time(t: Option<Timestamp>) -> Option<String> {
    t.and_then(Timestamp::to_rfc3339)
}

pub(crate) fn session_response(status: StatusCode, session: &Session) -> Response<Body> {
    let document = SessionDocument {
        session_key: session.key.as_str(),
        data: &session.data,
        created_at: time(session.meta.created),
        expires_at: time(session.meta.expires_at),
        version: session.meta.version.0,
        principal: session.principal.as_ref().map(Principal::as_str),
    };
    // A document of strings, numbers and JSON values always serialises.
    let body = serde_json::to_string(&document).unwrap_or_default();
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", session.meta.tag())) {
        headers.insert(header::ETAG, etag);
    }
    response
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
