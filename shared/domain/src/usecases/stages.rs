//! Approval stages on requests (DESIGN.md "Approval policy"): routing a request by the policy, the
//! links a stage's opening issues (one per approver, and one per active delegate), when a pending
//! request is next due (reminder, escalation, expiry) and the escalation itself.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Services;
use crate::approvals::policy::{RequestFacts, Route};
use crate::approvals::{Approval, Stage};
use crate::error::{Error, Result};
use crate::mail::{LinkAsk, MailNotice, MailTemplate};
use crate::model::{HistoryEntry, OutboxMessage, Request, RequestId, Status};
use crate::ports::Write;
use crate::token::TokenRecord;

/// Someone a stage asks: an approver, or a delegate deciding for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invite {
    pub to: String,
    pub on_behalf_of: Option<String>,
}

impl Invite {
    fn describe(&self) -> String {
        match &self.on_behalf_of {
            Some(member) => format!("{} (for {member})", self.to),
            None => self.to.clone(),
        }
    }
}

/// The invites as a person reads them: "a, b (for c)".
pub(crate) fn names(invites: &[Invite]) -> String {
    invites.iter().map(Invite::describe).collect::<Vec<_>>().join(", ")
}

/// A request's approval progress; a request recorded before stages existed had one stage of its
/// `approvers`, quorum 1, open while it was pending.
pub(crate) fn progress_of(request: &Request) -> Approval {
    request.approval.clone().unwrap_or_else(|| {
        let mut approval = Approval::single("default", "approvers", request.approvers.clone());
        if request.status == Status::PendingApproval {
            approval.open(0, request.created_at);
        }
        approval
    })
}

/// When a pending request's half-time reminder is due.
pub(crate) fn reminder_at(request: &Request) -> Timestamp {
    let half = request.expires_at.duration_since(request.created_at) / 2;
    request.created_at.saturating_add(half).unwrap_or(request.expires_at)
}

/// The UTC calendar day of `at`: delegations run by whole days.
pub(crate) fn day_of(at: Timestamp) -> jiff::civil::Date {
    at.to_zoned(TimeZone::UTC).date()
}

impl Services {
    /// The rule and stages for a request: the policy file's first matching rule, or without one
    /// the cloud's approvers in one stage, quorum 1.
    pub(crate) fn route(&self, facts: &RequestFacts<'_>) -> Route {
        match &self.config.approval_policy {
            Some(policy) => policy.route(facts),
            None => Route::single("default", "approvers", self.config.approvers.for_cloud(facts.cloud).to_vec()),
        }
    }

    /// Whether `delegate` may decide for `member` at `at`.
    pub(crate) fn delegation_active(&self, member: &str, delegate: &str, at: Timestamp) -> bool {
        self.config.approval_policy.as_ref().is_some_and(|p| p.delegation_active(member, delegate, day_of(at)))
    }

    /// Whom `people` of stage `index` means now: each of them who has not counted yet, and each
    /// active delegate of one who may decide this request. Someone who asked for the request is
    /// still sent their link (its page tells them another approver must decide), but nobody acts
    /// for them.
    pub(crate) fn invites(
        &self,
        request: &Request,
        approval: &Approval,
        people: &[String],
        at: Timestamp,
    ) -> Vec<Invite> {
        let mut out: Vec<Invite> = Vec::new();
        for member in people.iter().filter(|m| !approval.counted(m)) {
            out.push(Invite { to: member.clone(), on_behalf_of: None });
            if request.is_requested_by(member) {
                continue;
            }
            let delegates = match &self.config.approval_policy {
                Some(policy) => policy.delegates_of(member, day_of(at)),
                None => vec![],
            };
            for delegate in delegates {
                if !request.is_requested_by(&delegate) && !approval.counted(&delegate) {
                    out.push(Invite { to: delegate, on_behalf_of: Some(member.clone()) });
                }
            }
        }
        out
    }

