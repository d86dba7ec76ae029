//! The API with its AWS settings from Lambda's variables alone, without aws-config's
//! provider chains: the bench's cold start of this binary, against the API's, is what
//! those chains cost. Built with the floors, on the same profile; never deployed.

use lambda_http::Error;
use session_store::AwsEnv;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    session_store::telemetry::init();
    let aws = AwsEnv::from_lookup(|name| std::env::var(name).ok())?;
    session_api::serve(session_store::start_with(aws).await?).await
}
