use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

/// How long each provisioning re-check in a sweep waits for ACTIVE.
const RECHECK_WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    let mailer = lambda_support::mailer(&config).await?;
    let itsm = runtime::itsm(&config)?;
    // The CI gate's changes, where ServiceNow and GitLab are configured.
    let gate = runtime::change_gate(&config, lambda_support::store(&config).await?)?;
    let (services, gate, mailer, itsm) = (&services, gate.as_deref(), mailer.as_ref(), itsm.as_deref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
        let worker = format!("lambda:{}", event.context.request_id);
        let report = gatehouse_sweeper::run(services, gate, mailer, itsm, &worker, RECHECK_WAIT).await?;
        tracing::info!(?report, "sweep done");
        Ok::<_, lambda_runtime::Error>(report)
    }))
    .await
}
