//! Session CRUD over HTTP. `handle` is a plain function of (app, request) that tests call
//! directly; `main` only wires it to the Lambda runtime.

mod problem;

use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use session_store::{Expected, Expiry, Session, SessionData, SessionKey, SessionStore, Version};
use tracing::{error, info};

pub use problem::ApiError;

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
/// Time kept back from the invocation's deadline to send the answer: DynamoDB calls end
/// this long before Lambda would cut the function off.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// What every request shares: the store, built once per container.
#[derive(Debug)]
pub struct App {
    store: SessionStore,
    /// Larger bodies are refused unread; twice the data limit leaves room for
    /// whitespace and the envelope around `data`.
    max_body_bytes: usize,
}

impl App {
    pub fn new(store: SessionStore) -> Self {
        let max_body_bytes = store.config().max_session_bytes.saturating_mul(2);
        Self {
            store,
            max_body_bytes,
        }
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }
}

/// The entry point for the Lambda runtime: never fails, every error is a response.
pub async fn handler(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    Ok(handle(app, request).await)
}

/// Answers one request and writes its one access-log line.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let started = Instant::now();
    let route = Route::of(&request);
    let mut session = None;
    let mut response = match dispatch(app, &request, &route, &mut session).await {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                error!(error = %e, "request failed");
            }
            e.into_response()
        }
    };
    if request.method() == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    let (apigw_request_id, stage) = gateway_context(&request);
    info!(
        method = %request.method(),
        route = route.template(),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        request_id = request.lambda_context_ref().map(|c| c.request_id.as_str()),
        apigw_request_id,
        stage,
        session = session.as_deref(),
        "request"
    );
    response
}

/// The routes of the API, found in the path after any stage prefix.
enum Route {
    Collection,
    Session(String),
    Cycle(String),
    Touch(String),
    Unknown,
}

impl Route {
    fn of(request: &Request) -> Self {
        let path = request.uri().path();
        let path = match gateway_context(request).1 {
            Some(stage) if stage != "$default" => {
                let prefix = format!("/{stage}");
                match path.strip_prefix(&prefix) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                    _ => path,
                }
            }
            _ => path,
        };
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        match segments.as_slice() {
            ["sessions"] => Self::Collection,
            ["sessions", key] => Self::Session((*key).to_owned()),
            ["sessions", key, "cycle"] => Self::Cycle((*key).to_owned()),
            ["sessions", key, "touch"] => Self::Touch((*key).to_owned()),
            _ => Self::Unknown,
        }
    }

    fn template(&self) -> &'static str {
        match self {
            Self::Collection => "/sessions",
            Self::Session(_) => "/sessions/{key}",
            Self::Cycle(_) => "/sessions/{key}/cycle",
            Self::Touch(_) => "/sessions/{key}/touch",
            Self::Unknown => "unknown",
        }
    }
}

