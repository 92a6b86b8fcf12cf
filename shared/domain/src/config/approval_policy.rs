//! `GATEHOUSE_APPROVAL_POLICY`: the approval policy file, read and checked at start-up.

use std::sync::Arc;

use super::{ConfigError, Settings, bad};
use crate::approvals::ApprovalPolicy;

const KEY: &str = "GATEHOUSE_APPROVAL_POLICY";

/// The policy, or `None` without the setting (one stage of the cloud's approvers, quorum 1). A
/// file that cannot be read or is malformed stops start-up with its line and reason.
pub fn approval_policy<F: Fn(&str) -> Option<String>>(
    s: &Settings<F>,
) -> Result<Option<Arc<ApprovalPolicy>>, ConfigError> {
    let Some(path) = s.optional(KEY) else { return Ok(None) };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(KEY, format!("cannot read {path}: {e}")))?;
    let policy = ApprovalPolicy::parse(&text).map_err(|e| bad(KEY, format!("{path}: {e}")))?;
    Ok(Some(Arc::new(policy)))
}
