//! One handler per route: the store call an operation asks for, and its answer.

use std::pin::Pin;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::Value;
use session_store::{
    Expected, Expiry, ListingPosition, Ownership, Principal, Principals, SessionData,
    SessionHandle, SessionKey, SessionStore, StoreError,
};

use crate::precondition::Precondition;
use crate::problem::ApiError;
use crate::request::merge_patch;
use crate::response::{empty, listing_response, revocation_response, session_response};

/// POST `/sessions`. Also gives the new key, which the access log names.
pub(crate) async fn create<S: SessionStore>(
    store: &S,
    collection: &str,
    data: SessionData,
    expiry: Expiry,
    principal: Option<Principal>,
) -> Result<(Response<Body>, SessionKey), ApiError> {
    let created = store.create_owned(data, expiry, principal).await?;
    let location = format!("{collection}/{}", created.key.as_str());
    let mut response = session_response(StatusCode::CREATED, &created);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok((response, created.key))
}

/// GET `/sessions/{key}`, sliding its expiry when `touch` is asked for.
pub(crate) async fn read<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    touch: bool,
) -> Result<Response<Body>, ApiError> {
    let session = if touch {
        store.load_and_touch(key).await?
    } else {
        store.load(key).await?
    };
    Ok(session_response(StatusCode::OK, &session))
}

/// HEAD `/sessions/{key}`: the status alone.
pub(crate) async fn exists<S: SessionStore>(
    store: &S,
    key: &SessionKey,
) -> Result<Response<Body>, ApiError> {
    if store.exists(key).await? {
        return Ok(empty(StatusCode::OK));
    }
    Err(StoreError::NotFound.into())
}

/// PUT `/sessions/{key}`.
pub(crate) async fn replace<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    data: SessionData,
    expiry: Expiry,
    owner: Ownership,
    expected: Option<Precondition>,
) -> Result<Response<Body>, ApiError> {
    let replaced = on_condition(store, key, expected, |x| {
        Box::pin(store.replace_owned(key, data.clone(), expiry, owner.clone(), x))
    })
    .await?;
    Ok(session_response(StatusCode::OK, &replaced))
}

/// PATCH `/sessions/{key}`: a merge patch of the session's data.
pub(crate) async fn patch<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    patch: &Value,
    expected: Option<Precondition>,
) -> Result<Response<Body>, ApiError> {
    let patched = on_condition(store, key, expected, |x| {
        Box::pin(store.update(key, x, |data| {
            merge_patch(data, patch);
            Ok(())
        }))
    })
    .await?;
    Ok(session_response(StatusCode::OK, &patched))
}

/// DELETE `/sessions/{key}`.
pub(crate) async fn delete<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    expected: Option<Precondition>,
) -> Result<Response<Body>, ApiError> {
    on_condition(store, key, expected, |x| Box::pin(store.delete(key, x))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// POST `/sessions/{key}/cycle`. Also gives the new key, which the access log names
/// from then on.
pub(crate) async fn cycle<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    expected: Option<Precondition>,
) -> Result<(Response<Body>, SessionKey), ApiError> {
    let cycled = on_condition(store, key, expected, |x| Box::pin(store.cycle(key, x))).await?;
    Ok((session_response(StatusCode::OK, &cycled), cycled.key))
}

/// POST `/sessions/{key}/touch`.
pub(crate) async fn touch<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    expected: Option<Precondition>,
) -> Result<Response<Body>, ApiError> {
    let touched = on_condition(store, key, expected, |x| Box::pin(store.touch(key, x))).await?;
    Ok(session_response(StatusCode::OK, &touched))
}

/// GET `/principals/{principal}/sessions`: one page of them.
pub(crate) async fn list<S: Principals>(
    store: &S,
    principal: &Principal,
    limit: usize,
    after: Option<ListingPosition>,
) -> Result<Response<Body>, ApiError> {
    let page = store.list(principal, limit, after).await?;
    Ok(listing_response(principal, &page))
}

/// DELETE `/principals/{principal}/sessions/{id}`.
pub(crate) async fn revoke<S: Principals>(
    store: &S,
    principal: &Principal,
    id: &SessionHandle,
) -> Result<Response<Body>, ApiError> {
    store.revoke(principal, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// DELETE `/principals/{principal}/sessions`. The one route where running out of time
/// is no 503: the work done stands, and the same call continues it under the same
/// watermark.
pub(crate) async fn revoke_all<S: Principals>(
    store: &S,
    principal: &Principal,
    except: Option<&SessionKey>,
) -> Result<Response<Body>, ApiError> {
    let done = store.revoke_all(principal, except).await?;
    Ok(revocation_response(&done))
}

/// A store call under way.
type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Tries of a write whose `If-Match` lists several tags, when the session moves from
/// one listed state to another between the read and the write.
const LIST_ATTEMPTS: usize = 3;

/// Runs `write` under the request's `If-Match`. A single tag (or `*`) goes to the store
/// as the write's own demand. A list of several tags is true when the session is in any
/// of those states: the current tag is read, and the write demands exactly that one, so
/// it succeeds only if the session is still in a listed state when written.
async fn on_condition<'a, S: SessionStore, T>(
    store: &S,
    key: &SessionKey,
    precondition: Option<Precondition>,
    write: impl Fn(Option<Expected>) -> Pending<'a, T>,
) -> Result<T, StoreError> {
    let listed = match precondition {
        None => return write(None).await,
        Some(Precondition::Exists) => return write(Some(Expected::Exists)).await,
        Some(Precondition::OneOf(tags)) => tags,
    };
    match listed.as_slice() {
        [] => return Err(StoreError::VersionConflict),
        [only] => return write(Some(Expected::Tag(*only))).await,
        _ => {}
    }
    for _ in 0..LIST_ATTEMPTS {
        let current = match store.load(key).await {
            Err(StoreError::NotFound) => return Err(StoreError::VersionConflict),
            other => other?.meta.tag(),
        };
        if !listed.contains(&current) {
            return Err(StoreError::VersionConflict);
        }
        match write(Some(Expected::Tag(current))).await {
            Err(StoreError::VersionConflict) => continue,
            done => return done,
        }
    }
    Err(StoreError::Contention)
}