fn gateway_context(request: &Request) -> (Option<&str>, Option<&str>) {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        Some(RequestContext::ApiGatewayV1(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        _ => (None, None),
    }
}

/// What a request asks for, parsed and checked in full before any DynamoDB call, so
/// that bad input of any kind is a 4xx and leaves the table untouched.
#[derive(Debug, PartialEq)]
pub enum Operation {
    Create {
        data: SessionData,
        expiry: Expiry,
    },
    Read {
        key: SessionKey,
        touch: bool,
    },
    Exists(SessionKey),
    Replace {
        key: SessionKey,
        data: SessionData,
        expiry: Expiry,
        expected: Option<Expected>,
    },
    /// `patch` is always a JSON object.
    Patch {
        key: SessionKey,
        patch: Value,
        expected: Option<Expected>,
    },
    Delete {
        key: SessionKey,
        expected: Option<Expected>,
    },
    Cycle {
        key: SessionKey,
        expected: Option<Expected>,
    },
    Touch {
        key: SessionKey,
        expected: Option<Expected>,
    },
}

impl Operation {
    /// Parses a request; a larger body than `max_body_bytes` is refused unread.
    pub fn parse(request: &Request, max_body_bytes: usize) -> Result<Self, ApiError> {
        Self::of_route(request, &Route::of(request), max_body_bytes)
    }

    fn of_route(request: &Request, route: &Route, max_body_bytes: usize) -> Result<Self, ApiError> {
        let method = request.method();
        let raw = match route {
            Route::Unknown => return Err(ApiError::NoRoute),
            Route::Collection => {
                if method != Method::POST {
                    return Err(ApiError::MethodNotAllowed("POST"));
                }
                let body = match read_json(request, JSON, max_body_bytes)? {
                    Some(v) => SessionBody::parse(v)?,
                    None => SessionBody::default(),
                };
                return Ok(Self::Create {
                    data: body.data.unwrap_or_default(),
                    expiry: body.expiry,
                });
            }
            Route::Session(raw) | Route::Cycle(raw) | Route::Touch(raw) => raw,
        };
        let (allowed, method_ok) = match route {
            Route::Session(_) => (
                "GET, HEAD, PUT, PATCH, DELETE",
                [
                    Method::GET,
                    Method::HEAD,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ]
                .contains(method),
            ),
            _ => ("POST", method == Method::POST),
        };
        if !method_ok {
            return Err(ApiError::MethodNotAllowed(allowed));
        }
        let key = SessionKey::parse(raw)?;
        Ok(match (route, method.as_str()) {
            (Route::Cycle(_), _) => Self::Cycle {
                key,
                expected: if_match(request.headers())?,
            },
            (Route::Touch(_), _) => Self::Touch {
                key,
                expected: if_match(request.headers())?,
            },
            (_, "GET") => Self::Read {
                key,
                touch: wants_touch(request.query_string_parameters_ref())?,
            },
            (_, "HEAD") => Self::Exists(key),
            (_, "DELETE") => Self::Delete {
                key,
                expected: if_match(request.headers())?,
            },
            (_, "PUT") => {
                // The body is checked first: a malformed request is a 400 whatever its tag.
                let body = read_json(request, JSON, max_body_bytes)?
                    .ok_or_else(|| ApiError::BadRequest("a body with data is required".into()))?;
                let body = SessionBody::parse(body)?;
                let data = body
                    .data
                    .ok_or_else(|| ApiError::BadRequest("data is required".into()))?;
                let expected = if_match(request.headers())?;
                Self::Replace {
                    key,
                    data,
                    expiry: body.expiry,
                    expected,
                }
            }
            _ => {
                let patch = read_json(request, MERGE_PATCH, max_body_bytes)?
                    .ok_or_else(|| ApiError::BadRequest("a merge patch body is required".into()))?;
                if !patch.is_object() {
                    return Err(ApiError::BadRequest(
                        "a merge patch of session data must be a JSON object".into(),
                    ));
                }
                Self::Patch {
                    key,
                    patch,
                    expected: if_match(request.headers())?,
                }
            }
        })
    }

    /// The session the operation names, for the access log.
    fn key(&self) -> Option<&SessionKey> {
        match self {
            Self::Create { .. } => None,
            Self::Read { key, .. }
            | Self::Exists(key)
            | Self::Replace { key, .. }
            | Self::Patch { key, .. }
            | Self::Delete { key, .. }
            | Self::Cycle { key, .. }
            | Self::Touch { key, .. } => Some(key),
        }
    }
}

/// RFC 7396: a merge patch applied to session data, which stays an object because
/// the patch is one.
pub fn merge_patch(data: &mut SessionData, patch: &Value) {
    let mut doc = Value::Object(std::mem::take(data));
    json_patch::merge(&mut doc, patch);
    if let Value::Object(merged) = doc {
        *data = merged;
    }
}

async fn dispatch(
    app: &App,
    request: &Request,
    route: &Route,
    session: &mut Option<String>,
) -> Result<Response<Body>, ApiError> {
    let operation = Operation::of_route(request, route, app.max_body_bytes)?;
    *session = operation.key().map(|k| k.fingerprint(12));
    let bounded = answer_by(request).map(|deadline| app.store.until(deadline));
    let store = bounded.as_ref().unwrap_or(&app.store);
    let answer = match operation {
        Operation::Create { data, expiry } => {
            let created = store.create(data, expiry).await?;
            *session = Some(created.key.fingerprint(12));
            let location = format!("{}/{}", request.uri().path(), created.key.as_str());
            let mut response = session_response(StatusCode::CREATED, &created);
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(response);
        }
        Operation::Cycle { key, expected } => {
            let cycled = store.cycle(&key, expected).await?;
            *session = Some(cycled.key.fingerprint(12));
            cycled
        }
        Operation::Touch { key, expected } => store.touch(&key, expected).await?,
        Operation::Read { key, touch: true } => store.load_and_touch(&key).await?,
        Operation::Read { key, touch: false } => store.load(&key).await?,
        Operation::Exists(key) => {
            if store.exists(&key).await? {
                return Ok(empty(StatusCode::OK));
            }
            return Err(session_store::StoreError::NotFound.into());
        }
        Operation::Delete { key, expected } => {
            store.delete(&key, expected).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        Operation::Replace {
            key,
            data,
            expiry,
            expected,
        } => store.replace(&key, data, expiry, expected).await?,
        Operation::Patch {
            key,
            patch,
            expected,
        } => {
            store
                .update(&key, expected, |data| {
                    merge_patch(data, &patch);
                    Ok(())
                })
                .await?
        }
    };
    Ok(session_response(StatusCode::OK, &answer))
}

/// The body of POST and PUT: `{"data": {...}, "ttl_seconds": n}`.
#[derive(Default)]
struct SessionBody {
    data: Option<SessionData>,
    expiry: Expiry,
}

impl SessionBody {
    fn parse(body: Value) -> Result<Self, ApiError> {
        let Value::Object(mut fields) = body else {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        };
        if let Some(unknown) = fields.keys().find(|k| *k != "data" && *k != "ttl_seconds") {
            return Err(ApiError::BadRequest(format!(
                "unknown field {unknown:?}; expected data and ttl_seconds"
            )));
        }
        let data = match fields.remove("data") {
            None => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => return Err(ApiError::BadRequest("data must be a JSON object".into())),
        };
        let expiry = match fields.remove("ttl_seconds") {
            None | Some(Value::Null) => Expiry::Default,
            Some(v) => Expiry::idle_seconds(whole_number(&v).ok_or_else(|| {
                ApiError::BadRequest("ttl_seconds must be a whole number of seconds".into())
            })?)?,
        };
        Ok(Self { data, expiry })
    }
}

/// A non-negative integer, also when written as `60.0` or `6e1`: JSON Schema counts
/// those as integers, and so do the clients generated from the OpenAPI document.
fn whole_number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

fn wants_touch(query: Option<&QueryMap>) -> Result<bool, ApiError> {
    match query.and_then(|q| q.first("touch")) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest("touch must be true or false".into())),
    }
}