    /// Stage `index`'s open links for `invites`: the token records and the mails carrying them.
    pub(crate) fn stage_links(
        &self,
        request: &Request,
        index: usize,
        invites: &[Invite],
        at: Timestamp,
        reminder: bool,
        escalated: bool,
    ) -> (Vec<TokenRecord>, Vec<OutboxMessage>) {
        invites
            .iter()
            .map(|invite| {
                let link_id = uuid::Uuid::new_v4().simple().to_string();
                let record = TokenRecord {
                    hash: self.config.link_key.token_for(&link_id).hash(),
                    request_id: request.id.clone(),
                    approver: invite.to.clone(),
                    expires_at: request.expires_at,
                    used_at: None,
                    stage: index as u32,
                    on_behalf_of: invite.on_behalf_of.clone(),
                };
                let ask = LinkAsk { stage: index as u32, on_behalf_of: invite.on_behalf_of.clone(), escalated };
                let template = if reminder {
                    MailTemplate::ApprovalReminder { link_id, ask }
                } else {
                    MailTemplate::ApprovalRequest { link_id, ask }
                };
                (record, OutboxMessage::mail(&request.id, at, MailNotice { to: invite.to.clone(), template }))
            })
            .unzip()
    }

    /// When a pending request next needs the sweeper: its half-time reminder (once), the open
    /// stage's escalation (once per stage), or its expiry.
    pub(crate) fn pending_due(&self, request: &Request) -> Timestamp {
        let mut due = request.expires_at;
        if !request.reminded {
            due = due.min(reminder_at(request));
        }
        if let Some(at) = self.escalation_at(request) {
            due = due.min(at);
        }
        due
    }

    /// When the open stage escalates, if the policy escalates and it has not yet.
    fn escalation_at(&self, request: &Request) -> Option<Timestamp> {
        let escalation = self.config.approval_policy.as_ref()?.escalation()?;
        let approval = request.approval.as_ref()?;
        let stage = &approval.stages[approval.open_stage()?];
        if stage.escalated_at.is_some() {
            return None;
        }
        stage.opened_at?.checked_add(escalation.after).ok()
    }

    /// Escalates the open stage of a pending request if it is due: the escalation group's members
    /// who are not asked already get links (they count toward the stage's quorum), once. `false`
    /// when there was nothing to escalate.
    pub(crate) async fn escalate(&self, id: &RequestId, now: Timestamp) -> Result<bool> {
        for _ in 0..4 {
            let Some(mut request) = self.store.get(id).await? else { return Ok(false) };
            let due = self.escalation_at(&request).is_some_and(|at| at <= now);
            let escalation = self.config.approval_policy.as_ref().and_then(|p| p.escalation());
            let (Some(escalation), true, Status::PendingApproval) = (escalation, due, request.status) else {
                return Ok(false);
            };
            let mut approval = progress_of(&request);
            let Some(index) = approval.open_stage() else { return Ok(false) };
            let stage: &Stage = &approval.stages[index];
            let new: Vec<String> = escalation
                .members
                .iter()
                .filter(|m| !stage.members.iter().any(|s| crate::identity::same_person(s, m)))
                .filter(|m| !request.is_requested_by(m) && !approval.counted(m))
                .cloned()
                .collect();
            let invites: Vec<Invite> = new.iter().map(|m| Invite { to: m.clone(), on_behalf_of: None }).collect();
            let stage = &mut approval.stages[index];
            stage.escalated_at = Some(now);
            stage.escalated_to = new;
            let open_since = stage.opened_at.unwrap_or(request.created_at);
            let what = approval.describe(index);
            let text = if invites.is_empty() {
                format!(
                    "{what} open since {}: escalation to {} found nobody else who may approve.",
                    open_since.strftime("%Y-%m-%d %H:%M UTC"),
                    escalation.group
                )
            } else {
                format!(
                    "{what} open since {}: escalated to {} ({}), who may approve it too.",
                    open_since.strftime("%Y-%m-%d %H:%M UTC"),
                    escalation.group,
                    names(&invites)
                )
            };
            let expected = request.version;
            request.approval = Some(approval);
            request.touch(now);
            request.due_at = Some(self.pending_due(&request));
            let (tokens, mut messages) = self.stage_links(&request, index, &invites, now, false, true);
            messages.extend(self.work_note(&request, now, text.clone(), None));
            let rule = request.approval.as_ref().map(|a| a.rule.clone()).unwrap_or_default();
            let history = HistoryEntry::unchanged(now, &format!("policy:{rule}"), Status::PendingApproval, text);
            let write = Write { history: vec![history], new_tokens: tokens, messages, ..Write::new(request, expected) };
            match self.store.apply(write).await {
                Ok(_) => return Ok(true),
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}
