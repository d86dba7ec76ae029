use lambda_runtime::{Error, service_fn};
use session_cleanup::{Cleanup, handler};
use session_store::{CleanupConfig, StoreConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let cleanup = Cleanup::new(
        session_store::dynamodb_client().await,
        StoreConfig::from_env()?,
        CleanupConfig::from_env()?,
    );
    lambda_runtime::run(service_fn(|event| handler(&cleanup, event))).await
}
