//! A provisioning request's evidence record (DESIGN.md "Audit evidence"): the request as
//! `GET /v1/requests/{id}` shows it, its full history with hashes and whether the chain verifies,
//! each approval with the approver's proof of identity, the mails the store still holds, the
//! ServiceNow item, the servers and the outcome. The JSON form is the record; the HTML page
//! (`page`) shows the same record.

use domain::model::{HistoryEntry, MessageKind, OutboxMessage, Request};
use domain::usecases::audit::Consistent;
use domain::usecases::outbox::MessageView;
use serde_json::{Value, json};

/// What the record can say about mails, in its own words: a delivered mail leaves the store.
pub const MAILS_KEPT: &str = "Every mail Gatehouse sent is an entry of the request's history (actor mail), chained \
    like the rest: recipient, template, subject and the time it went out, listed under sent. Under owed are the mails \
    not delivered yet or given up on (dead), with the time they were queued. Work notes written on the ServiceNow item \
    are history entries too (actor servicenow).";

/// The evidence record of a request read whole (`Services::read_consistent`).
pub fn evidence(read: &Consistent) -> Value {
    let (request, history, messages) = (&read.request, &read.history, &read.messages);
    let (chain_ok, chain_break) = match &read.chain {
        Ok(_) => (true, Value::Null),
        Err(broken) => (false, json!({"entry": broken.entry, "reason": broken.reason})),
    };
    // The request as GET /v1/requests/{id} shows it; its history is the record's own `history`.
    let mut shown = intake::request_view(request, &[]);
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("history");
    }
    shown["chain"] = intake::chain_view_of(request, &read.chain);
    shown["messages"] = json!(messages.iter().map(|m| MessageView::of(m, request)).collect::<Vec<_>>());
    json!({
        "kind": "request",
        "id": request.id,
        "status": request.status,
        "error": request.error,
        "chain_ok": chain_ok,
        "chain_break": chain_break,
        // The head as stored, what `gatehouse audit verify --anchors` checks anchors against.
        "chain": {"count": request.chain.count, "hash": Some(&request.chain.hash).filter(|h| !h.is_empty())},
        "servicenow": {"number": request.source.number, "sys_id": request.source.sys_id},
        "approvals": approvals(request),
        "decision": {
            "decided_by": request.decided_by,
            "proof": request.decision_proof,
            "comment": request.decision_comment,
            "auto_approved": request.approval.as_ref().is_some_and(|a| a.auto_approved),
        },
        "servers": request.servers,
        "retire_at": request.retirement.as_ref().map(|l| l.retire_at),
        "mails": {"kept": MAILS_KEPT, "sent": sent_mails(history), "owed": owed_mails(messages)},
        "history": history,
        "request": shown,
    })
}

/// Every approval counted in a stage of the request's rule: who, for whom (a delegate), when, in
/// which stage, under which rule, and how they proved who they were (the sign-in: issuer,
/// subject and methods; or "link only").
fn approvals(request: &Request) -> Vec<Value> {
    let Some(approval) = &request.approval else { return vec![] };
    approval
        .stages
        .iter()
        .enumerate()
        .flat_map(|(i, stage)| {
            stage.approved_by.iter().map(move |a| {
                json!({
                    "stage": i,
                    "group": stage.group,
                    "rule": approval.rule,
                    "approver": a.approver,
                    "delegate": a.delegate,
                    "at": a.at,
                    "proof": a.proof,
                })
            })
        })
        .collect()
}

/// The mails sent, from the history entries that record them (`HistoryEntry::mail_sent`):
/// recipient, template, subject, when.
fn sent_mails(history: &[HistoryEntry]) -> Vec<Value> {
    history
        .iter()
        .filter(|e| e.is_mail())
        .filter_map(|e| {
            let (template, rest) = e.note.as_deref()?.strip_prefix("mail ")?.split_once(" to ")?;
            let (to, subject) = rest.split_once(": ")?;
            Some(json!({"to": to, "template": template, "subject": subject, "sent_at": e.at}))
        })
        .collect()
}

/// The mails among `messages` (owed or dead): recipient, template, when queued, where they stand.
/// Never a link: an approval mail's link id stays out.
fn owed_mails(messages: &[OutboxMessage]) -> Vec<Value> {
    messages
        .iter()
        .filter_map(|m| {
            let MessageKind::Mail(notice) = &m.kind else { return None };
            let template = serde_json::to_value(&notice.template).ok()?.get("template").cloned().unwrap_or(Value::Null);
            Some(json!({
                "id": m.id,
                "to": notice.to,
                "template": template,
                "queued_at": m.created_at,
                "status": m.status(),
                "attempts": m.attempts,
                "last_error": m.last_error,
            }))
        })
        .collect()
}
