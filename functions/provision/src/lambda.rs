//! The Lambda start-up of `provision` (`Handler: provision`): a DynamoDB stream consumer.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    let wait = config.provision_wait;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let worker = format!("lambda:{}", event.context.request_id);
        Ok::<_, lambda_runtime::Error>(crate::handle(services, &worker, wait, event.payload).await)
    }))
    .await
}
