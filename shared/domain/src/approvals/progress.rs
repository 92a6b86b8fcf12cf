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
    /// "deputy@… for ops1@…", or the approver alone.
    pub fn describe(&self) -> String {
        match &self.delegate {
            Some(d) => format!("{d} for {}", self.approver),
            None => self.approver.clone(),
        }
    }

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

impl Stage {
    /// A stage not reached yet.
    pub fn waiting(group: String, quorum: u32, members: Vec<String>) -> Stage {
        Stage {
            group,
            quorum,
            members,
            state: StageState::Waiting,
            approved_by: vec![],
            opened_at: None,
            escalated_to: vec![],
            escalated_at: None,
        }
    }

    /// How many more approvals it needs.
    pub fn missing(&self) -> u32 {
        self.quorum.saturating_sub(self.approved_by.len() as u32)
    }

    /// Whom it may still count: its members and escalation approvers who are not in `excluded`
    /// (those who counted already, in any stage, and those who may not approve this request).
    pub fn eligible(&self, excluded: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in self.members.iter().chain(&self.escalated_to) {
            if !excluded(a) && !out.iter().any(|o| crate::identity::same_person(o, a)) {
                out.push(a.clone());
            }
        }
        out
    }
}

/// What one approval did to the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Counted; the open stage still needs this many.
    Counted { missing: u32 },
    /// The open stage passed and stage `next` (0-based) opened.
    NextStage { passed: usize, next: usize },
    /// The last stage passed: the request is approved.
    AllPassed { passed: usize },
}

impl Approval {
    /// One stage of `members`, quorum 1: the behaviour without a policy file.
    pub fn single(rule: &str, group: &str, members: Vec<String>) -> Approval {
        Approval {
            rule: rule.to_string(),
            auto_approved: false,
            stages: vec![Stage::waiting(group.into(), 1, members)],
        }
    }

    /// The open stage's index, if one is open.
    pub fn open_stage(&self) -> Option<usize> {
        self.stages.iter().position(|s| s.state == StageState::Open)
    }

    /// Whether `address` already counted in a stage of this request (as approver or delegate):
    /// one person counts in one stage at most.
    pub fn counted(&self, address: &str) -> bool {
        self.stages.iter().flat_map(|s| &s.approved_by).any(|a| a.involves(address))
    }

    /// Whether there is more to it than one approver deciding: several stages, or a quorum above
    /// one (mails, pages and notes then say which stage and how far it got).
    pub fn is_staged(&self) -> bool {
        self.stages.len() > 1 || self.stages.iter().any(|s| s.quorum > 1)
    }

    /// Opens stage `index` at `at`.
    pub fn open(&mut self, index: usize, at: Timestamp) {
        if let Some(stage) = self.stages.get_mut(index) {
            stage.state = StageState::Open;
            stage.opened_at = Some(at);
        }
    }

    /// Counts `approval` in the open stage; when that reaches its quorum the stage passes and the
    /// next one opens at the approval's time. `None` when no stage is open.
    pub fn approve(&mut self, approval: StageApproval) -> Option<Step> {
        let index = self.open_stage()?;
        let at = approval.at;
        let stage = &mut self.stages[index];
        stage.approved_by.push(approval);
        if stage.missing() > 0 {
            return Some(Step::Counted { missing: stage.missing() });
        }
        stage.state = StageState::Passed;
        if index + 1 < self.stages.len() {
            self.open(index + 1, at);
            Some(Step::NextStage { passed: index, next: index + 1 })
        } else {
            Some(Step::AllPassed { passed: index })
        }
    }

    /// A deny in the open stage.
    pub fn deny(&mut self) {
        if let Some(index) = self.open_stage() {
            self.stages[index].state = StageState::Denied;
        }
    }

    /// Whom stage `index` still waits on: nobody once it passed or was denied; else its members
    /// and escalation approvers who have not counted and who may approve (`may_not` says who may
    /// not: the people who asked for the request).
    pub fn waiting_on(&self, index: usize, may_not: impl Fn(&str) -> bool) -> Vec<String> {
        match self.stages.get(index) {
            Some(stage) if matches!(stage.state, StageState::Open | StageState::Waiting) => {
                stage.eligible(|a| may_not(a) || self.counted(a))
            }
            _ => vec![],
        }
    }

    /// "stage 2 of 2 (security, 2 approvals)": how mails, notes and pages name a stage.
    pub fn describe(&self, index: usize) -> String {
        let Some(stage) = self.stages.get(index) else { return format!("stage {}", index + 1) };
        let approvals =
            if stage.quorum == 1 { "1 approval".to_string() } else { format!("{} approvals", stage.quorum) };
        format!("stage {} of {} ({}, {approvals})", index + 1, self.stages.len(), stage.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(who: &str, delegate: Option<&str>) -> StageApproval {
        StageApproval {
            approver: who.into(),
            delegate: delegate.map(str::to_string),
            at: Timestamp::UNIX_EPOCH,
            proof: "link only".into(),
        }
    }

    fn two_stages() -> Approval {
        let mut a = Approval {
            rule: "large".into(),
            auto_approved: false,
            stages: vec![
                Stage::waiting("platform".into(), 1, vec!["ops1@x.org".into(), "ops2@x.org".into()]),
                Stage::waiting(
                    "security".into(),
                    2,
                    vec!["sec1@x.org".into(), "sec2@x.org".into(), "ops2@x.org".into()],
                ),
            ],
        };
        a.open(0, Timestamp::UNIX_EPOCH);
        a
    }

    #[test]
    fn stages_pass_in_order_at_their_quorum() {
        let mut a = two_stages();
        assert_eq!(a.approve(approval("ops1@x.org", None)), Some(Step::NextStage { passed: 0, next: 1 }));
        assert_eq!(a.stages[0].state, StageState::Passed);
        assert_eq!(a.open_stage(), Some(1));
        assert_eq!(a.approve(approval("sec1@x.org", None)), Some(Step::Counted { missing: 1 }));
        assert_eq!(a.approve(approval("sec2@x.org", None)), Some(Step::AllPassed { passed: 1 }));
        assert_eq!(a.open_stage(), None);
        assert_eq!(a.approve(approval("ops2@x.org", None)), None, "nothing open, nothing counted");
    }

    #[test]
    fn whoever_counted_once_is_not_eligible_again() {
        let mut a = two_stages();
        a.approve(approval("ops2@x.org", None));
        let counted = |x: &str| a.counted(x);
        assert_eq!(a.stages[1].eligible(counted), vec!["sec1@x.org".to_string(), "sec2@x.org".to_string()]);
        let mut b = two_stages();
        b.approve(approval("ops1@x.org", Some("ops2@x.org")));
        assert!(b.counted("OPS2@x.org") && b.counted("ops1@x.org"), "the delegate and the member both counted");
    }

    #[test]
    fn a_deny_ends_the_open_stage() {
        let mut a = two_stages();
        a.deny();
        assert_eq!(a.stages[0].state, StageState::Denied);
        assert_eq!(a.open_stage(), None);
        assert_eq!(a.describe(1), "stage 2 of 2 (security, 2 approvals)");
    }
}
