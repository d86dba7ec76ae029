use lambda_http::{Error, service_fn};
use session_api::{App, handler};
use session_store::{AccessLogConfig, DynamoStore, PrincipalRoutes};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let (aws, config) = session_store::start().await?;
    let store = DynamoStore::new(aws.dynamodb(), config)?;
    let app = App::new(store)
        .with_access_log(AccessLogConfig::from_env()?)
        .with_principal_routes(PrincipalRoutes::from_env()?);
    lambda_http::run(service_fn(|request| handler(&app, request))).await
}
