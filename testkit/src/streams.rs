//! Raw JSON calls to the local endpoints, signed as the SDK signs: DynamoDB Streams'
//! records exactly as Lambda receives them, and SSM's JSON dialect.

use std::net::TcpStream;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;

use crate::{Error, endpoint, ssm_endpoint};

/// One JSON request to a local endpoint, answered as raw JSON: the records of
/// DynamoDB Streams arrive exactly as Lambda receives them. `target` is the
/// `X-Amz-Target`, such as `DynamoDBStreams_20120810.GetRecords` (sent to [`endpoint`])
/// or `AmazonSSM.PutParameter` (SSM's JSON dialect, sent to [`ssm_endpoint`]). Signed
/// with SigV4 and the test credentials, as the SDK signs.
pub fn raw_json_call(target: &str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
    use std::io::{Read, Write};
    let (url, service, content_type) = if target.starts_with("AmazonSSM.") {
        (ssm_endpoint(), "ssm", "application/x-amz-json-1.1")
    } else {
        (endpoint(), "dynamodb", "application/x-amz-json-1.0")
    };
    let authority = url
        .strip_prefix("http://")
        .ok_or("raw calls need an http:// endpoint")?
        .trim_end_matches('/');
    let payload = body.to_string();
    let headers = [
        ("host", authority),
        ("content-type", content_type),
        ("x-amz-target", target),
    ];
    let signed = sigv4_headers(service, &format!("http://{authority}/"), &headers, &payload)?;
    let mut stream = TcpStream::connect(authority)?;
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in headers
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(
        stream,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{target} failed: {head} {body}").into());
    }
    Ok(serde_json::from_str(body)?)
}

/// The headers SigV4 adds to a request (`Authorization`, `X-Amz-Date`), signed with
/// the test credentials for `service` in us-east-1.
fn sigv4_headers(
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> Result<Vec<(String, String)>, Error> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4::SigningParams;
    let identity = Credentials::new("test", "test", None, None, "testkit").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(payload.as_bytes()),
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect())
}

/// Every record on the table's stream so far, in the shape of a Lambda DynamoDB event.
pub async fn stream_event(client: &Client, table: &str) -> Result<serde_json::Value, Error> {
    use serde_json::json;
    let arn = client
        .describe_table()
        .table_name(table)
        .send()
        .await?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("the table has no stream")?;
    let stream = raw_json_call(
        "DynamoDBStreams_20120810.DescribeStream",
        &json!({"StreamArn": arn}),
    )?;
    let mut records = Vec::new();
    for shard in stream["StreamDescription"]["Shards"]
        .as_array()
        .ok_or("no shards")?
    {
        let iterator = raw_json_call(
            "DynamoDBStreams_20120810.GetShardIterator",
            &json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )?;
        let mut next = iterator["ShardIterator"].clone();
        while next.is_string() {
            let page = raw_json_call(
                "DynamoDBStreams_20120810.GetRecords",
                &json!({"ShardIterator": next}),
            )?;
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for mut record in batch {
                record["eventSourceARN"] = json!(arn);
                records.push(record);
            }
            next = page["NextShardIterator"].clone();
        }
    }
    Ok(json!({ "Records": records }))
}
