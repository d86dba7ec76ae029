use lambda_runtime::{Error, service_fn};
use session_cleanup::{Cleanup, handler};
use session_store::CleanupConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let (aws, config) = session_store::start().await?;
    let cleanup = Cleanup::new(aws.dynamodb(), config, CleanupConfig::from_env()?)?;
    lambda_runtime::run(service_fn(|event| handler(&cleanup, event))).await
}
