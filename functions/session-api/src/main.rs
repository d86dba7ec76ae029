use lambda_http::{Error, service_fn};
use session_api::{App, handler};
use session_store::{SessionStore, StoreConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let config = StoreConfig::from_env()?;
    let store = SessionStore::new(session_store::dynamodb_client().await, config);
    let app = App::new(store);
    lambda_http::run(service_fn(|request| handler(&app, request))).await
}
