//! Requests written straight into the store, for the routes that need one in a given state: an
//! approval link to open, a lease to extend, a request to retire, a dead mail to revive.

use domain::model::{HistoryEntry, Request, RequestId, Status};
use domain::token::{ApprovalToken, TokenRecord};
use gatehouse::serve::Running;

/// A request (seeded) that owes a mail which died after its last attempt (`dead`), or which
/// failed and waits an hour for its next attempt: the request's id and the mail's.
pub async fn seed_owed_message(running: &Running, dead: bool) -> (RequestId, String) {
    let (request, _) = seed(running).await;
    let now = jiff::Timestamp::now();
    let notice =
        domain::mail::MailNotice { to: "ada@example.com".into(), template: domain::mail::MailTemplate::Received };
    let owed = domain::model::OutboxMessage {
        attempts: if dead { 20 } else { 1 },
        last_error: Some("mail relay: refused the recipient".into()),
        dead_at: dead.then_some(now),
        next_attempt_at: now + jiff::SignedDuration::from_hours(1),
        ..domain::model::OutboxMessage::mail(&request.id, now, notice)
    };
    let mut next = request.clone();
    next.touch(now);
    let write =
        domain::ports::Write { messages: vec![owed.clone()], ..domain::ports::Write::new(next, request.version) };
    running.services.store.apply(write).await.unwrap();
    (request.id, owed.id)
}

/// An active request with a lease, straight into the store, with an Extend link for its requester.
pub async fn seed_lease(running: &Running) -> String {
    let mut request = store::contract::sample_request(&RequestId::generate().as_str().replace('-', ""));
    let now = jiff::Timestamp::now();
    let retire_at = now + jiff::SignedDuration::from_hours(24);
    request.status = Status::Active;
    request.due_at = Some(retire_at);
    request.retirement =
        Some(domain::model::Retirement { retire_at, length_secs: 86_400, extensions: 0, reminders_sent: 1 });
    let token = ApprovalToken::generate();
    let record = TokenRecord {
        hash: token.lease_hash(),
        request_id: request.id.clone(),
        approver: request.requester.email.clone(),
        expires_at: retire_at,
        used_at: None,
        stage: 0,
        on_behalf_of: None,
    };
    let history = HistoryEntry {
        at: now,
        actor: "test".into(),
        from: None,
        to: Status::Active,
        note: None,
        proof: None,
        hash: None,
    };
    running.services.store.create(request, history, vec![record], vec![]).await.unwrap();
    token.expose().to_string()
}

/// A request in `status` with no servers, straight into the store.
pub async fn seed_in(running: &Running, status: Status) -> RequestId {
    let mut request = store::contract::sample_request(&RequestId::generate().as_str().replace('-', ""));
    request.status = status;
    request.due_at = None;
    let history = HistoryEntry {
        at: request.created_at,
        actor: "test".into(),
        from: None,
        to: status,
        note: None,
        proof: None,
        hash: None,
    };
    running.services.store.create(request.clone(), history, vec![], vec![]).await.unwrap();
    request.id
}

/// A request pending approval, straight into the store, with an approval link for ops@example.com.
pub async fn seed(running: &Running) -> (Request, String) {
    let request = store::contract::sample_request(&RequestId::generate().as_str().replace('-', ""));
    let (token, record) = store::contract::token_for(&request);
    let history = store::contract::created(&request);
    running.services.store.create(request.clone(), history, vec![record], vec![]).await.unwrap();
    (request, token.expose().to_string())
}