/// What `If-Match` demands (RFC 9110, section 13.1.1): `*` that the session exists, an
/// entity tag that it is at that version. Every `If-Match` line counts; a list, a weak
/// tag, or a tag this API never issues (versions are canonical decimal integers: no
/// sign, no leading zero) cannot match any session, so the precondition fails rather
/// than the request's syntax.
fn if_match(headers: &HeaderMap) -> Result<Option<Expected>, ApiError> {
    let mut lines = headers.get_all(header::IF_MATCH).iter();
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err(ApiError::PreconditionFailed);
    }
    let tag = first
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)?
        .trim();
    if tag == "*" {
        return Ok(Some(Expected::Exists));
    }
    tag.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .and_then(canonical_version)
        .map(|v| Some(Expected::Version(v)))
        .ok_or(ApiError::PreconditionFailed)
}

/// A version as the `ETag` writes it: decimal digits, `0` or without a leading zero.
fn canonical_version(digits: &str) -> Option<Version> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical
        .then(|| digits.parse().ok().map(Version))
        .flatten()
}

/// The instant by which DynamoDB calls must be over for the answer to reach the caller:
/// the invocation's deadline less [`ANSWER_MARGIN`]. `None` outside Lambda (no deadline).
fn answer_by(request: &Request) -> Option<Instant> {
    let context = request.lambda_context_ref().filter(|c| c.deadline > 0)?;
    let left = context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left.saturating_sub(ANSWER_MARGIN))
}

/// The request body as JSON, `None` when empty; checks size, media type and encoding.
fn read_json(
    request: &Request,
    media_type: &'static str,
    limit: usize,
) -> Result<Option<Value>, ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => return Ok(None),
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(ApiError::BadRequest("unreadable body".into())),
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > limit {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let charset_ok = parts.all(|p| match p.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if !essence.eq_ignore_ascii_case(media_type) || !charset_ok {
        return Err(ApiError::UnsupportedMediaType(media_type));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest("the body is not valid UTF-8".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

fn session_response(status: StatusCode, session: &Session) -> Response<Body> {
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

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
