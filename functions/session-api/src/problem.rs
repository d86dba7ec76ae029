//! Every failure of the API, and its one mapping to an RFC 9457 problem document.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use session_store::{InvalidKey, StoreError};

/// Seconds a client should wait before retrying when DynamoDB is throttling or down.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such resource")]
    NoRoute,
    #[error("method not allowed; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("the body must be sent as {0}")]
    UnsupportedMediaType(&'static str),
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("If-Match does not match the session's current version")]
    PreconditionFailed,
}

impl From<InvalidKey> for ApiError {
    fn from(e: InvalidKey) -> Self {
        Self::Store(StoreError::InvalidKey(e))
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Store(e) => match e {
                StoreError::NotFound => StatusCode::NOT_FOUND,
                StoreError::VersionConflict => StatusCode::PRECONDITION_FAILED,
                StoreError::InvalidKey(_) | StoreError::InvalidData(_) => StatusCode::BAD_REQUEST,
                StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                // The session is there but its data cannot be read: the caller resolves
                // it by replacing the data whole (PUT) or deleting the session.
                StoreError::DataOverCap { .. } => StatusCode::CONFLICT,
                // RFC 9110, 15.5.20: this region cannot answer for the session's writes.
                StoreError::Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
                // Both clear up by themselves: the client should retry shortly.
                StoreError::Unavailable(_) | StoreError::Contention => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                StoreError::Rejected { .. } | StoreError::Other(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        }
    }

    /// What the client is told: specific about its own input, silent about our internals.
    fn detail(&self) -> String {
        match self {
            Self::Store(StoreError::Unavailable(_)) => {
                "the session table is unavailable or throttled; retry later".into()
            }
            Self::Store(StoreError::Rejected { .. } | StoreError::Other(_)) => {
                "an internal error occurred".into()
            }
            Self::Store(StoreError::VersionConflict) => Self::PreconditionFailed.to_string(),
            Self::Store(StoreError::DataOverCap { limit }) => format!(
                "the session's stored data inflates past {limit} bytes \
                 (SESSION_MAX_DECOMPRESSED_BYTES), so it cannot be read, merged into, touched \
                 or cycled; replace its data with PUT or delete it"
            ),
            Self::Store(StoreError::Contention) => {
                "the session is being changed by too many writers at once; retry later".into()
            }
            other => other.to_string(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let mut problem = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        // An extension member (RFC 9457, section 3.2) that tells this conflict apart.
        if let Self::Store(StoreError::DataOverCap { limit }) = &self {
            problem["max_decompressed_bytes"] = (*limit).into();
        }
        if let Self::Store(StoreError::Misdirected { home }) = &self {
            problem["home_region"] = home.as_str().into();
        }
        let mut response = Response::new(Body::Text(problem.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Store(StoreError::Unavailable(_) | StoreError::Contention) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        response
    }
}
