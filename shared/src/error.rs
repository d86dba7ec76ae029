//! The store's one error type; the API maps it to HTTP in one place.

use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::key::InvalidKey;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No live session has this key (never existed, deleted, or expired).
    #[error("session not found")]
    NotFound,
    /// The session changed since the version the caller expected.
    #[error("the session was changed by another writer")]
    VersionConflict,
    #[error("invalid session key: {0}")]
    InvalidKey(#[from] InvalidKey),
    #[error("encoded session data is {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid session data: {0}")]
    InvalidData(String),
    /// DynamoDB throttled or failed after the SDK's own retries; worth retrying later.
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
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
    pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
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
                    Self::Other(format!("{code}: {}", e.message().unwrap_or("")))
                }
            }
            SdkError::ResponseError(_) => {
                Self::Unavailable("unreadable response from DynamoDB".into())
            }
            _ => Self::Other(format!("DynamoDB request failed: {err:?}")),
        }
    }
}
