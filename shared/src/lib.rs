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
pub mod retry;
pub mod session;
pub mod ssm;
pub mod store;
pub mod telemetry;

pub use aws::AwsEnv;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use codec::{Codec, CodecConfig, DjangoSecrets, JsonCodec};
pub use config::{CleanupConfig, ConfigError, StoreConfig};
pub use django::{DjangoCodec, DjangoKeys, Secret};
pub use error::StoreError;
pub use expiry::{Expiry, ExpiryPolicy};
pub use key::{InvalidKey, SessionKey};
pub use session::{Expected, Session, SessionData, SessionMeta, Version};
pub use store::SessionStore;

/// What every function does at cold start: the store settings from the environment,
/// their secret fetched, and a DynamoDB client.
pub async fn start() -> Result<(aws_sdk_dynamodb::Client, StoreConfig), ConfigError> {
    let aws = AwsEnv::from_env()?;
    let config = StoreConfig::from_env()?.fetch_secrets(&aws).await?;
    Ok((aws.dynamodb(), config))
}
