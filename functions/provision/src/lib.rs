//! The `provision` function: consumes the table's DynamoDB stream (filtered in template.yaml to
//! requests whose new status is `approved`) and runs provisioning for each. Failed records are
//! reported as batch item failures, so one bad record does not block the shard.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::model::RequestId;
use domain::usecases::Services;
use serde_dynamo::AttributeValue;

fn string<'a>(image: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// The request a record moves into `approved`: `Ok(None)` for every other record (another item
/// kind, another status, a repeat of the same status).
pub fn approved_request(record: &EventRecord) -> Result<Option<RequestId>, String> {
    let change = &record.change;
    let image = &change.new_image;
    if record.event_name == "REMOVE" || string(image, "sk") != Some("META") {
        return Ok(None);
    }
    let Some(pk) = string(image, "pk").and_then(|pk| pk.strip_prefix("REQ#")) else { return Ok(None) };
    if string(image, "status") != Some("approved") || string(&change.old_image, "status") == Some("approved") {
        return Ok(None);
    }
    RequestId::parse(pk).map(Some).ok_or_else(|| format!("record carries a malformed request id {pk:?}"))
}

/// Runs one provisioning run per approved request in the batch, concurrently.
pub async fn handle(services: &Services, worker: &str, wait: Duration, event: Event) -> DynamoDbEventResponse {
    let runs = event.records.iter().map(|record| async move {
        let outcome = match approved_request(record) {
            Ok(None) => return None,
            Ok(Some(id)) => services.provision(&id, worker, wait).await.map_err(|e| e.chain()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(progress) => {
                tracing::info!(?progress, "provisioning run ended");
                None
            }
            Err(error) => {
                tracing::error!(%error, sequence = ?record.change.sequence_number, "record failed");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                Some(failure)
            }
        }
    });
    let failures = futures::future::join_all(runs).await.into_iter().flatten().collect();
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}
