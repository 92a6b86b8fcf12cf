//! The Lambda start-up of `sender` (`Handler: sender`): a DynamoDB stream consumer.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    let mailer = lambda_support::mailer(&config).await?;
    let itsm = runtime::itsm(&config)?;
    let (services, mailer, itsm) = (&services, mailer.as_ref(), itsm.as_deref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let delivery = crate::handle(services, mailer, itsm, event.payload).await?;
        tracing::info!(sent = delivery.sent, failed = delivery.failed, "owed messages delivered");
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
