//! The sender of the transactional outbox: delivers what transitions owe, removes what went out,
//! schedules a retry for what did not, and after the last attempt allowed keeps the message as
//! dead, shown on its request until someone revives it. An outage delays a message; it never loses
//! one. No message goes out twice: a sender claims each message with a conditional write on the
//! message itself before it sends (never trusting the index it found it in, which may lag), and
//! removes it conditioned on that claim.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::Services;
use crate::error::{Error, Result};
use crate::evidence::{ChainHead, anchored};
use crate::model::{
    HistoryEntry, MessageClaim, MessageKind, MessageStatus, OutboxMessage, Request, RequestId, WorkNote,
};
use crate::ports::{Itsm, Mailer, Store};

/// How long a claim holds. Far longer than one delivery may take (the mail and ServiceNow clients
/// time out within seconds, and a Lambda sender is stopped after a minute), so a claim runs out
/// only when its sender is gone; then another sender may take the message over.
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_mins(5);

/// Owed messages read per round of a sweep.
const BATCH: usize = 100;

/// The longest `last_error` kept, in characters.
const MAX_ERROR_CHARS: usize = 300;

/// Seconds before the next attempt: 1, 2, 4, … capped at a minute.
pub fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_secs(1i64 << attempts.min(6))
}

/// One owed message, by the keys a stream record (or an index entry) names it with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub request_id: RequestId,
    pub id: String,
}

impl MessageKey {
    pub fn of(message: &OutboxMessage) -> Self {
        MessageKey { request_id: message.request_id.clone(), id: message.id.clone() }
    }
}

/// What one delivery run did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    /// Attempts that failed and will be retried.
    pub failed: usize,
    /// Attempts that failed for the last time allowed: those messages are dead now.
    pub dead: usize,
    /// Messages seen that could not be claimed: sent, dead or not due meanwhile, or held by
    /// another sender (a lagging index shows such messages too).
    pub skipped: usize,
}

/// An owed message as `GET /v1/requests/{id}` lists it: no content, no links, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    pub id: String,
    /// `mail` or `work_note`.
    pub kind: &'static str,
    /// The recipient's address; for a work note, the request item's number.
    pub to: String,
    pub status: MessageStatus,
    pub attempts: u32,
    /// Our own words about the last failure (an upstream's raw answer only goes to the log).
    pub last_error: Option<String>,
}

impl MessageView {
    pub fn of(message: &OutboxMessage, request: &Request) -> Self {
        let (kind, to) = match &message.kind {
            MessageKind::Mail(notice) => ("mail", notice.to.clone()),
            MessageKind::WorkNote(_) => ("work_note", request.source.number.clone()),
        };
        MessageView {
            id: message.id.clone(),
            kind,
            to,
            status: message.status(),
            attempts: message.attempts,
            last_error: message.last_error.clone(),
        }
    }
}

fn shortened(text: String) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What delivering owed messages needs, and nothing more: the store and how many attempts a
/// message gets. `Services` hands one out; the store contract drives one directly.
#[derive(Clone)]
pub struct OutboxSender {
    pub store: Arc<dyn Store>,
    pub max_attempts: u32,
}

impl Services {
    pub fn outbox_sender(&self) -> OutboxSender {
        OutboxSender { store: self.store.clone(), max_attempts: self.config.message_max_attempts }
    }

    /// `OutboxSender::deliver_owed` on this store.
    pub async fn deliver_owed(&self, mailer: &dyn Mailer, itsm: Option<&dyn Itsm>) -> Result<Delivery> {
        self.outbox_sender().deliver_owed(mailer, itsm).await
    }

    /// `OutboxSender::deliver_owed_before` on this store.
    pub async fn deliver_owed_before(
        &self,
        mailer: &dyn Mailer,
        itsm: Option<&dyn Itsm>,
        deadline: std::time::Instant,
    ) -> Result<Delivery> {
        self.outbox_sender().deliver_owed_before(mailer, itsm, Some(deadline)).await
    }

    /// `OutboxSender::deliver_messages` on this store.
    pub async fn deliver_messages(
        &self,
        keys: &[MessageKey],
        mailer: &dyn Mailer,
        itsm: Option<&dyn Itsm>,
    ) -> Result<Delivery> {
        self.outbox_sender().deliver_messages(keys, mailer, itsm).await
    }
}

impl OutboxSender {
    /// The sweep: delivers every owed message that is due, round after round, until a round
    /// claims nothing. Each message is tried at most once per run, so a run ends even while
    /// messages keep failing; what it leaves (held by another sender, or not yet visible in a
    /// lagging index) the next run takes. A store failure on one message is logged and the others
    /// go on; only a failing read of the due list fails the run.
    pub async fn deliver_owed(&self, mailer: &dyn Mailer, itsm: Option<&dyn Itsm>) -> Result<Delivery> {
        self.deliver_owed_before(mailer, itsm, None).await
    }

