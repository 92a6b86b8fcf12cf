//! A provisioning request's evidence record (DESIGN.md "Audit evidence"): the request as
//! `GET /v1/requests/{id}` shows it, its full history with hashes and whether the chain verifies,
//! each approval with the approver's proof of identity, the mails the store still holds, the
//! ServiceNow item, the servers and the outcome. The JSON form is the record; the HTML page
//! (`page`) shows the same record.

use domain::model::{HistoryEntry, MessageKind, OutboxMessage, Request, RequestId, ServerRecord, Status};
use domain::usecases::audit::Consistent;
use domain::usecases::outbox::MessageView;
use domain::{Error, Result};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

/// What the record can say about mails, in its own words: a delivered mail leaves the store.
pub const MAILS_KEPT: &str = "Every mail Gatehouse sent is an entry of the request's history (actor mail), chained \
    like the rest: recipient, template, subject and the time it went out, listed under sent. Under owed are the mails \
    not delivered yet or given up on (dead), with the time they were queued. Work notes written on the ServiceNow item \
    are history entries too (actor servicenow).";

/// The evidence record of a request read whole (`Services::read_consistent`), ready to be
/// written. Its fields are in alphabetical order, as `serde_json::Value` orders an object's keys,
/// so the record written straight (an export line) and through a `Value` (the evidence route and
/// its page, `to_value`) reads alike.
#[derive(Serialize)]
pub struct Evidence<'a> {
    approvals: Vec<Value>,
    /// The head as stored, what `gatehouse audit verify --anchors` checks anchors against.
    chain: Value,
    chain_break: Value,
    chain_ok: bool,
    decision: Value,
    error: &'a Option<String>,
    history: &'a [HistoryEntry],
    id: &'a RequestId,
    kind: &'static str,
    mails: Value,
    /// The request as GET /v1/requests/{id} shows it; its history is the record's own `history`.
    request: Value,
    retire_at: Option<Timestamp>,
    servers: &'a [ServerRecord],
    servicenow: Value,
    status: Status,
}

impl Evidence<'_> {
    /// The record as a JSON value, for the evidence route and its page.
    pub fn to_value(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| Error::internal("writing an evidence record", e))
    }

    /// The record as one line of JSON, for the export.
    pub fn to_line(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::internal("writing an evidence record", e))
    }
}

pub fn evidence(read: &Consistent) -> Evidence<'_> {
    let (request, history, messages) = (&read.request, &read.history, &read.messages);
    let (chain_ok, chain_break) = match &read.chain {
        Ok(_) => (true, Value::Null),
        Err(broken) => (false, json!({"entry": broken.entry, "reason": broken.reason})),
    };
    let mut shown = intake::request_view(request, &[]);
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("history");
    }
    shown["chain"] = intake::chain_view_of(request, &read.chain);
    shown["messages"] = json!(messages.iter().map(|m| MessageView::of(m, request)).collect::<Vec<_>>());
    Evidence {
        approvals: approvals(request),
        chain: json!({"count": request.chain.count, "hash": Some(&request.chain.hash).filter(|h| !h.is_empty())}),
        chain_break,
        chain_ok,
        decision: json!({
            "decided_by": request.decided_by,
            "proof": request.decision_proof,
            "comment": request.decision_comment,
            "auto_approved": request.approval.as_ref().is_some_and(|a| a.auto_approved),
        }),
        error: &request.error,
        history,
        id: &request.id,
        kind: "request",
        mails: json!({"kept": MAILS_KEPT, "sent": sent_mails(history), "owed": owed_mails(messages)}),
        request: shown,
        retire_at: request.retirement.as_ref().map(|l| l.retire_at),
        servers: &request.servers,
        servicenow: json!({"number": request.source.number, "sys_id": request.source.sys_id}),
        status: request.status,
    }
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
