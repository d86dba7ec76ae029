//! The workload floor: the runtime floor plus exactly the DynamoDB calls the API makes
//! for the bench's workload (create: PutItem; get: GetItem; merge-update: GetItem and
//! UpdateItem; delete: DeleteItem), with the client built as the functions build it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response, service_fn};
use session_floors::{answer, created, key_in, new_key, status_for};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let client = session_store::AwsEnv::load().await?.dynamodb();
    let table = std::env::var("SESSION_TABLE")?;
    lambda_http::run(service_fn(|request| workload(&client, &table, request))).await
}

async fn workload(client: &Client, table: &str, request: Request) -> Result<Response<Body>, Error> {
    let status = status_for(request.method());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let body = std::str::from_utf8(request.body()).unwrap_or_default();
    if request.method() == Method::POST {
        let key = new_key()?;
        client
            .put_item()
            .table_name(table)
            .item("session_key", s(&key))
            .item("data", s(body))
            .item("version", AttributeValue::N("1".into()))
            .condition_expression("attribute_not_exists(session_key)")
            .send()
            .await?;
        return answer(status, created(&key));
    }
    let key = key_in(request.uri().path())?;
    let read = || {
        client
            .get_item()
            .table_name(table)
            .key("session_key", s(key))
            .consistent_read(true)
            .send()
    };
    let body = match *request.method() {
        Method::GET => {
            let item = read().await?.item.unwrap_or_default();
            match item.get("data") {
                Some(AttributeValue::S(data)) => data.clone(),
                _ => String::new(),
            }
        }
        Method::PATCH => {
            read().await?;
            client
                .update_item()
                .table_name(table)
                .key("session_key", s(key))
                .update_expression("SET #d = :d ADD version :one")
                .expression_attribute_names("#d", "data")
                .expression_attribute_values(":d", s(body))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send()
                .await?;
            String::new()
        }
        _ => {
            client
                .delete_item()
                .table_name(table)
                .key("session_key", s(key))
                .send()
                .await?;
            String::new()
        }
    };
    answer(status, body)
}
