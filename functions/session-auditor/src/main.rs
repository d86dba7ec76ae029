use lambda_runtime::{Error, service_fn};
use session_auditor::{Auditor, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let (_, config) = session_store::start().await?;
    let auditor = Auditor::new(&config)?;
    lambda_runtime::run(service_fn(|event| handler(&auditor, event))).await
}
