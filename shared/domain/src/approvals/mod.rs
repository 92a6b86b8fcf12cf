//! Who must approve a request (DESIGN.md "Approval policy"): the policy file (groups, rules matched
//! in order, stages with a quorum, delegations, escalation) and a request's progress through the
//! stages its rule gave it.

pub mod policy;
pub mod progress;

pub use progress::{Approval, Stage, StageApproval, StageState};
