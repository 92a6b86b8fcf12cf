//! The `sender` function: the table's stream shows a new owed message (an `MSG#` item) and this
//! delivers what is due at once. The sweeper retries whatever fails here.

use aws_lambda_events::event::dynamodb::Event;
use domain::ports::{Itsm, Mailer};
use domain::usecases::Services;
use domain::usecases::outbox::Delivery;
use serde_dynamo::AttributeValue;

/// Whether the batch holds a newly owed message (the template's filter already narrows it).
pub fn owes_messages(event: &Event) -> bool {
    event.records.iter().any(|r| {
        r.event_name == "INSERT"
            && matches!(r.change.keys.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("MSG#"))
    })
}

pub async fn handle(
    services: &Services,
    mailer: &dyn Mailer,
    itsm: Option<&dyn Itsm>,
    event: Event,
) -> domain::Result<Delivery> {
    if !owes_messages(&event) {
        return Ok(Delivery::default());
    }
    services.deliver_owed(mailer, itsm).await
}
