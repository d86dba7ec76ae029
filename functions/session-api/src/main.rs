use lambda_http::{Error, service_fn};
use session_api::{App, handler};
use session_store::SessionStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let (client, config) = session_store::start().await?;
    let store = SessionStore::new(client, config)?;
    let app = App::new(store);
    lambda_http::run(service_fn(|request| handler(&app, request))).await
}
