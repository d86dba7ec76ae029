//! What a request asks for: the operation its route and method name, with its query,
//! headers and body checked.

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};
use serde_json::Value;
use session_store::{
    Expiry, ListingPosition, Ownership, Principal, SessionData, SessionHandle, SessionKey,
};

use crate::body::{JSON, MERGE_PATCH, SessionBody, read_json};
use crate::precondition::{Precondition, if_match};
use crate::problem::ApiError;
use crate::route::Route;

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

fn wants_touch(query: Option<&QueryMap>) -> Result<bool, ApiError> {
    match query.and_then(|q| q.first("touch")) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest("touch must be true or false".into())),
    }
}
