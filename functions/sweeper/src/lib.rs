//! The `sweeper` function, on an EventBridge schedule: expiry and reminders, provisioning that is
//! due (missed starts, leases that ran out, VMs still building), and owed messages to retry.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use std::time::{Duration, Instant};

use domain::ports::{Itsm, Mailer};
use domain::usecases::Services;
use domain::usecases::gate::ChangeGate;
use futures::StreamExt;
use serde::Serialize;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Changes of the CI gate looked at again (their window opened, or they wait to act).
    pub changes_checked: usize,
    pub expired: usize,
    pub reminded: usize,
    pub provisioning_runs: usize,
    pub sent: usize,
    pub failed_deliveries: usize,
}

/// One sweep. Provisioning runs go four at a time, each waiting at most `wait` for ACTIVE, so the
/// invocation stays far below Lambda's limit; delivery claims nothing new after `deadline`, so the
/// sweep ends between messages rather than being cut off mid-send.
pub async fn run(
    services: &Services,
    gate: Option<&ChangeGate>,
    mailer: &dyn Mailer,
    itsm: Option<&dyn Itsm>,
    worker: &str,
    wait: Duration,
    deadline: Instant,
) -> domain::Result<Report> {
    let sweep = services.sweep(jiff::Timestamp::now()).await?;
    let changes_checked = match gate {
        Some(gate) => gate.sweep(jiff::Timestamp::now()).await.unwrap_or_else(|e| {
            tracing::error!(error = %e.chain(), "change gate sweep failed");
            0
        }),
        None => 0,
    };
    let runs = sweep.to_provision.len();
    let results: Vec<_> = futures::stream::iter(sweep.to_provision)
        .map(|id| async move { (services.provision(&id, worker, wait).await, id) })
        .buffer_unordered(4)
        .collect()
        .await;
    for (result, id) in results {
        if let Err(e) = result {
            tracing::error!(request = %id, error = %e.chain(), "provisioning run failed");
        }
    }
    let delivery = services.deliver_owed_before(mailer, itsm, deadline).await?;
    Ok(Report {
        changes_checked,
        expired: sweep.expired,
        reminded: sweep.reminded,
        provisioning_runs: runs,
        sent: delivery.sent,
        failed_deliveries: delivery.failed,
    })
}
