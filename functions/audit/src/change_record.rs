//! A change record's evidence (DESIGN.md "Audit evidence"): the commit and environment, the
//! ServiceNow change and the GitLab pipeline and merge request it gates, the deploy's result, and
//! the full history with hashes and whether the chain verifies. The history lives in the record
//! itself, so one read gives both.

use domain::changes::{ChangeEvent, ChangeRecord};
use domain::evidence::verify;
use domain::usecases::Services;
use serde_json::{Value, json};

/// The evidence record of `rec`.
pub fn evidence(services: &Services, rec: &ChangeRecord) -> Value {
    let id = rec.key.record_id();
    let chain = verify(&services.config.evidence_key, &id, &rec.history, &rec.chain);
    let (chain_ok, chain_break, unchained) = match &chain {
        Ok(v) => (true, Value::Null, v.unchained),
        Err(broken) => (false, json!({"entry": broken.entry, "reason": broken.reason}), 0),
    };
    let requested_by: Vec<Value> = rec
        .history
        .iter()
        .filter(|e| e.event == ChangeEvent::Requested)
        .map(|e| json!({"actor": e.actor, "user": e.user, "at": e.at, "proof": e.proof}))
        .collect();
    let gate: Vec<Value> = rec
        .history
        .iter()
        .filter(|e| e.event == ChangeEvent::Gate)
        .map(|e| json!({"at": e.at, "answer": e.note}))
        .collect();
    json!({
        "kind": "change",
        "id": id,
        "status": rec.status(),
        "chain_ok": chain_ok,
        "chain_break": chain_break,
        "chain": {"count": rec.chain.count, "hash": rec.chain.hash, "unchained": unchained},
        "servicenow": {"table": "change_request", "number": rec.number, "sys_id": rec.sys_id, "url": rec.url},
        "gitlab": {
            "project_id": rec.key.project_id,
            "project_path": rec.project_path,
            "sha": rec.key.sha,
            "pipeline_id": rec.pipeline_id,
            "pipeline_url": rec.pipeline_url,
            "merge_request_iid": rec.merge_request_iid,
            "note_id": rec.mr_note_id,
            "played_job": rec.played_job,
        },
        "environment": rec.key.environment,
        "title": rec.title,
        "emergency_reason": rec.emergency_reason,
        "planned_start": rec.planned_start,
        "planned_end": rec.planned_end,
        "last_approval": rec.last_approval,
        "deployment": rec.reported,
        "requested_by": requested_by,
        "gate": gate,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "history": rec.history,
    })
}
