//! What the gate writes down (DESIGN.md "Audit evidence"): each change record's history. A step
//! that must not be lost is written with `amend`, which re-reads the record and applies the step
//! again when another writer got there first; the gate's answer is recorded whenever it differs
//! from the last one recorded.

use jiff::Timestamp;

use super::gate::{ChangeAnswer, ChangeGate, GateDecision};
use crate::changes::{ChangeEntry, ChangeEvent, ChangeKey, ChangeRecord};
use crate::error::{Error, Result};
use crate::evidence::{ChainHead, anchored};

/// How often `amend` re-reads a record another writer moved: a handful of writers at once is
/// already far more than one change sees.
const AMEND_ATTEMPTS: usize = 10;

/// The gate's answer as its history entry says it.
fn answer_note(answer: &ChangeAnswer) -> String {
    let decision = match answer.decision {
        GateDecision::Proceed => "proceed",
        GateDecision::Wait => "wait",
        GateDecision::Blocked => "blocked",
    };
    format!(
        "{decision}: {} (change {}: approval {}, state {})",
        answer.reason, answer.number, answer.approval, answer.state.display
    )
}

/// A work note for the change: `text`, then its `marker` (so the adapter adds none after), then
/// the record's head as stored (`gatehouse-chain: …`), which thereby ends the note (an anchor).
pub(crate) fn work_note(text: &str, marker: &str, head: &ChainHead) -> String {
    anchored(&format!("{}\n{marker}", text.trim_end()), head)
}

/// Appends the gate's answer to `rec`'s history when it is not the last answer recorded; answers
/// whether it did.
pub(crate) fn record_answer(rec: &mut ChangeRecord, answer: &ChangeAnswer, now: Timestamp) -> bool {
    let note = answer_note(answer);
    let last = rec.history.iter().rev().find(|e| e.event == ChangeEvent::Gate);
    if last.is_some_and(|e| e.note == note) {
        return false;
    }
    rec.history.push(ChangeEntry::gate(now, ChangeEvent::Gate, note));
    true
}

impl ChangeGate {
    /// Applies `step` to the stored record of `key` and writes it, reading again and re-applying
    /// when another writer moved the record first. Answers the record as written.
    pub(crate) async fn amend(&self, key: &ChangeKey, step: impl Fn(&mut ChangeRecord)) -> Result<ChangeRecord> {
        for _ in 0..AMEND_ATTEMPTS {
            let mut rec = self
                .records
                .get_change(key)
                .await?
                .ok_or_else(|| Error::NotFound(format!("change for {}", key.correlation_id())))?;
            let expected = rec.version;
            step(&mut rec);
            rec.version += 1;
            match self.records.put_change(&rec, Some(expected)).await {
                Ok(()) => return Ok(rec),
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::ChangeKey;
    use crate::policy::WindowVerdict;
    use crate::usecases::gate::StateView;

    fn answer(decision: GateDecision, reason: &str) -> ChangeAnswer {
        ChangeAnswer {
            number: "CHG0030001".into(),
            sys_id: "a".repeat(32),
            url: "https://example.service-now.com/x".into(),
            approval: "requested".into(),
            state: StateView { value: "-4".into(), display: "Assess".into() },
            decision,
            reason: reason.into(),
            window: WindowVerdict { open: true, next_open_at: None, rule: "always".into(), unnamed: false },
        }
    }

    fn record() -> ChangeRecord {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let key = ChangeKey { project_id: 1, sha: "a".repeat(40), environment: "production".into() };
        serde_json::from_value(serde_json::json!({
            "key": key, "version": 1, "sys_id": "", "number": "", "url": "", "project_path": "acme/shop",
            "pipeline_id": 1, "pipeline_url": "https://gitlab.example.com/p/1", "job_id": null,
            "merge_request_iid": null, "mr_note_id": null, "title": "t", "planned_start": null,
            "planned_end": null, "last_approval": null, "played_job": null, "reported": null,
            "note_summary": null, "created_at": now, "updated_at": now
        }))
        .unwrap()
    }

    #[test]
    fn an_answer_is_recorded_once_until_it_changes() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut rec = record();
        assert!(rec.history.is_empty(), "a record from before history has none");
        let waiting = answer(GateDecision::Wait, "waiting for approval (state Assess)");
        assert!(record_answer(&mut rec, &waiting, now));
        assert!(!record_answer(&mut rec, &waiting, now));
        assert!(record_answer(&mut rec, &answer(GateDecision::Proceed, "approved"), now));
        assert!(record_answer(&mut rec, &waiting, now), "back to waiting is a new answer");
        assert_eq!(rec.history.len(), 3);
        assert_eq!(rec.history[1].note, "proceed: approved (change CHG0030001: approval requested, state Assess)");
        assert!(rec.history.iter().all(|e| e.actor == "gatehouse" && e.hash.is_none()));
    }
}
