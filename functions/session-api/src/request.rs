//! What a request asks for: its route, its operation, and every check of its input,
//! all before any DynamoDB call, so that bad input of any kind is a 4xx and leaves the
//! table untouched.

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderMap, Method, header};
use lambda_http::{Body, Request, RequestExt};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use session_store::{
    EntityTag, Expiry, ListingPosition, Ownership, Principal, SessionData, SessionHandle,
    SessionKey,
};

use crate::{ApiError, JSON, gateway_context};

const MERGE_PATCH: &str = "application/merge-patch+json";

/// The routes of the API, found in the path after any stage prefix.
pub(crate) enum Route {
    Collection,
    Session(String),
    Cycle(String),
    Touch(String),
    /// `/principals/{principal}/sessions`, the principal still percent-encoded.
    PrincipalSessions(String),
    /// `/principals/{principal}/sessions/{id}`.
    PrincipalSession(String, String),
    Unknown,
}

impl Route {
    pub(crate) fn of(request: &Request) -> Self {
        // lambda_http's raw path leaves out REST API stages, but an HTTP API's raw path
        // still starts with a named stage.
        let path = request.raw_http_path();
        let path = match gateway_context(request).1 {
            Some(stage) if stage != "$default" => path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(stage))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .unwrap_or(path),
            _ => path,
        };
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        match segments.as_slice() {
            ["sessions"] => Self::Collection,
            ["sessions", key] => Self::Session((*key).to_owned()),
            ["sessions", key, "cycle"] => Self::Cycle((*key).to_owned()),
            ["sessions", key, "touch"] => Self::Touch((*key).to_owned()),
            ["principals", p, "sessions"] => Self::PrincipalSessions((*p).to_owned()),
            ["principals", p, "sessions", id] => {
                Self::PrincipalSession((*p).to_owned(), (*id).to_owned())
            }
            _ => Self::Unknown,
        }
    }

    pub(crate) fn template(&self) -> &'static str {
        match self {
            Self::Collection => "/sessions",
            Self::Session(_) => "/sessions/{key}",
            Self::Cycle(_) => "/sessions/{key}/cycle",
            Self::Touch(_) => "/sessions/{key}/touch",
            Self::PrincipalSessions(_) => "/principals/{principal}/sessions",
            Self::PrincipalSession(..) => "/principals/{principal}/sessions/{id}",
            Self::Unknown => "unknown",
        }
    }
}

/// What a request asks for, parsed and checked in full before any DynamoDB call, so
/// that bad input of any kind is a 4xx and leaves the table untouched.
#[derive(Debug, PartialEq)]
pub enum Operation {
    Create {
        data: SessionData,
        expiry: Expiry,
        principal: Option<Principal>,
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
        owner: Ownership,
        expected: Option<Precondition>,
    },
    /// `patch` is always a JSON object.
    Patch {
        key: SessionKey,
        patch: Value,
        expected: Option<Precondition>,
    },
    Delete {
        key: SessionKey,
        expected: Option<Precondition>,
    },
    Cycle {
        key: SessionKey,
        expected: Option<Precondition>,
    },
    Touch {
        key: SessionKey,
        expected: Option<Precondition>,
    },
    /// A page of a principal's live sessions.
    List {
        principal: Principal,
        limit: usize,
        after: Option<ListingPosition>,
    },
    /// One session of a principal, by its handle.
    Revoke {
        principal: Principal,
        id: SessionHandle,
    },
    /// Every session of a principal but the caller's own.
    RevokeAll {
        principal: Principal,
        except: Option<SessionKey>,
    },
}

impl Operation {
    /// Parses a request; a larger body than `max_body_bytes` is refused unread.
    pub fn parse(request: &Request, max_body_bytes: usize) -> Result<Self, ApiError> {
        Self::of_route(request, &Route::of(request), max_body_bytes)
    }

