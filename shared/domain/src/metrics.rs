//! The figures Gatehouse keeps (DESIGN.md, "Observability"), recorded through one process-wide
//! recorder: Prometheus text under `serve --metrics-listen`, CloudWatch EMF lines on Lambda, nothing
//! until one is installed. Like `tracing`'s dispatcher it is global, so a use-case records a figure
//! without every service carrying a handle.

use std::sync::{Arc, OnceLock};

/// A monotonic count, by one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// `gatehouse_requests_total{outcome}`: intake's answers (accepted, replayed, refused, …).
    Requests,
    /// `gatehouse_decisions_total{decision}`: approvers' decisions (approved, denied).
    Decisions,
    /// `gatehouse_provision_failures_total{cause}`.
    ProvisionFailures,
    /// `gatehouse_upstream_errors_total{system}`: calls to PCD, ServiceNow, GitLab, mail that failed.
    UpstreamErrors,
    /// `gatehouse_gate_decisions_total{decision}`: the change gate's answers (proceed, wait, blocked).
    GateDecisions,
}

impl Counter {
    pub const ALL: [Counter; 5] = [
        Counter::Requests,
        Counter::Decisions,
        Counter::ProvisionFailures,
        Counter::UpstreamErrors,
        Counter::GateDecisions,
    ];

    /// The name without Prometheus' `_total` suffix of counters.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Requests => "gatehouse_requests",
            Counter::Decisions => "gatehouse_decisions",
            Counter::ProvisionFailures => "gatehouse_provision_failures",
            Counter::UpstreamErrors => "gatehouse_upstream_errors",
            Counter::GateDecisions => "gatehouse_gate_decisions",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Counter::Requests => "outcome",
            Counter::Decisions | Counter::GateDecisions => "decision",
            Counter::ProvisionFailures => "cause",
            Counter::UpstreamErrors => "system",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Counter::Requests => "Provisioning requests received, by outcome",
            Counter::Decisions => "Approvers' decisions, by decision",
            Counter::ProvisionFailures => "Provisioning failures, by cause",
            Counter::UpstreamErrors => "Failed calls to outside systems, by system",
            Counter::GateDecisions => "Change gate answers, by decision",
        }
    }
}

/// `gatehouse_approve_to_active_seconds`: from the last approval to the VMs being active.
pub const APPROVE_TO_ACTIVE: &str = "gatehouse_approve_to_active_seconds";
/// `gatehouse_messages{state="pending|dead"}`: owed mails and write-backs.
pub const MESSAGES: &str = "gatehouse_messages";

/// Where figures go.
pub trait Recorder: Send + Sync {
    fn count(&self, counter: Counter, label: &str);
    fn approve_to_active(&self, seconds: f64);
    /// The owed messages now, by state (`pending`, `dead`).
    fn messages(&self, state: &str, count: u64);
}

static RECORDER: OnceLock<Arc<dyn Recorder>> = OnceLock::new();

/// Installs the process's recorder; the first one stays (tests may start several servers).
pub fn install(recorder: Arc<dyn Recorder>) {
    let _ = RECORDER.set(recorder);
}

/// Counts one event. Labels come from Gatehouse's own vocabulary, never from a caller.
pub fn count(counter: Counter, label: &str) {
    if let Some(r) = RECORDER.get() {
        r.count(counter, label);
    }
}

pub fn approve_to_active(seconds: f64) {
    if let Some(r) = RECORDER.get() {
        r.approve_to_active(seconds);
    }
}

pub fn messages(state: &str, count: u64) {
    if let Some(r) = RECORDER.get() {
        r.messages(state, count);
    }
}

/// Reads the owed messages from the store and records them as `gatehouse_messages{state}` (the
/// sweeper does at each run, `/metrics` at each scrape). A store that cannot answer is logged.
pub async fn record_message_counts(store: &dyn crate::ports::Store) {
    match store.message_counts().await {
        Ok(counts) => {
            messages("pending", counts.pending);
            messages("dead", counts.dead);
        }
        Err(e) => tracing::warn!(error = %e.chain(), "could not count the owed messages"),
    }
}

/// Counts an upstream failure by its system, when the error is one.
pub fn upstream_error(error: &crate::Error) {
    if let crate::Error::Upstream { system, .. } = error {
        count(Counter::UpstreamErrors, system_family(system));
    }
}

/// `ServiceNow change_request`, `GitLab project 4242`, `PCD demo/nova` → `servicenow`, `gitlab`,
/// `pcd`: one label per outside system, so the label set stays small.
pub fn system_family(system: &str) -> &'static str {
    let s = system.to_ascii_lowercase();
    if s.starts_with("servicenow") {
        "servicenow"
    } else if s.starts_with("gitlab") {
        "gitlab"
    } else if s.starts_with("pcd") || s.contains("keystone") || s.contains("nova") || s.contains("openstack") {
        "pcd"
    } else if s.contains("smtp") || s.contains("amazon ses") || s.contains("mail") {
        "mail"
    } else if s.starts_with("dynamodb") {
        "dynamodb"
    } else if s.contains("identity provider") || s.contains("openid") {
        "identity"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_fold_into_a_few_labels() {
        assert_eq!(system_family("ServiceNow change_request"), "servicenow");
        assert_eq!(system_family("GitLab project 4242"), "gitlab");
        assert_eq!(system_family("PCD cloud \"demo\" (compute)"), "pcd");
        assert_eq!(system_family("Amazon SES"), "mail");
        assert_eq!(system_family("DynamoDB table gatehouse"), "dynamodb");
        assert_eq!(system_family("identity provider"), "identity");
        assert_eq!(system_family("somewhere"), "other");
    }
}