    /// `deliver_owed`, claiming nothing new once `deadline` has passed: a sweep with a time limit
    /// (a Lambda invocation) ends between messages, never between a send and its settling.
    pub async fn deliver_owed_before(
        &self,
        mailer: &dyn Mailer,
        itsm: Option<&dyn Itsm>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Delivery> {
        let mut outcome = Delivery::default();
        let mut tried = HashSet::new();
        let past = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
        loop {
            let due = self.store.messages_due(Timestamp::now(), BATCH).await?;
            let mut claimed = false;
            for message in due {
                let key = MessageKey::of(&message);
                if tried.contains(&key) {
                    continue;
                }
                if past() {
                    tracing::info!(sent = outcome.sent, "the sweep's time is up; the next one delivers the rest");
                    return Ok(outcome);
                }
                match self.deliver_one(&key, mailer, itsm, &mut outcome).await {
                    Ok(false) => {}
                    Ok(true) => {
                        claimed = true;
                        tried.insert(key);
                    }
                    Err(e) => {
                        tracing::error!(message = %key.id, request = %key.request_id, error = %e.chain(), "delivering an owed message failed; the next sweep tries again");
                        tried.insert(key);
                    }
                }
            }
            if !claimed {
                return Ok(outcome);
            }
        }
    }

    /// Delivers just these messages (a stream batch's), each if it is still owed and due.
    pub async fn deliver_messages(
        &self,
        keys: &[MessageKey],
        mailer: &dyn Mailer,
        itsm: Option<&dyn Itsm>,
    ) -> Result<Delivery> {
        let mut outcome = Delivery::default();
        let mut seen = HashSet::new();
        let mut failure = None;
        for key in keys.iter().filter(|k| seen.insert(*k)) {
            // The others go on; the batch then fails, so it is delivered again (its claims make
            // that safe: what went out is gone, what is held is skipped).
            if let Err(e) = self.deliver_one(key, mailer, itsm, &mut outcome).await {
                tracing::error!(message = %key.id, request = %key.request_id, error = %e.chain(), "delivering an owed message failed");
                failure = Some(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Claims, sends and settles one message. Answers whether this sender claimed it.
    async fn deliver_one(
        &self,
        key: &MessageKey,
        mailer: &dyn Mailer,
        itsm: Option<&dyn Itsm>,
        outcome: &mut Delivery,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let claim = MessageClaim::new(now, CLAIM_LEASE);
        // What the claim answers is the message as stored now, not as the index showed it.
        let Some(message) = self.store.claim_message(&key.request_id, &key.id, &claim, now).await? else {
            outcome.skipped += 1;
            return Ok(false);
        };
        let Some(request) = self.store.get(&message.request_id).await? else {
            tracing::error!(message = %message.id, "owed message refers to a missing request; dropping it");
            settled(&message, "its removal", self.store.message_sent(&message, &claim, None).await)?;
            return Ok(true);
        };
        let result = match (&message.kind, itsm) {
            (MessageKind::Mail(notice), _) => mailer.send(notice, &request).await.map(Some),
            // The marker is unique per message: a retried write-back finds its note already there.
            (MessageKind::WorkNote(note), Some(itsm)) => {
                let marker = format!("gatehouse:{}", message.id);
                itsm.write_back(&marker, &anchored_note(note, &marker, &request.chain), &request).await.map(|()| None)
            }
            // Without a configured ITSM the note has nowhere to go: recorded as delivered.
            (MessageKind::WorkNote(_), None) => Ok(None),
        };
        match result {
            Ok(sent) => {
                let note = match (&message.kind, sent) {
                    (MessageKind::Mail(notice), Some(sent)) => Some(HistoryEntry::mail_sent(
                        Timestamp::now(),
                        request.status,
                        &notice.to,
                        notice.template.name(),
                        &sent.subject,
                    )),
                    _ => written_note(&message, &request),
                };
                settled(&message, "its delivery", self.store.message_sent(&message, &claim, note).await)?;
                outcome.sent += 1;
            }
            Err(e) => {
                crate::metrics::upstream_error(&e);
                let failed = self.after_failure(message, &e, Timestamp::now());
                if failed.dead_at.is_some() {
                    tracing::error!(message = %failed.id, request = %request.id, attempts = failed.attempts, error = %e.chain(), "delivery failed for the last time allowed; the message is dead until someone retries it");
                    outcome.dead += 1;
                } else {
                    tracing::warn!(message = %failed.id, request = %request.id, attempts = failed.attempts, error = %e.chain(), "delivery failed; will retry");
                    outcome.failed += 1;
                }
                settled(&failed, "its failed attempt", self.store.message_failed(&failed, &claim).await)?;
            }
        }
        Ok(true)
    }

    /// The message after a failed attempt: retried after the backoff, or dead after the last
    /// attempt allowed.
    fn after_failure(&self, mut message: OutboxMessage, error: &Error, now: Timestamp) -> OutboxMessage {
        message.attempts += 1;
        message.last_error = Some(shortened(error.to_string()));
        if message.attempts >= self.max_attempts {
            message.dead_at = Some(now);
        } else {
            message.next_attempt_at = now + backoff(message.attempts - 1);
        }
        message
    }
}

impl Services {
    /// Revives a dead message: pending again, due now, with all its attempts.
    pub async fn retry_message(&self, id: &RequestId, message_id: &str) -> Result<MessageView> {
        // Message ids are UUIDs as `OutboxMessage::new` writes them; anything else names none and
        // never reaches the store.
        if uuid::Uuid::parse_str(message_id).map_or(true, |u| u.hyphenated().to_string() != message_id) {
            return Err(Error::NotFound(format!("message {message_id:?}")));
        }
        let request = self.store.get(id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        let message = self
            .store
            .messages_of(id)
            .await?
            .into_iter()
            .find(|m| m.id == message_id)
            .ok_or_else(|| Error::NotFound(format!("message {message_id} of request {id}")))?;
        if message.dead_at.is_none() {
            return Err(Error::Conflict(format!(
                "message {message_id} is not dead: it is still being tried ({} of {} attempts made)",
                message.attempts, self.config.message_max_attempts
            )));
        }
        let revived = OutboxMessage { dead_at: None, attempts: 0, next_attempt_at: Timestamp::now(), ..message };
        match self.store.revive_message(&revived).await {
            Ok(()) => {}
            Err(Error::Stale) => return Err(Error::Conflict(format!("message {message_id} was revived meanwhile"))),
            Err(e) => return Err(e),
        }
        tracing::info!(message = %revived.id, request = %id, "dead message revived");
        self.signals.messages_owed();
        Ok(MessageView::of(&revived, &request))
    }
}

/// The work note as written on the item: its text, then its marker on a line of its own (where the
/// ITSM adapter would put it, so a retried write still finds the note by its marker whatever head
/// it carried), then the request's head as it stands now, just before the write, as the last line
/// (DESIGN.md "Audit evidence": anchored outside Gatehouse). A request not chained yet gets no
/// anchor.
fn anchored_note(note: &WorkNote, marker: &str, head: &ChainHead) -> WorkNote {
    let text = format!("{}\n{marker}", note.text.trim_end());
    WorkNote { text: anchored(&text, head), close: note.close }
}

/// Write-backs show in the request's history; mails are seen in the outbox.
fn written_note(message: &OutboxMessage, request: &Request) -> Option<HistoryEntry> {
    let MessageKind::WorkNote(note) = &message.kind else { return None };
    let closed = match note.close {
        Some(true) => "; closed complete",
        Some(false) => "; closed incomplete",
        None => "",
    };
    Some(HistoryEntry {
        at: Timestamp::now(),
        actor: "servicenow".into(),
        from: Some(request.status),
        to: request.status,
        note: Some(format!("work note written on {}{closed}", request.source.number)),
        proof: None,
        hash: None,
    })
}

/// A claim lost before `what` was recorded is logged, not failed: the attempt is over, and
/// whoever took the message over decides what happens next (after a delivery, that sender may
/// deliver it again: the claim outlasts any attempt by far, so only a stalled sender meets this).
fn settled(message: &OutboxMessage, what: &str, result: Result<()>) -> Result<()> {
    match result {
        Err(Error::Stale) => {
            tracing::error!(message = %message.id, request = %message.request_id, "the claim ran out before {what} was recorded; another sender holds the message now");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_about_a_minute() {
        let secs: Vec<i64> = (0..9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
    }

    #[test]
    fn a_work_note_carries_its_marker_then_the_requests_head_last() {
        use crate::evidence::parse_anchors;
        let head = ChainHead { count: 5, hash: "ab".repeat(32) };
        let note = WorkNote { text: "Approved by ops@example.com.\n".into(), close: Some(true) };
        let written = anchored_note(&note, "gatehouse:m-1", &head);
        assert_eq!(
            written.text,
            format!("Approved by ops@example.com.\ngatehouse:m-1\n\ngatehouse-chain: 5:{}", head.hash)
        );
        assert_eq!(written.close, Some(true));
        assert_eq!(parse_anchors(&written.text), vec![head]);
        let unchained = anchored_note(&note, "gatehouse:m-1", &ChainHead::default());
        assert_eq!(unchained.text, "Approved by ops@example.com.\ngatehouse:m-1");
    }

    #[test]
    fn a_long_error_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let cut = shortened(long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(shortened("relay down".into()), "relay down");
    }
}
