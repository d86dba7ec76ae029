//! The session store shared by every function: keys, expiry, codecs and DynamoDB access.

pub mod aws;
pub mod clock;
pub mod codec;
pub mod config;
pub mod django;
pub mod error;
pub mod expiry;
pub mod item;
pub mod key;
pub mod metrics;
pub mod principal;
pub mod retry;
pub mod session;
pub mod store;
pub mod telemetry;

pub use aws::AwsEnv;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp, invocation_time_left};
pub use codec::{Codec, DecodeError, JsonCodec};
pub use config::{
    AccessLogConfig, CleanupConfig, CodecConfig, DjangoSecrets, PrincipalRoutes, StoreConfig,
};
pub use django::{DjangoCodec, DjangoKeys, Secret};
pub use error::{ConfigError, StoreError};
pub use expiry::{Expiry, ExpiryPolicy};
pub use key::{InvalidKey, SessionKey};
pub use principal::{
    InvalidPrincipal, Listed, ListingPosition, Ownership, Principal, PrincipalPage, Revocation,
    SessionHandle,
};
pub use session::{DataTag, EntityTag, Expected, Session, SessionData, SessionMeta, Version};
pub use store::{
    BackendOutcome, BackendWrite, Candidate, DynamoStore, Page, Principals, SessionStore, Upkeep,
    WatermarkWalk,
};

/// The API's cold start: the AWS settings and the store settings from the
/// environment, the Django key fetched when it is a parameter. The API builds its
/// client from the first (`AwsEnv::dynamodb`).
pub async fn start() -> Result<(AwsEnv, StoreConfig), ConfigError> {
    start_with(AwsEnv::load().await?).await
}

/// [`start`] on AWS settings made some other way: the bench's API variant makes them
/// from Lambda's variables alone, to show what the provider chains add to a cold start.
pub async fn start_with(aws: AwsEnv) -> Result<(AwsEnv, StoreConfig), ConfigError> {
    let config = StoreConfig::from_env()?.fetch_secrets(&aws).await?;
    Ok((aws, config))
}
