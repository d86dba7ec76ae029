//! Tables made for tests and development follow template.yaml.

use aws_sdk_dynamodb::types::{StreamViewType, TimeToLiveStatus};
use testkit::{RequestCounter, TableSpec};

#[tokio::test]
async fn tables_get_the_key_stream_and_ttl_of_the_template() {
    let client = testkit::client(&RequestCounter::default());
    let spec = TableSpec::of_workspace().unwrap();
    assert_eq!(spec.ttl_attribute(), Some("expires_at"));
    let name = testkit::unique_table_name("spec");
    spec.create(&client, &name).await.unwrap();

    let table = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let table = table.table.unwrap();
    let key = &table.key_schema()[0];
    assert_eq!(key.attribute_name(), "session_key");
    let stream = table.stream_specification.unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}
