//! Request bodies: their size, media type and encoding, and the JSON document of POST
//! and PUT, checked in full before any DynamoDB call.

use lambda_http::http::header;
use lambda_http::{Body, Request};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use session_store::{Expiry, Ownership, Principal, SessionData};

use crate::problem::ApiError;

/// The media type of POST and PUT bodies and of every answer but a problem.
pub(crate) const JSON: &str = "application/json";
pub(crate) const MERGE_PATCH: &str = "application/merge-patch+json";

/// The body of POST and PUT: `{"data": {...}, "ttl_seconds": n, "principal": "..."}`,
/// each optional. A `principal` of `null` clears it (PUT); leaving it out keeps it.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionBody {
    #[serde(default, deserialize_with = "object")]
    pub(crate) data: Option<SessionData>,
    #[serde(default, rename = "ttl_seconds", deserialize_with = "ttl_seconds")]
    pub(crate) expiry: Expiry,
    #[serde(default, deserialize_with = "ownership")]
    pub(crate) principal: Ownership,
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
    pub(crate) fn parse(body: Value) -> Result<Self, ApiError> {
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

/// The request body as JSON, `None` when empty; checks size, media type and encoding.
pub(crate) fn read_json(
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
