//! The session store shared by every function: keys, expiry, codecs and DynamoDB access.

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
pub mod store;
pub mod telemetry;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use codec::{Codec, CodecConfig, DjangoSecrets, JsonCodec};
pub use config::{CleanupConfig, ConfigError, StoreConfig};
pub use django::{DjangoCodec, DjangoKeys, Secret};
pub use error::StoreError;
pub use expiry::{Expiry, ExpiryPolicy};
pub use key::{InvalidKey, SessionKey};
pub use session::{Session, SessionData, SessionMeta, Version};
pub use store::SessionStore;

/// A DynamoDB client from the standard chain: region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` for a local endpoint. Build it once per container.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// What every function does at cold start: the store settings from the environment,
/// their secret fetched, and a DynamoDB client.
pub async fn start() -> Result<(aws_sdk_dynamodb::Client, StoreConfig), ConfigError> {
    let sdk = sdk_config().await;
    let config = StoreConfig::from_env()?.fetch_secrets(&sdk).await?;
    Ok((aws_sdk_dynamodb::Client::new(&sdk), config))
}