    pub(crate) fn of_route(
        request: &Request,
        route: &Route,
        max_body_bytes: usize,
    ) -> Result<Self, ApiError> {
        let method = request.method();
        let (raw, allowed) = match route {
            Route::Unknown => return Err(ApiError::NoRoute),
            Route::Collection => ("", "POST"),
            Route::Session(raw) => (raw.as_str(), "GET, HEAD, PUT, PATCH, DELETE"),
            Route::Cycle(raw) | Route::Touch(raw) => (raw.as_str(), "POST"),
            Route::PrincipalSessions(p) => (p.as_str(), "GET, DELETE"),
            Route::PrincipalSession(p, _) => (p.as_str(), "DELETE"),
        };
        if !allowed.split(", ").any(|m| m == method.as_str()) {
            return Err(ApiError::MethodNotAllowed(allowed));
        }
        match route {
            Route::Collection => return Self::create(request, max_body_bytes),
            Route::PrincipalSessions(_) if method == Method::DELETE => {
                let except = request
                    .query_string_parameters_ref()
                    .and_then(|q| q.first("except"))
                    .map(SessionKey::parse)
                    .transpose()?;
                return Ok(Self::RevokeAll {
                    principal: principal_in_path(raw)?,
                    except,
                });
            }
            Route::PrincipalSessions(_) => {
                return Self::list(
                    principal_in_path(raw)?,
                    request.query_string_parameters_ref(),
                );
            }
            Route::PrincipalSession(_, id) => {
                return Ok(Self::Revoke {
                    principal: principal_in_path(raw)?,
                    id: SessionHandle::parse(id).ok_or_else(|| {
                        ApiError::BadRequest(
                            "a session id is the 16 hex digits a listing shows".into(),
                        )
                    })?,
                });
            }
            _ => {}
        }
        let key = SessionKey::parse(raw)?;
        let expected = || if_match(request.headers());
        Ok(match (route, method) {
            (Route::Cycle(_), _) => Self::Cycle {
                key,
                expected: expected()?,
            },
            (Route::Touch(_), _) => Self::Touch {
                key,
                expected: expected()?,
            },
            (_, &Method::GET) => Self::Read {
                key,
                touch: wants_touch(request.query_string_parameters_ref())?,
            },
            (_, &Method::HEAD) => Self::Exists(key),
            (_, &Method::DELETE) => Self::Delete {
                key,
                expected: expected()?,
            },
            (_, &Method::PUT) => Self::replace(request, key, max_body_bytes)?,
            _ => Self::patch(request, key, max_body_bytes)?,
        })
    }

    fn create(request: &Request, max_body_bytes: usize) -> Result<Self, ApiError> {
        let body = match read_json(request, JSON, max_body_bytes)? {
            Some(v) => SessionBody::parse(v)?,
            None => SessionBody::default(),
        };
        let principal = match body.principal {
            Ownership::Set(p) => Some(p),
            Ownership::Keep | Ownership::Clear => None,
        };
        Ok(Self::Create {
            data: body.data.unwrap_or_default(),
            expiry: body.expiry,
            principal,
        })
    }

    fn list(principal: Principal, query: Option<&QueryMap>) -> Result<Self, ApiError> {
        let limit = match query.and_then(|q| q.first("limit")) {
            None => DEFAULT_LIMIT,
            Some(n) => n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let after = query
            .and_then(|q| q.first("cursor"))
            .map(|c| {
                ListingPosition::from_cursor(c).ok_or_else(|| {
                    ApiError::BadRequest("cursor must be one that a listing gave".into())
                })
            })
            .transpose()?;
        Ok(Self::List {
            principal,
            limit,
            after,
        })
    }

    /// The body is checked first: a malformed request is a 400 whatever its tag.
    fn replace(
        request: &Request,
        key: SessionKey,
        max_body_bytes: usize,
    ) -> Result<Self, ApiError> {
        let body = read_json(request, JSON, max_body_bytes)?
            .ok_or_else(|| ApiError::BadRequest("a body with data is required".into()))?;
        let body = SessionBody::parse(body)?;
        let data = body
            .data
            .ok_or_else(|| ApiError::BadRequest("data is required".into()))?;
        Ok(Self::Replace {
            key,
            data,
            expiry: body.expiry,
            owner: body.principal,
            expected: if_match(request.headers())?,
        })
    }

    fn patch(request: &Request, key: SessionKey, max_body_bytes: usize) -> Result<Self, ApiError> {
        let patch = read_json(request, MERGE_PATCH, max_body_bytes)?
            .ok_or_else(|| ApiError::BadRequest("a merge patch body is required".into()))?;
        if !patch.is_object() {
            return Err(ApiError::BadRequest(
                "a merge patch of session data must be a JSON object".into(),
            ));
        }
        Ok(Self::Patch {
            key,
            patch,
            expected: if_match(request.headers())?,
        })
    }

    /// The session the operation names, for the access log.
    pub(crate) fn key(&self) -> Option<&SessionKey> {
        match self {
            Self::Create { .. }
            | Self::List { .. }
            | Self::Revoke { .. }
            | Self::RevokeAll { .. } => None,
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

/// A listing's page size when none is asked for, and the largest one.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// The principal of a principal's route, percent-decoded.
fn principal_in_path(raw: &str) -> Result<Principal, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("the principal is not valid UTF-8".into()))?;
    Principal::parse(&decoded).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The body of POST and PUT: `{"data": {...}, "ttl_seconds": n, "principal": "..."}`,
/// each optional. A `principal` of `null` clears it (PUT); leaving it out keeps it.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    #[serde(default, deserialize_with = "object")]
    data: Option<SessionData>,
    #[serde(default, rename = "ttl_seconds", deserialize_with = "ttl_seconds")]
    expiry: Expiry,
    #[serde(default, deserialize_with = "ownership")]
    principal: Ownership,
}

fn ownership<'de, D: Deserializer<'de>>(d: D) -> Result<Ownership, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Ownership::Clear),
        Value::String(s) => Principal::parse(&s)
            .map(Ownership::Set)
            .map_err(|e| D::Error::custom(e.to_string())),
        _ => Err(D::Error::custom("principal must be a string or null")),
    }
}

