//! Creates the sessions table from template.yaml on the endpoint in
//! `AWS_ENDPOINT_URL_DYNAMODB` (used by `make dev`). An existing table is left alone.
//!
//! Usage: create-table [TABLE_NAME]   (default: $SESSION_TABLE or "sessions")

use testkit::{RequestCounter, TableSpec};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), testkit::Error> {
    let name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SESSION_TABLE").ok())
        .unwrap_or_else(|| "sessions".into());
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        return Err("set AWS_ENDPOINT_URL_DYNAMODB to the local DynamoDB endpoint".into());
    }
    let client = testkit::client(&RequestCounter::default());
    let existing = client.list_tables().send().await?;
    if existing.table_names().contains(&name) {
        println!("table {name} already exists");
        return Ok(());
    }
    TableSpec::of_workspace()?.create(&client, &name).await?;
    println!("created table {name} from template.yaml");
    Ok(())
}
