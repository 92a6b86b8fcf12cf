//! The sender of the transactional outbox: delivers what transitions owe, removes what went out,
//! and schedules a retry for what did not. An outage delays a message; it never loses one.

use jiff::{SignedDuration, Timestamp};

use super::Services;
use crate::error::Result;
use crate::model::{HistoryEntry, MessageKind};
use crate::ports::{Itsm, Mailer};

/// Seconds before the next attempt: 1, 2, 4, … capped at a minute.
pub fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_secs(1i64 << attempts.min(6))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

impl Services {
    /// Delivers every owed message that is due now. Returns what happened, for logs and tests.
    pub async fn deliver_owed(&self, mailer: &dyn Mailer, itsm: Option<&dyn Itsm>) -> Result<Delivery> {
        let mut outcome = Delivery::default();
        loop {
            let due = self.store.messages_due(Timestamp::now(), 100).await?;
            if due.is_empty() {
                return Ok(outcome);
            }
            let mut progressed = false;
            for message in due {
                let Some(request) = self.store.get(&message.request_id).await? else {
                    tracing::error!(message = %message.id, "owed message refers to a missing request; dropping it");
                    self.store.message_sent(&message, None).await?;
                    continue;
                };
                let result = match (&message.kind, itsm) {
                    (MessageKind::Mail(notice), _) => mailer.send(notice, &request).await,
                    (MessageKind::WorkNote(note), Some(itsm)) => {
                        itsm.write_back(&format!("gatehouse:{}", message.id), note, &request).await
                    }
                    // Without a configured ITSM the note has nowhere to go: recorded as delivered.
                    (MessageKind::WorkNote(_), None) => Ok(()),
                };
                match result {
                    Ok(()) => {
                        // Write-backs show in the request's history; mails are seen in the outbox.
                        let history = match &message.kind {
                            MessageKind::WorkNote(note) => Some(HistoryEntry {
                                at: Timestamp::now(),
                                actor: "servicenow".into(),
                                from: Some(request.status),
                                to: request.status,
                                note: Some(format!(
                                    "work note written on {}{}",
                                    request.source.number,
                                    match note.close {
                                        Some(true) => "; closed complete",
                                        Some(false) => "; closed incomplete",
                                        None => "",
                                    }
                                )),
                                proof: None,
                            }),
                            MessageKind::Mail(_) => None,
                        };
                        self.store.message_sent(&message, history).await?;
                        outcome.sent += 1;
                        progressed = true;
                    }
                    Err(e) => {
                        tracing::warn!(message = %message.id, request = %request.id, attempts = message.attempts + 1, error = %e.chain(), "delivery failed; will retry");
                        let next = Timestamp::now() + backoff(message.attempts);
                        self.store.message_failed(&message, next, &e.to_string()).await?;
                        outcome.failed += 1;
                    }
                }
            }
            if !progressed {
                return Ok(outcome);
            }
        }
    }
}