impl SessionBody {
    fn parse(body: Value) -> Result<Self, ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
        Self::deserialize(body).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionData>, D::Error> {
    match Value::deserialize(d)? {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(D::Error::custom("data must be a JSON object")),
    }
}

/// A whole number of seconds, also when written as `60.0` or `6e1`: JSON Schema counts
/// those as integers, and so do the clients generated from the OpenAPI document.
fn ttl_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Expiry, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(Expiry::Default);
    }
    let secs = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        })
        .ok_or_else(|| D::Error::custom("ttl_seconds must be a whole number of seconds"))?;
    Expiry::idle_seconds(secs).map_err(|e| D::Error::custom(e.to_string()))
}

fn wants_touch(query: Option<&QueryMap>) -> Result<bool, ApiError> {
    match query.and_then(|q| q.first("touch")) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest("touch must be true or false".into())),
    }
}

/// What `If-Match` demands (RFC 9110, section 13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: that the session exists.
    Exists,
    /// That the session is in one of these states: the strong tags of the list that
    /// this API could have issued. Empty when no member can match (weak tags, foreign
    /// tags): the precondition then fails whatever the session.
    OneOf(Vec<EntityTag>),
}

/// `If-Match`, every line of it: a list of entity tags matches when any member matches
/// by strong comparison, so a weak member never matches but a strong one beside it may.
/// Several lines count as one list, as API Gateway's payload 2.0 joins them with commas.
/// A malformed member, `*` inside a list, or a line that is not text fails the
/// precondition (412) rather than the request's syntax. Tags are the version as a
/// canonical decimal integer, with the Django codec followed by `.` and 12 hex digits of
/// the data's hash: a tag such as `"01"` or `"+1"` is well formed but never matches.
fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ApiError> {
    let mut lines = Vec::new();
    for line in headers.get_all(header::IF_MATCH) {
        lines.push(line.to_str().map_err(|_| ApiError::PreconditionFailed)?);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let field = lines.join(", ");
    if field.trim() == "*" {
        return Ok(Some(Precondition::Exists));
    }
    let tags = entity_tags(&field).ok_or(ApiError::PreconditionFailed)?;
    let mut ours: Vec<EntityTag> = tags
        .into_iter()
        .filter(|(weak, _)| !weak)
        .filter_map(|(_, opaque)| EntityTag::parse(opaque))
        .collect();
    ours.sort();
    ours.dedup();
    Ok(Some(Precondition::OneOf(ours)))
}

/// The members of a list of entity tags, `(weak, opaque tag)` each, or `None` when the
/// list is malformed. Empty list elements (`"1", , "2"`) are allowed, as RFC 9110
/// section 5.6.1 asks of a recipient; a tag may itself hold a comma.
fn entity_tags(field: &str) -> Option<Vec<(bool, &str)>> {
    let mut tags = Vec::new();
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return (!tags.is_empty()).then_some(tags);
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = quoted.strip_prefix('"')?;
        let end = inner.find('"')?;
        let opaque = &inner[..end];
        // etagc: any visible character but DQUOTE, and obs-text.
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        tags.push((weak, opaque));
        rest = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
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
