//! The store's one error type; the API maps it to HTTP in one place.

use std::fmt::Debug;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::key::InvalidKey;

/// A setting that is missing or wrong, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No live session has this key (never existed, deleted, or expired).
    #[error("session not found")]
    NotFound,
    /// The session changed since the version the caller expected.
    #[error("the session was changed by another writer")]
    VersionConflict,
    /// Other writers kept changing the session through every retry.
    #[error("the session is being changed by too many writers at once")]
    Contention,
    #[error("invalid session key: {0}")]
    InvalidKey(#[from] InvalidKey),
    #[error("encoded session data is {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid session data: {0}")]
    InvalidData(String),
    /// The stored data inflates past `SESSION_MAX_DECOMPRESSED_BYTES`: it cannot be read,
    /// and is never read as empty; only a replace or a delete may change the session.
    #[error("the session's stored data inflates past {limit} bytes")]
    DataOverCap { limit: usize },
    /// The session's home is another region (`SESSION_REGION`): a write here is refused,
    /// since only its home checks its conditions against the latest copy.
    #[error("the session's home is region {home}; write to it there")]
    Misdirected { home: String },
    /// DynamoDB throttled or failed after the SDK's own retries; worth retrying later.
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused the request as it is (access denied, no such table, invalid):
    /// retrying cannot help. `code` is DynamoDB's error code.
    #[error("DynamoDB refused the request: {code}: {message}")]
    Rejected { code: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// Error codes that mean "try again later" rather than "this request is wrong".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

impl StoreError {
    /// Maps any SDK failure that the operation did not handle itself.
    pub fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + Debug,
        R: Debug,
    {
        match &err {
            SdkError::TimeoutError(_) => Self::Unavailable("request timed out".into()),
            SdkError::DispatchFailure(_) => Self::Unavailable("could not reach DynamoDB".into()),
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown");
                if RETRYABLE_CODES.contains(&code) {
                    Self::Unavailable(code.to_owned())
                } else {
                    Self::Rejected {
                        code: code.to_owned(),
                        message: e.message().unwrap_or("").to_owned(),
                    }
                }
            }
            SdkError::ResponseError(_) => {
                Self::Unavailable("unreadable response from DynamoDB".into())
            }
            _ => Self::Other(format!("DynamoDB request failed: {err:?}")),
        }
    }
}

/// A conditional write's result: a failed condition is a version conflict.
pub(crate) fn conditional<T, E>(sent: Result<T, SdkError<E, HttpResponse>>) -> Result<T, StoreError>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match sent {
        Ok(out) => Ok(out),
        Err(SdkError::ServiceError(e))
            if e.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Err(StoreError::VersionConflict)
        }
        Err(e) => Err(StoreError::from_sdk(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn service_error(status: u16, code: &str) -> StoreError {
        let err = GetItemError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let status = StatusCode::try_from(status).expect("valid status");
        StoreError::from_sdk(SdkError::service_error(
            err,
            HttpResponse::new(status, SdkBody::empty()),
        ))
    }

    #[test]
    fn throttling_and_server_errors_mean_unavailable() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
        ] {
            assert!(
                matches!(service_error(400, code), StoreError::Unavailable(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn other_service_errors_are_not_retryable() {
        assert!(matches!(
            service_error(400, "ResourceNotFoundException"),
            StoreError::Rejected { .. }
        ));
        assert!(matches!(
            service_error(400, "ValidationException"),
            StoreError::Rejected { .. }
        ));
    }

    #[test]
    fn timeouts_and_connection_failures_mean_unavailable() {
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("took too long");
        assert!(matches!(
            StoreError::from_sdk(timeout),
            StoreError::Unavailable(_)
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let dispatch: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert!(matches!(
            StoreError::from_sdk(dispatch),
            StoreError::Unavailable(_)
        ));
    }
}
