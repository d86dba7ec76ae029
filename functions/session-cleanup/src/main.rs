use lambda_runtime::{Error, service_fn};
use session_cleanup::{Cleanup, handler};
use session_store::{AwsEnv, CleanupConfig, StoreConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    // No Django key: the cleanup reads `_session_expiry` unverified and never writes data.
    let aws = AwsEnv::load().await?;
    let store = StoreConfig::reader_from_env()?;
    let cleanup = Cleanup::new(aws.dynamodb(), store, CleanupConfig::from_env()?)?;
    lambda_runtime::run(service_fn(|event| handler(&cleanup, event))).await
}
