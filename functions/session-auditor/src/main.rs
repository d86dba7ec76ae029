use lambda_runtime::{Error, service_fn};
use session_auditor::{Auditor, handler};
use session_store::StoreConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    // The auditor calls no AWS service and holds no key: it reads data unverified.
    let auditor = Auditor::new(&StoreConfig::reader_from_env()?)?;
    lambda_runtime::run(service_fn(|event| handler(&auditor, event))).await
}
