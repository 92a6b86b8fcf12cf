//! The one note Gatehouse keeps on a change's merge request: what the gate says now, edited
//! only when that changes, and ending with the change record's head as stored (an anchor outside
//! Gatehouse, DESIGN.md "Audit evidence").

use super::gate::{ChangeAnswer, ChangeGate, GateDecision};
use crate::changes::ChangeRecord;
use crate::evidence::anchored;

fn note_body(rec: &ChangeRecord, answer: &ChangeAnswer) -> String {
    let short = &rec.key.sha[..rec.key.sha.len().min(8)];
    // Once the deploy was reported, the gate's "blocked: already closed" would mislead a reader.
    let gate = match (&rec.reported, answer.decision) {
        (Some(result), _) => format!("🏁 done: the deployment was reported ({result})"),
        (None, GateDecision::Proceed) => format!("✅ proceed: {}", answer.reason),
        (None, GateDecision::Wait) => format!("⏳ wait: {}", answer.reason),
        (None, GateDecision::Blocked) => format!("⛔ blocked: {}", answer.reason),
    };
    let mut body = format!(
        "{}\n**Change [{}]({})** gates the deploy of `{short}` to `{}`.\n\n| | |\n|---|---|\n| Approval | {} |\n| State | {} |\n| Gate | {gate} |\n| Pipeline | [#{}]({}) |\n",
        rec.key.note_marker(),
        answer.number,
        answer.url,
        rec.key.environment,
        answer.approval,
        answer.state.display,
        rec.pipeline_id,
        rec.pipeline_url,
    );
    if let Some(reason) = &rec.emergency_reason {
        body.push_str(&format!("| Type | 🚨 **emergency**: {reason} |\n"));
    }
    if let Some(result) = &rec.reported {
        body.push_str(&format!("| Deployment | {result} |\n"));
    }
    body.push_str("\n_Kept up to date by Gatehouse._");
    body
}

impl ChangeGate {
    /// Edits (or first posts) the MR note when what it shows changed. Best effort: the gate's
    /// answer never waits on GitLab being up.
    pub(crate) async fn refresh_note(&self, rec: &mut ChangeRecord, answer: &ChangeAnswer) -> bool {
        let Some(iid) = rec.merge_request_iid else { return false };
        // Ends with the record's head as stored (an anchor outside Gatehouse).
        let body = anchored(&note_body(rec, answer), &rec.chain);
        let summary = format!(
            "{}|{}|{:?}|{}|{:?}",
            answer.approval, answer.state.value, answer.decision, answer.reason, rec.reported
        );
        if rec.note_summary.as_deref() == Some(summary.as_str()) {
            return false;
        }
        match self.code.upsert_note(rec.key.project_id, iid, &rec.key.note_marker(), &body).await {
            Ok(id) => {
                rec.mr_note_id = Some(id);
                rec.note_summary = Some(summary);
                true
            }
            Err(e) => {
                tracing::warn!(change = %rec.number, error = %e.chain(), "could not update the MR note");
                false
            }
        }
    }
}
