//! Who must approve a request (DESIGN.md "Approval policy"): the policy file (groups, rules matched
//! in order, stages with a quorum, delegations, escalation) and a request's progress through the
//! stages its rule gave it.

pub mod policy;
#[cfg(test)]
mod policy_tests;
mod policy_when;
mod policy_yaml;
pub mod progress;

pub use policy::{ApprovalPolicy, Escalation, RequestFacts, Route, StagePlan};
pub use progress::{Approval, Stage, StageApproval, StageState};
