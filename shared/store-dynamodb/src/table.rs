//! The table as the SAM template defines it, for tests and local setups.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
};
use domain::{Error, Result};

use crate::{GSI1, GSI2, TTL_ATTRIBUTE, upstream};

/// Creates `table` as the SAM template defines it (for tests and local setups): `pk`/`sk` string
/// keys, PAY_PER_REQUEST, a NEW_AND_OLD_IMAGES stream, the sparse `gsi1` and the requests' `gsi2`
/// (both projection ALL) and TTL on `ttl`; waits until it is active.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| Error::internal("DynamoDB store: building CreateTable", e);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build)
    };
    let key_part = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let gsi = |name: &str, hash: &str, range: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key_part(hash, KeyType::Hash).map_err(build)?)
            .key_schema(key_part(range, KeyType::Range).map_err(build)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(build)
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .attribute_definitions(attribute("gsi2pk")?)
        .attribute_definitions(attribute("gsi2sk")?)
        .key_schema(key_part("pk", KeyType::Hash).map_err(build)?)
        .key_schema(key_part("sk", KeyType::Range).map_err(build)?)
        .global_secondary_indexes(gsi(GSI1, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(gsi(GSI2, "gsi2pk", "gsi2sk")?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build)?,
        )
        .send()
        .await
        .map_err(|e| upstream(table, "CreateTable", e))?;
    for _ in 0..100 {
        let out =
            client.describe_table().table_name(table).send().await.map_err(|e| upstream(table, "DescribeTable", e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTRIBUTE)
                        .build()
                        .map_err(build)?,
                )
                .send()
                .await
                .map_err(|e| upstream(table, "UpdateTimeToLive", e))?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::upstream(format!("DynamoDB table {table}"), "the new table did not become active"))
}
