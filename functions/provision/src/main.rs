use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    let wait = config.provision_wait;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let worker = format!("lambda:{}", event.context.request_id);
        Ok::<_, lambda_runtime::Error>(gatehouse_provision::handle(services, &worker, wait, event.payload).await)
    }))
    .await
}
