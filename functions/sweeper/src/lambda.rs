//! The Lambda start-up of `sweeper` (`Handler: sweeper`): one sweep per scheduled event, stopped
//! before the invocation's deadline.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

/// How long each provisioning re-check in a sweep waits for ACTIVE.
const RECHECK_WAIT: Duration = Duration::from_secs(10);

/// Delivery claims nothing new this long before the invocation's deadline, so a sweep ends between
/// messages (a send and its settling are never cut apart). Every step is a conditional write or a
/// claim with an expiry, so what it leaves is picked up by the next sweep.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);
/// The backstop: the sweep is dropped this long before the deadline if a step overran, rather
/// than being killed by Lambda (which also throws the warm process away).
const BACKSTOP_MARGIN: Duration = Duration::from_secs(1);

pub async fn run() -> Result<(), lambda_runtime::Error> {
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
        let left = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
        let deadline = std::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN);
        let budget = left.saturating_sub(BACKSTOP_MARGIN);
        let sweep = crate::run(services, gate, mailer, itsm, &worker, RECHECK_WAIT, deadline);
        match tokio::time::timeout(budget, sweep).await {
            Ok(report) => {
                let report = report?;
                tracing::info!(?report, "sweep done");
                Ok::<_, lambda_runtime::Error>(Some(report))
            }
            Err(_) => {
                tracing::warn!(
                    budget_secs = budget.as_secs(),
                    "sweep stopped before the deadline; the next one continues"
                );
                Ok(None)
            }
        }
    }))
    .await
}
