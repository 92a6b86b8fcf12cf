//! A request's way through its approval stages, as recorded on the request: which rule routed it,
//! each stage's group, quorum and members (as they were when the request came in, so a policy
//! edited later does not move a request already asked), who approved in which stage, and which
//! stage is open.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The rule that routed a request and its stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The matching rule's name (`default` without a policy file).
    pub rule: String,
    /// The rule approves by itself (`auto_approve`): there are no stages.
    #[serde(default)]
    pub auto_approved: bool,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Not reached yet: an earlier stage is open.
    Waiting,
    /// Its approvers have their links.
    Open,
    /// Its quorum approved.
    Passed,
    /// Someone denied while it was open: the request is denied.
    Denied,
}

/// One approval counted in a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageApproval {
    /// The person counted: the group member (or escalation approver) the link was for.
    pub approver: String,
    /// A delegate who decided for `approver` (out of office), when not `approver` themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<String>,
    pub at: Timestamp,
    /// How they proved who they were: the sign-in, or "link only".
    pub proof: String,
}

impl StageApproval {
    /// Whether `address` counted through this approval, as the approver or as their delegate.
    pub fn involves(&self, address: &str) -> bool {
        crate::identity::same_person(address, &self.approver)
            || self.delegate.as_deref().is_some_and(|d| crate::identity::same_person(address, d))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub group: String,
    pub quorum: u32,
    /// The group's members when the request came in.
    pub members: Vec<String>,
    pub state: StageState,
    #[serde(default)]
    pub approved_by: Vec<StageApproval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    /// The escalation group's members, asked once when the stage stayed open too long; they count
    /// toward its quorum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalated_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<Timestamp>,
}
