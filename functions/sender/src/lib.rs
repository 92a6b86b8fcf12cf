//! The `sender` function: the table's stream shows owed messages (`MSG#` items written or
//! revived) and this delivers the messages of its batch, and no other: each is claimed on its
//! item before it is sent, so a batch delivered twice, a message in two batches, or the sweeper
//! at the same time never sends one twice. What fails here the sweeper retries.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use aws_lambda_events::event::dynamodb::Event;
use domain::model::RequestId;
use domain::ports::{Itsm, Mailer};
use domain::usecases::Services;
use domain::usecases::outbox::{Delivery, MessageKey};
use serde_dynamo::AttributeValue;

/// The owed messages a batch names: items `REQ#{request}` / `MSG#{id}` written (INSERT) or
/// changed (MODIFY: a revived message; a claim or a failure shows too, and its claim then finds
/// it held or not due). Removals and other items are ignored, and so are keys that are not ours.
pub fn owed_in(event: &Event) -> Vec<MessageKey> {
    let text = |keys: &std::collections::HashMap<String, AttributeValue>, name: &str| match keys.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    event
        .records
        .iter()
        .filter(|r| matches!(r.event_name.as_str(), "INSERT" | "MODIFY"))
        .filter_map(|r| {
            let request_id = RequestId::parse(text(&r.change.keys, "pk")?.strip_prefix("REQ#")?)?;
            let id = text(&r.change.keys, "sk")?.strip_prefix("MSG#")?.to_string();
            Some(MessageKey { request_id, id })
        })
        .collect()
}

pub async fn handle(
    services: &Services,
    mailer: &dyn Mailer,
    itsm: Option<&dyn Itsm>,
    event: Event,
) -> domain::Result<Delivery> {
    let keys = owed_in(&event);
    if keys.is_empty() {
        return Ok(Delivery::default());
    }
    services.deliver_messages(&keys, mailer, itsm).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample batch's record (infra/events/), as another event on other keys.
    fn record(event_name: &str, pk: &str, sk: &str) -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/events/sender-stream-message.json");
        let sample: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut record = sample["Records"][0].clone();
        record["eventName"] = event_name.into();
        record["dynamodb"]["Keys"] = serde_json::json!({"pk": {"S": pk}, "sk": {"S": sk}});
        record
    }

    #[test]
    fn a_batch_names_the_messages_written_or_changed_in_it() {
        let request = "01a2011b-0000-7000-8000-0000000000a1";
        let event: Event = serde_json::from_value(serde_json::json!({"Records": [
            record("INSERT", &format!("REQ#{request}"), "MSG#m1"),
            record("MODIFY", &format!("REQ#{request}"), "MSG#m2"),
            record("REMOVE", &format!("REQ#{request}"), "MSG#m3"),
            record("INSERT", &format!("REQ#{request}"), "META"),
            record("INSERT", "REQ#not-a-request-id", "MSG#m4"),
            record("INSERT", "CHG#4242#abc#production", "MSG#m5"),
        ]}))
        .unwrap();
        let keys = owed_in(&event);
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2"]);
        assert!(keys.iter().all(|k| k.request_id.as_str() == request));
    }
}
