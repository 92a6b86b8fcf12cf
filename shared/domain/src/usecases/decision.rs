//! What one approver's decision writes: a deny ends the request; an approval counts in the open
//! stage, and when that reaches its quorum the stage passes and the next one opens in the same
//! write (its links with it), or, after the last stage, the request is approved.

use jiff::Timestamp;

use super::Services;
use super::approval::Decision;
use super::stages::{names, progress_of};
use crate::approvals::StageApproval;
use crate::approvals::progress::Step;
use crate::error::Result;
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{HistoryEntry, OutboxMessage, Request, Status};
use crate::ports::Write;
use crate::token::TokenRecord;

impl Services {
    /// The write recording `decision` through the link `record` (already checked open), and a
    /// sentence for the decider saying what it did.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_decision(
        &self,
        mut request: Request,
        expected: u64,
        record: &TokenRecord,
        decision: Decision,
        comment: Option<String>,
        proof: String,
        now: Timestamp,
    ) -> Result<(Write, String)> {
        let mut approval = progress_of(&request);
        let index = record.stage as usize;
        let stage = approval.describe(index);
        let counted_as = record.on_behalf_of.clone().unwrap_or_else(|| record.approver.clone());
        // "ops3@… for ops1@…": the history says for whom a delegate decided.
        let who = match &record.on_behalf_of {
            Some(member) => format!("{} for {member} (delegation)", record.approver),
            None => record.approver.clone(),
        };
        let said = comment.as_deref().map(|c| format!(" Comment: {c}")).unwrap_or_default();
        let said = format!(" ({proof}).{said}");
        let multi = approval.is_staged();
        let in_stage = if multi { format!(" for {stage}") } else { String::new() };

        if decision == Decision::Deny {
            approval.deny();
            request.approval = Some(approval);
            let mut history = request.transition(Status::Denied, &record.approver, comment.clone(), now)?;
            history.proof = Some(proof.clone());
            if record.on_behalf_of.is_some() || multi {
                history.note = Some(format!("denied by {who}{in_stage}{}", note_tail(&comment)));
            }
            request.decided_by = Some(record.approver.clone());
            request.decision_proof = Some(proof);
            request.decision_comment = comment;
            request.due_at = None;
            let mut messages = vec![requester_mail(&request, now, MailTemplate::Denied)];
            messages.extend(self.work_note(
                &request,
                now,
                format!("Denied in Gatehouse by {who}{in_stage}{said}"),
                Some(false),
            ));
            let summary = format!("Recorded: {} is denied.", request.source.number);
            let write = Write {
                history: vec![history],
                use_token: Some(record.hash.clone()),
                messages,
                ..Write::new(request, expected)
            };
            return Ok((write, summary));
        }

        let step = approval.approve(StageApproval {
            approver: counted_as,
            delegate: record.on_behalf_of.as_ref().map(|_| record.approver.clone()),
            at: now,
            proof: proof.clone(),
        });
        let rule = approval.rule.clone();
        request.approval = Some(approval);
        let mut history = Vec::new();
        let mut new_tokens = Vec::new();
        let mut messages = Vec::new();
        let note_text;
        let summary;
        match step {
            Some(Step::AllPassed { .. }) => {
                let mut entry = request.transition(Status::Approved, &record.approver, comment.clone(), now)?;
                entry.proof = Some(proof.clone());
                if record.on_behalf_of.is_some() || multi {
                    let last = if multi { format!("; every stage of rule {rule} passed") } else { String::new() };
                    entry.note = Some(format!("approved by {who}{in_stage}{last}{}", note_tail(&comment)));
                }
                history.push(entry);
                request.decided_by = Some(record.approver.clone());
                request.decision_proof = Some(proof);
                request.decision_comment = comment.clone();
                // Due at once: if the signal to provision is lost, the sweeper starts it.
                request.due_at = Some(now);
                messages.push(requester_mail(&request, now, MailTemplate::Approved));
                note_text = format!("Approved in Gatehouse by {who}{in_stage}{said}");
                summary = format!("Recorded: {} is approved.", request.source.number);
            }
            Some(Step::Counted { missing }) => {
                let more =
                    if missing == 1 { "1 more approval".to_string() } else { format!("{missing} more approvals") };
                history.push(in_place(now, &record.approver, Some(proof.clone()), {
                    format!("approved by {who} for {stage}; {more} needed{}", note_tail(&comment))
                }));
                request.touch(now);
                note_text = format!("Approved in Gatehouse by {who} for {stage}{said} {more} needed.");
                summary = format!("Your approval for {stage} is recorded; {more} needed.");
            }
            Some(Step::NextStage { passed, next }) => {
                let approval = request.approval.clone().unwrap_or_else(|| progress_of(&request));
                let passed_text = approval.describe(passed);
                let next_text = approval.describe(next);
                history.push(in_place(now, &record.approver, Some(proof.clone()), {
                    format!("approved by {who} for {passed_text}{}", note_tail(&comment))
                }));
                let invites = self.invites(&request, &approval, &approval.stages[next].members, now);
                history.push(in_place(now, &format!("policy:{rule}"), None, {
                    format!("{passed_text} passed; {next_text} asked of {}", names(&invites))
                }));
                request.touch(now);
                request.due_at = Some(self.pending_due(&request));
                let (tokens, links) = self.stage_links(&request, next, &invites, now, false, false);
                new_tokens = tokens;
                messages.extend(links);
                note_text = format!(
                    "Approved in Gatehouse by {who} for {passed_text}{said} That stage passed; {next_text} is asked of {}.",
                    names(&invites)
                );
                summary = format!("Your approval is recorded: {passed_text} passed, and {next_text} is now asked.");
            }
            // The link was checked open just before, so its stage is open; never a panic.
            None => return Err(crate::error::Error::Conflict("no approval stage of this request is open".into())),
        }
        messages.extend(self.work_note(&request, now, note_text, None));
        let write = Write {
            history,
            use_token: Some(record.hash.clone()),
            new_tokens,
            messages,
            ..Write::new(request, expected)
        };
        Ok((write, summary))
    }
}

fn note_tail(comment: &Option<String>) -> String {
    comment.as_deref().map(|c| format!(". Comment: {c}")).unwrap_or_default()
}

fn requester_mail(request: &Request, at: Timestamp, template: MailTemplate) -> OutboxMessage {
    OutboxMessage::mail(&request.id, at, MailNotice { to: request.requester.email.clone(), template })
}

/// A history entry for a step that leaves the request pending: an approval counted, a stage passed.
fn in_place(at: Timestamp, actor: &str, proof: Option<String>, note: String) -> HistoryEntry {
    HistoryEntry { proof, ..HistoryEntry::unchanged(at, actor, Status::PendingApproval, note) }
}
