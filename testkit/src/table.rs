//! The sessions table as `template.yaml` defines it, made on any endpoint: tests and
//! `make dev` create it from the template rather than from a second copy.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde::Deserialize;

use crate::{Error, workspace_root};

#[derive(Debug, Deserialize)]
struct Template {
    #[serde(rename = "Resources")]
    resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Properties", default)]
    properties: serde_yaml_ng::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    attribute_definitions: Vec<AttributeProperty>,
    key_schema: Vec<KeyProperty>,
    billing_mode: Option<String>,
    stream_specification: Option<StreamProperty>,
    time_to_live_specification: Option<TtlProperty>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexProperty>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexProperty {
    index_name: String,
    key_schema: Vec<KeyProperty>,
    projection: ProjectionProperty,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionProperty {
    projection_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeProperty {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyProperty {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamProperty {
    stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlProperty {
    attribute_name: String,
    enabled: bool,
}

/// The key schema, billing, stream and TTL settings of `template.yaml`'s one table.
#[derive(Debug)]
pub struct TableSpec(TableProperties);

impl TableSpec {
    pub fn from_template(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let template: Template = serde_yaml_ng::from_str(&text)?;
        let mut tables = template
            .resources
            .into_values()
            .filter(|r| r.kind == "AWS::DynamoDB::Table");
        let table = tables
            .next()
            .ok_or("template.yaml defines no AWS::DynamoDB::Table")?;
        if tables.next().is_some() {
            return Err("template.yaml defines more than one table".into());
        }
        Ok(Self(serde_yaml_ng::from_value(table.properties)?))
    }

    /// The workspace's own `template.yaml`, read once per process: tests make many tables.
    pub fn of_workspace() -> Result<&'static Self, Error> {
        static SPEC: OnceLock<Result<TableSpec, String>> = OnceLock::new();
        SPEC.get_or_init(|| {
            Self::from_template(&workspace_root().join("template.yaml")).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| e.clone().into())
    }

    pub fn ttl_attribute(&self) -> Option<&str> {
        self.0
            .time_to_live_specification
            .as_ref()
            .filter(|t| t.enabled)
            .map(|t| t.attribute_name.as_str())
    }

    /// Creates the table under `name`, with its TTL; a local emulator makes it active at
    /// once, so nothing waits.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), Error> {
        let p = &self.0;
        let attributes = p.attribute_definitions.iter().map(|a| {
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
        });
        let key_schema = |schema: &[KeyProperty]| {
            schema
                .iter()
                .map(|k| {
                    KeySchemaElement::builder()
                        .attribute_name(&k.attribute_name)
                        .key_type(KeyType::from(k.key_type.as_str()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let mut indexes = Vec::new();
        for index in &p.global_secondary_indexes {
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.index_name)
                    .set_key_schema(Some(key_schema(&index.key_schema)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(
                                index.projection.projection_type.as_str(),
                            ))
                            .build(),
                    )
                    .build()?,
            );
        }
        let mut request = client
            .create_table()
            .table_name(name)
            .set_attribute_definitions(Some(attributes.collect::<Result<_, _>>()?))
            .set_key_schema(Some(key_schema(&p.key_schema)?))
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes));
        if let Some(mode) = &p.billing_mode {
            request = request.billing_mode(BillingMode::from(mode.as_str()));
        }
        if let Some(stream) = &p.stream_specification {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                    .build()?,
            );
        }
        request.send().await?;
        if let Some(ttl) = &p.time_to_live_specification {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(&ttl.attribute_name)
                        .enabled(ttl.enabled)
                        .build()?,
                )
                .send()
                .await?;
        }
        Ok(())
    }
}
